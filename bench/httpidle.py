#!/usr/bin/env python3
"""bench/httpidle.py SERVER [N] - resident memory per idle keep-alive HTTP connection.

Starts the hello-world server SERVER (bench/c/http or bench/go/http) on a free 127.0.0.1 port,
opens N connections (default 10000) that each make one request and then stay open and idle,
and prints the growth of the server's resident set size divided by N, in bytes. A warm-up of
100 connections comes first, so one-time costs (first stacks, buffers, thread caches) are not
counted. The server is killed by PID at the end. Used by bench/run's httpidle workload.
"""
import os
import resource
import socket
import subprocess
import sys
import time


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def request(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while not data.endswith(b"Hello, World!\n"):
        chunk = c.recv(4096)
        if not chunk:
            raise RuntimeError("server closed a connection")
        data += chunk
    return c


def measure(argv, connect, n):
    """Start the server argv + [address] on a free port, open 100 warm-up connections with
    connect(port), then n more, and return the growth of the server's resident set per
    connection once they have been idle for 5 s. The server is killed by PID at the end.
    bench/tlsidle.py and bench/wsidle.py measure the same way with their own connect."""
    raise_nofile()
    port = free_port()
    proc = subprocess.Popen(argv[:1] + ["127.0.0.1:%d" % port] + argv[1:],
                            stderr=subprocess.DEVNULL, preexec_fn=raise_nofile)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        warm = [connect(port) for _ in range(100)]
        time.sleep(0.5)
        before = rss(proc.pid)
        conns = [connect(port) for _ in range(n)]
        time.sleep(5)  # idle for a while: gorc compacts parked stacks after 0.5-1 s
        after = rss(proc.pid)
        for c in warm + conns:
            c.close()
        return (after - before) / n
    finally:
        proc.kill()
        proc.wait()


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.splitlines()[0])
    n = int(sys.argv[2]) if len(sys.argv) == 3 else 10000
    print("%.1f" % measure([sys.argv[1]], request, n))


if __name__ == "__main__":
    main()
