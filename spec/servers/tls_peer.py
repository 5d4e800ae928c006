#!/usr/bin/python3
"""TLS test peers for spec/tls_spec.lua, on Python's ssl module (OpenSSL) and
Debian's python3-websockets. Listens on 127.0.0.1 port 0 and prints `PORT <n>`.

Modes:
  ws       WebSocket echo (TLS unless --plain, e.g. behind nginx); path /send/<n>
           first sends one binary message of n pattern bytes
  echo     line echo (text://); --raw echoes bytes as they come (tcp://, frame://)
  sink     reads nothing for --read-after seconds, then reads and counts (--rcvbuf
           bounds what the kernel takes meanwhile)
  stall    plain TCP: accepts and never answers (a TLS handshake that stalls)
  hangup   plain TCP: reads the ClientHello, then closes
Each event is a line: TLS <version> reused=<0|1> sni=<name|-> alpn=<p|-> peer=<CN|->
(after every TLS handshake), CONNECT <path>, MSG <kind> <len> <sha1>, LINE <text>,
READ <total>, ACCEPT, HANGUP, TLSFAIL <reason>, CLOSE.
Options: --cert/--key (server certificate), --client-ca (require a client
certificate from this CA), --max-tls 1.2, --alpn p1,p2, --host (ws and echo: the
address to listen on, 127.0.0.1 unless given; ::1 for IPv6). End of stdin ends it.
"""
import argparse
import asyncio
import hashlib
import socket
import ssl
import sys
import threading


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def pattern(n, seed):
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


SNI = {}


def report_tls(sslobj):
    if sslobj is None:
        return
    peer = "-"
    cert = sslobj.getpeercert()
    if cert:
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    peer = v
    out("TLS", sslobj.version(), "reused=%d" % int(sslobj.session_reused),
        "sni=" + (SNI.get(id(sslobj)) or "-"),
        "alpn=" + (sslobj.selected_alpn_protocol() or "-"), "peer=" + peer)


def make_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.max_tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))

    def on_sni(sslobj, name, _ctx):
        SNI[id(sslobj)] = name
    ctx.sni_callback = on_sni
    return ctx


async def ws_handler(ws, path=None):
    import websockets
    path = path if path is not None else ws.path
    report_tls(ws.transport.get_extra_info("ssl_object"))
    out("CONNECT", path)
    if path.startswith("/send/"):
        await ws.send(pattern(int(path.split("/")[2]), 3))
    try:
        async for m in ws:
            kind = "text" if isinstance(m, str) else "binary"
            data = m.encode("utf-8") if isinstance(m, str) else m
            out("MSG", kind, len(data), hashlib.sha1(data).hexdigest())
            await ws.send(m)
    except websockets.ConnectionClosed:
        pass
    out("CLOSE")


def echo_thread(tls, sock, raw):
    """Blocking, one thread per client: unlike asyncio, a failed handshake
    still sends its alert (certificate_required, ...) before closing."""
    try:
        conn = tls.wrap_socket(sock, server_side=True) if tls else sock
    except (ssl.SSLError, OSError) as e:
        out("TLSFAIL", getattr(e, "reason", None) or type(e).__name__)
        sock.close()
        return
    report_tls(conn if tls else None)
    try:
        if raw:
            total = 0
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                total += len(b)
                out("READ", total)
                conn.sendall(b)
        for line in ([] if raw else conn.makefile("rb")):
            out("LINE", line.rstrip(b"\n").decode("utf-8", "replace"))
            conn.sendall(line)
    except (ssl.SSLError, OSError):
        pass
    out("CLOSE")
    conn.close()


def start_echo(tls, raw, host):
    lsock = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)

    def accept_loop():
        while True:
            sock, _ = lsock.accept()
            threading.Thread(target=echo_thread, args=(tls, sock, raw), daemon=True).start()
    threading.Thread(target=accept_loop, daemon=True).start()
    return lsock


def sink_handler(read_after):
    async def handler(reader, writer):
        report_tls(writer.get_extra_info("ssl_object"))
        await asyncio.sleep(read_after)
        total = 0
        try:
            while True:
                b = await reader.read(1 << 20)
                if not b:
                    break
                total += len(b)
                out("READ", total)
        except (ConnectionError, ssl.SSLError):
            pass
        out("CLOSE")
        writer.close()
    return handler


async def stall_handler(reader, writer):
    out("ACCEPT")
    await reader.read()   # until the client gives up
    out("CLOSE")
    writer.close()


async def hangup_handler(reader, writer):
    out("ACCEPT")
    await reader.read(65536)   # the whole ClientHello: the close is a FIN, not a reset
    out("HANGUP")
    writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["ws", "echo", "sink", "stall", "hangup"])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--client-ca")
    ap.add_argument("--max-tls")
    ap.add_argument("--alpn")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--read-after", type=float, default=0)
    ap.add_argument("--rcvbuf", type=int)
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    tls = None if args.plain or args.mode in ("stall", "hangup") else make_context(args)
    if args.mode == "ws":
        import websockets
        server = await websockets.serve(ws_handler, args.host, 0, ssl=tls, max_size=None,
                                        ping_interval=None, compression=None)
        port = server.sockets[0].getsockname()[1]
    elif args.mode == "echo":
        server = start_echo(tls, args.raw, args.host)
        port = server.getsockname()[1]
    else:
        handler = {"stall": stall_handler, "hangup": hangup_handler,
                   "sink": sink_handler(args.read_after)}[args.mode]
        lsock = socket.socket()
        if args.rcvbuf:  # set before listen: accepted sockets inherit it
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        lsock.bind(("127.0.0.1", 0))
        server = await asyncio.start_server(handler, sock=lsock, ssl=tls, limit=1 << 16)
        port = server.sockets[0].getsockname()[1]
    out("PORT", port)
    loop = asyncio.get_running_loop()
    stdin_done = loop.create_future()

    def wait_stdin():  # a daemon thread: a blocked read never holds up the exit
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(lambda: stdin_done.done() or stdin_done.set_result(None))
    threading.Thread(target=wait_stdin, daemon=True).start()
    try:
        await asyncio.wait_for(stdin_done, args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
