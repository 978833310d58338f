"""A small Chrome DevTools Protocol client for the dashboard's browser tests.

Starts Debian's `chromium` headless with a fresh profile and no background networking, and drives one
page over the DevTools websocket (the `websockets` package's sync client). No browser is downloaded:
when `chromium` is not installed the tests skip and say so.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--window-size=1280,1000",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CDPError(RuntimeError):
    pass


class Page:
    """One page target: send commands, collect events, evaluate JS, take screenshots."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._stack = ExitStack()
        self._ws = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=15))
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self._stack.close()

    def _recv(self, timeout: float) -> dict[str, Any]:
        msg: dict[str, Any] = json.loads(self._ws.recv(timeout=timeout))
        return msg

    def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(max(0.01, deadline - time.monotonic()))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self.events.append(msg)

    def drain(self, seconds: float) -> None:
        """Collect events for a while (e.g. network requests a page might still make)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self._recv(left)
            except TimeoutError:
                return
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression: str) -> Any:
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise CDPError(f"JS error in {expression!r}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Re-evaluate until truthy (the test waits; the page itself never polls)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {expression}")
            self.drain(0.1)

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def viewport(self, width: int, height: int = 900, *, mobile: bool = False) -> None:
        """Lay the page out as a screen of this size (a phone with `mobile`)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def pdf(self) -> bytes:
        """The page printed as Chromium prints it (its print stylesheet, A4 unless the CSS says)."""
        out = self.call("Page.printToPDF", timeout=60, printBackground=True, preferCSSPageSize=True)
        return base64.b64decode(out["data"])

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("method") == name]


@contextmanager
def chromium(profile: Path, log: Path) -> Iterator[Callable[[], Page]]:
    """Run chromium for the duration; yields a factory for the (one) page target."""
    exe = chromium_path()
    assert exe is not None
    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)  # a reused profile must not hand us the last run's port
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    pages: list[Page] = []
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start; see {log}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])

        def page() -> Page:
            # No proxy: a configured HTTP proxy must not see (or break) a loopback request.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                targets = json.loads(resp.read())
            target = next(t for t in targets if t.get("type") == "page")
            p = Page(target["webSocketDebuggerUrl"])
            pages.append(p)
            return p

        yield page
    finally:
        for p in pages:
            p.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
