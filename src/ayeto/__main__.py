from ayeto.cli import main

main()
