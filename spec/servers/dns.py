#!/usr/bin/python3
"""A tiny UDP DNS server for the moonwire specs, so that no query leaves the machine.

Listens on 127.0.0.1 port 0 (UDP) and prints `PORT <n>` first; a spec points moonwire at
it with MOONWIRE_DNS_SERVERS=127.0.0.1:<n>. Each query is reported as
`QUERY <name> <A|AAAA|type>` and each reply as `ANSWER <name> <type> <rcode> <count>`.

  --record NAME=ADDR[,ADDR...]   answer A (IPv4) and AAAA (IPv6) records for NAME, in order
  --delay S                      answer every query S seconds late
  --drop                         never answer
A name without a record gets NXDOMAIN; a known name asked for a type it lacks gets an
empty NOERROR answer. End of stdin (or --lifetime seconds) stops the server.
"""
import argparse
import ipaddress
import os
import selectors
import socket
import struct
import sys
import time

TYPES = {1: "A", 28: "AAAA"}


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def parse_question(msg):
    """Returns (id, flags, name, qtype, end of question) or None when malformed."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack(">HHH", msg[:6])
    if qdcount < 1:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(msg):
            return None
        labels.append(msg[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack(">HH", msg[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, pos + 4


def build_answer(msg, records):
    q = parse_question(msg)
    if q is None:
        return None, None
    qid, flags, name, qtype, qend = q
    rd = flags & 0x0100
    addrs = records.get(name.rstrip("."))
    if addrs is None:
        rcode, answers = 3, []
    else:
        rcode = 0
        want = 4 if qtype == 1 else 16 if qtype == 28 else -1
        answers = [a.packed for a in addrs if len(a.packed) == want]
    head = struct.pack(">HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                       len(answers), 0, 0)
    body = msg[12:qend]
    for rdata in answers:
        body += struct.pack(">HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata
    info = (name, TYPES.get(qtype, str(qtype)), rcode, len(answers))
    return head + body, info


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", action="append", default=[])
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--drop", action="store_true")
    p.add_argument("--lifetime", type=float, default=120.0)
    args = p.parse_args()

    records = {}
    for r in args.record:
        name, _, addrs = r.partition("=")
        records[name.lower().rstrip(".")] = [ipaddress.ip_address(a) for a in addrs.split(",") if a]

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    out("PORT", sock.getsockname()[1])

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "dns")
    if sys.stdin is not None:
        try:  # a pipe or a tty; /dev/null and files cannot be polled
            sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
            os.set_blocking(sys.stdin.fileno(), False)
        except (PermissionError, ValueError, OSError):
            pass

    pending = []  # (due, reply, addr, info)
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        now = time.monotonic()
        timeout = 0.05
        if pending:
            timeout = max(0.0, min(timeout, min(d for d, *_ in pending) - now))
        for key, _ in sel.select(timeout):
            if key.data == "stdin":
                try:
                    if not os.read(sys.stdin.fileno(), 4096):
                        return
                except BlockingIOError:
                    pass
                continue
            try:
                msg, addr = sock.recvfrom(4096)
            except BlockingIOError:
                continue
            q = parse_question(msg)
            if q is None:
                continue
            out("QUERY", q[2], TYPES.get(q[3], str(q[3])))
            if args.drop:
                continue
            reply, info = build_answer(msg, records)
            pending.append((time.monotonic() + args.delay, reply, addr, info))
        now = time.monotonic()
        due = [x for x in pending if x[0] <= now]
        pending = [x for x in pending if x[0] > now]
        for _, reply, addr, info in due:
            sock.sendto(reply, addr)
            out("ANSWER", *info)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
