#!/usr/bin/env python3
"""bench/wsidle.py SERVER [N] - resident memory per idle WebSocket connection.

Starts the WebSocket server SERVER (build/bench/c/wsidle or build/bench/go/wsidle) on a free
127.0.0.1 port, opens N connections (default 10000) that each complete the WebSocket handshake
(a 101 with the right Sec-WebSocket-Accept) and then stay open and idle, and prints the growth
of the server's resident set size divided by N, in bytes. A warm-up of 100 connections comes
first, as in bench/httpidle.py. The server is killed by PID at the end. Used by bench/run's
wsidle workload.
"""
import base64
import hashlib
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpidle  # noqa: E402 - the same measurement, over WebSocket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade(port):
    key = base64.b64encode(os.urandom(16))
    want = base64.b64encode(hashlib.sha1(key + GUID).digest())
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            raise RuntimeError("server closed a connection during the handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101") or b"Sec-WebSocket-Accept: " + want not in data:
        raise RuntimeError("bad handshake answer: %r" % data[:200])
    return c


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.splitlines()[0])
    n = int(sys.argv[2]) if len(sys.argv) == 3 else 10000
    print("%.1f" % httpidle.measure([sys.argv[1]], upgrade, n))


if __name__ == "__main__":
    main()
