"""Browser tests' tools: Debian's `chromium` driven by Playwright, axe-core, and a trap server.

Playwright never downloads a browser here: it launches the system's `chromium`. Without one the
browser tests are skipped, except under `CI=true`, where they fail (as for PostgreSQL and Redis).
"""

from __future__ import annotations

import importlib.resources
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import unavailable

# Impacts axe-core rates as failing an accessibility check (it also knows "minor" and "moderate").
FAILING_IMPACTS = frozenset({"serious", "critical"})


def chromium_path() -> str:
    """The system's Chromium; skips (fails under CI) when it is not installed."""
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium until the block ends (Playwright passes --no-sandbox, as root needs)."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = _launch(playwright, executable)
        try:
            yield browser
        finally:
            browser.close()


def _launch(playwright: Playwright, executable: str) -> Browser:
    return playwright.chromium.launch(executable_path=executable, headless=True)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on `page`, as it is now.

    The script comes from the axe-playwright-python package (a pinned test dependency), never from
    the repository; it is evaluated through the DevTools protocol, which the page's
    Content-Security-Policy does not govern.
    """
    script = importlib.resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    page.evaluate(script)
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v["impact"] in FAILING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and per element it names, for an assertion's message."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']} {violation['id']}: {violation['help']}")
        lines += [f"    {node['html']}" for node in violation["nodes"]]
    return "\n".join(lines)


@dataclass
class Trap:
    """An HTTP server no page may ever reach: it records every request it gets."""

    base_url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def trap_server() -> Iterator[Trap]:
    """A `Trap` on a free port of 127.0.0.1 until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrapHandler)
    trap = Trap(f"http://127.0.0.1:{server.server_address[1]}")
    server.trap = trap  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield trap
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _TrapHandler(BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.trap.requests.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        # A 1x1 GIF: were it ever loaded as an image, it would load.
        body = b"GIF89a\x01\x00\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x00;"
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _record  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reports what reached the trap."""
