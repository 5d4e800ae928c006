#!/usr/bin/python3
"""Many-connection WebSocket test peer for the moonwire specs (scale and security): one
epoll (selectors) loop, no threads, so it holds 10,000 idle connections cheaply.

Listens on 127.0.0.1 port 0 (backlog 4096) and prints `PORT <n>` as its first line.
It raises its own RLIMIT_NOFILE soft limit to the hard limit.

Modes (--mode):
  idle     complete each handshake (101), then idle. Client frames are parsed: a close
           frame is answered with a close frame and the socket closed; others ignored.
  report   as idle, and print `KEY id <Sec-WebSocket-Key>` per handshake and
           `MASK id <opcode> <payload length> <mask key hex>` per client frame.
  403      answer `403 Forbidden` with a body that repeats the whole request, then close.
  200      answer `200 OK` with a body that repeats the whole request, then close.
  reflect  send the request bytes straight back as the "response", then close.
  reflect-status  answer 403 with the request's Cookie and Authorization values as the
           reason phrase, then close.
  badkey   answer 101 with a wrong Sec-WebSocket-Accept.
  huge     answer 101 followed by header lines that repeat the request until the head
           passes 20 KiB, never ending it.
  hangup   read the request, then close without a word.
  silent   read the request and say nothing, ever.

Lines (flushed):
  PORT n            listening
  OPEN n            every --every'th completed handshake (default 1000; 1 in report mode)
  REQUEST id n      a request head of n bytes arrived (modes other than idle/report)
  CLOSE id code     the client sent a close frame (code, or 1005 when none)
  COUNT open total  reply to the stdin command COUNT: sockets open, handshakes done
Commands on stdin, one a line: COUNT | QUIT. End of stdin means QUIT; --lifetime
(default 120 s) bounds the server anyway.
"""
import argparse
import base64
import hashlib
import os
import resource
import selectors
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455 1.3


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


class Conn:
    __slots__ = ("id", "sock", "buf", "open", "out")

    def __init__(self, cid, sock):
        self.id, self.sock, self.buf, self.open, self.out = cid, sock, b"", False, b""


class Server:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4096)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        os.set_blocking(sys.stdin.fileno(), False)
        self.sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
        self.next_id = 0
        self.nopen = 0
        self.handshakes = 0
        self.stdin_buf = b""
        self.quit = False
        self.every = args.every or (1 if args.mode == "report" else 1000)

    def accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            s.setblocking(False)
            self.next_id += 1
            self.nopen += 1
            c = Conn(self.next_id, s)
            self.sel.register(s, selectors.EVENT_READ, c)

    def drop(self, c):
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        self.nopen -= 1

    def send(self, c, data):
        # Replies are small; a loopback socket with an empty buffer takes them whole.
        try:
            c.sock.sendall(data)
        except OSError:
            pass

    def handshake(self, c, head):
        mode = self.args.mode
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if mode in ("idle", "report"):
            if mode == "report":
                out("KEY", c.id, key.decode("latin-1"))
            self.send(c, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            c.open = True
            self.handshakes += 1
            if self.handshakes % self.every == 0:
                out("OPEN", self.handshakes)
            return True
        out("REQUEST", c.id, len(head))
        if mode in ("403", "200"):
            status = b"403 Forbidden" if mode == "403" else b"200 OK"
            self.send(c, b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                      + str(len(head)).encode() + b"\r\n\r\n" + head)
        elif mode == "reflect":
            self.send(c, head)
        elif mode == "reflect-status":
            # the request's Cookie and Authorization values as the reason phrase
            vals = [line.partition(b":")[2].strip() for line in head.split(b"\r\n")[1:]
                    if line.partition(b":")[0].strip().lower() in (b"cookie", b"authorization")]
            self.send(c, b"HTTP/1.1 403 " + b" ".join(vals) + b"\r\n\r\n")
        elif mode == "badkey":
            self.send(c, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                         + base64.b64encode(hashlib.sha1(head).digest()) + b"\r\n\r\n")
        elif mode == "huge":
            lines = [b"X-Echo-" + str(i).encode() + b": " + line
                     for i, line in enumerate(head.split(b"\r\n")[1:]) if line]
            block = b"\r\n".join(lines) + b"\r\n"
            self.send(c, b"HTTP/1.1 101 Switching Protocols\r\n" + block * (20480 // len(block) + 1))
            return True
        elif mode == "silent":
            return True
        self.drop(c)
        return False

    def frames(self, c):
        while True:
            b = c.buf
            if len(b) < 2:
                return
            op, l7 = b[0] & 15, b[1] & 127
            pos = 2
            if l7 == 126:
                if len(b) < 4:
                    return
                n, pos = struct.unpack(">H", b[2:4])[0], 4
            elif l7 == 127:
                if len(b) < 10:
                    return
                n, pos = struct.unpack(">Q", b[2:10])[0], 10
            else:
                n = l7
            masked = b[1] & 0x80
            mask = b[pos:pos + 4] if masked else b""
            pos += 4 if masked else 0
            if len(b) < pos + n:
                return
            payload = bytes(x ^ mask[i & 3] for i, x in enumerate(b[pos:pos + n])) if masked else b[pos:pos + n]
            c.buf = b[pos + n:]
            if self.args.mode == "report":
                out("MASK", c.id, op, n, mask.hex() if masked else "none")
            if op == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                out("CLOSE", c.id, code)
                self.send(c, b"\x88\x02" + struct.pack(">H", code if code != 1005 else 1000))
                self.drop(c)
                return

    def readable(self, c):
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(c)
            return
        c.buf += data
        if not c.open:
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(c.buf) > 65536:
                    self.drop(c)
                return
            head, c.buf = c.buf[:end + 4], c.buf[end + 4:]
            if not self.handshake(c, head):
                return
            if not c.open:
                return
        self.frames(c)

    def command(self):
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except BlockingIOError:
            return
        if not data:
            self.quit = True
            return
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            cmd = line.strip().decode()
            if cmd == "COUNT":
                out("COUNT", self.nopen, self.handshakes)
            elif cmd == "QUIT":
                self.quit = True

    def run(self):
        out("PORT", self.lsock.getsockname()[1])
        deadline = time.monotonic() + self.args.lifetime
        while not self.quit and time.monotonic() < deadline:
            for key, _ in self.sel.select(timeout=1.0):
                if key.data is None:
                    self.accept()
                elif key.data == "stdin":
                    self.command()
                else:
                    self.readable(key.data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="idle",
                    choices=["idle", "report", "403", "200", "reflect", "reflect-status", "badkey", "huge",
                             "hangup", "silent"])
    ap.add_argument("--every", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Server(args).run()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
