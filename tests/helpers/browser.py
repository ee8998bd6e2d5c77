"""Drive a real headless Chromium (the OS package) over the DevTools protocol on a pipe: no network
port, no extra Python package. Used by the HTML view's tests and to take the README's screenshot."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page; `console` collects console errors and exceptions, `requests`
    the URL of every request the page made (its own files, and anything it tried to fetch from outside)."""

    def __init__(self, width: int = 1400, height: int = 900, timeout: float = 60.0):
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("no chromium on PATH (Debian: apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="tg-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds():          # Chromium reads commands on fd 3 and writes replies to fd 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)     # never clobber one with the other
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.timeout, self._id, self._buf, self.console, self.requests = timeout, 0, b"", [], []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False, session=True)
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool | str = False, **params):
        """Send a DevTools command: to the browser, to the page (`session=True`) or to another target
        attached with Target.attachToTarget (`session=` its session id, e.g. an out-of-process iframe)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session if session is True else session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = self._read()
            self._note(reply)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(f"{method}: no reply in {self.timeout} s")

    def _note(self, event: dict) -> None:
        method, p = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.console.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.console.append(d.get("exception", {}).get("description") or d.get("text"))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            self.console.append(p["entry"].get("text"))
        elif method == "Network.requestWillBeSent":
            self.requests.append(p.get("request", {}).get("url"))

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        r = self.call("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    def open(self, url: str) -> None:
        """Load `url` afresh (a new document even when only the #fragment changes) and wait until the page
        says it is drawn (or failed)."""
        self.call("Page.navigate", session=True, url="about:blank")
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            state = self.eval("document.body ? document.body.dataset.state : null")
            if state in ("ready", "error"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{url}: not drawn in {self.timeout} s")

    def load(self, url: str) -> None:
        """Load any page (not the library's HTML view) and wait until the browser says it has loaded."""
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.eval("document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise TimeoutError(f"{url}: not loaded in {self.timeout} s")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of the first element matching `selector`."""
        box = self.eval(f"(() => {{ const el = document.querySelector({json.dumps(selector)}); el.scrollIntoView("
                        "{block: 'center', inline: 'center'}); const r = el.getBoundingClientRect(); "
                        "return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def screenshot(self, path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    # python tests/browser.py PAGE.html OUT.png [HOVER_SELECTOR]: the README's screenshot of the HTML view
    import sys

    page, out = sys.argv[1], sys.argv[2]
    with Browser(width=1400, height=860) as b:
        b.open("file://" + os.path.abspath(page))
        if len(sys.argv) > 3:
            b.eval(f"document.querySelector({json.dumps(sys.argv[3])}).dispatchEvent("
                   "new MouseEvent('mouseover', {bubbles: true}))")
        if b.console:
            raise SystemExit(f"console errors: {b.console}")
        b.screenshot(out)
    print(out)
