"""Drive headless chromium over the DevTools protocol: open a page, evaluate JavaScript, take a screenshot.

A test helper, not a test file. Needs only ``websocket-client`` (a visdom dependency).

    with Browser(chromium_path) as browser:
        browser.open("file:///.../index.html")
        count = browser.evaluate("document.images.length")
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

import websocket

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class BrowserError(RuntimeError):
    """The browser could not start, load a page, or evaluate an expression."""


def find_chromium() -> str | None:
    """Path of a chromium/chrome binary on PATH (or $CHROMIUM), else None."""
    candidates = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else []
    for name in (*candidates, *CHROMIUM_NAMES):
        path = shutil.which(name)
        if path:
            return path
    return None


def _local_get(url: str, timeout: float) -> bytes:
    """GET from the local DevTools endpoint, never through a proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


class Browser:
    """One headless chromium process with one page; always killed on exit from the ``with`` block."""

    def __init__(self, binary: str, timeout: float = 30.0, window_size: tuple[int, int] = (1280, 1000)):
        self.binary = binary
        self.timeout = timeout
        self.window_size = window_size
        self.requests: dict[str, dict] = {}   # requestId -> {"url", "status", "failed"}
        self._events: list[dict] = []
        self._ids = itertools.count(1)
        self._process: subprocess.Popen | None = None
        self._socket: websocket.WebSocket | None = None
        self._user_dir: Path | None = None

    # ------------------------------------------------------------------ process
    def __enter__(self) -> Self:
        self._user_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self._log = open(self._user_dir / "chromium.log", "wb")
        width, height = self.window_size
        command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._user_dir}", "--remote-debugging-port=0",
                   f"--window-size={width},{height}", "about:blank"]
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                             start_new_session=True)
            self._socket = websocket.create_connection(self._page_socket_url(), timeout=self.timeout,
                                                       suppress_origin=True)
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
            self._socket = None
        if self._process is not None:
            self._kill_process_group()
            self._process = None
        if self._user_dir is not None:
            self._log.close()
            shutil.rmtree(self._user_dir, ignore_errors=True)
            self._user_dir = None

    def _kill_process_group(self) -> None:
        """chromium forks helpers (zygote, renderers) into its session: end the whole group we started."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self._process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self._process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def _log_tail(self) -> str:
        self._log.flush()
        text = (self._user_dir / "chromium.log").read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-10:])

    def _page_socket_url(self) -> str:
        """Wait for chromium's DevToolsActivePort file, then return the first page's websocket URL."""
        port_file = self._user_dir / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserError(f"chromium exited with code {self._process.returncode}:\n{self._log_tail()}")
            lines = port_file.read_text().split() if port_file.is_file() else []
            if lines:
                targets = json.loads(_local_get(f"http://127.0.0.1:{lines[0]}/json/list", self.timeout))
                pages = [target for target in targets if target.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise BrowserError(f"chromium did not open its DevTools port within {self.timeout:.0f} s:\n{self._log_tail()}")

    # ------------------------------------------------------------------ protocol
    def _receive(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError("timed out waiting for chromium")
        self._socket.settimeout(remaining)
        try:
            message = json.loads(self._socket.recv())
        except websocket.WebSocketTimeoutException as err:
            raise BrowserError("timed out waiting for chromium") from err
        if "method" in message:
            self._note_event(message)
        return message

    def _note_event(self, event: dict) -> None:
        self._events.append(event)
        params = event.get("params", {})
        method = event["method"]
        if method == "Network.requestWillBeSent":
            self.requests[params["requestId"]] = {"url": params["request"]["url"], "status": None, "failed": None}
        elif method == "Network.responseReceived" and params["requestId"] in self.requests:
            self.requests[params["requestId"]]["status"] = params["response"]["status"]
        elif method == "Network.loadingFailed" and params["requestId"] in self.requests:
            self.requests[params["requestId"]]["failed"] = params.get("errorText", "failed")

    def call(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        """Send one DevTools command and return its result."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline)
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def wait_event(self, method: str, timeout: float | None = None) -> dict:
        """Wait for (and consume) the next event named ``method``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method:
                    return self._events.pop(index)
            self._receive(deadline)

    # ------------------------------------------------------------------ page
    def open(self, url: str, timeout: float | None = None) -> None:
        """Navigate to ``url`` and wait for its load event; the request log starts afresh."""
        self._events.clear()
        self.requests.clear()
        result = self.call("Page.navigate", {"url": url}, timeout)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression: str):
        """Evaluate a JavaScript expression in the page (promises awaited) and return its JSON value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error in {expression!r}: {description}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None, interval: float = 0.2):
        """Evaluate ``expression`` until it is truthy; returns that value (BrowserError after the timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(interval)
        raise BrowserError(f"{expression!r} still {value!r} after {timeout or self.timeout:.0f} s")

    def screenshot(self, path: str | Path) -> Path:
        """Save a PNG of the visible page."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def external_requests(self) -> list[str]:
        """URLs the page asked for from hosts other than this machine (data:, blob:, file: are local)."""
        external = []
        for request in self.requests.values():
            parsed = urlparse(request["url"])
            if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in LOCAL_HOSTS:
                external.append(request["url"])
        return external
