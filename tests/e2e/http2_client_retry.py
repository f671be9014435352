#!/usr/bin/python3
"""tests/e2e/http2_client_retry.py - a scripted HTTP/2 server (Python's h2) that refuses the gorc
client's first request unprocessed, for tests/e2e/http2-e2e.

Usage: http2_client_retry.py SCENARIO CLIENT_BINARY

SCENARIO goaway: the first connection answers the first request with GOAWAY(last stream 0,
NO_ERROR) and closes; later connections serve. SCENARIO refused: the first request gets
RST_STREAM(REFUSED_STREAM); later requests on the same connection are served. Either way the
server never processed the first request, so the client must send it again (Go's Transport
does) and succeed. Runs CLIENT_BINARY (tests/e2e/http2_get.c) against http://127.0.0.1:PORT/
with prior knowledge and prints one ok/FAIL line with its output and the server's counts.
Loopback only; the server thread stops after 20 s at most.
"""
import socket
import subprocess
import sys
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events

scenario, client = sys.argv[1], sys.argv[2]
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(8)
lsock.settimeout(20)
port = lsock.getsockname()[1]
counts = {"conns": 0, "requests": 0, "refused": 0, "served": 0}


def serve_conn(s, first_conn):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    s.settimeout(10)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return
            for e in conn.receive_data(data):
                if not isinstance(e, h2.events.RequestReceived):
                    continue
                counts["requests"] += 1
                if counts["refused"] == 0 and scenario == "goaway" and first_conn:
                    counts["refused"] += 1
                    conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
                    s.sendall(conn.data_to_send())
                    return
                if counts["refused"] == 0 and scenario == "refused":
                    counts["refused"] += 1
                    conn.reset_stream(e.stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                    continue
                counts["served"] += 1
                body = b"served after a retry\n"
                conn.send_headers(e.stream_id, [(":status", "200"), ("content-length", str(len(body)))])
                conn.send_data(e.stream_id, body, end_stream=True)
            out = conn.data_to_send()
            if out:
                s.sendall(out)
    except (OSError, h2.exceptions.ProtocolError):
        return
    finally:
        s.close()


def accept_loop():
    first = True
    while True:
        try:
            s, _ = lsock.accept()
        except OSError:
            return
        counts["conns"] += 1
        threading.Thread(target=serve_conn, args=(s, first), daemon=True).start()
        first = False


threading.Thread(target=accept_loop, daemon=True).start()
try:
    out = subprocess.run([client, "http://127.0.0.1:%d/x" % port, "1"], capture_output=True,
                         timeout=30).stdout.decode().strip()
except subprocess.TimeoutExpired:
    out = "timed out"
lsock.close()
want_dials = 2 if scenario == "goaway" else 1
ok = (out.startswith("ok=1 status=200 bytes=21 dials=%d " % want_dials) and counts["refused"] == 1
      and counts["served"] == 1 and counts["requests"] == 2)
print("%s gorc client retries a request refused unprocessed (%s): %s; server: %s" % (
    "ok  " if ok else "FAIL", scenario, out, counts))
sys.exit(0 if ok else 1)
