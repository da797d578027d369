"""Logging for `ayeto serve`: human-readable lines, or one JSON object per line for collectors.

Every line carries the id of the request it was written for (`-`, or `null` in JSON, outside
of one); a line may carry fields of its own (`extra={"fields": {...}}`), which JSON writes as
keys of its object.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from asgi_correlation_id import CorrelationIdFilter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "correlation_id", None),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def config(level: str, style: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server and uvicorn; `style` is `console` or `json`."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if style == "json"
        else {"format": "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    request_id = {"()": CorrelationIdFilter, "default_value": None if style == "json" else "-"}
    loggers = ("ayeto", "uvicorn", "uvicorn.error", "uvicorn.access")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": request_id},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
            for name in loggers
        },
    }
