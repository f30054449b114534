"""Open a report in real headless Chromium and check it: it renders, images load, math is laid
out as MathML, nothing is fetched from outside, and the console stays free of errors.

Chromium is driven through the DevTools protocol over a websocket (a minimal client below,
standard library only).  Used by ``scripts/check_report_in_browser.py`` and by the slow test
in ``tests/test_report.py``.  Chromium comes from Debian's packages (``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-port=0", "--window-size=1280,800")

#: the top of the page that a screenshot shows (px)
SCREENSHOT_MAX_HEIGHT = 12000

#: what the page reports about itself (evaluated in the page once it has loaded)
_INSPECT = """JSON.stringify({
  title: document.title,
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth, alt: i.alt})),
  math: document.querySelectorAll("math").length,
  fractionDisplay: (() => { const f = document.querySelector("math mfrac");
                            return f ? getComputedStyle(f).display : null; })(),
  fractionHeight: (() => { const f = document.querySelector("math mfrac");
                           return f ? f.getBoundingClientRect().height : null; })(),
  lineHeight: parseFloat(getComputedStyle(document.body).lineHeight),
  tables: document.querySelectorAll("table").length,
  height: document.documentElement.scrollHeight,
  textLength: document.body.innerText.length,
  external: [...document.querySelectorAll("[src],[href]")]
              .map(e => e.getAttribute("src") || e.getAttribute("href"))
              .filter(u => !u.startsWith("data:") && !u.startsWith("#")),
  brokenLinks: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute("href").slice(1))
                 .filter(id => !document.getElementById(id)),
  matrix: (() => { const wrap = document.querySelector(".matrix-wrap");
                   if (!wrap) return null;
                   const first = wrap.querySelector("tbody th"), head = wrap.querySelector("thead th");
                   return {scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth,
                           right: wrap.querySelector("table").getBoundingClientRect().right,
                           viewport: window.innerWidth,
                           firstColumn: first ? getComputedStyle(first).position : null,
                           header: head ? getComputedStyle(head).position : null,
                           cells: wrap.querySelectorAll("td a").length}; })(),
})"""


def find_chromium() -> str | None:
    """The path of a Chromium-family browser, or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


@dataclass
class BrowserCheck:
    """What Chromium saw when it opened the page."""

    page: dict
    console: list[str] = field(default_factory=list)
    screenshot: bytes | None = None

    def problems(self) -> list[str]:
        """Everything that is wrong, one line each (empty when the page is fine)."""
        found = [f"console: {line}" for line in self.console]
        broken = [i["alt"] for i in self.page["images"] if not i["complete"] or i["width"] == 0]
        found += [f"image did not load: {alt}" for alt in broken]
        found += [f"external resource: {url}" for url in self.page["external"]]
        if self.page["textLength"] == 0:
            found.append("the page shows no text")
        if self.page["math"] and "math" not in (self.page["fractionDisplay"] or "math"):
            found.append(f"MathML is not laid out as math (display: {self.page['fractionDisplay']})")
        found += [f"link to a missing anchor: #{target}" for target in self.page.get("brokenLinks", [])]
        matrix = self.page.get("matrix")
        if matrix:
            if matrix["scrollWidth"] > matrix["clientWidth"] + 1 or matrix["right"] > matrix["viewport"]:
                found.append(f"the summary matrix needs horizontal scrolling ({matrix['scrollWidth']} px in "
                             f"{matrix['clientWidth']} px at a {matrix['viewport']} px window)")
            if (matrix["firstColumn"], matrix["header"]) != ("sticky", "sticky"):
                found.append(f"the matrix's first column / header do not stay fixed ({matrix['firstColumn']}, "
                             f"{matrix['header']})")
        return found


class _WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client masking."""

    def __init__(self, url: str, timeout: float):
        match = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((match[1], int(match[2])), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET {match[3]} HTTP/1.1\r\nHost: {match[1]}:{match[2]}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            response += chunk
        status = response.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"DevTools handshake failed: {status!r}")
        self.buffer = response.split(b"\r\n\r\n", 1)[1]

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode in (0, 1, 2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class _DevTools:
    def __init__(self, url: str, timeout: float):
        self.socket = _WebSocket(url, timeout)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, deadline: float) -> None:
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not finish loading ({method} never came)")
            self.events.append(json.loads(self.socket.receive()))


def _console_errors(events: list[dict]) -> list[str]:
    lines = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            lines.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif event.get("method") == "Runtime.exceptionThrown":
            lines.append(params.get("exceptionDetails", {}).get("text", "exception"))
        elif event.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            lines.append(params["entry"].get("text", ""))
    return lines


def check_in_browser(page: str | os.PathLike, chromium: str | None = None, timeout: float = 60.0,
                     screenshot: bool = False) -> BrowserCheck:
    """Load ``page`` (an HTML file) in headless Chromium and report what it saw."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found; install it with `apt-get install -y chromium`")
    deadline = time.monotonic() + timeout
    profile = tempfile.mkdtemp(prefix="ibcheck-chromium-")
    process = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"  # Chromium writes its port there
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None:
                raise RuntimeError(f"Chromium exited with status {process.returncode} before DevTools started")
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not start DevTools in time")
            time.sleep(0.1)
        endpoint = f"127.0.0.1:{port_file.read_text().split()[0]}"
        with urllib.request.urlopen(f"http://{endpoint}/json/list", timeout=timeout) as response:
            targets = json.load(response)
        page_target = next(t for t in targets if t.get("type") == "page")
        tools = _DevTools(page_target["webSocketDebuggerUrl"], timeout)
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        tools.events.clear()
        tools.call("Page.navigate", url=Path(page).resolve().as_uri())
        tools.wait_for("Page.loadEventFired", deadline)
        evaluated = tools.call("Runtime.evaluate", expression=_INSPECT, returnByValue=True)
        result = BrowserCheck(json.loads(evaluated["result"]["value"]), _console_errors(tools.events))
        if screenshot:
            height = min(result.page["height"], SCREENSHOT_MAX_HEIGHT)  # Chromium refuses huge captures
            shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                              clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1})
            result.screenshot = base64.b64decode(shot["data"])
        tools.socket.close()
        return result
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
