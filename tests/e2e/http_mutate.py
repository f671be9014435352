#!/usr/bin/env python3
"""tests/e2e/http_mutate.py SERVER [COUNT] - hostile bytes against the HTTP server, end to end.

The parser has its own libFuzzer target; this drives the whole server (parsing, the in-place
NUL-termination of the head, path decoding, bodies, pipelining, responses) with requests
derived from valid ones by random mutations: bytes flipped, inserted, deleted or duplicated,
fields repeated, pieces of other requests spliced in, sent whole or in small pieces, several
per connection. Every answer must be well-formed HTTP/1.1 (a status line, then a head that
ends) or the connection must simply close; the server must never crash or hang, and must
serve a normal request at the end. Run it against the AddressSanitizer build
(build/asan/tests/http_e2e_server) so a memory error anywhere in the server aborts it.

The seed is fixed (GORC_MUTATE_SEED overrides it), so a failure can be replayed.
"""
import os
import random
import re
import socket
import subprocess
import sys
import time

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /hello?x=1&y=%41 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-A: b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"HEAD /big/1000 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /chunked?n=3&size=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET http://a:80/p%2Fq%20r HTTP/1.1\r\nHost: a:80\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
]
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] [1-9][0-9]{2} [^\r\n]*\r\n")
INTERESTING = [b"\r\n", b"\n", b"\r", b" ", b":", b"%", b"%00", b"%zz", b"\x00", b"\x7f", b"\t",
               b"0", b"-1", b"ffffffffffffffffff", b";", b",", b"chunked", b"Content-Length: 3\r\n",
               b"Transfer-Encoding: chunked\r\n", b"Host: b\r\n", b"\r\n\r\n", b"\xff" * 4]


def mutate(rnd, data):
    data = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.randrange(6)
        pos = rnd.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rnd.randrange(256)
        elif op == 1:
            data[pos:pos] = rnd.choice(INTERESTING)
        elif op == 2 and data:
            del data[pos:pos + rnd.randint(1, 8)]
        elif op == 3 and data:
            end = min(len(data), pos + rnd.randint(1, 40))
            data[pos:pos] = data[pos:end] * rnd.randint(1, 50)
        elif op == 4:
            other = rnd.choice(SEEDS)
            a = rnd.randrange(len(other))
            data[pos:pos] = other[a:a + rnd.randint(1, 60)]
        else:
            data[pos:pos] = bytes(rnd.randrange(32, 127) for _ in range(rnd.randint(1, 300)))
    return bytes(data)


def check_answer(buf):
    """Each response in buf must start with a status line and have a complete head, except
    possibly the last, cut short by the close (the server may close in the middle of a body
    it streams). Returns an error string or None."""
    if not buf:
        return None
    if not STATUS_LINE.match(buf):
        return "not a status line: %r" % buf[:80]
    if b"\r\n\r\n" not in buf and len(buf) > 65536:
        return "endless head: %r" % buf[:80]
    return None


def exchange(port, rnd, payload):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if rnd.random() < 0.3:
            i = 0
            while i < len(payload):
                n = rnd.randint(1, 64)
                s.sendall(payload[i:i + n])
                i += n
        else:
            s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
    except OSError:  # the server answered and closed before all was sent: fine
        pass
    buf = b""
    try:
        while len(buf) < (1 << 20):  # a long answer is cut here: only its start is checked
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        return "no answer and no close within 10 s for %r" % payload[:120]
    finally:
        s.close()
    return check_answer(buf)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.splitlines()[0])
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 2000
    seed = int(os.environ.get("GORC_MUTATE_SEED", "1"))
    rnd = random.Random(seed)
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=1:detect_leaks=0")
    proc = subprocess.Popen([sys.argv[1], "--addr", "127.0.0.1:0", "--read-header-timeout",
                             "2000", "--read-timeout", "2000", "--max-body", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    failures = []
    t0 = time.monotonic()
    try:
        line = proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            sys.exit("FAIL mutate: server did not start: %r %r" % (line, proc.stderr.read()[-500:]))
        port = int(line.rsplit(":", 1)[1])
        for i in range(count):
            payload = b"".join(mutate(rnd, rnd.choice(SEEDS)) for _ in range(rnd.randint(1, 4)))
            err = exchange(port, rnd, payload)
            if err:
                failures.append("case %d: %s" % (i, err))
            if proc.poll() is not None:
                failures.append("case %d: the server died (status %s) on %r: %s" %
                                (i, proc.returncode, payload[:200], proc.stderr.read()[-2000:]))
                break
        if proc.poll() is None:
            err = exchange(port, random.Random(0), b"GET /hello HTTP/1.1\r\nHost: a\r\n"
                                                   b"Connection: close\r\n\r\n")
            if err:
                failures.append("normal request after the mutations: %s" % err)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for f in failures[:10]:
        print("FAIL mutate: %s" % f)
    verdict = "ok  " if not failures else "FAIL"
    print("%s mutate: %d mutated requests (seed %d), %d failures, server alive, %.1f s" %
          (verdict, count, seed, len(failures), time.monotonic() - t0))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
