#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark: moat's memory per idle, authenticated device connection.

Starts Mosquitto and moat (one worker) with the integration harness
(tests/integration/moattest.py), then opens --conns connections through
moat from this one process: non-blocking sockets, Python's ssl with the
harness's ECDSA P-256 client certificate, TLS 1.3, an MQTT 3.1.1 CONNECT
(keep-alive 0) each, at most --parallel handshakes at a time (below
max_handshakes_per_address). Once every connection has its CONNACK and
moat has been quiet for --settle seconds, it reads moat's memory from
/proc and prints, against the baseline taken before the first
connection:

  VmRSS          resident set (KiB), and its delta per connection
  Private_Dirty  from smaps_rollup: the heap pages moat wrote, the
                 figure that grows with connections

A benchmark, not a test: it is not part of make check and never fails on
a number. Needs python3, mosquitto, openssl and a built ./moat (or
MOAT_BIN). File descriptors: this process needs one per connection,
Mosquitto one, moat two (device and broker); the script raises its own
RLIMIT_NOFILE, which Mosquitto and moat inherit, and prints moat's.
"""

import argparse
import os
import re
import resource
import selectors
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import moattest as mt  # noqa: E402

SIZES_C = r"""
#include "config.h"
#include <stdio.h>
#include "conn_int.h"
int main(void)
{
	printf("struct conn %zu\n", sizeof(struct conn));
	printf("  uv_tcp_t (device) %zu\n", sizeof(uv_tcp_t));
	printf("  broker handle (tcp or pipe) %zu\n",
	    sizeof(((struct conn *)0)->be));
	printf("  uv_timer_t %zu\n", sizeof(uv_timer_t));
	printf("  uv_connect_t %zu\n", sizeof(uv_connect_t));
	printf("  uv_shutdown_t x2 %zu\n", 2 * sizeof(uv_shutdown_t));
	printf("  struct guard %zu\n", sizeof(struct guard));
	printf("  struct pipe x2 %zu\n", 2 * sizeof(struct pipe));
	printf("  struct cert_identity %zu\n", sizeof(struct cert_identity));
	return 0;
}
"""

MQTT_CONNACK = 0x20
CONNACK_LEN = 4


def mqtt_connect(client_id):
    """An MQTT 3.1.1 CONNECT, clean session, keep-alive 0 (no pings)."""
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x00"
    payload = len(cid).to_bytes(2, "big") + cid
    body = var + payload
    return bytes([0x10, len(body)]) + body


def proc_mem(pid):
    """(VmRSS KiB, Private_Dirty KiB or None) of pid."""
    rss = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    dirty = None
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    dirty = int(line.split()[1])
    except OSError:
        pass
    return rss, dirty


def proc_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


class Client:
    """One device: TCP connect, TLS handshake, CONNECT, CONNACK."""

    def __init__(self, ctx, port, cid):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        self.tls = ctx.wrap_socket(self.sock, server_hostname="localhost",
                                   do_handshake_on_connect=False)
        self.stage = "handshake"
        self.out = mqtt_connect(cid)
        self.inb = b""

    def step(self):
        """Advance; returns the events to wait for, or None when done."""
        if self.stage == "handshake":
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                return selectors.EVENT_WRITE
            except OSError as e:
                if getattr(e, "errno", None) in (115, 11):  # in progress
                    return selectors.EVENT_WRITE
                raise
            self.stage = "send"
        if self.stage == "send":
            try:
                n = self.tls.send(self.out)
            except ssl.SSLWantWriteError:
                return selectors.EVENT_WRITE
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            self.out = self.out[n:]
            if self.out:
                return selectors.EVENT_WRITE
            self.stage = "connack"
        if self.stage == "connack":
            try:
                d = self.tls.recv(64)
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            if not d:
                raise mt.Failure("moat closed a connection before its "
                                 "CONNACK")
            self.inb += d
            if len(self.inb) < CONNACK_LEN:
                return selectors.EVENT_READ
            if self.inb[0] != MQTT_CONNACK or self.inb[3] != 0:
                raise mt.Failure("CONNACK refused: %r" % self.inb)
            self.stage = "idle"
        return None


def open_all(ctx, port, n, parallel, timeout):
    sel = selectors.DefaultSelector()
    done, started, active = [], 0, 0
    deadline = time.monotonic() + timeout
    pid = os.getpid()
    while len(done) < n:
        while active < parallel and started < n:
            c = Client(ctx, port, "idle-%d-%d" % (pid, started))
            started += 1
            active += 1
            sel.register(c.tls, selectors.EVENT_WRITE, c)
        if time.monotonic() > deadline:
            raise mt.Failure("only %d of %d connections CONNACKed within "
                             "%d s" % (len(done), n, timeout))
        for key, _ in sel.select(1.0):
            c = key.data
            ev = c.step()
            if ev is None:
                sel.unregister(c.tls)
                done.append(c)
                active -= 1
            else:
                sel.modify(c.tls, ev, c)
    sel.close()
    return done


def settle(pid, quiet):
    """Wait until moat's CPU time stops moving for quiet seconds."""
    def cpu():
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])
    last, since = cpu(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.25)
        now = cpu()
        if now != last:
            last, since = now, time.monotonic()


def print_sizes(t):
    """sizeof(struct conn) and its libuv parts, from a program built
    against the tree (in-tree build: config.h at the top)."""
    top = os.path.abspath(os.path.join(HERE, "..", ".."))
    if not os.path.exists(os.path.join(top, "config.h")):
        print("(no config.h at the top of the tree: sizes not shown)")
        return
    src = t.write("sizes.c", SIZES_C)
    exe = t.path("sizes")
    r = mt.run_cmd(["cc", "-I" + top, "-I" + os.path.join(top, "include"),
                    "-I" + os.path.join(top, "src", "io"), "-o", exe, src],
                   timeout=60)
    if r.returncode != 0:
        print("(sizes not shown: %s)" % r.stderr.strip()[:200])
        return
    print("sizes in this source tree (bytes):")
    print(mt.run_cmd([exe]).stdout.rstrip())


FRAME_RX = re.compile(r"^( *)n(\d+): (\d+) (.*)$")


def massif_sites(path):
    """Bytes of a massif detailed snapshot by the first frame in moat's
    own code on the way from the allocation to the root (the function of
    moat that asked for them), e.g. "tls_session_new (tls.c:625)"."""
    out = {}
    stack = []
    with open(path) as f:
        lines = [ln.rstrip("\n") for ln in f if FRAME_RX.match(ln)]
    for ln in lines:
        m = FRAME_RX.match(ln)
        depth, nkids, nbytes, what = (len(m.group(1)), int(m.group(2)),
                                      int(m.group(3)), m.group(4))
        del stack[depth:]
        stack.append(what)
        if nkids != 0:
            continue
        label = "(outside moat's code)"
        for fr in stack[1:]:
            mm = re.search(r": (\w+) \((\w+\.c):\d+\)", fr)
            if mm:
                label = "%s (%s)" % (mm.group(1), mm.group(2))
                break
        out[label] = out.get(label, 0) + nbytes
    return out


def massif_snapshot(pid, path):
    r = mt.run_cmd(["vgdb", "--pid=%d" % pid, "detailed_snapshot",
                    os.path.abspath(path)], timeout=60)
    if r.returncode != 0:
        raise mt.Failure("vgdb detailed_snapshot failed: %s" % r.stderr)


def print_massif(before, after, n):
    a, b = massif_sites(before), massif_sites(after)
    rows = sorted(((b.get(k, 0) - a.get(k, 0), k) for k in set(a) | set(b)),
                  reverse=True)
    print("heap (massif) per connection, by the function of moat that "
          "allocated it:")
    total = 0
    for d, k in rows:
        total += d
        if abs(d) / n >= 16:
            print("  %9.0f B  %s" % (d / n, k))
    print("  %9.0f B  total" % (total / n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=2000,
                    help="idle connections to open (default 2000)")
    ap.add_argument("--parallel", type=int, default=32,
                    help="handshakes at a time (default 32)")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds of quiet before reading (default 2)")
    ap.add_argument("--massif", metavar="FILE",
                    help="run moat under valgrind's massif, write "
                    "detailed snapshots of the baseline (FILE.before) "
                    "and of the idle state (FILE), and print the heap "
                    "per connection by the function of moat that "
                    "allocated it (use a small --conns, e.g. 50)")
    ap.add_argument("--keep", action="store_true",
                    help="wait for Enter before stopping (inspect moat)")
    args = ap.parse_args()

    want = args.conns * 2 + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (max(want, soft), max(want, hard)))

    t = mt.Test("idle_mem")
    try:
        mt.need_tool("mosquitto", "openssl")
        cert, key = t.pki.device("bench")
        broker = t.mosquitto()
        wrap = None
        if args.massif:
            mt.need_tool("valgrind", "vgdb")
            wrap = ["valgrind", "--tool=massif", "--vgdb=yes",
                    "--threshold=0.01",
                    "--massif-out-file=" + t.path("massif.out")]
        moat = t.start_moat("127.0.0.1:%d" % broker.port, workers="1",
                            limits={"max_connections":
                                    str(args.conns + 100),
                                    "handshake_timeout": "60s",
                                    "connect_timeout": "60s"},
                            wrap=wrap)
        print("moat pid %d, RLIMIT_NOFILE %s" % (moat.pid,
                                                  proc_nofile(moat.pid)))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(t.pki.ca)
        ctx.load_cert_chain(cert, key)

        # Warm up: one connection, closed, so that what every first
        # connection allocates once (wolfSSL's tables, the identity
        # cache) is in the baseline.
        warm = open_all(ctx, moat.port, 1, 1, 30)
        warm[0].tls.close()
        settle(moat.pid, args.settle)
        rss0, dirty0 = proc_mem(moat.pid)
        if args.massif:
            massif_snapshot(moat.pid, args.massif + ".before")

        t0 = time.monotonic()
        conns = open_all(ctx, moat.port, args.conns, args.parallel,
                         60 + args.conns // 10)
        took = time.monotonic() - t0
        settle(moat.pid, args.settle)
        rss1, dirty1 = proc_mem(moat.pid)
        n = len(conns)
        print("%d idle connections CONNACKed in %.1f s" % (n, took))
        print("%-14s %10s %10s %12s" % ("", "baseline", "idle",
                                        "KiB / conn"))
        print("%-14s %10d %10d %12.2f" % ("VmRSS KiB", rss0, rss1,
                                          (rss1 - rss0) / n))
        if dirty0 is not None:
            print("%-14s %10d %10d %12.2f" % ("Private_Dirty", dirty0,
                                              dirty1,
                                              (dirty1 - dirty0) / n))
        print_sizes(t)
        if args.massif:
            massif_snapshot(moat.pid, args.massif)
            print_massif(args.massif + ".before", args.massif, n)
            print("massif snapshots: %s.before, %s" % (args.massif,
                                                       args.massif))
        if args.keep:
            input("moat pid %d holds the connections; Enter stops it: "
                  % moat.pid)
        for c in conns:
            c.tls.close()
    finally:
        problems = t.stop_all()
        for p in problems:
            print("problem: %s" % p)


if __name__ == "__main__":
    main()
