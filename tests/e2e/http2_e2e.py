#!/usr/bin/python3
"""tests/e2e/http2_e2e.py - frame-level HTTP/2 checks of the h2c server (tests/e2e/http2-e2e).

Usage: http2_e2e.py SERVER_BINARY [--only NAME]
       http2_e2e.py SERVER_BINARY --mutate COUNT    (COUNT randomly damaged connections)

Over TLS: with H2E_TLS_CA=CA_FILE in the environment every connection is TLS, h2 chosen by
ALPN (HTTP/1.1 for the HTTP/1.1 checks), verified against CA_FILE for "localhost"; the
server binary is then tests/e2e/h2s_e2e_server.c, given TLS_CERT, TLS_KEY and
TLS_ALPN=h2,http/1.1 in the same environment. The checks and their bounds are the same, so
the floods are measured with the TLS layer in the way.

Starts SERVER_BINARY (tests/e2e/http2_e2e_server.c) itself, with the options each group of
checks needs, on 127.0.0.1, and talks to it with Python's h2 (Debian python3-h2) for the
well-behaved cases and with hand-built frames for the attacks. Every attack check states a
bound on what the server may spend - handler goroutines, CPU seconds (from /proc), resident
memory, bytes it reads before it cuts the client off - and fails when the bound is exceeded
or when the server stops answering ordinary requests afterwards. Prints one "ok"/"FAIL" line
per check; the exit status is the number of failures (capped at 100). Runs with
Debian's /usr/bin/python3, where python3-h2 is installed.
"""
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM = 0, 1, 3, 11

fails = 0
TLS_CA = os.environ.get("H2E_TLS_CA")
SCHEME = "https" if TLS_CA else "http"
# A peer's close can surface from the TLS layer as ssl.SSLError (an OSError) too.
CLOSED = (BrokenPipeError, ConnectionResetError, ssl.SSLError)


def connect(port, timeout, alpn="h2"):
    """A connection to the server: plain TCP, or TLS with alpn offered when H2E_TLS_CA is set."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if not TLS_CA:
        return s
    ctx = ssl.create_default_context(cafile=TLS_CA)
    ctx.set_alpn_protocols([alpn])
    try:
        t = ctx.wrap_socket(s, server_hostname="localhost")
    except Exception:
        s.close()
        raise
    if t.selected_alpn_protocol() != alpn:
        t.close()
        raise RuntimeError("ALPN chose %r, not %r" % (t.selected_alpn_protocol(), alpn))
    return t


def result(ok, name):
    global fails
    print(("ok   " if ok else "FAIL ") + name, flush=True)
    if not ok:
        fails += 1


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


class Server:
    """The server under test, started with extra options; stopped by its PID."""

    def __init__(self, binary, *args):
        self.p = subprocess.Popen([binary, "--addr", "127.0.0.1:0", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("server did not start: " + line + self.p.stderr.read().decode())
        self.port = int(m.group(1))

    def cpu(self):
        """User + system CPU seconds the server has used."""
        f = open("/proc/%d/stat" % self.p.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self):
        for line in open("/proc/%d/status" % self.p.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stats(self):
        st, _, body = h1_get(self.port, "/stats")
        return json.loads(body)

    def alive(self):
        """The server still answers an ordinary HTTP/2 request promptly."""
        try:
            c = Client(self.port)
            st, body, _ = c.request("/hello")
            c.close()
            return st == "200" and body == b"Hello, World!\n"
        except Exception as e:  # noqa: BLE001 - any failure means "not alive"
            print("    alive check: %r" % e)
            return False

    def stop(self, sig=signal.SIGKILL, wait=5):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(wait)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None


def h1_get(port, path):
    s = connect(port, 5, alpn="http/1.1")
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except CLOSED:  # a TLS peer that closed without close_notify
            break
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b" ")[1].decode(), head, body


class Client:
    """A well-behaved client on python3-h2."""

    def __init__(self, port, settings=None, timeout=10):
        self.s = connect(port, timeout)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.c.initiate_connection()
        if settings:
            self.c.update_settings(settings)
        self.flush()
        self.events = []
        self.goaway = None

    def flush(self):
        d = self.c.data_to_send()
        if d:
            self.s.sendall(d)

    def pump(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        evs = self.c.receive_data(d)
        for e in evs:
            if isinstance(e, h2.events.ConnectionTerminated):
                self.goaway = e
        self.events += evs
        self.flush()
        return evs

    def send(self, path, method="GET", body=None, headers=(), end=True):
        sid = self.c.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", SCHEME), (":authority", "x")] + list(headers)
        self.c.send_headers(sid, hs, end_stream=end and body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end)
        return sid

    def send_body(self, sid, body, end):
        """Send body in frames the peer's frame size and flow-control windows allow."""
        off = 0
        while off < len(body) or end:
            room = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size)
            if room == 0:
                self.pump()
                continue
            piece = body[off:off + room]
            off += len(piece)
            last = end and off >= len(body)
            self.c.send_data(sid, piece, end_stream=last)
            self.flush()
            if last or (off >= len(body) and not end):
                break

    def response(self, sid, consume=True):
        """Wait for stream sid to end: (status, body, trailers)."""
        status, body, trailers, done = None, b"", {}, False
        i = 0
        while not done:
            while i < len(self.events):
                e = self.events[i]
                i += 1
                if getattr(e, "stream_id", None) != sid:
                    continue
                if isinstance(e, h2.events.ResponseReceived):
                    status = dict(e.headers)[b":status"].decode()
                elif isinstance(e, h2.events.DataReceived):
                    body += e.data
                    if consume:
                        self.c.acknowledge_received_data(e.flow_controlled_length, sid)
                elif isinstance(e, h2.events.TrailersReceived):
                    trailers = {k.decode(): v.decode() for k, v in e.headers}
                elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
                    if isinstance(e, h2.events.StreamReset) and status is None:
                        status = "reset"
                    done = True
            if not done:
                self.flush()
                self.pump()
        self.flush()
        return status, body, trailers

    def request(self, path, **kw):
        return self.response(self.send(path, **kw))

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Raw:
    """A socket speaking raw frames (for the attacks)."""

    def __init__(self, port, preface=True, settings=b""):
        self.s = connect(port, 10)
        self.enc = hpack.Encoder()
        if preface:
            self.s.sendall(PREFACE + frame(SETTINGS, 0, 0, settings))

    def headers(self, sid, path, method="GET", end_stream=True, extra=()):
        block = self.enc.encode([(":method", method), (":path", path), (":scheme", SCHEME),
                                 (":authority", "x")] + list(extra))
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)

    def send(self, data):
        self.s.sendall(data)

    def read_frames(self, seconds):
        """Read frames until EOF or seconds pass: [(type, flags, stream, payload)], eof."""
        buf, out, eof = b"", [], False
        end = time.time() + seconds
        self.s.settimeout(0.2)
        while time.time() < end:
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                continue
            except CLOSED:
                eof = True
                break
            if not d:
                eof = True
                break
            buf += d
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
            buf = buf[9 + n:]
        return out, eof

    def close(self):
        self.s.close()


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[4:8], "big")
    return None


def send_until_closed(sock, chunk, limit):
    """Send chunk repeatedly until the server closes or limit bytes are sent. Returns bytes sent."""
    sent = 0
    sock.settimeout(5)
    try:
        while sent < limit:
            sock.sendall(chunk)
            sent += len(chunk)
    except CLOSED + (socket.timeout,):
        pass
    return sent


def wait_for(pred, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


# ------------------------------------------------------------------------------------------
# Well-behaved clients
# ------------------------------------------------------------------------------------------

def basics(binary):
    srv = Server(binary, "--max-body", "2097152", "--max-streams", "10", "--read-timeout", "1500",
                 "--write-timeout", "1500")
    try:
        c = Client(srv.port)
        st, body, _ = c.request("/hello")
        result(st == "200" and body == b"Hello, World!\n", "h2 GET /hello")
        payload = os.urandom(300000)
        st, body, _ = c.request("/echo", method="POST", body=payload,
                                headers=[("content-length", str(len(payload)))])
        result(st == "200" and body == payload, "h2 POST 300 kB echo (flow control both ways)")
        # Trailers both ways.
        sid = c.send("/trailers", method="POST", body=b"x" * 1000, end=False)
        c.c.send_headers(sid, [("x-sum", "abc123")], end_stream=True)
        c.flush()
        st, body, tr = c.response(sid)
        result(st == "200" and body == b"1000\n" and tr.get("x-length") == "1000" and
               tr.get("x-client-trailer") == "abc123", "trailers: request trailer read, response trailers sent (%r)" % tr)
        # Multiplexing: 10 concurrent slow streams on one connection finish together.
        t0 = time.time()
        sids = [c.send("/sleep/300") for _ in range(10)]
        ok = all(c.response(s)[1] == b"slept 300\n" for s in sids)
        el = time.time() - t0
        result(ok and el < 2.5, "10 concurrent streams run in parallel (%.2fs for 10 x 300 ms)" % el)
        # The stream limit: the server announced 10.
        result(c.c.remote_settings.max_concurrent_streams == 10, "SETTINGS_MAX_CONCURRENT_STREAMS is --max-streams (%d)" % c.c.remote_settings.max_concurrent_streams)
        # 413 for a declared body over the limit, without running the handler.
        sid = c.send("/echo", method="POST", headers=[("content-length", "3000000")], end=False)
        st, _, _ = c.response(sid)
        result(st == "413", "declared body over max_body_bytes: 413 (%s)" % st)
        # RST_STREAM cancels the request's context.
        sid = c.send("/wait/10000")
        time.sleep(0.2)
        c.c.reset_stream(sid)
        c.flush()
        result(wait_for(lambda: srv.stats()["waiting"] == 0, 3), "RST_STREAM cancels the handler's context")
        c.close()

        # Flow control backs up to the handler: a client that never opens its window.
        raw = Raw(srv.port, settings=struct.pack(">HI", 4, 0))  # INITIAL_WINDOW_SIZE 0
        rss0 = srv.rss()
        raw.send(raw.headers(1, "/big/50000000"))
        time.sleep(0.5)
        st = srv.stats()
        frames, _ = raw.read_frames(0.3)
        data = sum(len(p) for t, _, _, p in frames if t == DATA)
        grew = srv.rss() - rss0
        result(st["h2_running"] == 1 and data == 0 and grew < 4 << 20,
               "zero window: the handler waits, nothing sent, memory +%d kB (< 4 MB for a 50 MB body)" % (grew // 1024))
        # The write timeout then ends that stream.
        frames, _ = raw.read_frames(2.0)
        result(any(t == RST_STREAM and s == 1 for t, _, s, _ in frames) and srv.stats()["h2_running"] == 0,
               "a stalled window is cut at the write timeout (RST_STREAM)")
        raw.close()

        # A body that never arrives is cut at the read timeout.
        c = Client(srv.port)
        sid = c.send("/echo", method="POST", headers=[("content-length", "10")], end=False)
        t0 = time.time()
        st, _, _ = c.response(sid)
        result(time.time() - t0 < 3, "a missing request body is cut at the read timeout (%s after %.1fs)" % (st, time.time() - t0))
        c.close()

        # Headers over the limits: 431, connection still usable.
        c = Client(srv.port)
        st, _, _ = c.request("/hello", headers=[("x-big", "a" * 70000)])
        st2, body, _ = c.request("/hello")
        result(st == "431" and st2 == "200", "a 70 kB header: 431, the connection goes on (%s, %s)" % (st, st2))
        st, _, _ = c.request("/hello", headers=[("x-h%d" % i, "v") for i in range(150)])
        result(st == "431", "150 header fields (max 100): 431 (%s)" % st)
        c.close()

        # 1xx: 100 Continue before a held-back body; 103 Early Hints before the final head.
        c = Client(srv.port)
        sid = c.send("/expect", method="POST", end=False,
                     headers=[("content-length", "5"), ("expect", "100-continue")])
        info = None
        while info is None:
            for e in c.pump():
                if isinstance(e, h2.events.InformationalResponseReceived) and e.stream_id == sid:
                    info = dict(e.headers)[b":status"].decode()
        c.send_body(sid, b"hello", True)
        st, body, _ = c.response(sid)
        result(info == "100" and st == "200" and body == b"expect=100-continue len=5\n",
               "Expect: 100-continue: 100 before the body is read, then 200 (%s, %s, %r)" % (info, st, body))
        sid = c.send("/early")
        st, body, _ = c.response(sid)
        hints = [e for e in c.events if isinstance(e, h2.events.InformationalResponseReceived) and e.stream_id == sid]
        h = dict(hints[0].headers) if hints else {}
        result(len(hints) == 1 and h.get(b":status") == b"103" and b"preload" in h.get(b"link", b"")
               and st == "200" and body == b"early 0\n",
               "103 Early Hints with its Link field, then 200 (%d interim)" % len(hints))
        c.close()

        # HTTP/1.1 still works on the same port.
        st, _, body = h1_get(srv.port, "/hello")
        result(st == "200" and body == b"Hello, World!\n", "HTTP/1.1 on the h2c port")
        result(srv.alive(), "server alive after the basics")
    finally:
        srv.stop()


def shutdown(binary):
    srv = Server(binary, "--shutdown-timeout", "5000")
    try:
        raw = Raw(srv.port)
        raw.send(raw.headers(1, "/sleep/600"))
        time.sleep(0.2)
        srv.p.send_signal(signal.SIGTERM)
        frames, eof = raw.read_frames(3)
        body = b"".join(p for t, _, s, p in frames if t == DATA and s == 1)
        order = [t for t, _, _, _ in frames if t in (GOAWAY, DATA)]
        result(goaway_code(frames) == NO_ERROR and body == b"slept 600\n" and order[0] == GOAWAY and eof,
               "graceful shutdown: GOAWAY(NO_ERROR) first, the stream in flight completes, then close")
        raw.close()
        rc = srv.p.wait(5)
        result(rc == 0, "server exits 0 after the last stream (rc %s)" % rc)
    finally:
        srv.stop()


def idle(binary):
    srv = Server(binary, "--idle-timeout", "800", "--read-header-timeout", "600")
    try:
        raw = Raw(srv.port)
        t0 = time.time()
        frames, eof = raw.read_frames(3)
        el = time.time() - t0
        result(eof and el < 2.5, "a connection that sends no request is closed at the header timeout (%.1fs)" % el)
        raw.close()
        c = Client(srv.port)
        c.request("/hello")
        t0 = time.time()
        try:
            while True:
                c.pump()
        except (EOFError, OSError):
            pass
        el = time.time() - t0
        result(c.goaway is not None and el < 2.5, "idle timeout: GOAWAY and close (%.1fs)" % el)
        c.close()
    finally:
        srv.stop()


# ------------------------------------------------------------------------------------------
# Attacks: each bounds what the server spends
# ------------------------------------------------------------------------------------------

def rapid_reset(binary):
    srv = Server(binary, "--max-streams", "100")
    try:
        cpu0 = srv.cpu()
        raw = Raw(srv.port)
        n, burst = 0, b""
        t0 = time.time()
        for sid in range(1, 2 * 20000, 2):  # 20,000 streams opened and reset at once
            burst += raw.headers(sid, "/wait/5000") + frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
            n += 1
            if len(burst) > 65536:
                try:
                    raw.send(burst)
                except OSError:
                    break
                burst = b""
        try:
            raw.send(burst)
        except OSError:
            pass
        frames, _ = raw.read_frames(1.0)
        st = srv.stats()
        cpu = srv.cpu() - cpu0
        result(st["h2_peak"] <= 100, "rapid reset: at most 100 handlers ever ran at once (peak %d, %d streams sent)" % (st["h2_peak"], n))
        result(cpu < 3.0, "rapid reset: server CPU %.2fs for %d open+reset pairs (< 3 s)" % (cpu, n))
        result(wait_for(lambda: srv.stats()["h2_running"] == 0, 3), "rapid reset: every reset handler's context is cancelled (running 0)")
        code = goaway_code(frames)
        result(code in (None, ENHANCE_YOUR_CALM), "rapid reset: connection ended with ENHANCE_YOUR_CALM or served (%s)" % code)
        raw.close()
        result(srv.alive(), "server alive after rapid reset")
    finally:
        srv.stop()


def continuation_flood(binary):
    srv = Server(binary)
    try:
        raw = Raw(srv.port)
        rss0 = srv.rss()
        enc = hpack.Encoder()
        first = enc.encode([(":method", "GET"), (":path", "/"), (":scheme", SCHEME), (":authority", "x")])
        raw.send(frame(HEADERS, 0, 1, first))
        # Endless CONTINUATION frames, never END_HEADERS, each a valid literal field.
        field = hpack.Encoder().encode([("x-flood", "a" * 1000)])
        chunk = b"".join(frame(CONTINUATION, 0, 1, field * 15) for _ in range(16))
        sent = send_until_closed(raw.s, chunk, 64 << 20)
        frames, eof = raw.read_frames(1.0)
        grew = srv.rss() - rss0
        result(sent < 8 << 20, "CONTINUATION flood: cut after %d kB sent (< 8 MB)" % (sent // 1024))
        result(grew < 8 << 20, "CONTINUATION flood: server memory +%d kB (< 8 MB)" % (grew // 1024))
        raw.close()
        result(srv.alive(), "server alive after CONTINUATION flood")
    finally:
        srv.stop()


def control_floods(binary):
    srv = Server(binary)
    try:
        for name, fr in (("SETTINGS", frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100))),
                         ("PING", frame(PING, 0, 0, b"12345678"))):
            raw = Raw(srv.port)
            raw.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            rss0 = srv.rss()
            cpu0 = srv.cpu()
            sent = send_until_closed(raw.s, fr * 4096, 256 << 20)
            frames, eof = raw.read_frames(1.0)
            grew = srv.rss() - rss0
            cpu = srv.cpu() - cpu0
            result(sent < 64 << 20 and grew < 8 << 20 and cpu < 5,
                   "%s flood without reading acks: cut after %d kB, memory +%d kB, CPU %.2fs" % (name, sent // 1024, grew // 1024, cpu))
            raw.close()
        # Empty DATA frames on an open stream.
        raw = Raw(srv.port)
        raw.send(raw.headers(1, "/echo", method="POST", end_stream=False))
        sent = send_until_closed(raw.s, frame(DATA, 0, 1) * 1000, 64 << 20)
        frames, eof = raw.read_frames(1.0)
        code = goaway_code(frames)
        result(code == ENHANCE_YOUR_CALM and sent < 8 << 20,
               "empty DATA frame flood: GOAWAY(ENHANCE_YOUR_CALM) after %d kB (%s)" % (sent // 1024, code))
        raw.close()
        result(srv.alive(), "server alive after control-frame floods")
    finally:
        srv.stop()


def hpack_bombs(binary):
    srv = Server(binary)
    try:
        rss0 = srv.rss()
        raw = Raw(srv.port)
        # One 4 kB field into the dynamic table (literal with incremental indexing), then the
        # same field referenced 4000 times by its 1-byte index: 16 MB decoded from 4 kB sent.
        block = raw.enc.encode([(":method", "GET"), (":path", "/hello"), (":scheme", SCHEME),
                                (":authority", "x"), ("x-bomb", "b" * 4000)])
        block += bytes([0x80 | 62]) * 4000  # the newest dynamic entry: x-bomb
        raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        frames, _ = raw.read_frames(1.0)
        got431 = False
        dec = hpack.Decoder()
        for t, f, s, p in frames:
            if t == HEADERS and s == 1:
                got431 = dict(dec.decode(p)).get(":status") == "431"
        grew = srv.rss() - rss0
        result(got431 and grew < 8 << 20, "HPACK bomb (16 MB of fields from 4 kB): 431, memory +%d kB" % (grew // 1024))
        raw.close()
        # A dynamic table larger than the server allows (SETTINGS_HEADER_TABLE_SIZE 4096).
        raw = Raw(srv.port)
        upd = bytearray(hpack.hpack.encode_integer(1 << 20, 5))
        upd[0] |= 0x20  # dynamic table size update to 1 MB
        raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bytes(upd) + raw.enc.encode(
            [(":method", "GET"), (":path", "/"), (":scheme", SCHEME), (":authority", "x")])))
        frames, eof = raw.read_frames(1.0)
        code = goaway_code(frames)
        result(code is not None and code != NO_ERROR, "HPACK table size update over the limit: GOAWAY (error %s)" % code)
        raw.close()
        result(srv.alive(), "server alive after HPACK bombs")
    finally:
        srv.stop()


def protocol_errors(binary):
    srv = Server(binary)
    try:
        raw = Raw(srv.port)
        raw.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)) * 2)
        frames, eof = raw.read_frames(1.0)
        result(goaway_code(frames) == FLOW_CONTROL_ERROR, "connection window overflow: GOAWAY(FLOW_CONTROL_ERROR)")
        raw.close()
        raw = Raw(srv.port)
        raw.send(raw.headers(1, "/wait/2000"))
        raw.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0x7FFFFFFF)) * 2)
        frames, eof = raw.read_frames(1.0)
        result(any(t == RST_STREAM and s == 1 and p == struct.pack(">I", FLOW_CONTROL_ERROR) for t, _, s, p in frames),
               "stream window overflow: RST_STREAM(FLOW_CONTROL_ERROR)")
        raw.close()
        # The preface, then garbage instead of a SETTINGS frame.
        raw = Raw(srv.port, preface=False)
        raw.send(PREFACE + b"\x00\x00\x04\x99garbage-garbage")
        frames, eof = raw.read_frames(1.5)
        result(eof, "preface followed by garbage: connection closed (GOAWAY %s)" % goaway_code(frames))
        raw.close()
        # A preface that goes wrong halfway: refused as HTTP/1 (400) and closed.
        raw = Raw(srv.port, preface=False)
        raw.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
        frames, eof = raw.read_frames(1.5)
        result(eof, "a bad preface: connection closed")
        raw.close()
        st = srv.stats()
        result(st["h2_protocol_errors"] >= 2, "protocol errors counted (%d)" % st["h2_protocol_errors"])
        result(srv.alive(), "server alive after protocol errors")
    finally:
        srv.stop()


def mutate(binary, count):
    """count connections of valid frame sequences with random damage; the server must survive
    (an ASan build aborts on any memory error) and still answer."""
    import random
    rnd = random.Random(1234)
    srv = Server(binary, "--read-header-timeout", "300", "--idle-timeout", "300", "--read-timeout", "500")
    try:
        for i in range(count):
            enc = hpack.Encoder()
            frames = [PREFACE, frame(SETTINGS, 0, 0, struct.pack(">HI", 4, rnd.choice([0, 100, 65535, 1 << 20])))]
            for sid in range(1, 2 * rnd.randint(1, 6), 2):
                path = rnd.choice(["/hello", "/echo", "/big/20000", "/trailers", "/info", "/wait/50", "/status/204"])
                method = "POST" if path in ("/echo", "/trailers") else "GET"
                hs = [(":method", method), (":path", path), (":scheme", SCHEME), (":authority", "x"),
                      ("x-r", "v" * rnd.randint(0, 300))]
                body = os.urandom(rnd.randint(0, 3000)) if method == "POST" else b""
                frames.append(frame(HEADERS, END_HEADERS | (0 if body else END_STREAM), sid, enc.encode(hs)))
                if body:
                    frames.append(frame(DATA, END_STREAM, sid, body))
                frames.append(rnd.choice([frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 1000)),
                                          frame(PING, 0, 0, b"abcdefgh"),
                                          frame(PRIORITY, 0, sid, struct.pack(">IB", 0, 16)),
                                          frame(RST_STREAM, 0, sid, struct.pack(">I", 8)), b""]))
            data = bytearray(b"".join(frames))
            for _ in range(rnd.randint(1, 8)):
                op, pos = rnd.random(), rnd.randrange(len(PREFACE) if i % 50 == 0 else 24, len(data))
                if op < 0.5:
                    data[pos] = rnd.randrange(256)
                elif op < 0.7:
                    del data[pos:pos + rnd.randint(1, 20)]
                elif op < 0.9:
                    data[pos:pos] = os.urandom(rnd.randint(1, 20))
                else:
                    data = data[:pos]
                if len(data) <= 24:
                    break
            try:
                sk = connect(srv.port, 2)
                sk.sendall(bytes(data))
                sk.settimeout(0.3 if i % 10 == 0 else 0.05)
                try:
                    while sk.recv(65536):
                        pass
                except (socket.timeout,) + CLOSED:
                    pass
                sk.close()
            except OSError:
                pass
            if srv.p.poll() is not None:
                break
        ok = srv.p.poll() is None and srv.alive()
        err = b"" if ok else srv.p.stderr.read()[-3000:]
        result(ok, "%d mutated HTTP/2 connections: server alive and answering%s" % (count, "" if ok else ": " + err.decode(errors="replace")))
    finally:
        srv.stop()


GROUPS = [basics, shutdown, idle, rapid_reset, continuation_flood, control_floods, hpack_bombs, protocol_errors]


def main():
    binary = sys.argv[1]
    if len(sys.argv) > 3 and sys.argv[2] == "--mutate":
        mutate(binary, int(sys.argv[3]))
        sys.exit(min(fails, 100))
    only = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--only" else None
    for g in GROUPS:
        if only and g.__name__ != only:
            continue
        try:
            g(binary)
        except Exception as e:  # noqa: BLE001 - report and go on with the next group
            result(False, "%s: %r" % (g.__name__, e))
    sys.exit(min(fails, 100))


if __name__ == "__main__":
    main()
