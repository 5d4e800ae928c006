#!/usr/bin/python3
"""A flapping WebSocket server for the reconnect policy specs (stdlib only).

Listens on 127.0.0.1 (one port for its whole life) and prints `PORT <n>`. Each
connection it accepts takes the next step of the command line, in order:
  open:CODE:HOLD       answer 101, send the text "hello <n>", wait HOLD seconds
                       (a close from the client meanwhile is answered, and that
                       ends it), send a close frame with CODE and close
  open-down:CODE:HOLD  the same, but stop listening first: connects are refused
                       until `UP` arrives on stdin
  status:CODE[:RETRY]  answer CODE (with Retry-After: RETRY) and close
  redirect:CODE:URL    answer CODE with Location: URL and close
  sink:N               answer 101, read nothing until `READ` arrives on stdin, then read
                       N text messages, check they are "m1".."mN" in order, print
                       `GOT <n> <ok|bad at i>` and close with 1000
Lines out: `CONNECT <n> <path>`, `DOWN`, `UP`, `DONE <n>`. Past the last step it answers
404. `--tls CERT KEY` first makes it a TLS server. End of stdin ends it.
"""
import base64
import hashlib
import select
import socket
import ssl
import struct
import sys
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
lock = threading.Lock()
state = {"listener": None, "n": 0}


def out(*w):
    with lock:
        sys.stdout.write(" ".join(str(x) for x in w) + "\n")
        sys.stdout.flush()


def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        b = c.recv(4096)
        if not b:
            return None
        data += b
    return data.decode("latin-1")


reading = threading.Event()


def accept_ws(c, head):
    key = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())


def read_exact(c, n, buf):
    while len(buf[0]) < n:
        b = c.recv(65536)
        if not b:
            raise OSError("eof")
        buf[0] += b
    out, buf[0] = buf[0][:n], buf[0][n:]
    return out


def sink(c, total):
    buf, got, bad = [b""], 0, None
    while got < total:
        h = read_exact(c, 2, buf)
        ln = h[1] & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", read_exact(c, 2, buf))[0]
        elif ln == 127:
            ln = struct.unpack("!Q", read_exact(c, 8, buf))[0]
        mask = read_exact(c, 4, buf)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exact(c, ln, buf)))
        if h[0] & 0x0F != 1:
            continue
        got += 1
        if bad is None and data != ("m%d" % got).encode():
            bad = got
    out("GOT", got, "ok" if bad is None else "bad at %d" % bad)
    c.sendall(bytes([0x88, 2]) + struct.pack("!H", 1000))


def serve(c, n, step):
    try:
        head = read_head(c)
        if head is None:
            return
        out("CONNECT", n, head.split(" ")[1])
        parts = step.split(":", 2)
        if parts[0] == "redirect":
            c.sendall(("HTTP/1.1 %s Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (parts[1], parts[2])).encode())
            return
        if parts[0] == "status":
            extra = "Retry-After: %s\r\n" % parts[2] if len(parts) > 2 else ""
            c.sendall(("HTTP/1.1 %s Nope\r\n%sContent-Length: 0\r\n\r\n" % (parts[1], extra)).encode())
            return
        if parts[0] == "sink":
            accept_ws(c, head)
            reading.wait()
            sink(c, int(parts[1]))
            return
        if parts[0] not in ("open", "open-down"):
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        key = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
        msg = ("hello %d" % n).encode()
        c.sendall(bytes([0x81, len(msg)]) + msg)
        # hold, unless the client closes first: then answer its close and end
        if select.select([c], [], [], float(parts[2]))[0]:
            c.recv(4096)
            c.sendall(bytes([0x88, 2]) + struct.pack("!H", 1000))
            return
        if parts[0] == "open-down":
            try:
                state["listener"].shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            state["listener"].close()
            out("DOWN")
        c.sendall(bytes([0x88, 2]) + struct.pack("!H", int(parts[1])))
        c.settimeout(2)
        try:
            c.recv(4096)   # the client's close frame: then the server closes TCP first
        except OSError:
            pass
    except OSError:
        pass
    finally:
        out("DONE", n)
        c.close()


def accept_loop(steps, up):
    while True:
        up.wait()
        try:
            c, _ = state["listener"].accept()
        except OSError:
            up.clear()
            continue
        if state.get("tls"):
            try:
                c = state["tls"].wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError):
                c.close()
                continue
        state["n"] += 1
        n = state["n"]
        step = steps[n - 1] if n <= len(steps) else "none"
        threading.Thread(target=serve, args=(c, n, step), daemon=True).start()


def main():
    steps = sys.argv[1:]
    if steps and steps[0] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(steps[1], steps[2])
        state["tls"] = ctx
        steps = steps[3:]
    s = listen(0)
    port = s.getsockname()[1]
    state["listener"] = s
    up = threading.Event()
    up.set()
    threading.Thread(target=accept_loop, args=(steps, up), daemon=True).start()
    out("PORT", port)
    for line in sys.stdin:
        if line.strip() == "READ":
            reading.set()
            out("READING")
        if line.strip() == "UP":
            state["listener"] = listen(port)
            up.set()
            out("UP")


if __name__ == "__main__":
    main()
