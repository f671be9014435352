#!/usr/bin/env python3
"""tests/e2e/tls_e2e.py SERVER DIR - Python's ssl against gorc's HTTPS server (tests/e2e/tls-e2e).

DIR holds the certificates tls-e2e made: ca.pem, leaf.pem/key (localhost), ca2.pem and
leaf2.pem/key (localhost, another CA). Each check starts its own server (the binary SERVER,
tests/e2e/tls_e2e_server) on a free port with the timeouts it needs, and prints one ok/FAIL
line; the exit status is the number of failures. Every wait has a bound.

  ssl-client      http.client over ssl with verification: GET, a 1 MiB POST echoed, keep-alive
  garbage         an HTTP request, random bytes and an SSLv2-style hello in place of a
                  ClientHello: the connection is closed, the server serves the next client
  slow-hello      a client trickling its ClientHello a byte at a time is cut off by the
                  read-header timeout (within 3 s, long before it is done), counted as a timeout
  idle-hello      200 connections that never send a byte are all closed by the timeout
  reload          SIGHUP with new certificate files while a client holds a connection: the held
                  connection keeps working, a new one sees the new certificate
  emfile          with 64 descriptors, 100 silent connections do not stop the server: once they
                  are cut off, it serves again (accept backs off on EMFILE instead of failing)
  mutate N        N randomly mutated requests (tests/e2e/http_mutate.py's mutations) over TLS,
                  run against the AddressSanitizer build: no crash, every answer well-formed
"""
import http.client
import importlib.util
import json
import os
import random
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

SERVER, DIR = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
fails = 0


def report(name, err):
    global fails
    if err:
        fails += 1
        print("FAIL %s: %s" % (name, err))
    else:
        print("ok   %s" % name)
    sys.stdout.flush()


class Server:
    def __init__(self, *args, cert="leaf", nofile=None):
        env = dict(os.environ, TLS_CERT=os.path.join(DIR, cert + ".pem"),
                   TLS_KEY=os.path.join(DIR, cert + ".key"),
                   ASAN_OPTIONS="abort_on_error=1:detect_leaks=0")
        pre = None
        if nofile:
            pre = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.p = subprocess.Popen([SERVER, "--addr", "127.0.0.1:0"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  preexec_fn=pre)
        line = self.p.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError("server did not start: %r %r" % (line, self.p.stderr.read()[-500:]))
        self.port = int(line.rsplit(":", 1)[1])

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def ctx(ca="ca.pem"):
    c = ssl.create_default_context(cafile=os.path.join(DIR, ca))
    c.minimum_version = ssl.TLSVersion.TLSv1_2
    return c


def get(port, path="/hello", ca="ca.pem", conn=None, method="GET", body=None):
    c = conn or http.client.HTTPSConnection("localhost", port, context=ctx(ca), timeout=10)
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, data


def stats(port):
    return json.loads(get(port, "/stats")[1])


def check(name, fn):
    try:
        report(name, fn())
    except Exception as e:  # noqa: BLE001 - any exception is this check's failure
        report(name, "%s: %s" % (type(e).__name__, e))


def t_ssl_client():
    s = Server()
    try:
        c = http.client.HTTPSConnection("localhost", s.port, context=ctx(), timeout=10)
        for _ in range(3):
            st, data = get(s.port, conn=c)
            if (st, data) != (200, b"Hello, World!\n"):
                return "got %r %r" % (st, data)
        body = bytes(random.Random(1).randrange(256) for _ in range(1 << 20))
        st, data = get(s.port, "/echo", conn=c, method="POST", body=body)
        if st != 200 or data != body:
            return "echo: %d, %d bytes back" % (st, len(data))
        if c.sock.version() != "TLSv1.3":
            return "version %s" % c.sock.version()
        c.close()
        if stats(s.port)["conns_total"] != 2:
            return "keep-alive: %r" % stats(s.port)
    finally:
        s.stop()
    return None


def closed_within(sock, seconds):
    """True if the peer closes (or resets) within seconds; what it sends first is read."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def t_garbage():
    s = Server("--read-header-timeout", "2000")
    try:
        for junk in (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                     bytes(random.Random(2).randrange(256) for _ in range(3000)),
                     b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + b"\x00" * 37,
                     b"\x16\x03\x01\xff\xff" + b"\x01" * 64):
            sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            sk.sendall(junk)
            if not closed_within(sk, 5):
                return "not closed after %r" % junk[:16]
            sk.close()
        if get(s.port)[0] != 200 or not s.alive():
            return "server not serving after the garbage"
        st = stats(s.port)
        if st["bad_requests"] < 3:
            return "failed handshakes not counted: %r" % st
    finally:
        s.stop()
    return None


def client_hello():
    """The first bytes a real client sends: its ClientHello, captured through a memory BIO."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def t_slow_hello():
    s = Server("--read-header-timeout", "1000")
    try:
        hello = client_hello()
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        t0 = time.monotonic()
        cut = False
        for b in hello:  # one byte each 100 ms: the whole hello would take tens of seconds
            try:
                sk.send(bytes([b]))
            except OSError:
                cut = True
                break
            sk.settimeout(0.1)
            try:
                if sk.recv(1) == b"":
                    cut = True
                    break
            except socket.timeout:
                pass
            except OSError:
                cut = True
                break
            if time.monotonic() - t0 > 5:
                break
        took = time.monotonic() - t0
        sk.close()
        if not cut or took > 3:
            return "not cut off (after %.1f s)" % took
        if stats(s.port)["timeouts"] < 1:
            return "the cut-off was not counted as a timeout"
    finally:
        s.stop()
    return None


def t_idle_hello():
    s = Server("--read-header-timeout", "1000")
    try:
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(200)]
        t0 = time.monotonic()
        for sk in socks:
            if not closed_within(sk, max(0.1, 4 - (time.monotonic() - t0))):
                return "a silent connection was not closed within 4 s"
            sk.close()
        if get(s.port)[0] != 200:
            return "not serving afterwards"
    finally:
        s.stop()
    return None


def t_reload():
    cert, key = os.path.join(DIR, "cur.pem"), os.path.join(DIR, "cur.key")

    def put(src, dst):  # replaced whole (rename), as a certificate renewal tool does
        with open(os.path.join(DIR, src), "rb") as f, open(dst + ".new", "wb") as g:
            g.write(f.read())
        os.replace(dst + ".new", dst)

    put("leaf.pem", cert)
    put("leaf.key", key)
    s = Server(cert="cur")  # the server reads TLS_CERT / TLS_KEY again on SIGHUP
    try:
        held = http.client.HTTPSConnection("localhost", s.port, context=ctx(), timeout=10)
        if get(s.port, conn=held)[0] != 200:
            return "request before the reload"
        put("leaf2.pem", cert)
        put("leaf2.key", key)
        s.p.send_signal(signal.SIGHUP)
        line = s.p.stdout.readline().decode().strip()
        if line != "reloaded":
            return "server said %r" % line
        for _ in range(3):
            if get(s.port, conn=held) != (200, b"Hello, World!\n"):
                return "the held connection broke after the reload"
        try:
            get(s.port)  # trusts only the old CA
            return "a new connection still got the old certificate"
        except ssl.SSLCertVerificationError:
            pass
        if get(s.port, ca="ca2.pem")[0] != 200:
            return "a new connection does not verify with the new CA"
        held.close()
    finally:
        s.stop()
    return None


def t_emfile():
    s = Server("--read-header-timeout", "1500", nofile=64)
    try:
        socks = []
        for _ in range(100):
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        time.sleep(0.2)
        if not s.alive():
            return "the server died"
        t0 = time.monotonic()
        for sk in socks:
            closed_within(sk, max(0.1, 10 - (time.monotonic() - t0)))
            sk.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                if get(s.port)[0] == 200:
                    break
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                return "not serving 10 s after the flood"
            time.sleep(0.2)
    finally:
        s.stop()
    return None


def load_mutate():
    spec = importlib.util.spec_from_file_location("http_mutate",
                                                  os.path.join(HERE, "http_mutate.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def t_mutate(count):
    m = load_mutate()
    s = Server("--read-header-timeout", "1000", "--read-timeout", "1000", "--idle-timeout",
               "300", "--max-body", "100000")
    rnd = random.Random(int(os.environ.get("GORC_MUTATE_SEED", "1")))
    payloads = [b"".join(m.mutate(rnd, rnd.choice(m.SEEDS)) for _ in range(rnd.randint(1, 4)))
                for _ in range(count)]
    errors, lock = [], threading.Lock()
    c = ctx()

    def one(payload):
        # TLS has no half-close Python can do (SSLSocket.shutdown drops the session), so the
        # server ends each connection by its idle or read timeout, or an error response.
        try:
            sk = c.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=10),
                               server_hostname="localhost")
        except (OSError, ssl.SSLError) as e:
            return "handshake: %s" % e
        buf = b""
        try:
            sk.sendall(payload)
            while len(buf) < (1 << 20):
                d = sk.recv(65536)
                if not d:
                    break
                buf += d
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            pass
        except socket.timeout:
            return "no answer and no close within 10 s for %r" % payload[:120]
        finally:
            sk.close()
        return m.check_answer(buf)

    def worker(items):
        for p in items:
            err = one(p)
            if err:
                with lock:
                    errors.append(err)

    threads = [threading.Thread(target=worker, args=(payloads[i::32],)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        if not s.alive():
            return "the server died: %s" % s.p.stderr.read()[-2000:]
        if get(s.port)[0] != 200:
            return "no normal request after the mutations"
        if errors:
            return "%d of %d: %s" % (len(errors), count, errors[:3])
    finally:
        rc = s.stop()
        if rc not in (0, 3):
            return "server exit status %s: %s" % (rc, s.p.stderr.read()[-2000:])
    return None


def main():
    which = sys.argv[3:] or ["ssl-client", "garbage", "slow-hello", "idle-hello", "reload",
                             "emfile"]
    tests = {"ssl-client": t_ssl_client, "garbage": t_garbage, "slow-hello": t_slow_hello,
             "idle-hello": t_idle_hello, "reload": t_reload, "emfile": t_emfile}
    i = 0
    while i < len(which):
        name = which[i]
        if name == "mutate":
            n = int(which[i + 1])
            i += 1
            check("mutate %d over TLS (%s)" % (n, os.path.basename(os.path.dirname(
                os.path.dirname(SERVER)))), lambda: t_mutate(n))
        else:
            check(name, tests[name])
        i += 1
    sys.exit(min(fails, 100))


if __name__ == "__main__":
    main()
