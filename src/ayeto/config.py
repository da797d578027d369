"""Settings, from `AYETO_*` environment variables; the CLI's options override them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from ayeto.store import ConnectionOptions

DEFAULT_DATABASE_URL: Final = "sqlite:///./ayeto.db"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
# A `find` body is a handful of filters; anything this large is a mistake or an attack.
MAX_BODY_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    log_level: str = "info"
    log_format: str = "console"
    max_body_bytes: int = MAX_BODY_BYTES
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        defaults = ConnectionOptions()
        return cls(
            database_url=env.get("AYETO_DATABASE_URL", DEFAULT_DATABASE_URL),
            host=env.get("AYETO_HOST", DEFAULT_HOST),
            port=int(env.get("AYETO_PORT", DEFAULT_PORT)),
            workers=int(env.get("AYETO_WORKERS", 1)),
            log_level=env.get("AYETO_LOG_LEVEL", "info").lower(),
            log_format=env.get("AYETO_LOG_FORMAT", "console").lower(),
            max_body_bytes=int(env.get("AYETO_MAX_BODY_BYTES", MAX_BODY_BYTES)),
            connection=ConnectionOptions(
                pool_size=int(env.get("AYETO_DB_POOL_SIZE", defaults.pool_size)),
                max_overflow=int(env.get("AYETO_DB_MAX_OVERFLOW", defaults.max_overflow)),
                pool_timeout=float(env.get("AYETO_DB_POOL_TIMEOUT", defaults.pool_timeout)),
                connect_timeout=int(env.get("AYETO_DB_CONNECT_TIMEOUT", defaults.connect_timeout)),
                statement_timeout_ms=int(
                    env.get("AYETO_DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout_ms)
                ),
            ),
        )
