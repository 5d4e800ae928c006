#!/usr/bin/python3
"""WebSocket server for the hot-reload specs: counts connections, streams numbered
messages at a fixed rate, and reports every event on stdout. Stdlib only.

Listens on 127.0.0.1 port 0 and prints `PORT <n>` first. Each event is one line:
  CONNECT id path       a client completed the handshake (ids count from 1)
  MSG id text           a text message arrived (backslash-escaped; binary: MSG id <binary n>)
  CLOSE id code reason  the client closed: the code of its close frame, or `none -`
                        when the TCP connection ended without one
  END id n              the stream of this connection ended after n numbered messages

Paths:
  /echo[/...]                   echo each message back
  /count/<rate>/<total>[/...]   send text messages "<id> <n>", n = 1..total, at <rate>
                                per second (paced by the clock, sent in batches), then
                                "END <n>"
  Anything after the counted parts of a path is only a label (it shows in CONNECT).

Commands on stdin, one a line (id may be * for every connection):
  SEND id text   send one text message
  STOP id        end the stream now: no more numbers, then "END <n>" (n sent so far)
  CLOSE id code  send a close frame with this code
  QUIT
End of stdin means QUIT; --lifetime (default 120 s) bounds the server anyway.
"""
import argparse
import base64
import codecs
import hashlib
import os
import selectors
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def escape(data):
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class Conn:
    def __init__(self, sock, cid, sel):
        self.sock = sock
        self.sel = sel
        self.id = cid
        self.inbuf = b""
        self.outbuf = bytearray()
        self.open = False        # handshake done
        self.path = None
        self.rate = None         # count mode
        self.total = 0
        self.sent = 0
        self.t0 = 0.0
        self.streaming = False
        self.closing = False     # close frame sent or received: no more data frames
        self.gone = False
        self.frag = None

    # --- output -------------------------------------------------------------
    def queue(self, data):
        if not self.gone:
            self.outbuf += data

    def flush(self):
        while self.outbuf and not self.gone:
            try:
                n = self.sock.send(self.outbuf)
            except BlockingIOError:
                return
            except OSError:
                self.drop()
                return
            del self.outbuf[:n]

    def text(self, s):
        if not self.closing:
            self.queue(frame(1, s.encode()))

    def end_stream(self):
        if self.streaming:
            self.streaming = False
            self.text("END %d" % self.sent)
            out("END", self.id, self.sent)

    def pump(self, now):
        if not self.streaming:
            return
        due = min(self.total, int((now - self.t0) * self.rate))
        if due > self.sent:
            chunk = b"".join(frame(1, b"%d %d" % (self.id, i)) for i in range(self.sent + 1, due + 1))
            self.sent = due
            self.queue(chunk)
        if self.sent >= self.total:
            self.end_stream()

    def drop(self):
        if not self.gone:
            self.gone = True
            if self.open and not self.closing:
                out("CLOSE", self.id, "none", "-")
            self.shut()

    def shut(self):
        try:
            self.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()

    # --- input --------------------------------------------------------------
    def handshake(self):
        end = self.inbuf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, self.inbuf = self.inbuf[:end].decode("latin-1"), self.inbuf[end + 4:]
        lines = head.split("\r\n")
        self.path = lines[0].split(" ")[1]
        key = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        self.queue(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        self.open = True
        out("CONNECT", self.id, self.path)
        parts = self.path.split("/")
        if len(parts) >= 4 and parts[1] == "count":
            self.rate = float(parts[2])
            self.total = int(parts[3])
            self.t0 = time.monotonic()
            self.streaming = True

    def frames(self):
        while True:
            b = self.inbuf
            if len(b) < 2:
                return
            fin, opcode = b[0] & 0x80, b[0] & 0x0F
            masked, n = b[1] & 0x80, b[1] & 0x7F
            pos = 2
            if n == 126:
                if len(b) < 4:
                    return
                n = struct.unpack("!H", b[2:4])[0]
                pos = 4
            elif n == 127:
                if len(b) < 10:
                    return
                n = struct.unpack("!Q", b[2:10])[0]
                pos = 10
            mask = b""
            if masked:
                if len(b) < pos + 4:
                    return
                mask = b[pos:pos + 4]
                pos += 4
            if len(b) < pos + n:
                return
            payload = b[pos:pos + n]
            self.inbuf = b[pos + n:]
            if masked:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            self.on_frame(fin, opcode, payload)
            if self.gone:
                return

    def on_frame(self, fin, opcode, payload):
        if opcode in (1, 2):
            self.frag = (opcode, payload)
        elif opcode == 0 and self.frag:
            self.frag = (self.frag[0], self.frag[1] + payload)
        elif opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else "none"
            reason = payload[2:].decode("utf-8", "replace") or "-"
            out("CLOSE", self.id, code, reason)
            self.streaming = False
            if not self.closing:
                self.closing = True
                self.outbuf += frame(8, payload[:2])
            self.flush()
            self.gone = True
            self.shut()
            return
        elif opcode == 9:
            self.queue(frame(10, payload))
            return
        else:
            return
        if fin and self.frag:
            op, data = self.frag
            self.frag = None
            if op == 1:
                out("MSG", self.id, escape(data))
            else:
                out("MSG", self.id, "<binary %d>" % len(data))
            if self.path.startswith("/echo"):
                self.queue(frame(op, data))

    def readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop()
            return
        self.inbuf += data
        if not self.open:
            self.handshake()
        if self.open:
            self.frames()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, "listen")
    os.set_blocking(0, False)
    sel.register(0, selectors.EVENT_READ, "stdin")
    out("PORT", lsock.getsockname()[1])
    conns = {}
    next_id = 0
    stdin_buf = b""
    deadline = time.monotonic() + args.lifetime

    def targets(which):
        if which == "*":
            return [c for c in conns.values() if not c.gone]
        c = conns.get(int(which))
        return [c] if c and not c.gone else []

    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.001):
            if key.data == "listen":
                try:
                    s, _ = lsock.accept()
                except BlockingIOError:
                    continue
                s.setblocking(False)
                next_id += 1
                c = Conn(s, next_id, sel)
                conns[next_id] = c
                sel.register(s, selectors.EVENT_READ, c)
            elif key.data == "stdin":
                data = os.read(0, 65536)
                if not data:
                    return
                stdin_buf += data
                while b"\n" in stdin_buf:
                    line, stdin_buf = stdin_buf.split(b"\n", 1)
                    words = line.decode().split(" ", 2)
                    cmd = words[0]
                    if cmd == "QUIT":
                        return
                    for c in targets(words[1]) if len(words) > 1 else []:
                        if cmd == "SEND":
                            c.text(words[2] if len(words) > 2 else "")
                        elif cmd == "STOP":
                            c.end_stream()
                        elif cmd == "CLOSE":
                            c.queue(frame(8, struct.pack("!H", int(words[2]))))
                            c.closing = True
                    sys.stdout.flush()
            else:
                key.data.readable()
        now = time.monotonic()
        for cid, c in list(conns.items()):
            if c.gone:
                del conns[cid]
                continue
            c.pump(now)
            c.flush()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
