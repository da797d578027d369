"""The README's screenshots of the web view: `make screenshots`.

Starts `ayeto serve --demo` on a free port with a temporary database, signs in with the key it
prints, in the system's headless `chromium` (the one the browser tests drive), and writes
docs/screenshots/list.png and docs/screenshots/conversation.png, 1280x800 each.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from ayeto.demo import SPEC_CONVERSATION

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "screenshots"
STARTUP_SECONDS = 60
KEY_LINE = re.compile(r"export AYETO_KEY=(ayeto-[0-9a-f]{64})")


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("error: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as directory:
        port = _free_port()
        log = Path(directory) / "serve.log"
        with log.open("w") as sink:
            server = subprocess.Popen(
                [
                    sys.executable, "-m", "ayeto", "serve", "--demo",
                    "--db", f"sqlite:///{Path(directory) / 'demo.db'}",
                    "--port", str(port),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                # The key is read from the log while the server runs: no buffered output.
                env=os.environ | {"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        try:
            base_url = f"http://127.0.0.1:{port}"
            key = _wait_for_key(server, base_url, log)
            OUTPUT.mkdir(parents=True, exist_ok=True)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                _sign_in(page, base_url, key)
                page.screenshot(path=OUTPUT / "list.png")
                page.goto(f"{base_url}/web/conversations/{SPEC_CONVERSATION}")
                page.screenshot(path=OUTPUT / "conversation.png")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)
    for name in ("list.png", "conversation.png"):
        print(f"wrote {(OUTPUT / name).relative_to(ROOT)}")
    return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_key(server: subprocess.Popen[bytes], base_url: str, log: Path) -> str:
    """The demo key `serve --demo` printed, once the server answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"error: ayeto serve exited:\n{log.read_text()}")
        key = KEY_LINE.search(log.read_text())
        try:
            live = httpx.get(f"{base_url}/livez", timeout=1).status_code == 200
        except httpx.TransportError:
            live = False
        if key and live:
            return key.group(1)
        time.sleep(0.2)
    raise SystemExit(f"error: ayeto serve did not answer within {STARTUP_SECONDS}s")


def _sign_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/web/sign-in")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("sign-in").click()
    page.wait_for_url(f"{base_url}/web/conversations")


if __name__ == "__main__":
    sys.exit(main())
