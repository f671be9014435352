#!/usr/bin/env python3
"""bench/tlsidle.py SERVER CERT KEY [N] - resident memory per idle TLS keep-alive connection.

bench/httpidle.py over TLS: starts the hello-world HTTPS server SERVER (bench/c/https or
bench/go/https) on a free 127.0.0.1 port with the certificate CERT and key KEY, opens N
connections (default 10000) that each complete a TLS 1.3 handshake, make one request and then
stay open and idle, and prints the growth of the server's resident set size divided by N, in
bytes. A warm-up of 100 connections comes first. The server is killed by PID at the end. Used
by bench/run's tlsidle workload.
"""
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpidle  # noqa: E402 - the same measurement, over TLS

CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE  # the server's cost is the same; the client's is smaller


def request(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    # Without TCP_NODELAY the request waits behind the client's Finished for the server's
    # delayed ACK (about 40 ms against Go's server, which sends its tickets separately), and
    # 10,000 connections would take minutes. The server's memory does not depend on it.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = CTX.wrap_socket(s)
    c.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while not data.endswith(b"Hello, World!\n"):
        chunk = c.recv(4096)
        if not chunk:
            raise RuntimeError("server closed a connection")
        data += chunk
    return c


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.splitlines()[0])
    n = int(sys.argv[4]) if len(sys.argv) == 5 else 10000
    print("%.1f" % httpidle.measure(sys.argv[1:4], request, n))


if __name__ == "__main__":
    main()
