"""ayeto: the Conversation API v3 server, store, CLI and client."""
