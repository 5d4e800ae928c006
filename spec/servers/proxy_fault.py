#!/usr/bin/python3
"""A scripted proxy for the fault cases of spec/proxy_spec.lua (stdlib only).
Listens on 127.0.0.1 port 0 and prints `PORT <n>`; then, for each client, the
lines it got: `REQ <request line>`, `HDR <name>: <value>` (HTTP), `SOCKS <hex>`
(each SOCKS5 message), `EOF`. End of stdin ends it.

Modes (one per server):
  http-status CODE REASON   answer CONNECT with that status line and close
  garbage                   answer with bytes that are not HTTP
  stall                     read the request, never answer
  close                     read the request, then close
  http-ok-data              answer 200, then send "hello\\n" at once (a server that
                            speaks first, through the tunnel) and echo what follows
  socks-method M            answer the SOCKS5 greeting with method M (hex), and close
  socks-reply CODE          accept method 0, answer the request with reply CODE
  socks-stall               accept method 0, never answer the request
"""
import socket
import sys
import threading


def out(*w):
    sys.stdout.write(" ".join(str(x) for x in w) + "\n")
    sys.stdout.flush()


def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        b = c.recv(4096)
        if not b:
            return None
        data += b
    lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    out("REQ", lines[0])
    for h in lines[1:]:
        out("HDR", h)
    return data


def recv_n(c, n):
    data = b""
    while len(data) < n:
        b = c.recv(n - len(data))
        if not b:
            return None
        data += b
    return data


def socks_request(c):
    head = recv_n(c, 5)
    if head is None:
        return None
    atyp, more = head[3], {1: 4 + 2 - 1, 4: 16 + 2 - 1, 3: head[4] + 2}[head[3]]
    rest = recv_n(c, more)
    out("SOCKS", (head + rest).hex())
    return head + rest


def serve(c, mode, args):
    try:
        if mode.startswith("socks"):
            greet = recv_n(c, 2)
            greet += recv_n(c, greet[1])
            out("SOCKS", greet.hex())
            if mode == "socks-method":
                c.sendall(bytes([5, int(args[0], 16)]))
                c.recv(100)
                return
            c.sendall(b"\x05\x00")
            if socks_request(c) is None:
                return
            if mode == "socks-stall":
                c.recv(100)
                return
            c.sendall(bytes([5, int(args[0]), 0, 1, 127, 0, 0, 1, 0, 80]))
            c.recv(100)
            return
        if read_head(c) is None:
            return
        if mode == "http-status":
            c.sendall(("HTTP/1.1 %s %s\r\nContent-Length: 0\r\n\r\n" % (args[0], " ".join(args[1:]))).encode())
        elif mode == "garbage":
            c.sendall(b"\x16\x03\x01garbage, not HTTP\r\n\r\n")
        elif mode == "stall":
            c.recv(100)
        elif mode == "http-ok-data":
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nhello\n")
            while True:
                b = c.recv(4096)
                if not b:
                    break
                c.sendall(b)
    except OSError:
        pass
    finally:
        out("EOF")
        c.close()


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    out("PORT", s.getsockname()[1])

    def accept():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, mode, args), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()


if __name__ == "__main__":
    main()
