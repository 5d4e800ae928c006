#!/usr/bin/python3
"""A toy feed that wants a login, then a subscribe, then streams messages (stdlib only),
for examples/sequential.lua and spec/sequential_spec.lua.

Listens on 127.0.0.1 port 0 and prints `PORT <n>` first. One thread per connection, text
messages of the client, in order:
  login <user>         answers `welcome <user>` (the user "mallory": `denied <user>`;
                       with --mute-login: nothing at all)
  subscribe <channel>  answers `subscribed <channel>`, then sends --count messages
                       `<channel> <k> price=<100 + k>` (k = 1..count) in one write; with
                       --end it then closes with 1000 "end of feed"
  anything else        answers `error unknown command`
A subscribe before a login is answered `error login first`. Each event is a line on
stdout: `CONNECT <path>`, `GOT <text>`, `CLOSE <code> <reason>` (the client's close,
which it answers unless it closed first), `EOF` (TCP ended without a close).
End of stdin ends it.
"""
import argparse
import base64
import hashlib
import socket
import struct
import sys
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
lock = threading.Lock()


def out(*w):
    with lock:
        sys.stdout.write(" ".join(str(x) for x in w) + "\n")
        sys.stdout.flush()


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_exact(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError
            self.buf += b
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(4096)
            if not b:
                raise EOFError
            self.buf += b
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head.decode("latin-1")

    def read_frame(self):
        """(opcode, payload) of the next frame (the client masks; no fragments here)."""
        h = self.read_exact(2)
        ln = h[1] & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", self.read_exact(2))[0]
        elif ln == 127:
            ln = struct.unpack("!Q", self.read_exact(8))[0]
        mask = self.read_exact(4) if h[1] & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.read_exact(ln)))
        return h[0] & 0x0F, data


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)
    return head + payload


def text(s):
    return frame(1, s.encode())


def close_frame(code, reason):
    return frame(8, struct.pack("!H", code) + reason.encode())


def handshake(c):
    head = c.read_head()
    out("CONNECT", head.split(" ")[1])
    key = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    c.sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())


def serve(sock, args):
    c = Conn(sock)
    user, closed = None, False
    try:
        handshake(c)
        while True:
            op, data = c.read_frame()
            if op == 8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                out("CLOSE", code, data[2:].decode() or "-")
                if not closed:   # the client's close first: answer it
                    sock.sendall(close_frame(1000, ""))
                return
            if op == 9:
                sock.sendall(frame(10, data))
                continue
            if op != 1:
                continue
            msg = data.decode()
            out("GOT", msg)
            words = msg.split()
            if words[:1] == ["login"] and len(words) == 2:
                if args.mute_login:
                    continue
                user = words[1]
                sock.sendall(text(("denied " if user == "mallory" else "welcome ") + user))
                if user == "mallory":
                    user = None
            elif words[:1] == ["subscribe"] and len(words) == 2:
                if user is None:
                    sock.sendall(text("error login first"))
                    continue
                ch = words[1]
                burst = [text("subscribed " + ch)]
                burst += [text("%s %d price=%d" % (ch, k, 100 + k)) for k in range(1, args.count + 1)]
                if args.end:
                    burst.append(close_frame(1000, "end of feed"))
                    closed = True
                sock.sendall(b"".join(burst))
            else:
                sock.sendall(text("error unknown command"))
    except (EOFError, ConnectionError):
        out("EOF")
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=5, help="messages streamed after a subscribe")
    ap.add_argument("--end", action="store_true", help="close with 1000 after the stream")
    ap.add_argument("--mute-login", action="store_true", help="never answer a login")
    args = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)

    def accept_loop():
        while True:
            sock, _ = s.accept()
            threading.Thread(target=serve, args=(sock, args), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    out("PORT", s.getsockname()[1])
    sys.stdin.read()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
