#!/usr/bin/env python3
"""A small in-memory fake of the Google Cloud Storage **XML API**, for mlv's tests.

object_store's GCS client writes, reads, lists and uploads in parts through the XML API,
which no off-the-shelf emulator speaks. This fake implements exactly the routes it uses:

  PUT    /BUCKET/OBJECT                       upload (x-goog-if-generation-match: 0 = create only,
                                              N = only if the generation is N) -> 412 otherwise
  PUT    /BUCKET/OBJECT  + x-goog-copy-source copy (same precondition header)
  GET    /BUCKET/OBJECT                       download; Range (bytes=a-b, a-, -n), If-Match,
                                              If-None-Match
  HEAD   /BUCKET/OBJECT                       metadata
  DELETE /BUCKET/OBJECT                       delete (404 if absent)
  GET    /BUCKET?list-type=2                  S3-style ListBucketResult: prefix, delimiter,
                                              start-after, max-keys, continuation tokens
  POST   /BUCKET/OBJECT?uploads               start a multipart upload
  PUT    /BUCKET/OBJECT?partNumber=N&uploadId=U   upload a part
  POST   /BUCKET/OBJECT?uploadId=U            complete (CompleteMultipartUpload XML body)
  DELETE /BUCKET/OBJECT?uploadId=U            abort

Object names arrive percent-encoded (`/` as `%2F`). Responses carry ETag, Last-Modified,
x-goog-generation and Content-Length. Errors are `<Error><Code>..</Code></Error>` documents
with the usual status codes.

Not covered (object_store does not need them, or mlv's tests do not): authentication (any
Authorization header is accepted: use a service-account key with "disable_oauth": true), the
JSON API (/storage/v1/..., /upload/storage/v1/...), signed URLs and signBlob, bucket
creation over HTTP (buckets come from --bucket), object metadata other than Content-Type,
chunked request bodies (Content-Length is required), versioning/generation queries on reads,
multipart part-size rules, persistence (everything is in memory).

Usage: gcs_fake.py [--host 127.0.0.1] [--port 0] --bucket NAME [--bucket NAME ...]
Prints the port it listens on as the first line of stdout. Stops on SIGTERM/SIGINT or when
stdin closes (so a test process that dies takes it along) unless --no-stdin-watch is given.
"""

import argparse
import base64
import email.utils
import hashlib
import itertools
import signal
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

LOCK = threading.Lock()
BUCKETS = {}  # bucket -> {name: Obj}
UPLOADS = {}  # upload id -> {"bucket", "name", "parts": {n: (etag, bytes)}}
GENERATION = itertools.count(int(time.time() * 1000))
UPLOAD_IDS = itertools.count(1)


class Obj:
    def __init__(self, data, content_type="application/octet-stream"):
        self.data = data
        self.generation = next(GENERATION)
        self.etag = '"%s"' % hashlib.md5(data).hexdigest()
        self.mtime = time.time()
        self.content_type = content_type


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcs-fake/1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    # ---- helpers ----
    def parse(self):
        raw_path, _, raw_query = self.path.partition("?")
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        parts = raw_path.lstrip("/").split("/", 1)
        bucket = urllib.parse.unquote(parts[0])
        name = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        return bucket, name, {k: v[0] for k, v in query.items()}

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def error(self, status, code, message="", head=False):
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>'
            % (code, escape(message))
        ).encode()
        self.send(status, body, {"Content-Type": "application/xml"}, head=head)

    def xml(self, status, text, headers=None):
        headers = dict(headers or {})
        headers["Content-Type"] = "application/xml"
        self.send(status, ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode(), headers)

    def bucket_or_404(self, bucket, head=False):
        objs = BUCKETS.get(bucket)
        if objs is None:
            self.error(404, "NoSuchBucket", "The specified bucket does not exist.", head=head)
        return objs

    def meta_headers(self, obj):
        return {
            "ETag": obj.etag,
            "Last-Modified": email.utils.formatdate(obj.mtime, usegmt=True),
            "x-goog-generation": str(obj.generation),
            "x-goog-metageneration": "1",
            "Content-Type": obj.content_type,
            "Accept-Ranges": "bytes",
        }

    def precondition_ok(self, objs, name):
        want = self.headers.get("x-goog-if-generation-match")
        if want is None:
            return True
        current = objs.get(name)
        if want.strip() == "0":
            return current is None
        return current is not None and str(current.generation) == want.strip()

    # ---- verbs ----
    def do_GET(self):
        self.read_or_head(head=False)

    def do_HEAD(self):
        self.read_or_head(head=True)

    def read_or_head(self, head):
        bucket, name, q = self.parse()
        self.body()
        with LOCK:
            objs = self.bucket_or_404(bucket, head)
            if objs is None:
                return
            if name is None:
                if head:
                    return self.send(200, head=True)
                return self.list(bucket, objs, q)
            obj = objs.get(name)
            if obj is None:
                return self.error(404, "NoSuchKey", "No such object: %s/%s" % (bucket, name), head=head)
            data, etag = obj.data, obj.etag
            headers = self.meta_headers(obj)
        if_match = self.headers.get("If-Match")
        if if_match and if_match.strip() not in ("*", etag):
            return self.error(412, "PreconditionFailed", "If-Match failed", head=head)
        if_none = self.headers.get("If-None-Match")
        if if_none and if_none.strip() in ("*", etag):
            return self.send(304, headers={"ETag": etag, "Content-Length": "0"}, head=True)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            spec = rng[len("bytes="):].strip()
            start_s, _, end_s = spec.partition("-")
            total = len(data)
            if start_s == "":
                start, end = max(total - int(end_s), 0), total - 1
            else:
                start = int(start_s)
                end = min(int(end_s), total - 1) if end_s else total - 1
            if start >= total or start > end:
                return self.error(416, "InvalidRange", "The requested range cannot be satisfied.", head=head)
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, total)
            return self.send(206, data[start:end + 1], headers, head=head)
        self.send(200, data, headers, head=head)

    def list(self, bucket, objs, q):
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter")
        max_keys = int(q.get("max-keys", "1000") or 1000)
        after = q.get("start-after", "")
        token = q.get("continuation-token")
        if token:
            after = max(after, base64.urlsafe_b64decode(token.encode()).decode())
        contents, prefixes, truncated, last = [], [], False, None
        seen_prefixes = set()
        for key in sorted(objs):
            if not key.startswith(prefix) or key <= after:
                continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if delimiter:
                rest = key[len(prefix):]
                if delimiter in rest:
                    cp = prefix + rest.split(delimiter, 1)[0] + delimiter
                    if cp not in seen_prefixes:
                        seen_prefixes.add(cp)
                        prefixes.append(cp)
                    last = key
                    continue
            contents.append((key, objs[key]))
            last = key
        out = ["<ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\">"]
        out.append("<Name>%s</Name><Prefix>%s</Prefix>" % (escape(bucket), escape(prefix)))
        out.append("<KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>" % (len(contents) + len(prefixes), max_keys))
        out.append("<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false"))
        for key, o in contents:
            out.append(
                "<Contents><Key>%s</Key><Generation>%d</Generation><LastModified>%s</LastModified>"
                "<ETag>%s</ETag><Size>%d</Size></Contents>"
                % (escape(key), o.generation, iso(o.mtime), escape(o.etag), len(o.data))
            )
        for cp in prefixes:
            out.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % escape(cp))
        if truncated and last is not None:
            tok = base64.urlsafe_b64encode(last.encode()).decode()
            out.append("<NextContinuationToken>%s</NextContinuationToken>" % tok)
        out.append("</ListBucketResult>")
        self.xml(200, "".join(out))

    def do_PUT(self):
        bucket, name, q = self.parse()
        data = self.body()
        with LOCK:
            objs = self.bucket_or_404(bucket)
            if objs is None:
                return
            if name is None:
                return self.error(400, "InvalidArgument", "bucket creation is not supported")
            if "uploadId" in q:
                up = UPLOADS.get(q["uploadId"])
                if up is None or up["bucket"] != bucket or up["name"] != name:
                    return self.error(404, "NoSuchUpload", "The specified upload does not exist.")
                etag = '"%s"' % hashlib.md5(data).hexdigest()
                up["parts"][int(q.get("partNumber", "0"))] = (etag, data)
                return self.send(200, headers={"ETag": etag})
            source = self.headers.get("x-goog-copy-source")
            if source is not None:
                src_bucket, _, src_name = urllib.parse.unquote(source).lstrip("/").partition("/")
                src = BUCKETS.get(src_bucket, {}).get(src_name)
                if src is None:
                    return self.error(404, "NoSuchKey", "No such object: %s" % source)
                data = src.data
            if not self.precondition_ok(objs, name):
                return self.error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
            obj = Obj(data, self.headers.get("Content-Type") or "application/octet-stream")
            objs[name] = obj
            headers = {"ETag": obj.etag, "x-goog-generation": str(obj.generation)}
        if source is not None:
            return self.xml(200, "<CopyObjectResult><ETag>%s</ETag></CopyObjectResult>" % escape(obj.etag), headers)
        self.send(200, headers=headers)

    def do_POST(self):
        bucket, name, q = self.parse()
        data = self.body()
        with LOCK:
            objs = self.bucket_or_404(bucket)
            if objs is None:
                return
            if name is None:
                return self.error(400, "InvalidArgument", "unsupported bucket POST")
            if "uploads" in q:
                upload_id = "upload-%d" % next(UPLOAD_IDS)
                UPLOADS[upload_id] = {"bucket": bucket, "name": name, "parts": {}}
                return self.xml(
                    200,
                    "<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
                    "</InitiateMultipartUploadResult>" % (escape(bucket), escape(name), upload_id),
                )
            if "uploadId" in q:
                up = UPLOADS.get(q["uploadId"])
                if up is None or up["bucket"] != bucket or up["name"] != name:
                    return self.error(404, "NoSuchUpload", "The specified upload does not exist.")
                try:
                    root = ET.fromstring(data)
                except ET.ParseError as e:
                    return self.error(400, "MalformedXML", str(e))
                chunks = []
                for part in root.iter():
                    if part.tag.split("}")[-1] != "Part":
                        continue
                    fields = {c.tag.split("}")[-1]: (c.text or "").strip() for c in part}
                    number = int(fields.get("PartNumber", "0"))
                    have = up["parts"].get(number)
                    if have is None or have[0].strip('"') != fields.get("ETag", "").strip('"'):
                        return self.error(400, "InvalidPart", "part %d is missing or its ETag differs" % number)
                    chunks.append((number, have[1]))
                if [n for n, _ in chunks] != sorted(n for n, _ in chunks):
                    return self.error(400, "InvalidPartOrder", "parts must be in ascending order")
                obj = Obj(b"".join(c for _, c in chunks))
                objs[name] = obj
                del UPLOADS[q["uploadId"]]
                return self.xml(
                    200,
                    "<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>%s</ETag>"
                    "</CompleteMultipartUploadResult>" % (escape(bucket), escape(name), escape(obj.etag)),
                    {"x-goog-generation": str(obj.generation)},
                )
        self.error(400, "InvalidArgument", "unsupported POST")

    def do_DELETE(self):
        bucket, name, q = self.parse()
        self.body()
        with LOCK:
            objs = self.bucket_or_404(bucket)
            if objs is None:
                return
            if "uploadId" in q:
                if UPLOADS.pop(q["uploadId"], None) is None:
                    return self.error(404, "NoSuchUpload", "The specified upload does not exist.")
                return self.send(204)
            if name is None or name not in objs:
                return self.error(404, "NoSuchKey", "No such object: %s/%s" % (bucket, name))
            del objs[name]
        self.send(204)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bucket", action="append", default=[])
    ap.add_argument("--no-stdin-watch", action="store_true")
    args = ap.parse_args()
    for b in args.bucket:
        BUCKETS[b] = {}
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not args.no_stdin_watch:
        def watch():
            try:
                while sys.stdin.read(1):
                    pass
            except Exception:
                pass
            stop()
        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
