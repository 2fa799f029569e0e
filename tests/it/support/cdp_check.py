#!/usr/bin/env python3
"""Loads mlv report pages in headless chromium over the DevTools protocol (--remote-debugging-pipe;
standard library only) and prints, as one JSON array, what each page did: console errors and
exceptions, dialogs, whether injected script ran, the size of the first graph and chart, and
whether clicking a lineage node link moved the location hash to the run that produced it.

usage: cdp_check.py CHROMIUM KIND:PAGE... (KIND: full = expects a graph, a chart and a link;
many = types into the filter box; empty = no models)
"""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT = 15.0


class Browser:
    def __init__(self, exe):
        self.profile = tempfile.mkdtemp(prefix="mlv-cdp-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)

        def fds():
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--user-data-dir=" + self.profile,
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=fds)
        for fd in (to_chrome_r, from_chrome_w, a, b):
            os.close(fd)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            r, _, _ = select.select([self.from_chrome], [], [], left)
            if r:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        m = json.loads(msg)
        if m.get("method") == "Page.javascriptDialogOpening":
            # an injected alert() would block the page: dismiss it (and report it)
            self.send("Page.handleJavaScriptDialog", {"accept": False}, m.get("sessionId"))
        return m

    def call(self, method, params=None, session=None):
        want = self.send(method, params, session)
        deadline = time.monotonic() + TIMEOUT
        while True:
            m = self.read(deadline)
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, session):
        deadline = time.monotonic() + TIMEOUT
        for i, m in enumerate(self.events):
            if m.get("method") == method and m.get("sessionId") == session:
                del self.events[i]
                return m
        while True:
            m = self.read(deadline)
            if m.get("method") == method and m.get("sessionId") == session:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def evaluate(b, s, expr):
    r = b.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True}, s)
    if "exceptionDetails" in r:
        raise RuntimeError("check script failed: %s" % r["exceptionDetails"])
    return r["result"].get("value")


def check(b, kind, page):
    target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for m in ("Page.enable", "Runtime.enable", "Log.enable"):
        b.call(m, {}, s)
    b.events = [e for e in b.events if e.get("sessionId") != s]
    b.call("Page.navigate", {"url": "file://" + os.path.abspath(page)}, s)
    b.wait_event("Page.loadEventFired", s)
    out = {"page": page}
    out.update(evaluate(b, s, """(() => {
      const area = (sel) => { const e = document.querySelector(sel); if (!e) return 0;
        const r = e.getBoundingClientRect(); return r.width * r.height; };
      return { pwned: typeof window.__pwned, models: document.querySelectorAll('#models li').length,
               graph_area: area('svg.graph'), chart_area: area('svg.chart') };
    })()"""))
    if kind == "many":
        out["filter_m19x"] = evaluate(b, s, """(() => {
          const f = document.getElementById('filter'); f.value = 'm19';
          f.dispatchEvent(new Event('input'));
          return [...document.querySelectorAll('#models li')].filter((li) => !li.hidden).length;
        })()""")
    if kind == "full":
        link = evaluate(b, s, """(() => {
          const a = document.querySelector('a.node-link'); if (!a) return null;
          a.scrollIntoView({block: 'center', inline: 'center'});
          const r = a.getBoundingClientRect();
          return { x: r.left + r.width / 2, y: r.top + r.height / 2, hash: location.hash,
                   href: a.getAttribute('href') };
        })()""")
        out["link"] = link
        out["link_hash_changed"] = False
        out["target_is_run"] = False
        if link:
            for t in ("mousePressed", "mouseReleased"):
                b.call("Input.dispatchMouseEvent", {"type": t, "x": link["x"], "y": link["y"],
                                                    "button": "left", "clickCount": 1}, s)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                h = evaluate(b, s, "location.hash")
                if h != link["hash"]:
                    break
                time.sleep(0.05)
            out["hash_after"] = h
            out["link_hash_changed"] = h == link["href"] and h != link["hash"]
            out["target_is_run"] = evaluate(b, s, """(() => {
              const t = document.getElementById(location.hash.slice(1));
              return !!t && (t.getAttribute('class') || '').split(' ').includes('run');
            })()""")
        out["pwned_after"] = evaluate(b, s, "typeof window.__pwned")
        if out["pwned_after"] != "undefined":
            out["pwned"] = out["pwned_after"]
    errors, dialogs = [], []
    for e in b.events:
        if e.get("sessionId") != s:
            continue
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            errors.append(p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"].get("text"))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console.%s: %s" % (p["type"], [a.get("value") for a in p.get("args", [])]))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            errors.append("log: %s" % p["entry"].get("text"))
        elif m == "Page.javascriptDialogOpening":
            dialogs.append(p.get("message"))
    out["errors"] = errors
    out["dialogs"] = dialogs
    b.call("Target.closeTarget", {"targetId": target})
    return out


def main():
    exe, pages = sys.argv[1], sys.argv[2:]
    b = Browser(exe)
    try:
        results = [check(b, *p.split(":", 1)) for p in pages]
    finally:
        b.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
