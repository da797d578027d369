"""Real `ayeto` processes for end-to-end tests: the CLI, and a server on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 30
# Servers in tests get a rate limit no test reaches by accident; a test of the limits sets its own.
UNLIMITED = "1000000/second"
# The environment of a server that proves something under load: its clients are a few keys going
# as fast as they can, which no per-key rate limit may refuse, and only warnings are logged.
LOAD_ENV = {"AYETO_RATE_LIMIT": UNLIMITED, "AYETO_LOG_LEVEL": "warning"}


def cli(
    *args: str, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `ayeto ARGS...` as a separate process, as an operator would."""
    result = subprocess.run(
        [sys.executable, "-m", "ayeto", *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"NO_COLOR": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"ayeto {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result


def new_key(database_url: str, user: str, *options: str) -> str:
    """A new API key for `user`, made by `ayeto keys create` (the key is its last line)."""
    output = cli("keys", "create", "--user", user, "--db", database_url, *options).stdout
    return output.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        """Everything the server has written so far, stdout and stderr."""
        return self.log.read_text()


@contextmanager
def serving(database_url: str, *options: str) -> Iterator[Server]:
    """`ayeto serve` on a free port of 127.0.0.1, until the block ends.

    Unless `options` or the environment name a rate limit, the server's is `UNLIMITED`.
    """
    port = free_port()
    limited = "--rate-limit" in options or os.environ.get("AYETO_RATE_LIMIT")
    # A file, not a pipe: a server that logs every request would block on a full pipe.
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "server.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ayeto",
                    "serve",
                    "--db",
                    database_url,
                    "--port",
                    str(port),
                    *options,
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                env=os.environ
                | {"NO_COLOR": "1"}
                | ({} if limited else {"AYETO_RATE_LIMIT": UNLIMITED}),
            )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        try:
            _wait_until_live(server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stop(server: Server) -> str:
    """Stop the server before its block ends; returns everything it wrote."""
    server.process.terminate()
    server.process.wait(timeout=15)
    return server.output()


def _wait_until_live(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"ayeto serve exited with {server.process.returncode}:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.base_url}/livez", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"ayeto serve did not answer on {server.base_url} within {STARTUP_SECONDS}s"
    )


@dataclass
class RedisServer:
    """A `redis-server` of the test's own on a free port, that the test may stop and start again."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty Redis for one test, stopped when the block ends (never the machine's own)."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(free_port(), Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


class Restartable:
    """`ayeto serve` on one port and database that a test may SIGKILL and start again.

    The log accumulates across runs, so that what any run wrote stays readable.
    """

    def __init__(self, database_url: str, log: Path, *options: str) -> None:
        self.database_url = database_url
        self.options = options
        self.log = log
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "ayeto", "serve", "--db", self.database_url]
        with self.log.open("a") as sink:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.options],
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                env=os.environ | {"NO_COLOR": "1"},
            )
        _wait_until_live(Server(self.base_url, self.process, self.log))

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye to the database."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def restartable(database_url: str, *options: str) -> Iterator[Restartable]:
    """A started `Restartable` server, stopped when the block ends."""
    with tempfile.TemporaryDirectory() as directory:
        server = Restartable(database_url, Path(directory) / "server.log", *options)
        server.start()
        try:
            yield server
        finally:
            server.stop()
