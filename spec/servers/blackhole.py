#!/usr/bin/python3
"""A loopback blackhole for the Happy Eyeballs specs (stdlib only): a listening socket on
[::1]:PORT (or --host) that never accepts, its accept queue filled by its own connects,
so that the kernel drops further SYNs and a connect there stays pending. Prints `READY`
once a probe connect is seen to hang. End of stdin ends it.
  blackhole.py PORT [--host ::1]
"""
import socket
import sys


def main():
    port = int(sys.argv[1])
    host = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--host" else "::1"
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.listen(0)
    fillers = []
    for _ in range(64):   # until a connect hangs: the queue is full
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.settimeout(0.3)
        try:
            c.connect((host, port))
            fillers.append(c)
        except (socket.timeout, OSError):
            c.close()
            sys.stdout.write("READY\n")
            sys.stdout.flush()
            sys.stdin.read()
            return
    sys.stdout.write("NOT BLACKHOLED\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
