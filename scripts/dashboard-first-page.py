#!/usr/bin/env python3
"""Time until the dashboard's first page of monitors has rendered, in headless Chromium.

Usage: scripts/dashboard-first-page.py URL [RUNS]   (e.g. http://127.0.0.1:9850/ 5)

Each run starts a fresh Chromium (empty profile, so nothing cached), opens URL and waits until
the page has drawn its first page of rows: the page then sets data-first-page-ms on <html> to
performance.now(), the ms since the navigation started (the page, its script and style, the
summary and the first page of monitors from the API, drawn). Real time, no virtual clock.
Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe), so
nothing but the standard library is needed; every name but 127.0.0.1 resolves to nothing.
"""
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time


def run_once(url):
    # Pipes moved above fd 10, so that making them fds 3 and 4 in the child clobbers nothing.
    def high(fd):
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return moved

    to_chrome_r, to_chrome_w = (high(fd) for fd in os.pipe())
    from_chrome_r, from_chrome_w = (high(fd) for fd in os.pipe())

    def as_fds_3_and_4():
        # Chromium reads commands on fd 3 and writes answers on fd 4.
        os.dup2(to_chrome_r, 3)
        os.dup2(from_chrome_w, 4)

    with tempfile.TemporaryDirectory() as profile:
        chrome = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={profile}",
             "--disable-background-networking", "--disable-component-update",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             "--window-size=1366,768", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=as_fds_3_and_4, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        out = os.fdopen(to_chrome_w, "wb", buffering=0)
        inp = os.fdopen(from_chrome_r, "rb", buffering=0)
        buf = b""
        next_id = [0]

        def call(method, params=None, session=None):
            nonlocal buf
            next_id[0] += 1
            msg = {"id": next_id[0], "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            out.write(json.dumps(msg).encode() + b"\0")
            while True:
                while b"\0" not in buf:
                    chunk = inp.read(65536)
                    if not chunk:
                        raise RuntimeError("chromium closed the pipe")
                    buf += chunk
                raw, buf = buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == next_id[0]:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]

        try:
            targets = call("Target.getTargets")["targetInfos"]
            page = next(t["targetId"] for t in targets if t["type"] == "page")
            session = call("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]
            call("Page.navigate", {"url": url}, session)
            end = time.monotonic() + 60
            while time.monotonic() < end:
                value = call("Runtime.evaluate", {
                    "expression": "document.documentElement.dataset.firstPageMs || ''",
                    "returnByValue": True}, session)["result"].get("value")
                if value:
                    rows = call("Runtime.evaluate", {
                        "expression": "document.querySelectorAll('#rows tr').length",
                        "returnByValue": True}, session)["result"]["value"]
                    return int(value), rows
                time.sleep(0.01)
            raise RuntimeError("the first page never rendered within 60 s")
        finally:
            os.killpg(chrome.pid, 9)
            chrome.wait()


def main():
    url = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    times = []
    for _ in range(runs):
        ms, rows = run_once(url)
        times.append(ms)
        print(f"first page rendered after {ms} ms ({rows} rows)")
    times.sort()
    print(f"median {times[len(times) // 2]} ms, worst {times[-1]} ms over {runs} runs")


if __name__ == "__main__":
    main()
