"""The HTTP API: `create_app` builds the FastAPI application around a store."""

from ayeto.api.app import create_app

__all__ = ["create_app"]
