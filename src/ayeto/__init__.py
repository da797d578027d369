"""ayeto: the Conversation API v3 server, store, CLI and client."""

__version__ = "0.1.0"
