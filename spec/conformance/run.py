#!/usr/bin/python3
"""Run the WebSocket client conformance suite against an echo client.

    /usr/bin/python3 spec/conformance/run.py --client "build/moonwire spec/conformance/echo_client.lua"
    /usr/bin/python3 spec/conformance/run.py --client "/usr/bin/python3 spec/conformance/ref_client.py"

For every selected case the client command is run with the case URL appended
(ws://127.0.0.1:PORT/case/<id>). Prints one line per case, then exactly
"N passed, N failed"; exits 1 if anything failed (2 on usage errors); with --expect-fail,
exits 1 if anything passed."""

import argparse
import concurrent.futures
import fnmatch
import os
import shlex
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cases as cases_mod  # noqa: E402
from server import Server, evaluate, trace  # noqa: E402


def select(all_cases, patterns):
    """Patterns are comma-separated; each is a glob (6.4.*, *.c) or an id prefix (6, 6.4, 6.4.1)."""
    if not patterns:
        return list(all_cases)
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    out = []
    for c in all_cases:
        for p in pats:
            if any(ch in p for ch in "*?["):
                if fnmatch.fnmatchcase(c.id, p):
                    break
            elif c.id == p or c.id.startswith(p + "."):
                break
        else:
            continue
        out.append(c)
    return out


def tail(b, n=600):
    s = b.decode("utf-8", "replace").strip()
    return s if len(s) <= n else "..." + s[-n:]


def run_case(srv, client_argv, case, verbose):
    rec = srv.register(case.id)
    url = "ws://127.0.0.1:%d/case/%s" % (srv.port, case.id)
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(client_argv + [url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    except OSError as e:
        return case, ["cannot start client: %s" % e], 0.0, b""
    timed_out = False
    try:
        out, err = p.communicate(timeout=case.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        # the server side may still be finishing (it is bounded); let it, then stop the client
        rec.done.wait(3.0)
        p.kill()
        out, err = p.communicate()
    # the client exited: the server side finishes within its own bounded waits
    if rec.connections:
        rec.done.wait(8.0)
    elapsed = time.monotonic() - t0
    problems = []
    if rec.connections and not rec.done.is_set():
        problems.append("server side of the case did not finish")
    else:
        problems = evaluate(case, rec)
    if not timed_out and p.returncode != 0:
        problems.append("client exited with code %d" % p.returncode)
    for word in (b"AddressSanitizer", b"LeakSanitizer", b"runtime error:"):
        if word in err:
            problems.append("client stderr reports %s: %s" % (word.decode(), tail(err).replace("\n", " | ")))
    if timed_out:
        problems.append("client process did not exit within %.0fs%s" % (
            case.timeout, " (after the connection was closed)" if rec.done.is_set() else ""))
    if problems and verbose and rec.connections:
        problems.append("trace: " + trace(rec))
    if problems and (verbose or rec.connections == 0):
        msg = tail(err) or tail(out)
        if msg:
            problems.append("client output: " + msg.replace("\n", " | "))
    return case, problems, elapsed, err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", required=False, help="echo client command; the case URL is appended")
    ap.add_argument("--filter", default="", help="comma-separated case ids, id prefixes or globs")
    ap.add_argument("--jobs", type=int, default=4, help="cases run in parallel (default 4)")
    ap.add_argument("--list", action="store_true", help="list the selected cases and expectations")
    ap.add_argument("--expect-fail", action="store_true",
                    help="succeed only if every selected case fails (to check that the suite catches "
                    "a deliberately wrong client, bad_client.py)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show client stderr for failures")
    args = ap.parse_args()

    selected = select(cases_mod.CASES, args.filter)
    if args.list:
        for c in selected:
            print("%-10s %s\n           expect: %s" % (c.id, c.desc, c.expectation()))
        print("%d cases" % len(selected))
        return 0
    if not args.client:
        ap.error("--client is required")
    if not selected:
        print("no case matches %r" % args.filter, file=sys.stderr)
        return 2
    client_argv = shlex.split(args.client)

    srv = Server(cases_mod.BY_ID).start()
    t0 = time.monotonic()
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        # biggest cases first so they do not end up alone at the tail of the run
        order = sorted(selected, key=lambda c: -c.timeout)
        futs = {c.id: ex.submit(run_case, srv, client_argv, c, args.verbose) for c in order}
        for c in selected:                     # report in suite order
            case, problems, elapsed, _ = futs[c.id].result()
            if problems:
                failed += 1
                print("FAIL %s: %s" % (case.id, "; ".join(problems)), flush=True)
            else:
                passed += 1
                print("ok %s %s (%.2fs)" % (case.id, case.desc, elapsed), flush=True)
    srv.stop()
    print("# %d cases in %.1fs with %d jobs" % (len(selected), time.monotonic() - t0, args.jobs))
    print("%d passed, %d failed" % (passed, failed))
    if args.expect_fail:
        return 1 if passed else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
