#!/usr/bin/python3
"""tests/e2e/ws_e2e.py MODE ARG - Python's websockets (an independent RFC 6455 implementation)
against gorc's, for tests/e2e/ws-e2e.

  ws_e2e.py client URL    websockets as the client of gorc's echo server at URL (ws://.../):
                          messages of many sizes, both types, fragmented messages, pings,
                          subprotocol choice, the 1 KiB limit of /small (close 1009), the close
                          code and reason echoed. Prints one "ok"/"FAIL" line per check.
  ws_e2e.py slow HOST:PORT  examples/danmaku's slow-viewer rule: a raw viewer that stops
                          reading (4 KiB receive buffer) while a poster sends 12,000
                          comments must end up dropped with close 1008, while a websockets
                          viewer in the same room gets all 12,000 in order.
  ws_e2e.py server        websockets as an echo server on a free 127.0.0.1 port; prints
                          "listening on ws://127.0.0.1:PORT/" and then, once the gorc client
                          has closed, "closed CODE REASON"; exits after 20 s at most.
Exit status 0 when every check passed.
"""
import asyncio
import os
import sys

import websockets
import websockets.extensions.permessage_deflate

failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok    " if cond else "FAIL  ") + name + ("" if cond else "  " + str(detail)))
    if not cond:
        failures += 1


async def client(url):
    async with websockets.connect(url + "echo", subprotocols=["superchat", "chat"],
                                  max_size=2 ** 21) as ws:
        check("subprotocol: the server's preference (chat)", ws.subprotocol == "chat",
              ws.subprotocol)
        good = True
        for n in (0, 1, 125, 126, 127, 65535, 65536, 1 << 20):
            text = "".join(chr(0x61 + i % 26) for i in range(n))
            await ws.send(text)
            good = good and await ws.recv() == text
            data = bytes(i & 255 for i in range(n))
            await ws.send(data)
            good = good and await ws.recv() == data
        check("echo of text and binary messages, 0 B to 1 MiB", good)
        uni = "h\u00e9llo \u20ac \U0001F600" * 100
        await ws.send(uni)
        check("echo of non-ASCII text", await ws.recv() == uni)
        # A fragmented message: websockets sends each item of an iterable as a frame.
        await ws.send(["frag", "men", "ted \u00e9"])
        check("a fragmented text message comes back whole", await ws.recv() == "fragmented \u00e9")
        await ws.send([b"\x00\x01", b"\x02"])
        check("a fragmented binary message comes back whole", await ws.recv() == b"\x00\x01\x02")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        check("ping answered by a pong with the same payload", True)
        for i in range(200):
            await ws.send("burst %d" % i)
        got = [await ws.recv() for _ in range(200)]
        check("200 messages in a burst, in order", got == ["burst %d" % i for i in range(200)])
        await ws.close(4000, "bye now")
        check("close handshake: the server echoes code 4000",
              ws.close_code == 4000, ws.close_code)
    async with websockets.connect(url + "small", max_size=2 ** 21) as ws:
        await ws.send("x" * 2000)
        try:
            await ws.recv()
            check("a message over /small's 1 KiB limit is refused with 1009", False, "echoed")
        except websockets.ConnectionClosed as e:
            check("a message over /small's 1 KiB limit is refused with 1009",
                  e.rcvd is not None and e.rcvd.code == 1009, e)
    # permessage-deflate (websockets offers it by default; /echoz accepts it).
    async with websockets.connect(url + "echoz", max_size=2 ** 21) as ws:
        names = [e.name for e in ws.extensions]
        check("permessage-deflate negotiated with the gorc server", names == ["permessage-deflate"],
              names)
        good = True
        for n in (0, 10, 100, 5000, 70000, 1 << 20):
            for _ in range(3):  # context takeover: each message depends on the last
                text = "".join("deflate %d " % (i % 97) for i in range(n // 8))[:n]
                await ws.send(text)
                good = good and await ws.recv() == text
        data = os.urandom(100000)
        await ws.send(data)
        good = good and await ws.recv() == data
        check("compressed echo of text and binary, 0 B to 1 MiB, repeated", good)
    async with websockets.connect(url + "echoz", max_size=2 ** 21,
                                  extensions=[websockets.extensions.permessage_deflate.
                                              ClientPerMessageDeflateFactory(
                                                  server_no_context_takeover=True,
                                                  client_no_context_takeover=True,
                                                  server_max_window_bits=10)]) as ws:
        ext = ws.extensions[0] if ws.extensions else None
        check("no context takeover and a 10-bit server window negotiated",
              ext is not None and ext.remote_no_context_takeover and
              ext.local_no_context_takeover and ext.remote_max_window_bits == 10,
              ext and vars(ext))
        good = True
        for i in range(20):
            text = "message %d " % i * 500
            await ws.send(text)
            good = good and await ws.recv() == text
        check("compressed echo without context takeover", good)
    # Many connections at once, each echoing.
    async def one(i):
        async with websockets.connect(url + "echo") as ws:
            await ws.send("conn %d" % i)
            return await ws.recv() == "conn %d" % i
    res = await asyncio.gather(*(one(i) for i in range(200)))
    check("200 concurrent connections echo", all(res))


async def server():
    closed = asyncio.get_running_loop().create_future()

    async def echo(ws, path=None):
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass
        if not closed.done():
            closed.set_result((ws.close_code, ws.close_reason,
                               ",".join(e.name for e in ws.extensions) or "none"))

    async with websockets.serve(echo, "127.0.0.1", 0, max_size=2 ** 21) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("listening on ws://127.0.0.1:%d/" % port, flush=True)
        code, reason, ext = await asyncio.wait_for(closed, 20)
        print("closed %s %s %s" % (code, reason, ext), flush=True)


def raw_viewer(hostport, room):
    import base64, os, socket
    host, port = hostport.rsplit(":", 1)
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16))
    c.sendall(b"GET /ws?room=" + room.encode() + b"&name=slow HTTP/1.1\r\nHost: x\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += c.recv(1)
    return c


def close_code_of(c):
    """Read the stream to its end; the code of its close frame, or None."""
    c.settimeout(20)
    data = b""
    while True:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    i, code = 0, None
    while i + 2 <= len(data):
        op, n = data[i] & 15, data[i + 1] & 127
        j = i + 2
        if n == 126:
            n, j = int.from_bytes(data[j:j + 2], "big"), j + 2
        elif n == 127:
            n, j = int.from_bytes(data[j:j + 8], "big"), j + 8
        if op == 8 and n >= 2:
            code = int.from_bytes(data[j:j + 2], "big"), data[j + 2:j + n].decode()
        i = j + n
    return code


async def slow(hostport):
    import json
    room = "slow%d" % __import__("os").getpid()
    url = "ws://%s/ws?room=%s&name=" % (hostport, room)
    slowc = raw_viewer(hostport, room)
    n = 12000
    async with websockets.connect(url + "fast", max_size=2 ** 20) as fast, \
            websockets.connect(url + "poster", max_size=2 ** 20) as poster:
        fast_seqs, poster_seqs = [], []

        async def drain(ws, want, seqs):
            while len(seqs) < want:
                m = json.loads(await ws.recv())
                if m.get("type") != "welcome":
                    seqs.append(m["seq"])
            return seqs
        await asyncio.sleep(0.2)  # everyone has joined
        reader = asyncio.ensure_future(drain(fast, n, fast_seqs))
        preader = asyncio.ensure_future(drain(poster, n, poster_seqs))
        for i in range(n):
            await poster.send("%05d " % i + "x" * 480)
            # Paced by the readers (their queues hold 256), not by the slow viewer.
            while i - min(len(fast_seqs), len(poster_seqs)) > 100:
                await asyncio.sleep(0.001)
        seqs = await asyncio.wait_for(reader, 30)
        await asyncio.wait_for(preader, 30)
        check("a reading viewer got all %d comments in order while a slow one sat in the room"
              % n, seqs == list(range(seqs[0], seqs[0] + n)))
    code = await asyncio.get_running_loop().run_in_executor(None, close_code_of, slowc)
    check("the viewer that stopped reading was dropped with 1008", code is not None and
          code[0] == 1008 and "slow" in code[1], code)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "client":
        asyncio.run(asyncio.wait_for(client(sys.argv[2]), 60))
    elif len(sys.argv) == 3 and sys.argv[1] == "slow":
        asyncio.run(asyncio.wait_for(slow(sys.argv[2]), 90))
    elif len(sys.argv) == 2 and sys.argv[1] == "server":
        asyncio.run(server())
    else:
        sys.exit(__doc__.splitlines()[0])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
