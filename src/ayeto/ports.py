"""Whether `ayeto serve` can listen on an address, asked before it touches the database.

The server itself binds later (uvicorn, in each worker); asking first lets a busy port end in one
clear line before `serve --demo` has loaded anything or made a key. The check binds the way
asyncio's server does (`SO_REUSEADDR`; IPv6 sockets IPv6-only), on every address the host names,
so it fails exactly when the server would.
"""

from __future__ import annotations

import errno
import socket
from contextlib import ExitStack


def cannot_listen(host: str, port: int, *, retry: str) -> str | None:
    """Why a server could not listen on `host`:`port`, in one line; None if it could.

    `retry` shows how to run the same command on another port, with `{port}` for the port.
    """
    where = f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot listen on {where}: {exc.args[-1]}"
    with ExitStack() as sockets:
        for family, kind, proto, _, address in addresses:
            probe = sockets.enter_context(socket.socket(family, kind, proto))
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    other = port + 1 if port < 65535 else port - 1
                    return (
                        f"port {port} on {host} is in use; pick another with --port or "
                        f"AYETO_PORT (e.g. {retry.format(port=other)})"
                    )
                return f"cannot listen on {where}: {exc.strerror}"
    return None


__all__ = ["cannot_listen"]
