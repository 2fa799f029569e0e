"""A counting HTTP/1.1 proxy for an S3 server on 127.0.0.1 (stdlib only).

Clients talk to the proxy as if it were the server (it forwards the bytes unchanged, so SigV4
signatures made for the proxy's host:port still hold: the server checks the Host header the
client sent). It parses both directions just enough to count, per request: the method, whether
it was a listing, and the body bytes each way (request bodies by Content-Length or chunked
framing; response bodies likewise, none after HEAD, 1xx, 204 and 304).

Counting costs time (every byte goes through Python): time without it, count with it.

    proxy = CountingProxy(upstream_port)   # starts a thread
    proxy.reset(); ...; proxy.snapshot()   # {"PUT": 3, "POST": 2, ..., "up_bytes": ..., ...}
"""

import asyncio
import collections
import socket
import threading

WRITES = ("PUT", "POST", "DELETE")


class _Tap:
    """Reads from `reader`, forwarding every byte consumed to `writer` unchanged."""

    def __init__(self, reader, writer, count):
        self.r, self.w = reader, writer
        self.count = count  # count(n): n body bytes forwarded (as they go: a connection closed
        # right after the last byte must not lose them)
        self.buf = bytearray()

    async def fill(self):
        data = await self.r.read(1 << 20)
        if not data:
            raise EOFError
        self.buf += data

    async def until(self, sep):
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                break
            start = max(0, len(self.buf) - len(sep) + 1)
            await self.fill()
        out = bytes(self.buf[:i + len(sep)])
        del self.buf[:i + len(sep)]
        self.w.write(out)
        return out

    async def exact(self, n):
        """Forwards n bytes without keeping them."""
        while n > 0:
            if not self.buf:
                await self.fill()
            k = min(n, len(self.buf))
            self.w.write(bytes(self.buf[:k]))
            del self.buf[:k]
            n -= k
            self.count(k)
            await self.w.drain()

    async def body(self, headers):
        """Forwards a message body framed by `headers`; returns its length (payload bytes)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            total = 0
            while True:
                line = await self.until(b"\r\n")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.until(b"\r\n")) != b"\r\n":
                        pass
                    return total
                await self.exact(size)
                await self.until(b"\r\n")
                total += size
        n = int(headers.get("content-length", "0") or 0)
        await self.exact(n)
        return n


def _head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


class CountingProxy:
    def __init__(self, upstream_port, bucket=None):
        self.upstream = upstream_port
        self.bucket = bucket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.reset()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(30)

    def reset(self):
        with self.lock:
            self.counts = collections.Counter()

    def snapshot(self):
        """Requests by method (`LIST` for listings, counted apart from GET), `writes` (PUT,
        POST, DELETE), `requests`, `up_bytes` (request bodies), `down_bytes` (response bodies)."""
        with self.lock:
            c = dict(self.counts)
        c["writes"] = sum(c.get(m, 0) for m in WRITES)
        c["requests"] = sum(v for k, v in c.items() if k.isupper())
        c.setdefault("up_bytes", 0)
        c.setdefault("down_bytes", 0)
        return c

    def _add(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._conn, "127.0.0.1", self.port)
            ready.set()
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def _kind(self, request_line):
        method, target = (request_line.split(" ") + ["", ""])[:2]
        path = target.split("?", 1)[0].rstrip("/")
        if method == "GET" and path.count("/") <= 1:
            # GET on the bucket itself: a listing (path style: /BUCKET?list-type=2...)
            return "LIST"
        return method

    async def _conn(self, creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            cwriter.close()
            return
        methods = collections.deque()
        got_request = asyncio.Event()

        async def upstream():
            tap = _Tap(creader, swriter, lambda n: self._add("up_bytes", n))
            while True:
                raw = await tap.until(b"\r\n\r\n")
                line, headers = _head(raw)
                kind = self._kind(line)
                self._add(kind)
                methods.append(kind)
                got_request.set()
                await tap.body(headers)
                await swriter.drain()

        async def downstream():
            tap = _Tap(sreader, cwriter, lambda n: self._add("down_bytes", n))
            while True:
                raw = await tap.until(b"\r\n\r\n")
                line, headers = _head(raw)
                status = int((line.split(" ") + ["0", "0"])[1])
                if 100 <= status < 200:
                    await cwriter.drain()
                    continue
                while not methods:
                    got_request.clear()
                    await got_request.wait()
                kind = methods.popleft()
                if kind != "HEAD" and status not in (204, 304):
                    await tap.body(headers)
                await cwriter.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for w in (swriter, cwriter):
                try:
                    w.close()
                except Exception:
                    pass

    def stop(self):
        def close():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(close)
        self.thread.join(10)
