#!/usr/bin/env python3
"""http_e2e.py - the HTTP server's edge cases, driven byte by byte from Python.

curl, ab, wrk and Chromium (tests/e2e/http-e2e) show that well-behaved clients get what they
expect. This script plays the clients they will not: it pipelines, sends malformed and
ambiguous heads (each one must be refused with the right status and the connection closed,
since after a framing error nothing later on the connection can be trusted), trickles bytes,
stops reading, goes idle, and shuts the server down while a request is in flight. Raw sockets
are used wherever the exact bytes matter; http.client where a stock client's view is the point.

    python3 tests/e2e/http_e2e.py build/release/tests/http_e2e_server

It starts its own servers (127.0.0.1, a free port each) with short timeouts and small limits,
prints one "ok"/"FAIL" line per check, kills what it started, and exits 1 if any check failed.
"""
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HOST = "127.0.0.1"
# Limits given to the main test server; the checks below are written against them.
READ_HEADER_TIMEOUT = 1.0
READ_TIMEOUT = 3.0
WRITE_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.0
MAX_REQUEST_LINE = 4096
MAX_HEADER_BYTES = 16384
MAX_HEADERS = 50
MAX_BODY = 1 << 20

failures = 0
checks = 0
report_lock = threading.Lock()


def report(name, good, detail=""):
    global failures, checks
    line = ("ok   " if good else "FAIL ") + "py: " + name
    if detail and not good:
        line += ": " + detail
    with report_lock:
        checks += 1
        failures += 0 if good else 1
        print(line, flush=True)
    return good


def pattern(n, off=0):
    """Bytes off..off+n of the /big body: byte i is 'a' + i % 26."""
    alpha = b"abcdefghijklmnopqrstuvwxyz"
    start = off % 26
    reps = (start + n) // 26 + 1
    return (alpha * reps)[start:start + n]


def fnv1a64(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


# ------------------------------------------------------------------------------------------
# Servers
# ------------------------------------------------------------------------------------------

class Server:
    """One http_e2e_server process. Killed by PID when the script ends."""
    all = []

    def __init__(self, binary, *args, nofile=None):
        limit = None
        if nofile is not None:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([binary, "--addr", HOST + ":0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=limit)
        Server.all.append(self)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError("server did not start: %r %r" %
                               (line, self.proc.stderr.read().decode()[-500:]))
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    @classmethod
    def stop_all(cls):
        for s in cls.all:
            s.stop()


# ------------------------------------------------------------------------------------------
# A raw connection with a strict response reader
# ------------------------------------------------------------------------------------------

class Response:
    def __init__(self, version, status, reason, headers):
        self.version, self.status, self.reason, self.headers = version, status, reason, headers
        self.body = b""
        self.chunked = False
        self.interim = []

    def header(self, name):
        for n, v in self.headers:
            if n == name.lower():
                return v
        return None

    def header_has(self, name, token):
        v = self.header(name)
        return v is not None and token.lower() in [t.strip().lower() for t in v.split(",")]

    def __repr__(self):
        return "<%d %s, %d body bytes>" % (self.status, self.reason, len(self.body))


class Conn:
    def __init__(self, port, rcvbuf=None, timeout=5.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.settimeout(timeout)
        self.s.connect((HOST, port))
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def close(self):
        self.s.close()

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            return False

    def fill(self):
        if self.eof:
            return False
        try:
            d = self.s.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            d, self.reset = b"", True
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, delim):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                return self.take(i + len(delim))
            start = max(0, len(self.buf) - len(delim))
            if not self.fill():
                raise EOFError("connection closed while waiting for %r (have %r)" %
                               (delim, bytes(self.buf[:200])))

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise EOFError("connection closed after %d of %d body bytes" % (len(self.buf), n))
        return self.take(n)

    def read_to_eof(self):
        while self.fill():
            pass
        return self.take(len(self.buf))

    def head(self):
        raw = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = raw[:-4].split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        if not version.startswith("HTTP/1.") or not status.isdigit():
            raise ValueError("bad status line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            name, sep, value = ln.partition(":")
            if not sep or name != name.strip():
                raise ValueError("bad header line %r" % ln)
            headers.append((name.lower(), value.strip()))
        return Response(version, int(status), reason[0] if reason else "", headers)

    def chunked_body(self):
        body = bytearray()
        while True:
            line = self.read_until(b"\r\n")[:-2]
            size = line.split(b";", 1)[0]
            if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                raise ValueError("bad chunk size line %r" % line)
            n = int(size, 16)
            if n == 0:
                break
            body += self.read_exact(n)
            if self.read_exact(2) != b"\r\n":
                raise ValueError("chunk data not followed by CRLF")
        while self.read_until(b"\r\n") != b"\r\n":  # trailer fields
            pass
        return bytes(body)

    def response(self, method="GET", keep_interim=False):
        """Read one final response (interim 1xx ones are collected in .interim)."""
        interim = []
        while True:
            r = self.head()
            if r.status >= 200 or r.status == 101 or keep_interim:
                break
            interim.append(r.status)
        r.interim = interim
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if method == "HEAD" or r.status < 200 or r.status in (204, 304):
            return r
        if te is not None:
            if te.lower() != "chunked":
                raise ValueError("unexpected Transfer-Encoding %r" % te)
            r.chunked = True
            r.body = self.chunked_body()
        elif cl is not None:
            r.body = self.read_exact(int(cl))
        else:
            r.body = self.read_to_eof()
        return r

    def closed_within(self, timeout):
        """Wait until the server closes. Returns (closed, seconds, extra bytes seen)."""
        t0 = time.monotonic()
        self.s.settimeout(timeout)
        extra = bytes(self.buf)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    break
                extra += d
        except (ConnectionResetError, BrokenPipeError):
            pass
        except socket.timeout:
            return False, time.monotonic() - t0, extra
        return True, time.monotonic() - t0, extra


def req(method, path, headers=(), body=b"", version="HTTP/1.1", host=True):
    lines = ["%s %s %s" % (method, path, version)]
    if host:
        lines.append("Host: e2e")
    lines += list(headers)
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding"))
                        for h in headers):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def run(name, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # a crash in a check is a failed check, not a dead script
        report(name, False, "%s: %s" % (type(e).__name__, e))
        traceback.print_exc(limit=3, file=sys.stderr)


# ------------------------------------------------------------------------------------------
# Rejections: right status, then the connection closed
# ------------------------------------------------------------------------------------------

def expect_rejected(port, name, data, status, send_in_background=False):
    c = Conn(port)
    try:
        if send_in_background:  # the server may stop reading (and close) before it all went
            threading.Thread(target=c.send, args=(data,), daemon=True).start()
        else:
            c.send(data)
        try:
            r = c.response()
        except (EOFError, ValueError) as e:
            return report(name, False, "no response: %s" % e)
        if not report(name + " -> %d" % status, r.status == status,
                      "got %d %s, body %r" % (r.status, r.reason, r.body[:100])):
            return False
        closed, _, extra = c.closed_within(3)
        report(name + ": connection closed", closed and not extra,
               "still open after 3 s" if not closed else "extra bytes %r" % extra[:100])
    finally:
        c.close()


def rejections(port):
    H = "Host: e2e\r\n"
    bad400 = [
        ("request line without version", b"GET /hello\r\n" + H.encode() + b"\r\n"),
        ("request line with two spaces", b"GET  /hello HTTP/1.1\r\n" + H.encode() + b"\r\n"),
        ("garbage request line", b"HELLO\r\n\r\n"),
        ("method with a bad character", b"G(T /hello HTTP/1.1\r\n" + H.encode() + b"\r\n"),
        ("malformed version", b"GET /hello HTTP/1.x\r\n" + H.encode() + b"\r\n"),
        ("space in target", b"GET /he llo HTTP/1.1\r\n" + H.encode() + b"\r\n"),
        ("obs-fold", req("GET", "/hello", ["X-A: one", " two"])),
        ("obs-fold with tab", req("GET", "/hello", ["X-A: one", "\ttwo"])),
        ("Content-Length and Transfer-Encoding",
         req("POST", "/echo", ["Content-Length: 5", "Transfer-Encoding: chunked"]) +
         b"0\r\n\r\n"),
        ("two different Content-Length",
         req("POST", "/echo", ["Content-Length: 5", "Content-Length: 6"]) + b"hello!"),
        ("Content-Length abc", req("POST", "/echo", ["Content-Length: abc"])),
        ("Content-Length -1", req("POST", "/echo", ["Content-Length: -1"])),
        ("Content-Length +5", req("POST", "/echo", ["Content-Length: +5"]) + b"hello"),
        ("Content-Length 0x10", req("POST", "/echo", ["Content-Length: 0x10"])),
        ("Content-Length '1 2'", req("POST", "/echo", ["Content-Length: 1 2"])),
        ("Content-Length empty", req("POST", "/echo", ["Content-Length:"])),
        ("Content-Length over INT64_MAX",
         req("POST", "/echo", ["Content-Length: 99999999999999999999"])),
        ("space in header name", req("GET", "/hello", ["Bad Name: x"])),
        ("parenthesis in header name", req("GET", "/hello", ["X(A): y"])),
        ("space before colon", req("GET", "/hello", ["X-A : y"])),
        ("empty header name", req("GET", "/hello", [": y"])),
        ("header line without colon", req("GET", "/hello", ["NoColon"])),
        ("DEL in header name", req("GET", "/hello", ["X\x7fA: y"])),
        ("bare LF everywhere", b"GET /hello HTTP/1.1\nHost: e2e\n\n"),
        ("bare LF in one header line", b"GET /hello HTTP/1.1\r\nHost: e2e\nX-A: y\r\n\r\n"),
        ("bare CR in a header line", b"GET /hello HTTP/1.1\r\nHost: e2e\rX-A: y\r\n\r\n"),
        ("NUL in header value", req("GET", "/hello", ["X-A: a\x00b"])),
        ("NUL in target", b"GET /hel\x00lo HTTP/1.1\r\n" + H.encode() + b"\r\n"),
        ("HTTP/1.1 without Host", req("GET", "/hello", host=False)),
        ("two Host headers", req("GET", "/hello", ["Host: other"])),
        ("Host with a space", b"GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n"),
        ("Host with userinfo", b"GET /hello HTTP/1.1\r\nHost: user@e2e\r\n\r\n"),
        ("quoted Transfer-Encoding",
         req("POST", "/echo", ['Transfer-Encoding: "chunked"']) + b"0\r\n\r\n"),
        ("Transfer-Encoding not ending in chunked",
         req("POST", "/echo", ["Transfer-Encoding: gzip"]) + b"hello"),
        ("Transfer-Encoding chunked twice",
         req("POST", "/echo", ["Transfer-Encoding: chunked, chunked"]) + b"0\r\n\r\n"),
        ("Transfer-Encoding in HTTP/1.0",
         req("POST", "/echo", ["Transfer-Encoding: chunked"], version="HTTP/1.0") +
         b"0\r\n\r\n"),
    ]
    for name, data in bad400:
        expect_rejected(port, "400 " + name, data, 400)
    expect_rejected(port, "414 request line over the limit",
                    req("GET", "/" + "a" * (MAX_REQUEST_LINE + 100)), 414)
    expect_rejected(port, "431 one huge header",
                    req("GET", "/hello", ["X-Big: " + "b" * (MAX_HEADER_BYTES + 100)]), 431)
    expect_rejected(port, "431 too many headers",
                    req("GET", "/hello", ["X-H%d: v" % i for i in range(MAX_HEADERS + 10)]), 431)
    expect_rejected(port, "413 Content-Length over the limit",
                    req("POST", "/upload", ["Content-Length: %d" % (2 * MAX_BODY)]) + b"x" * 1000,
                    413)
    big = b"".join(b"%x\r\n%s\r\n" % (65536, b"c" * 65536) for _ in range(2 * MAX_BODY // 65536))
    expect_rejected(port, "413 chunked body over the limit",
                    req("POST", "/upload", ["Transfer-Encoding: chunked"]) + big + b"0\r\n\r\n",
                    413, send_in_background=True)
    expect_rejected(port, "501 unknown transfer coding",
                    req("POST", "/echo", ["Transfer-Encoding: gzip, chunked"]) + b"0\r\n\r\n",
                    501)
    expect_rejected(port, "501 CONNECT",
                    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501)
    expect_rejected(port, "505 HTTP/2.0 request line", req("GET", "/hello", version="HTTP/2.0"),
                    505)
    expect_rejected(port, "505 HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)


def bad_chunked_body(port):
    """A malformed chunked body is found by the handler's read: the connection must not be
    reused, whatever the status."""
    c = Conn(port)
    c.send(req("POST", "/echo", ["Transfer-Encoding: chunked"]) + b"5\r\nhello\r\nzz\r\n\r\n" +
           req("GET", "/hello"))
    try:
        r = c.response()
        got = "%d" % r.status
    except (EOFError, ValueError) as e:
        r, got = None, "no response (%s)" % e
    closed, _, extra = c.closed_within(3)
    report("malformed chunk size: answered (%s) and connection closed" % got,
           closed and b"Hello" not in extra and (r is None or r.status >= 400),
           "status %s, closed %s, extra %r" % (got, closed, extra[:100]))
    c.close()


# ------------------------------------------------------------------------------------------
# Framing a well-behaved client relies on
# ------------------------------------------------------------------------------------------

def pipelining(port):
    c = Conn(port)
    batch = (req("GET", "/hello") + req("POST", "/echo", body=b"one") +
             req("GET", "/sleep/100") +
             req("POST", "/echo", ["Transfer-Encoding: chunked"]) + b"3\r\ntwo\r\n0\r\n\r\n" +
             req("HEAD", "/hello") + req("GET", "/info?x=1") +
             req("GET", "/chunked?n=3&size=5") + req("GET", "/hello", ["Connection: close"]))
    c.send(batch)
    want = [("GET", b"Hello, World!\n"), ("POST", b"one"), ("GET", b"slept 100\n"),
            ("POST", b"two"), ("HEAD", b""), ("GET", None), ("GET", b"aaaaabbbbbccccc"),
            ("GET", b"Hello, World!\n")]
    got = []
    for method, body in want:
        r = c.response(method)
        got.append(r.body)
        if r.status != 200 or (body is not None and r.body != body):
            return report("pipelining: 8 requests in one send, answered in order", False,
                          "response %d: %r, body %r" % (len(got), r, r.body[:80]))
    ok = b"query: x=1" in got[5]
    closed, _, extra = c.closed_within(3)
    report("pipelining: 8 requests in one send, answered in order", ok and closed and not extra,
           "info %r closed %s extra %r" % (got[5][:200], closed, extra[:80]))
    c.close()

    c = Conn(port)
    n = 100
    c.send(b"".join(req("GET", "/info?i=%d" % i) for i in range(n)))
    bad = None
    for i in range(n):
        r = c.response()
        if r.status != 200 or (b"query: i=%d\n" % i) not in r.body:
            bad = (i, r, r.body[:100])
            break
    report("pipelining: 100 requests in one send", bad is None, repr(bad))
    c.close()


def trickle(port):
    """A request split into one-byte writes, after leading empty lines."""
    c = Conn(port)
    for b in b"\r\n" + req("GET", "/hello"):
        c.send(bytes([b]))
        time.sleep(0.002)
    r = c.response()
    report("request sent one byte at a time", r.status == 200 and r.body == b"Hello, World!\n",
           repr(r))
    c.close()


def head_requests(port):
    c = Conn(port)
    c.send(req("HEAD", "/hello"))
    r = c.response("HEAD")
    ok = r.status == 200 and r.header("content-length") == "14"
    c.send(req("GET", "/hello"))
    r2 = c.response()
    report("HEAD of a handler that writes a body: Content-Length 14, no body bytes",
           ok and r2.status == 200 and r2.body == b"Hello, World!\n",
           "HEAD %r %r; next %r %r" % (r, r.headers, r2, r2.body[:60]))
    for path in ("/big/100000", "/chunked?n=5&size=10000", "/status/204"):
        c.send(req("HEAD", path) + req("GET", "/hello"))
        r = c.response("HEAD")
        r2 = c.response()
        report("HEAD %s: no body, connection still in step" % path,
               r.status in (200, 204) and r2.body == b"Hello, World!\n",
               "%r then %r %r" % (r, r2, r2.body[:60]))
    c.close()


def bodies(port):
    c = Conn(port)
    c.send(req("GET", "/hello"))
    r = c.response()
    report("small response has Content-Length and no chunking",
           r.header("content-length") == "14" and not r.chunked and r.body == b"Hello, World!\n",
           "%r %r" % (r, r.headers))
    c.send(req("GET", "/chunked?n=50&size=1000"))
    r = c.response()
    want = b"".join(bytes([97 + i % 26]) * 1000 for i in range(50))
    report("handler-flushed response: chunked, decoded correctly", r.chunked and r.body == want,
           "%r chunked=%s" % (r, r.chunked))
    c.send(req("GET", "/big/1000000"))
    r = c.response()
    report("1 MB response body intact", r.status == 200 and r.body == pattern(1000000), repr(r))
    for status in (204, 304):
        c.send(req("GET", "/status/%d" % status) + req("GET", "/hello"))
        r = c.response()
        r2 = c.response()
        report("%d has no body, no chunking" % status,
               r.status == status and r.header("transfer-encoding") is None and
               r2.body == b"Hello, World!\n", "%r %r then %r" % (r, r.headers, r2))
    c.send(req("GET", "/nope") + req("POST", "/hello", body=b"x"))
    r, r2 = c.response(), c.response()
    report("unknown path 404, wrong method 405", r.status == 404 and r2.status == 405,
           "%r %r" % (r, r2))
    c.send(req("GET", "/sleep/%31%30"))
    r = c.response()
    report("percent-encoded path decoded", r.body == b"slept 10\n", repr(r.body))
    c.send(b"GET http://example.com/info HTTP/1.1\r\nHost: example.com\r\n\r\n")
    r = c.response()
    report("absolute-form target", r.status == 200 and b"host: example.com\n" in r.body and
           b"path: /info\n" in r.body, repr(r.body[:200]))
    c.send(req("POST", "/echo", ["Transfer-Encoding: chunked"]) +
           b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    r = c.response()
    report("chunked upload with extensions and trailer", r.body == b"hello world", repr(r.body))
    c.close()

    c = Conn(port)
    c.send(req("POST", "/reject", body=b"0123456789") + req("GET", "/hello"))
    r = c.response()
    try:
        r2 = c.response()
        detail = "next: %r %r" % (r2, r2.body[:60])
        good = r2.status == 200 and r2.body == b"Hello, World!\n"
    except (EOFError, ValueError) as e:  # closing instead of skipping the body is allowed
        detail, good = "closed: %s" % e, c.eof
    report("unread request body skipped (or connection closed), never parsed as a request",
           r.status == 403 and good, "%r; %s" % (r, detail))
    c.close()

    c = Conn(port)
    c.send(req("GET", "/hello"))
    c.s.shutdown(socket.SHUT_WR)
    try:
        r = c.response()
        ok = r.status == 200 and r.body == b"Hello, World!\n"
    except EOFError as e:
        r, ok = e, False
    report("request then half-close: still answered", ok, repr(r))
    c.close()


def expect_continue(port):
    c = Conn(port)
    c.send(req("POST", "/expect", ["Expect: 100-continue", "Content-Length: 5"]))
    c.s.settimeout(3)
    try:
        r = c.response(keep_interim=True)
    except (EOFError, socket.timeout) as e:
        r = e
    got100 = isinstance(r, Response) and r.status == 100
    c.send(b"hello")
    r2 = c.response() if got100 else None
    report("Expect: 100-continue: 100 Continue, then the final response",
           got100 and r2.status == 200 and r2.body == b"expect=100-continue len=5\n",
           "first %r, then %r" % (r, r2 and r2.body))
    c.close()

    c = Conn(port)
    c.send(req("POST", "/reject", ["Expect: 100-continue", "Content-Length: 5"]))
    r = c.response(keep_interim=True)
    report("Expect: 100-continue to a handler that does not read: no 100, just the answer",
           r.status == 403, repr(r))
    c.close()

    c = Conn(port)
    c.send(req("POST", "/upload", ["Expect: 100-continue", "Content-Length: %d" % (2 * MAX_BODY)]))
    r = c.response(keep_interim=True)
    report("Expect: 100-continue with a body over the limit: 413, no 100", r.status == 413,
           repr(r))
    c.close()



def more_framing(port):
    c = Conn(port)
    cases = [
        ("identical Content-Length lines accepted",
         req("POST", "/echo", ["Content-Length: 5", "Content-Length: 5"]) + b"hello", b"hello"),
        ("Content-Length list '5, 5' accepted",
         req("POST", "/echo", ["Content-Length: 5, 5"]) + b"hello", b"hello"),
        ("Transfer-Encoding: Chunked (any case) accepted",
         req("POST", "/echo", ["Transfer-Encoding: Chunked"]) + b"5\r\nhello\r\n0\r\n\r\n",
         b"hello"),
        ("POST with Content-Length: 0", req("POST", "/echo", ["Content-Length: 0"]), b""),
        ("50 header lines (the limit) accepted",
         req("GET", "/hello", ["X-H%d: v" % i for i in range(MAX_HEADERS - 1)]),
         b"Hello, World!\n"),
        ("header of 15000 bytes (under the limit) accepted",
         req("GET", "/hello", ["X-Big: " + "b" * 15000]), b"Hello, World!\n"),
        ("request line just under the limit accepted",
         req("GET", "/info?" + "q" * (MAX_REQUEST_LINE - 30)), None),
        ("empty Host accepted", b"GET /hello HTTP/1.1\r\nHost:\r\n\r\n", b"Hello, World!\n"),
    ]
    for name, data, want in cases:
        c.send(data)
        r = c.response()
        report(name, r.status == 200 and (want is None or r.body == want),
               "%r %r" % (r, r.body[:80]))
    c.close()

    for value in ("keep-alive, close", "CLOSE", "Upgrade, close"):
        c = Conn(port)
        c.send(req("GET", "/hello", ["Connection: " + value]))
        r = c.response()
        closed, _, extra = c.closed_within(3)
        report("'Connection: %s' closes after the response" % value,
               r.status == 200 and closed and not extra, "%r closed=%s" % (r, closed))
        c.close()

    c = Conn(port)
    c.send(req("GET", "/fixed/300000") + req("HEAD", "/fixed/300000") + req("GET", "/hello"))
    r = c.response()
    r2 = c.response("HEAD")
    r3 = c.response()
    report("handler-set Content-Length: not chunked, body intact; HEAD repeats the length",
           r.header("content-length") == "300000" and not r.chunked and
           r.body == pattern(300000) and r2.header("content-length") == "300000" and
           r3.body == b"Hello, World!\n", "%r %r; HEAD %r" % (r, r.headers, r2.headers))
    c.close()

    c = Conn(port)
    c.send(req("GET", "/fixed/100000", ["Connection: keep-alive"], version="HTTP/1.0",
               host=False) + req("GET", "/hello", version="HTTP/1.0", host=False))
    r = c.response()
    r2 = c.response()
    report("HTTP/1.0 keep-alive with a declared length: connection reused",
           r.body == pattern(100000) and r2.body == b"Hello, World!\n", "%r then %r" % (r, r2))
    c.close()


def content_type(port):
    """The Content-Type a handler that sets none gets must not depend on how it writes, nor
    differ between GET and HEAD (RFC 9110 §9.3.2: HEAD gets the GET's header fields)."""
    c = Conn(port)
    seen = {}
    for path in ("/big/100", "/big/20000", "/chunked?n=2&size=10", "/fixed/300000"):
        c.send(req("GET", path) + req("HEAD", path))
        seen[path] = (c.response().header("content-type"), c.response("HEAD").header("content-type"))
    c.close()
    small = seen["/big/100"][0]
    report("default Content-Type the same for a 100 B and a 20 kB first write",
           seen["/big/20000"][0] == small, repr(seen))
    report("default Content-Type the same for GET and HEAD",
           all(g == h for g, h in seen.values()), repr(seen))

    c = Conn(port)
    c.send(req("GET", "/status/103"))
    r = c.response()
    report("103 Early Hints sent as an interim response, then the final one",
           r.interim == [103] and r.status == 200, "%r interim %r" % (r, r.interim))
    c.close()


def pipelined_big(port):
    """Twenty 100 kB responses pipelined, read only once every request is sent: the server
    must apply backpressure, not lose or reorder output."""
    c = Conn(port)
    data = b"".join(req("GET", "/big/%d" % (100000 + i)) for i in range(20))
    t = threading.Thread(target=c.send, args=(data,))
    t.start()
    time.sleep(0.3)
    bad = None
    for i in range(20):
        r = c.response()
        if r.status != 200 or r.body != pattern(100000 + i):
            bad = (i, r)
            break
    t.join()
    report("20 pipelined 100 kB responses, read late, in order and intact", bad is None,
           repr(bad))
    c.close()

    c = Conn(port)
    body = os.urandom(300000)
    data = b"".join(req("POST", "/upload", body=body) for _ in range(5))
    t = threading.Thread(target=c.send, args=(data,))
    t.start()
    want = b"%d %016x\n" % (len(body), fnv1a64(body))
    got = [c.response().body for _ in range(5)]
    t.join()
    report("5 pipelined 300 kB uploads", got == [want] * 5, repr(got))
    c.close()


def expect_more(port):
    c = Conn(port)
    c.send(req("POST", "/expect", ["Expect: 100-continue", "Content-Length: 5"],
               version="HTTP/1.0"))
    c.s.settimeout(0.5)
    try:
        first = c.head()
    except socket.timeout:
        first = None
    c.s.settimeout(5)
    if first is None:
        c.send(b"hello")
        first = c.response()
    report("Expect: 100-continue from an HTTP/1.0 client: no 100 (RFC 9110 §10.1.1)",
           first.status == 200 and first.body == b"expect=100-continue len=5\n",
           "first response %r" % first)
    c.close()

    c = Conn(port)  # an impatient client sends the body without waiting for 100
    c.send(req("POST", "/expect", ["Expect: 100-continue", "Content-Length: 5"]) + b"hello" +
           req("GET", "/hello"))
    r = c.response()
    r2 = c.response(keep_interim=True)
    report("Expect: 100-continue with the body sent at once: no stray 100 after the answer",
           r.body == b"expect=100-continue len=5\n" and r2.status == 200 and
           r2.body == b"Hello, World!\n", "%r then %r" % (r, r2))
    c.close()

    c = Conn(port)
    c.send(req("POST", "/reject", ["Expect: 100-continue", "Content-Length: 5"]) + b"hello" +
           req("GET", "/hello"))
    r = c.response(keep_interim=True)
    try:
        r2 = c.response(keep_interim=True)
        good = r2.status == 200 and r2.body == b"Hello, World!\n"
    except (EOFError, ValueError) as e:
        r2, good = e, c.eof
    report("Expect: 100-continue, body sent anyway, handler does not read: 403, then in step",
           r.status == 403 and good, "%r then %r" % (r, r2))
    c.close()

    c = Conn(port)
    big = b"z" * (1 << 20)
    t = threading.Thread(target=c.send, args=(req("POST", "/reject", body=big) +
                                               req("GET", "/hello"),), daemon=True)
    t.start()
    r = c.response()
    try:
        r2 = c.response()
        good = r2.status == 200 and r2.body == b"Hello, World!\n"
    except (EOFError, ValueError) as e:
        r2, good = e, c.eof
    report("1 MB body the handler does not read: 403, then the next request or a close",
           r.status == 403 and good, "%r then %r" % (r, r2))
    c.close()


def http_client(port):
    """The standard library's client: keep-alive reuse and chunked decoding."""
    hc = http.client.HTTPConnection(HOST, port, timeout=5)
    hc.request("GET", "/hello")
    r = hc.getresponse()
    body = r.read()
    sock = hc.sock
    ok = r.status == 200 and body == b"Hello, World!\n"
    for i in range(20):
        hc.request("POST", "/echo", body=b"x" * i, headers={"Content-Type": "text/x-test"})
        r = hc.getresponse()
        b = r.read()
        ok = ok and b == b"x" * i and r.getheader("Content-Type") == "text/x-test"
        hc.request("HEAD", "/big/30000")
        r = hc.getresponse()
        ok = ok and r.read() == b""
    report("http.client: 41 requests on one keep-alive connection",
           ok and hc.sock is sock and sock is not None)
    hc.request("GET", "/chunked?n=20&size=3000")
    r = hc.getresponse()
    body = r.read()
    want = b"".join(bytes([97 + i % 26]) * 3000 for i in range(20))
    report("http.client: chunked response", r.getheader("Transfer-Encoding") == "chunked" and
           body == want, "%s %d bytes" % (r.getheaders(), len(body)))
    data = os.urandom(512 * 1024)
    hc.request("POST", "/upload", body=data)
    r = hc.getresponse()
    got = r.read()
    report("http.client: 512 KiB upload, length and FNV-1a hash",
           got == b"%d %016x\n" % (len(data), fnv1a64(data)), repr(got))

    def gen():
        for i in range(64):
            yield data[i * 8192:(i + 1) * 8192]
    hc.request("POST", "/upload", body=gen(), encode_chunked=True)
    r = hc.getresponse()
    got = r.read()
    report("http.client: 512 KiB chunked upload", got == b"%d %016x\n" % (len(data), fnv1a64(data)),
           repr(got))
    hc.close()


def connection_close(port):
    c = Conn(port)
    c.send(req("GET", "/hello", version="HTTP/1.0", host=False))
    r = c.response()
    closed, _, extra = c.closed_within(3)
    report("HTTP/1.0 without keep-alive: answered, then closed",
           r.status == 200 and r.body == b"Hello, World!\n" and not r.chunked and closed and
           not extra, "%r closed=%s" % (r, closed))
    c.close()

    c = Conn(port)
    c.send(req("GET", "/big/100000", version="HTTP/1.0", host=False))
    r = c.response()
    closed, _, _ = c.closed_within(3)
    report("HTTP/1.0 large response: not chunked, body intact, closed",
           not r.chunked and r.body == pattern(100000) and closed, "%r %r" % (r, r.headers))
    c.close()

    c = Conn(port)
    c.send(req("GET", "/hello", ["Connection: keep-alive"], version="HTTP/1.0", host=False))
    r = c.response()
    ok = r.header_has("connection", "keep-alive")
    c.send(req("GET", "/hello", ["Connection: keep-alive"], version="HTTP/1.0", host=False))
    r2 = c.response()
    report("HTTP/1.0 keep-alive: 'Connection: keep-alive' answered, connection reused",
           ok and r2.body == b"Hello, World!\n", "%r %r" % (r.headers, r2))
    c.send(req("GET", "/big/100000", ["Connection: keep-alive"], version="HTTP/1.0", host=False))
    r = c.response()
    closed, _, _ = c.closed_within(3)
    report("HTTP/1.0 keep-alive with an unknown length: body intact, then closed",
           r.body == pattern(100000) and not r.chunked and
           (closed or r.header("content-length") == "100000"), "%r %r" % (r, r.headers))
    c.close()

    c = Conn(port)
    c.send(req("GET", "/hello", ["Connection: close"]))
    r = c.response()
    closed, _, extra = c.closed_within(3)
    report("'Connection: close' honoured (echoed, then closed)",
           r.header_has("connection", "close") and closed and not extra,
           "%r closed=%s" % (r.headers, closed))
    c.close()


# ------------------------------------------------------------------------------------------
# Timeouts
# ------------------------------------------------------------------------------------------

def slowloris(port):
    c = Conn(port)
    t0 = time.monotonic()
    c.send(b"GET /hello HTTP/1.1\r\nHost: e2e\r\nX-Slow: ")
    cut = None
    while time.monotonic() - t0 < 6:
        time.sleep(0.2)
        if not c.send(b"a"):
            cut = time.monotonic() - t0
            break
        c.s.settimeout(0.001)
        try:
            d = c.s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            d = b""
        if not d or d.startswith(b"HTTP/1.1 408"):
            cut = time.monotonic() - t0
            break
        return report("slowloris (a header byte per 200 ms) cut off", False,
                      "got %r" % d[:100])
    report("slowloris (a header byte per 200 ms) cut off after the read-header timeout",
           cut is not None and READ_HEADER_TIMEOUT * 0.8 <= cut <= READ_HEADER_TIMEOUT + 2.5,
           "cut at %s s (timeout %.1f s)" % (cut and round(cut, 2), READ_HEADER_TIMEOUT))
    c.close()


def silent_client(port):
    c = Conn(port)
    closed, t, _ = c.closed_within(6)
    report("connection that never sends a byte is closed",
           closed and t <= max(READ_HEADER_TIMEOUT, IDLE_TIMEOUT) + 2.5, "after %.2f s" % t)
    c.close()


def idle_keepalive(port):
    c = Conn(port)
    c.send(req("GET", "/hello"))
    r = c.response()
    closed, t, extra = c.closed_within(6)
    report("idle keep-alive connection closed after the idle timeout",
           r.status == 200 and closed and IDLE_TIMEOUT * 0.4 <= t <= IDLE_TIMEOUT + 2.5 and
           not extra, "closed=%s after %.2f s, extra %r" % (closed, t, extra[:80]))
    c.close()


def slow_body(port):
    """A body trickled a byte per 200 ms: each read makes progress, but the whole request must
    still be read within the read timeout."""
    c = Conn(port)
    t0 = time.monotonic()
    c.send(req("POST", "/upload", ["Content-Length: 100"]))
    cut = None
    for _ in range(100):
        time.sleep(0.2)
        c.s.settimeout(0.001)
        try:
            d = c.s.recv(4096)
        except socket.timeout:
            d = None
        except ConnectionResetError:
            d = b""
        if d is not None or not c.send(b"x"):
            cut = time.monotonic() - t0
            break
        if time.monotonic() - t0 > READ_TIMEOUT + 4:
            break
    report("request body trickled a byte per 200 ms cut off after the read timeout",
           cut is not None and cut <= READ_TIMEOUT + 2.5,
           "cut at %s s (read timeout %.1f s)" % (cut and round(cut, 2), READ_TIMEOUT))
    c.close()


def many_slow_clients(port):
    """Hundreds of half-sent heads cost the server parked goroutines, not service."""
    conns = []
    for _ in range(300):
        c = Conn(port)
        c.send(b"GET /hello HTTP/1.1\r\nHost: e2e\r\nX-Slow: ")
        conns.append(c)
    t0 = time.monotonic()
    hc = http.client.HTTPConnection(HOST, port, timeout=5)
    hc.request("GET", "/hello")
    ok = hc.getresponse().read() == b"Hello, World!\n"
    hc.close()
    report("300 half-sent heads open: others still served at once",
           ok and time.monotonic() - t0 < 1, "took %.2f s" % (time.monotonic() - t0))
    deadline = time.monotonic() + READ_HEADER_TIMEOUT + 3
    open_ = 0
    for c in conns:
        closed, _, _ = c.closed_within(max(0.01, deadline - time.monotonic()))
        open_ += 0 if closed else 1
        c.close()
    report("300 half-sent heads all cut off by the read-header timeout", open_ == 0,
           "%d still open" % open_)


def stats(port):
    hc = http.client.HTTPConnection(HOST, port, timeout=5)
    hc.request("GET", "/stats")
    s = json.loads(hc.getresponse().read())
    hc.close()
    return s


def write_timeout(port):
    before = stats(port)
    c = Conn(port, rcvbuf=4096)
    total = 100 * 1000 * 1000
    c.send(req("GET", "/big/%d" % total))
    time.sleep(0.5)
    t0 = time.monotonic()
    hc = http.client.HTTPConnection(HOST, port, timeout=5)
    hc.request("GET", "/hello")
    ok = hc.getresponse().read() == b"Hello, World!\n"
    report("other clients served while one does not read", ok and time.monotonic() - t0 < 1,
           "took %.2f s" % (time.monotonic() - t0))
    hc.close()
    time.sleep(WRITE_TIMEOUT + 1.5)
    after = stats(port)
    c.s.settimeout(5)
    got = len(c.read_to_eof())
    report("client that never reads a 100 MB response dropped after the write timeout",
           got < total and after["write_errors"] > before["write_errors"] and
           after["last_write_error"] == -110,
           "read %d bytes; write errors %d -> %d, last %d (want -110, ETIMEDOUT)" %
           (got, before["write_errors"], after["write_errors"], after["last_write_error"]))
    c.close()


# ------------------------------------------------------------------------------------------
# Graceful shutdown
# ------------------------------------------------------------------------------------------

def refused(port, within):
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):
            # Reset: the connection sat in the backlog of a listener that was then closed.
            return True
        time.sleep(0.05)
    return False


def out_of_descriptors(binary):
    """A server limited to 48 descriptors, 150 slow requests at once: accept backs off on EMFILE,
    the connections wait in the kernel's queue, and every one is answered in the end."""
    srv = Server(binary, nofile=48)
    results = []
    lock = threading.Lock()

    def one():
        try:
            c = Conn(srv.port, timeout=20)
            c.send(req("GET", "/sleep/100", headers=["Connection: close"]))
            r = c.response()
            c.close()
            ok = r.status == 200
        except Exception as e:  # noqa: BLE001 - any failure is a failed request
            ok = e
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=one) for _ in range(150)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [r for r in results if r is not True]
    report("150 clients against a server with 48 descriptors: all answered (EMFILE backoff)",
           len(results) == 150 and not bad, "%d failures, e.g. %r" % (len(bad), bad[:3]))
    report("server still up after running out of descriptors", srv.proc.poll() is None)
    srv.stop()


def graceful_shutdown(binary):
    srv = Server(binary, "--shutdown-timeout", "5000", "--idle-timeout", "30000")
    slow = Conn(srv.port)
    idle = Conn(srv.port)
    idle.send(req("GET", "/hello"))
    idle.response()
    slow.send(req("GET", "/sleep/1500"))
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    report("shutdown: new connections refused", refused(srv.port, 1.0))
    closed, t, _ = idle.closed_within(2)
    report("shutdown: idle keep-alive connection closed at once", closed and t < 1.5,
           "closed=%s after %.2f s" % (closed, t))
    try:
        r = slow.response()
        ok = r.status == 200 and r.body == b"slept 1500\n"
    except (EOFError, ValueError) as e:
        r, ok = e, False
    closed, _, _ = slow.closed_within(2)
    report("shutdown: request in flight completes, then its connection closes", ok and closed,
           "%r closed=%s" % (r, closed))
    try:
        rc = srv.proc.wait(timeout=6)
    except subprocess.TimeoutExpired:
        rc = None
    out = srv.proc.stdout.read().decode()
    report("shutdown: process exits 0 once the slow request is done",
           rc == 0 and "shutdown: ok" in out and time.monotonic() - t0 < 5,
           "exit %s after %.2f s, output %r" % (rc, time.monotonic() - t0, out))
    slow.close()
    idle.close()

    srv = Server(binary, "--shutdown-timeout", "500")
    stuck = Conn(srv.port)
    stuck.send(req("GET", "/sleep/10000"))
    time.sleep(0.2)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    try:
        rc = srv.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        rc = None
    closed, _, _ = stuck.closed_within(2)
    report("shutdown deadline passes: connection cut, exit status 3 (timed out)",
           rc == 3 and closed and time.monotonic() - t0 < 3,
           "exit %s after %.2f s, closed=%s" % (rc, time.monotonic() - t0, closed))
    stuck.close()

    srv = Server(binary)
    c = Conn(srv.port)
    c.send(req("POST", "/quit"))
    r = c.response()
    try:
        rc = srv.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        rc = None
    report("shutdown started by a handler of the server: answered, exit 0",
           r.body == b"bye\n" and rc == 0, "%r exit %s" % (r, rc))
    c.close()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: http_e2e.py PATH/TO/http_e2e_server")
    binary = sys.argv[1]
    t0 = time.monotonic()
    try:
        srv = Server(binary,
                     "--read-header-timeout", str(int(READ_HEADER_TIMEOUT * 1000)),
                     "--read-timeout", str(int(READ_TIMEOUT * 1000)),
                     "--write-timeout", str(int(WRITE_TIMEOUT * 1000)),
                     "--idle-timeout", str(int(IDLE_TIMEOUT * 1000)),
                     "--max-request-line", str(MAX_REQUEST_LINE),
                     "--max-header-bytes", str(MAX_HEADER_BYTES),
                     "--max-headers", str(MAX_HEADERS),
                     "--max-body", str(MAX_BODY))
        p = srv.port
        # The timeout checks wait; run them alongside the others.
        slow = [threading.Thread(target=run, args=(f.__name__, f, p))
                for f in (slowloris, silent_client, idle_keepalive, slow_body, many_slow_clients)]
        for t in slow:
            t.start()
        for f in (pipelining, pipelined_big, trickle, head_requests, bodies, more_framing,
                  content_type,
                  http_client, expect_continue, expect_more, connection_close, rejections,
                  bad_chunked_body):
            run(f.__name__, f, p)
        for t in slow:
            t.join()
        run("write_timeout", write_timeout, p)
        s = stats(p)
        report("server counted the refused requests and timeouts",
               s["bad_requests"] >= 30 and s["timeouts"] >= 1, repr(s))
        alive = srv.proc.poll() is None
        report("test server still running after all of it", alive,
               "exit status %s, stderr %r" % (srv.proc.poll(),
                                               "" if alive else srv.proc.stderr.read()[-500:]))
        run("out_of_descriptors", out_of_descriptors, binary)
        run("graceful_shutdown", graceful_shutdown, binary)
    except Exception as e:
        report("python checks", False, "%s: %s" % (type(e).__name__, e))
        traceback.print_exc()
    finally:
        Server.stop_all()
    print("py: %d checks, %d failed, %.1f s" % (checks, failures, time.monotonic() - t0))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
