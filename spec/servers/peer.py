#!/usr/bin/python3
"""TCP test peer for the moonwire specs: one listening socket, several behaviours.

Listens on --host (default 127.0.0.1) port 0 and prints `PORT <n>` as its first line.
Every event is one stdout line (flushed), so a spec can wait for it with a deadline:

  PORT n                    listening (always the first line)
  CONNECT id                a client connected (ids count from 1)
  LINE id text              a whole line arrived (--framing line; text backslash-escaped)
  FRAME id len text         a whole frame arrived (--framing frame; len is the payload's;
                            first 200 bytes of it, escaped)
  RECV id n                 n bytes arrived (--framing raw)
  SENT id n                 this connection has been sent n bytes in total (burst, huge)
  STALL id total            a write has been blocked for 0.2 s (flood)
  UNBLOCKED id total secs   a stalled write could go on after secs seconds (flood)
  DONE id total             flood finished writing --limit bytes
  RESET id                  rst mode reset the connection
  READING                   sink mode started reading
  FILLED n                  blackhole: the accept queue holds n connections
  CLOSE id total_read       the client closed (or reset) the connection

Modes:
  echo       write back every byte as it arrives; report messages per --framing
  dribble    like echo, but reply to each whole message one byte at a time, 2 ms apart
  burst      on connect send --count messages (default 1000) in one write, then echo
  sink       never read, until stdin says READ or --read-after seconds pass; then read
             and discard (CLOSE reports the total read)
  flood      write --limit bytes as fast as the client takes them, report stalls
  huge       line framing: write --limit bytes with no newline; frame framing: a header
             declaring 2^31-16 bytes, then --limit bytes of body

Frame framing is Workerman's Frame protocol, as moonwire's frame://: a 4-byte big-endian
length that counts the header itself, then the payload.
  rst        read the first message, then reset the connection (SO_LINGER 0)
  blackhole  listen(0) and fill the accept queue, so that a new connect never completes

Commands on stdin, one a line: READ | SEND id|* escaped-text | CLOSE id|* | QUIT.
End of stdin means QUIT, so a server never outlives the spec that started it; --lifetime
(default 120 s) bounds it anyway.

Burst messages, i = 1..count: line `msg-<i>`; frame payload `f<i>|` followed by
(i*31+j) % 256 for j = 0 .. i%64-1 (the specs rebuild the same bytes).
"""
import argparse
import codecs
import os
import selectors
import socket
import struct
import sys
import time

CHUNK = 65536


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def escape(data):
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


def burst_payload(i, framing):
    if framing == "frame":
        head = b"f%d|" % i
        return head + bytes((i * 31 + j) % 256 for j in range(i % 64))
    return b"msg-%d" % i


def encode(msg, framing):
    if framing == "frame":
        return struct.pack(">I", 4 + len(msg)) + msg
    if framing == "line":
        return msg + b"\n"
    return msg


class Conn:
    def __init__(self, srv, sock, cid):
        self.srv, self.sock, self.id = srv, sock, cid
        self.inbuf = b""
        self.out = bytearray()      # bytes waiting to be written
        self.drip = bytearray()     # dribble: bytes still to write one at a time
        self.next_drip = 0.0
        self.total_read = 0
        self.total_sent = 0
        self.reading = srv.mode != "sink" or srv.reading
        self.closed = False
        self.blocked_since = None   # flood: when the current stall began
        self.stall_reported = False
        self.flood_left = srv.args.limit if srv.mode in ("flood", "huge") else 0

    # -- events -------------------------------------------------------------
    def on_readable(self):
        try:
            data = self.sock.recv(CHUNK)
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            data = b""
        except BlockingIOError:
            return
        if not data:
            self.close()
            return
        self.total_read += len(data)
        mode = self.srv.mode
        if mode in ("sink", "flood", "huge"):
            return
        self.inbuf += data
        for msg in self.parse():
            self.report(msg)
            if mode == "dribble":
                self.drip += encode(msg, self.srv.framing)
            elif mode == "rst":
                self.reset()
                return
        if mode in ("echo", "burst"):
            self.write(data)

    def parse(self):
        framing = self.srv.framing
        msgs = []
        if framing == "line":
            while b"\n" in self.inbuf:
                line, self.inbuf = self.inbuf.split(b"\n", 1)
                msgs.append(line)
        elif framing == "frame":
            while len(self.inbuf) >= 4:
                (total,) = struct.unpack(">I", self.inbuf[:4])
                if total < 4:
                    out("ERROR", self.id, "frame length", total, "is less than its header")
                    self.close()
                    return msgs
                if len(self.inbuf) < total:
                    break
                msgs.append(self.inbuf[4:total])
                self.inbuf = self.inbuf[total:]
        else:
            msgs.append(self.inbuf)
            self.inbuf = b""
        return msgs

    def report(self, msg):
        framing = self.srv.framing
        if framing == "line":
            out("LINE", self.id, escape(msg))
        elif framing == "frame":
            out("FRAME", self.id, len(msg), escape(msg[:200]))
        else:
            out("RECV", self.id, len(msg))

    # -- writing ------------------------------------------------------------
    def write(self, data):
        self.out += data
        self.flush()

    def flush(self):
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                break
            except (ConnectionResetError, BrokenPipeError):
                self.close()
                return
            del self.out[:n]
            self.total_sent += n
        self.srv.update(self)

    def flood(self, now):
        """flood and huge: keep the kernel buffer full until --limit bytes are written."""
        while self.flood_left > 0 and not self.closed:
            n = min(CHUNK, self.flood_left)
            try:
                sent = self.sock.send(self.srv.pattern[:n])
            except BlockingIOError:
                if self.blocked_since is None:
                    self.blocked_since = now
                break
            except (ConnectionResetError, BrokenPipeError):
                self.close()
                return
            if self.blocked_since is not None:
                if self.stall_reported:
                    out("UNBLOCKED", self.id, self.total_sent, "%.3f" % (now - self.blocked_since))
                self.blocked_since = None
                self.stall_reported = False
            self.total_sent += sent
            self.flood_left -= sent
            if self.flood_left == 0:
                if self.srv.mode == "flood":
                    out("DONE", self.id, self.total_sent)
                else:
                    out("SENT", self.id, self.total_sent)
        self.srv.update(self)

    def tick(self, now):
        if self.closed:
            return
        if self.drip and now >= self.next_drip:
            try:
                n = self.sock.send(self.drip[:1])
            except BlockingIOError:
                n = 0
            except (ConnectionResetError, BrokenPipeError):
                self.close()
                return
            del self.drip[:n]
            self.total_sent += n
            self.next_drip = now + 0.002
        if self.blocked_since is not None and not self.stall_reported \
                and now - self.blocked_since >= 0.2:
            self.stall_reported = True
            out("STALL", self.id, self.total_sent)

    def wants_write(self):
        return bool(self.out) or (self.flood_left > 0)

    def reset(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        out("RESET", self.id)
        self.close(report=False)

    def close(self, report=True):
        if self.closed:
            return
        self.closed = True
        self.srv.forget(self)
        self.sock.close()
        if report:
            out("CLOSE", self.id, self.total_read)


class Server:
    def __init__(self, args):
        self.args = args
        # "frame" is echo with frame framing, a shorthand for the frame:// specs.
        self.mode = "echo" if args.mode == "frame" else args.mode
        self.framing = args.framing or ("frame" if args.mode == "frame" else "line")
        self.reading = args.mode != "sink"
        self.conns = {}
        self.next_id = 1
        self.sel = selectors.DefaultSelector()
        self.pattern = bytes(range(32, 127)) * (CHUNK // 95 + 1)
        self.fillers = []
        self.start = time.monotonic()
        fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        self.lsock = socket.socket(fam, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if args.rcvbuf:
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        if args.sndbuf:
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
        self.lsock.bind((args.host, args.port))
        if self.mode == "blackhole":
            self.lsock.listen(0)
            self.fill_backlog()
        else:
            self.lsock.listen(128)
            self.lsock.setblocking(False)
            self.sel.register(self.lsock, selectors.EVENT_READ, ("accept", None))
        out("PORT", self.lsock.getsockname()[1])
        if self.mode == "blackhole":
            out("FILLED", len(self.fillers))
        if sys.stdin is not None and not args.no_stdin:
            try:  # a pipe or a tty; /dev/null and files cannot be polled: no commands then
                self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, ("stdin", None))
                os.set_blocking(sys.stdin.fileno(), False)
            except (PermissionError, ValueError, OSError):
                pass
        self.stdin_buf = b""

    def fill_backlog(self):
        """Connect to ourselves until a connect stays pending: the accept queue is full."""
        addr = self.lsock.getsockname()[:2]
        for _ in range(64):
            s = socket.socket(self.lsock.family, socket.SOCK_STREAM)
            s.settimeout(0.3)
            try:
                s.connect(addr)
            except (socket.timeout, OSError):
                s.close()
                return
            self.fillers.append(s)
        raise SystemExit("blackhole: the accept queue never filled")

    def update(self, conn):
        if conn.closed:
            return
        ev = 0
        if conn.reading:
            ev |= selectors.EVENT_READ
        if conn.wants_write():
            ev |= selectors.EVENT_WRITE
        key = self.sel.get_map().get(conn.sock.fileno())
        if key is None:
            if ev:
                self.sel.register(conn.sock, ev, ("conn", conn))
        elif ev == 0:
            self.sel.unregister(conn.sock)
        elif key.events != ev:
            self.sel.modify(conn.sock, ev, ("conn", conn))

    def forget(self, conn):
        if conn.sock.fileno() in self.sel.get_map():
            self.sel.unregister(conn.sock)
        self.conns.pop(conn.id, None)

    def accept(self):
        try:
            sock, _ = self.lsock.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(self, sock, self.next_id)
        self.next_id += 1
        self.conns[conn.id] = conn
        out("CONNECT", conn.id)
        if self.mode == "burst":
            count = self.args.count
            data = b"".join(encode(burst_payload(i, self.framing), self.framing)
                            for i in range(1, count + 1))
            conn.write(data)
            out("SENT", conn.id, len(data))
        elif self.mode == "huge" and self.framing == "frame":
            conn.write(struct.pack(">I", 0x7FFFFFF0))
        self.update(conn)

    def command(self, line):
        words = line.split(" ", 2)
        cmd = words[0].upper()
        if cmd == "QUIT":
            raise SystemExit(0)
        if cmd == "READ":
            self.start_reading()
            return
        targets = list(self.conns.values())
        if len(words) > 1 and words[1] != "*":
            targets = [c for c in targets if str(c.id) == words[1]]
        if cmd == "SEND":
            data = codecs.escape_decode(words[2] if len(words) > 2 else "")[0]
            for c in targets:
                c.write(data)
        elif cmd == "CLOSE":
            for c in targets:
                c.close()
        else:
            out("ERROR unknown command", line)

    def start_reading(self):
        if self.reading:
            return
        self.reading = True
        for c in list(self.conns.values()):
            c.reading = True
            self.update(c)
        out("READING")

    def on_stdin(self):
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except BlockingIOError:
            return
        if not data:
            raise SystemExit(0)
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            line = line.decode().strip()
            if line:
                self.command(line)

    def run(self):
        deadline = self.start + self.args.lifetime
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise SystemExit(0)
            if self.args.read_after is not None and not self.reading \
                    and now - self.start >= self.args.read_after:
                self.start_reading()
            timeout = min(0.05, deadline - now)
            if any(c.drip for c in self.conns.values()):
                timeout = 0.002
            for key, mask in self.sel.select(timeout):
                kind, conn = key.data
                if kind == "accept":
                    self.accept()
                elif kind == "stdin":
                    self.on_stdin()
                else:
                    if mask & selectors.EVENT_READ and not conn.closed:
                        conn.on_readable()
                    if mask & selectors.EVENT_WRITE and not conn.closed:
                        if self.mode in ("flood", "huge") and not conn.out:
                            conn.flood(time.monotonic())
                        else:
                            conn.flush()
            now = time.monotonic()
            for c in list(self.conns.values()):
                if self.mode in ("flood", "huge") and not c.out and c.flood_left > 0 \
                        and c.blocked_since is None:
                    c.flood(now)
                c.tick(now)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["echo", "frame", "dribble", "burst", "sink", "flood",
                                    "huge", "rst", "blackhole"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--framing", choices=["line", "frame", "raw"])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--limit", type=int, default=64 << 20)
    p.add_argument("--read-after", type=float)
    p.add_argument("--rcvbuf", type=int)
    p.add_argument("--sndbuf", type=int)
    p.add_argument("--lifetime", type=float, default=120.0)
    p.add_argument("--no-stdin", action="store_true")
    args = p.parse_args()
    try:
        Server(args).run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
