"""A TCP proxy to stand between the server and its database, so tests can cut the link.

`cut()` closes every open connection, both ways at once, and from then on closes each new
connection as soon as it is accepted: to a client, the database has gone away. `restore()` lets
connections through again. The listening port never changes, so the client's URL stays valid.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType

CHUNK = 64 * 1024
# How often the accepting thread looks whether it should stop.
POLL_SECONDS = 0.05


class TcpProxy:
    """Relays 127.0.0.1:`port` to `target`; start it with `with TcpProxy(...) as proxy:`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[tuple[socket.socket, socket.socket]] = set()
        self._passing = True
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._acceptor.join()
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join()

    @property
    def connections(self) -> int:
        """How many connections are relayed right now."""
        with self._lock:
            return len(self._links)

    def cut(self) -> None:
        """Close every relayed connection and refuse new ones, until `restore()`."""
        with self._lock:
            self._passing = False
            for link in self._links:
                for end in link:
                    # Both peers see the end at once; the relaying thread wakes and closes them.
                    with contextlib.suppress(OSError):  # already reset by its peer
                        end.shutdown(socket.SHUT_RDWR)
            self._links.clear()

    def restore(self) -> None:
        """Relay new connections again."""
        with self._lock:
            self._passing = True

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._open(client)

    def _open(self, client: socket.socket) -> None:
        with self._lock:
            passing = self._passing
        upstream = None
        if passing:
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                upstream = None
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        link = (client, upstream)
        with self._lock:
            if not self._passing:  # cut while connecting
                client.close()
                upstream.close()
                return
            self._links.add(link)
        thread = threading.Thread(target=self._relay, args=(link,), name="proxy-relay", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _relay(self, link: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = link
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for end in link:
                selector.register(end, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select():
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(CHUNK)
                        if not data:
                            return
                        peer[source].sendall(data)
            except OSError:
                return  # cut, or reset by a peer
            finally:
                with self._lock:
                    self._links.discard(link)
                    for end in link:
                        end.close()
