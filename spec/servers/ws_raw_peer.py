#!/usr/bin/python3
"""Scriptable raw-socket WebSocket (RFC 6455) server for the moonwire specs. Stdlib only.

It speaks the server side by hand, so it can answer the opening handshake with anything
(a refusal, a wrong accept key, an extension nobody offered, a 20 KiB head, nothing at
all) and report exactly what the client sent: the request, every frame (opcode, flags,
length, mask key, payload), the TCP close.

Listens on --host (default 127.0.0.1) --port (default 0: any) and prints `PORT <n>` as its first line.
Every event is one stdout line (flushed), so a spec can await it with a deadline.
<id> counts connections from 1. `esc` is the bytes escaped: printable ASCII as is,
backslash as \\\\, anything else as \\xHH (so a line never contains a raw space-less
surprise, a CR or a LF).

  PORT n                       listening
  CONNECT id                   a client connected
  REQUEST id esc               the request line
  HEADER id esc                one request header line, as sent ("Name: value")
  REQUEST-END id               the blank line that ends the request head
  RESPONDED id esc             the response head is written now (esc: the head, with
                               the blank line; --body bytes are not included). Like
                               SENT, it is reported just before the write, so that
                               whatever the client does in answer comes after it
  FRAME id op len fin=F rsv=R mask=KEY esc
                               a whole frame from the client: op is text, binary,
                               continuation, close, ping, pong or op<N>; KEY is the mask
                               key in hex, or - when the frame was not masked; esc is the
                               unmasked payload (first --show bytes, default 300)
  WSCLOSE id code esc          a close frame from the client: its code (none when the
                               payload is empty) and reason
  MESSAGE id kind len esc      a whole message reassembled from data frames
  READ id n frames=k           (--log-reads) one recv() of n bytes after the head, which
                               completed k frames
  SENT id what                 an action is written now (what: the action as given)
  BAD id what                  the client broke the protocol (unmasked frame, bytes
                               after its close frame, a malformed request...)
  EOF id total                 the client closed its side (total: bytes received)
  RESET id total               the client reset the connection
  GONE id                      the server closed its socket
  STATS id op=n... bytes=n     answer to the stdin command `STATS id`: frames received
                               from the client so far, per opcode, and bytes received
  LAST id op esc|none          answer to `LAST id op`: the payload of the latest frame of
                               that opcode from the client (whole, not cut to --show)
  SEEN id op esc               answer to `AWAIT id op esc`: a frame of that opcode with
                               exactly that payload arrived (at once if the latest one of
                               that opcode had it); reported even for --quiet opcodes

Handshake (each applies to every connection):
  --status "101 Switching Protocols"   status code and reason of the response
  --accept good|wrong|missing          Sec-WebSocket-Accept (default good)
  --omit NAME                          leave out a default response header (Upgrade,
                                       Connection, Sec-WebSocket-Accept); repeatable
  --header "Name: value"               an extra response header line (escapes allowed);
                                       repeatable
  --protocol first|NAME                answer Sec-WebSocket-Protocol: the client's first
                                       offered subprotocol, or NAME whatever was offered
  --pad-head N                         add X-Pad-<i> header lines so the head grows by
                                       N bytes (for the 16 KiB head limit)
  --body ESC                           bytes written in the same send() as the head (for a
                                       101: the first frames; otherwise a body, with a
                                       Content-Length)
  --silent                             never answer the handshake (still reports what
                                       arrives)
  --raw-handshake                      write no response head: run the --then actions
                                       right after the request head instead (they write
                                       whatever the "response" is: raw:, fill:, random:,
                                       trickle:)
  --hold                               answer the handshake only on the stdin command
                                       `DO id respond` (reports frames that arrive early)
After the handshake:
  --then ACTION                        run ACTION right after the response; repeatable,
                                       in order
  --echo                               send every whole message back, same kind
  --pong auto|never                    answer pings (default auto)
  --close-reply now|never|SECONDS      answer the client's close frame at once, never, or
                                       after SECONDS (default now); the reply echoes the
                                       client's code unless --close-code is given
  --close-code CODE[:REASON]           the code (and reason) of the reply close frame
  --keep-tcp                           after the close handshake, do not close TCP: wait
                                       for the client to close it
  --log-reads                          report each recv() after the head (READ lines)
  --quiet OP                           no FRAME line for frames of opcode OP (ping, pong,
                                       ...; repeatable): floods stay countable with STATS
  --no-read                            stop reading once the request head is in (and the
                                       response written): the client's data piles up in
                                       the kernel; the actions `read` and `noread` toggle
  --rcvbuf N                           SO_RCVBUF of the listening socket (so a server that
                                       does not read fills up sooner)
  --show N                             payload bytes shown in FRAME/MESSAGE (default 300)
  --lifetime SECONDS                   end the server after this long (default 120)

ACTION (in --then, and in stdin commands; payloads take the escapes \\xHH \\n \\r \\t \\\\):
  text:P  binary:P  ping:P  pong:P     one unmasked frame, FIN set
  textfrag:P  binaryfrag:P  cont:P  contfin:P
                                       fragments: a first frame without FIN, a middle
                                       continuation, a final continuation
  close  close:CODE  close:CODE:REASON a close frame (no payload, or code and reason); the
                                       server then waits for the client's reply, and
                                       closes TCP after it
  raw:BYTES                            bytes as given
  fill:N[:BYTES]                       N bytes repeating BYTES (default "a"), one write
  random:N[:SEED]                      N pseudo-random bytes (seeded, default seed 1), one
                                       write
  repeat:N:ACTION                      N copies of a frame ACTION (text:..., ping:...,
                                       cont:..., raw:...) in one write, one SENT line
  pingseq:N[:SIZE]                     N pings with distinct payloads, in one write, one
                                       SENT line: ping i (1..N) carries i in decimal,
                                       left-padded with 0 to SIZE bytes (default 125)
  trickle:SECONDS[:BYTES]              write BYTES (default "a") one byte at a time, one
                                       every SECONDS, cycling, until the connection ends
                                       (never finishes on its own: later actions wait)
  read  noread                         resume / stop reading from the client
  respond                              (with --hold) write the handshake response now
  fin                                  shutdown(SHUT_WR): half-close
  drop                                 close the socket (FIN)
  rst                                  reset the connection (SO_LINGER 0)
  sleep:SECONDS                        pause this connection's actions (a behaviour, e.g.
                                       a slow server, never a way to synchronise a spec)

Stdin commands, one a line: `DO id|* ACTION` (ACTION may contain spaces), `STATS id`,
`LAST id op`, `AWAIT id op esc`, `QUIT`.
End of stdin means QUIT, so the server never outlives the spec that started it.
"""
import argparse
import base64
import codecs
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPS = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
SEND_OPS = {"text": (1, True), "binary": (2, True), "ping": (9, True), "pong": (10, True),
            "textfrag": (1, False), "binaryfrag": (2, False), "cont": (0, False),
            "contfin": (0, True)}
MAX_HEAD = 65536

out_lock = threading.Lock()


def out(*words):
    with out_lock:
        sys.stdout.write(" ".join(str(w) for w in words) + "\n")
        sys.stdout.flush()


def esc(b):
    r = []
    for c in b:
        if c == 0x5C:
            r.append("\\\\")
        elif 0x20 <= c < 0x7F:
            r.append(chr(c))
        else:
            r.append("\\x%02x" % c)
    return "".join(r)


def unesc(s):
    return codecs.escape_decode(s.encode("latin-1"))[0]


def frame(opcode, payload=b"", fin=True):
    n = len(payload)
    hdr = bytearray([(0x80 if fin else 0) | opcode])
    if n < 126:
        hdr.append(n)
    elif n < 65536:
        hdr.append(126)
        hdr += struct.pack("!H", n)
    else:
        hdr.append(127)
        hdr += struct.pack("!Q", n)
    return bytes(hdr) + payload


def unmask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


class Conn:
    def __init__(self, srv, sock, cid):
        self.srv, self.sock, self.id = srv, sock, cid
        self.a = srv.args
        self.wlock = threading.Lock()
        self.buf = b""
        self.total = 0
        self.offered = []          # subprotocols the client offered
        self.key = None
        self.responded = False
        self.upgraded = False      # a 101 went out: frames flow
        self.close_sent = False
        self.close_rcvd = False
        self.closed = False        # our socket is closed
        self.eof = False
        self.msg_op = None
        self.msg = b""
        self.actions = []          # pending actions (run by the action thread)
        self.counts = {}           # frames received per opcode name
        self.last = {}             # latest payload received per opcode name
        self.awaits = []           # (opcode name, payload) that AWAIT waits for
        self.reading = threading.Event()   # clear: the reader does not call recv
        self.reading.set()
        self.cv = threading.Condition()

    # ---- writing ----
    def write(self, data):
        with self.wlock:
            if self.closed:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                return False

    def send(self, data, what):
        """Report, then write: whatever the peer does in answer is reported after."""
        if not self.closed:
            out("SENT", self.id, what)
        self.write(data)

    def close_socket(self, rst=False):
        """Close our socket: FIN (or RST with rst). The reader thread, blocked in recv,
        is woken by the shutdown and sees self.closed."""
        with self.wlock:
            if self.closed:
                return
            self.closed = True
            try:
                if rst:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                    self.sock.shutdown(socket.SHUT_RD)
                else:
                    self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        out("GONE", self.id)

    # ---- handshake ----
    def response(self):
        a = self.a
        status = a.status
        lines = ["HTTP/1.1 " + status]
        accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
        if a.accept == "wrong":
            accept = base64.b64encode(hashlib.sha1(b"not the key" + GUID).digest()).decode()
        defaults = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        if a.accept != "missing":
            defaults.append(("Sec-WebSocket-Accept", accept))
        omit = {n.lower() for n in a.omit}
        for name, value in defaults:
            if name.lower() not in omit:
                lines.append(f"{name}: {value}")
        if a.protocol:
            chosen = a.protocol
            if a.protocol == "first":
                chosen = self.offered[0] if self.offered else None
            if chosen:
                lines.append("Sec-WebSocket-Protocol: " + chosen)
        head = "\r\n".join(lines).encode("latin-1") + b"\r\n"
        for h in a.header:
            head += unesc(h) + b"\r\n"
        body = unesc(a.body) if a.body else b""
        if body and not status.startswith("101"):
            head += b"Content-Length: %d\r\n" % len(body)
        if a.pad_head:
            i, grown = 0, 0
            while grown < a.pad_head:
                line = b"X-Pad-%d: " % i
                fill = min(1000, max(1, a.pad_head - grown - len(line) - 2))
                line += b"p" * fill + b"\r\n"
                head += line
                grown += len(line)
                i += 1
        head += b"\r\n"
        return head, body

    def respond(self):
        if self.responded:
            return
        head, body = self.response()
        self.responded = True
        self.upgraded = self.a.status.startswith("101")
        out("RESPONDED", self.id, esc(head))
        self.write(head + body)
        if self.upgraded:
            for act in self.a.then:
                self.queue(act)

    def parse_request(self, head):
        lines = head.split(b"\r\n")
        out("REQUEST", self.id, esc(lines[0]))
        for line in lines[1:]:
            if not line:
                continue
            out("HEADER", self.id, esc(line))
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"sec-websocket-key":
                self.key = value
            elif name == b"sec-websocket-protocol":
                self.offered += [p.strip().decode("latin-1") for p in value.split(b",")
                                 if p.strip()]
        out("REQUEST-END", self.id)
        if self.key is None:
            out("BAD", self.id, "no Sec-WebSocket-Key")
            self.key = b""

    # ---- frames ----
    def parse_frames(self):
        """Parse whole frames from self.buf; returns how many were completed."""
        count = 0
        while True:
            b = self.buf
            if len(b) < 2:
                return count
            fin, rsv, op = b[0] >> 7, (b[0] >> 4) & 7, b[0] & 15
            masked, n = b[1] >> 7, b[1] & 127
            pos = 2
            if n == 126:
                if len(b) < 4:
                    return count
                n = struct.unpack("!H", b[2:4])[0]
                pos = 4
            elif n == 127:
                if len(b) < 10:
                    return count
                n = struct.unpack("!Q", b[2:10])[0]
                pos = 10
            key = b""
            if masked:
                if len(b) < pos + 4:
                    return count
                key = b[pos:pos + 4]
                pos += 4
            if len(b) < pos + n:
                return count
            payload = b[pos:pos + n]
            if masked:
                payload = unmask(payload, key)
            self.buf = b[pos + n:]
            count += 1
            self.on_frame(fin, rsv, op, key, payload)

    def on_frame(self, fin, rsv, op, key, payload):
        a = self.a
        name = OPS.get(op, "op%d" % op)
        self.counts[name] = self.counts.get(name, 0) + 1
        with self.cv:
            self.last[name] = payload
            if (name, payload) in self.awaits:
                self.awaits.remove((name, payload))
                out("SEEN", self.id, name, esc(payload))
        if name not in a.quiet:
            out("FRAME", self.id, name, len(payload), "fin=%d" % fin, "rsv=%d" % rsv,
                "mask=" + (key.hex() if key else "-"), esc(payload[:a.show]))
        if not key:
            out("BAD", self.id, "unmasked frame")
        if self.close_rcvd:
            out("BAD", self.id, "frame after the client's close frame")
            return
        if op == 8:
            self.close_rcvd = True
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            out("WSCLOSE", self.id, "none" if code is None else code, esc(payload[2:]))
            if self.close_sent:
                # the reply to our close: the server closes TCP first (RFC 6455 7.1.1)
                if not a.keep_tcp:
                    self.queue("drop")
                return
            if a.close_reply == "never":
                return
            reply = a.close_code
            if reply is None:
                reply = payload[:2] if code is not None else b""
            else:
                c, _, r = reply.partition(":")
                reply = struct.pack("!H", int(c)) + unesc(r)
            if a.close_reply != "now":
                self.queue("sleep:" + a.close_reply)
            self.queue(("closeframe", reply))
            if not a.keep_tcp:
                self.queue("drop")
        elif op == 9:
            if a.pong == "auto" and not self.close_sent:
                self.queue(("frame", 10, payload, True, "pong:" + esc(payload)))
        elif op in (1, 2, 0):
            if op != 0:
                self.msg_op, self.msg = op, b""
            self.msg += payload
            if fin and self.msg_op is not None:
                kind = OPS[self.msg_op]
                out("MESSAGE", self.id, kind, len(self.msg), esc(self.msg[:a.show]))
                if a.echo and not self.close_sent:
                    self.queue(("frame", self.msg_op, self.msg, True,
                                "echo:" + kind + ":" + str(len(self.msg))))
                self.msg_op, self.msg = None, b""

    # ---- actions ----
    def queue(self, act):
        with self.cv:
            self.actions.append(act)
            self.cv.notify()

    def run_action(self, act):
        if isinstance(act, tuple):
            if act[0] == "frame":
                _, op, payload, fin, what = act
                self.send(frame(op, payload, fin), what)
            elif act[0] == "closeframe":
                if not self.close_sent:
                    self.close_sent = True
                    self.send(frame(8, act[1]), "close:" + esc(act[1]))
            return
        kind, _, arg = act.partition(":")
        if kind in SEND_OPS:
            op, fin = SEND_OPS[kind]
            self.send(frame(op, unesc(arg), fin), act)
        elif kind == "repeat":
            n, _, inner = arg.partition(":")
            self.send(self.encode(inner) * int(n), act)
        elif kind == "pingseq":
            n, _, size = arg.partition(":")
            size = int(size or 125)
            self.send(b"".join(frame(9, str(i).rjust(size, "0").encode())
                               for i in range(1, int(n) + 1)), act)
        elif kind == "fill":
            n, _, pat = arg.partition(":")
            pat = unesc(pat) if pat else b"a"
            n = int(n)
            self.send((pat * (n // len(pat) + 1))[:n], act)
        elif kind == "random":
            n, _, seed = arg.partition(":")
            self.send(random.Random(int(seed or 1)).randbytes(int(n)), act)
        elif kind == "trickle":
            secs, _, pat = arg.partition(":")
            pat = unesc(pat) if pat else b"a"
            out("SENT", self.id, act)
            i = 0
            while not self.closed and self.write(pat[i % len(pat):i % len(pat) + 1]):
                i += 1
                time.sleep(float(secs))
        elif kind == "read":
            self.reading.set()
        elif kind == "noread":
            self.reading.clear()
        elif kind == "close":
            payload = b""
            if arg:
                c, _, r = arg.partition(":")
                payload = struct.pack("!H", int(c)) + unesc(r)
            self.close_sent = True
            self.send(frame(8, payload), act)
        elif kind == "raw":
            self.send(unesc(arg), act)
        elif kind == "respond":
            self.respond()
        elif kind == "fin":
            out("SENT", self.id, "fin")
            with self.wlock:
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        elif kind == "drop":
            self.close_socket()
        elif kind == "rst":
            self.close_socket(rst=True)
        elif kind == "sleep":
            time.sleep(float(arg))
        else:
            out("BAD", self.id, "unknown action " + act)

    def encode(self, act):
        """The bytes of one frame action (for repeat:)."""
        kind, _, arg = act.partition(":")
        if kind in SEND_OPS:
            op, fin = SEND_OPS[kind]
            return frame(op, unesc(arg), fin)
        if kind == "raw":
            return unesc(arg)
        raise ValueError("repeat: not a frame action: " + act)

    def action_loop(self):
        while True:
            with self.cv:
                while not self.actions and not self.closed:
                    self.cv.wait()
                if not self.actions:
                    return
                act = self.actions.pop(0)
            self.run_action(act)

    # ---- reading ----
    def run(self):
        out("CONNECT", self.id)
        threading.Thread(target=self.action_loop, daemon=True).start()
        head_done = False
        while True:
            if head_done and not self.reading.is_set():
                while not self.reading.wait(0.05):
                    if self.closed:
                        break
                if self.closed:
                    break
            try:
                data = self.sock.recv(65536)
            except OSError:
                if not self.closed:
                    out("RESET", self.id, self.total)
                break
            if not data:
                if not self.closed:
                    self.eof = True
                    out("EOF", self.id, self.total)
                break
            self.total += len(data)
            self.buf += data
            if not head_done:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > MAX_HEAD:
                        out("BAD", self.id, "request head too large")
                        self.close_socket()
                        return
                    continue
                head_done = True
                head, self.buf = self.buf[:end], self.buf[end + 4:]
                self.parse_request(head)
                if self.a.no_read:
                    self.reading.clear()
                if self.a.raw_handshake:
                    for act in self.a.then:
                        self.queue(act)
                elif not self.a.silent and not self.a.hold:
                    self.respond()
                if not self.buf:
                    continue
                data = self.buf
            k = self.parse_frames()
            if self.a.log_reads:
                out("READ", self.id, len(data), "frames=%d" % k)
        # The client is gone (or we closed): let queued actions run out, then close.
        self.queue("drop")


class Server:
    def __init__(self, args):
        self.args = args
        self.conns = {}
        self.lock = threading.Lock()
        fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        self.ls = socket.socket(fam, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if args.rcvbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        self.ls.bind((args.host, args.port))
        self.ls.listen(64)

    def accept_loop(self):
        n = 0
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            n += 1
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Conn(self, s, n)
            with self.lock:
                self.conns[n] = c
            threading.Thread(target=c.run, daemon=True).start()

    def command(self, line):
        words = line.strip().split(" ", 2)
        if not words or not words[0]:
            return True
        if words[0] == "QUIT":
            return False
        if words[0] == "STATS" and len(words) == 2:
            with self.lock:
                c = self.conns.get(int(words[1]))
            if c is None:
                out("STATS", words[1], "none")
            else:
                counts = dict(c.counts)
                out("STATS", c.id, *["%s=%d" % kv for kv in sorted(counts.items())],
                    "bytes=%d" % c.total)
            return True
        if words[0] in ("LAST", "AWAIT") and len(words) == 3:
            with self.lock:
                c = self.conns.get(int(words[1]))
            op, _, payload = words[2].partition(" ")
            if c is None:
                out("BAD 0 no connection", words[1])
                return True
            with c.cv:
                last = c.last.get(op)
                if words[0] == "LAST":
                    out("LAST", c.id, op, "none" if last is None else esc(last))
                elif last == unesc(payload):
                    out("SEEN", c.id, op, esc(last))
                else:
                    c.awaits.append((op, unesc(payload)))
            return True
        if words[0] == "DO" and len(words) == 3:
            with self.lock:
                targets = list(self.conns.values()) if words[1] == "*" else \
                    [self.conns[int(words[1])]] if int(words[1]) in self.conns else []
            for c in targets:
                c.queue(words[2])
            return True
        out("BAD 0 unknown command", esc(line.encode()))
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--status", default="101 Switching Protocols")
    ap.add_argument("--accept", choices=["good", "wrong", "missing"], default="good")
    ap.add_argument("--omit", action="append", default=[])
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--protocol")
    ap.add_argument("--pad-head", type=int, default=0)
    ap.add_argument("--body", default="")
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--raw-handshake", action="store_true")
    ap.add_argument("--quiet", action="append", default=[])
    ap.add_argument("--no-read", action="store_true")
    ap.add_argument("--rcvbuf", type=int, default=0)
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("--then", action="append", default=[])
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--pong", choices=["auto", "never"], default="auto")
    ap.add_argument("--close-reply", default="now")
    ap.add_argument("--close-code")
    ap.add_argument("--keep-tcp", action="store_true")
    ap.add_argument("--log-reads", action="store_true")
    ap.add_argument("--show", type=int, default=300)
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()

    srv = Server(args)
    out("PORT", srv.ls.getsockname()[1])
    threading.Thread(target=srv.accept_loop, daemon=True).start()

    done = threading.Event()

    def stdin_loop():
        for line in sys.stdin:
            if not srv.command(line):
                break
        done.set()

    threading.Thread(target=stdin_loop, daemon=True).start()
    done.wait(args.lifetime)
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
