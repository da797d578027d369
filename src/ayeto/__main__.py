"""The `ayeto` command (also `python -m ayeto`).

The CLI needs the server's dependencies, the `server` extra; without them (`pip install ayeto`
gives only the client) it says so in one line instead of a traceback.
"""

import sys


def main() -> None:
    try:
        from ayeto.cli import main as cli
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "ayeto":
            raise
        sys.stderr.write(
            f"error: the ayeto command needs the server's dependencies ({exc.name} is missing): "
            "pip install 'ayeto[server]'\n"
        )
        sys.exit(2)
    cli()


if __name__ == "__main__":
    main()
