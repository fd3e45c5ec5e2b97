#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark: moat against HAProxy, stunnel and Mosquitto's TLS listener.

Four TLS front doors, all in the same run, all in front of one Mosquitto
on 127.0.0.1 (plain listener for moat, HAProxy and stunnel, a TLS listener
with require_certificate for Mosquitto itself), plus plain TCP straight to
that broker as the ceiling that shows what the Python clients and the
broker can do without TLS. Every door does mutual TLS 1.3 with the same
ECDSA P-256 certificates and CA from the integration harness:

  moat        the harness's moat.ini (one worker)
  moat+pol    (with --policy or --moat-ini-extra) a second moat, the same
              moat.ini plus a [policy] section (publish and subscribe =
              bench/{identity}/#; the bench's certificate has CN "bench",
              so every bench topic lies under bench/bench/) and/or the
              text of the given file, in the small-message and
              throughput runs.  At start a SUBSCRIBE to "#" (must be
              refused) and one to bench/bench/# (must be granted) show
              whether the policy is in force.  Skipped with a note if
              moat refuses that configuration at start-up.
  haproxy     HAProxy in mode tcp, one thread, verify required
  stunnel     stunnel4, verify = 2
  mosq-tls    Mosquitto's own listener, require_certificate true
  plain       plain TCP to the broker, no door

Measured:

  handshakes   N client processes, each in a loop: TCP connect, full TLS
               handshake with an ECDSA P-256 client certificate, MQTT
               CONNECT, wait for CONNACK, DISCONNECT, close.  conn/s,
               p50/p99 latency (connect to CONNACK), and CPU per
               connection of the front door, the broker and the clients
               (from /proc and os.times), so that a client-bound run can
               be told from a server-bound one.
  s_time       openssl s_time -new: one C client, TLS handshakes only (no
               MQTT), as a cross-check that is not limited by Python.
  small msgs   one publisher and one subscriber, QoS 0, 64-byte
               payloads, a fixed count (--msgs), twice per door: "in",
               the publisher through the door and the subscriber on plain
               TCP (the device-to-broker path, the one a topic policy
               checks), and "both", the subscriber through the door too
               (then the door also carries Mosquitto's one write per
               message).  msgs/s and CPU microseconds per message of the
               door, the broker and the two clients, each process's
               share of a core, and how busy the whole machine was.  The
               publisher sends pre-encoded PUBLISH packets, about 800 per
               TLS write, so Python is not what limits it; it stays at
               most --msg-window messages ahead of what the subscriber
               has counted, so Mosquitto never drops a QoS 0 message (a
               shortfall is reported as INCOMPLETE).  The CPU is read
               from the scheduler's nanosecond counters of every thread
               (/proc/PID/task/*/schedstat) after both clients are
               connected and before they disconnect, so the handshakes
               are not counted.
  throughput   one publisher and one subscriber through the door, QoS 0,
               1 KiB and 64 KiB payloads, a fixed byte count; MB/s of
               payload and the door's CPU per MB.  The publisher keeps at
               most --window bytes ahead of the subscriber.
  footprint    RSS (now and peak) and total CPU time of every server
               after all runs.

Each measurement is repeated --reps times (default 3), the doors taking
turns within each repetition; the table shows medians and the ratios of
moat to each peer (and of moat+pol to moat and to HAProxy).  This is not
a test: it never fails on a number.  Machines are small and noisy; read
the per-repetition spread printed above the table before trusting a
ratio, and the closing lines, which say when a figure looks bound by the
clients or the broker rather than the door.

Loopback only; every server is started and stopped by PID through the
integration harness (tests/integration/moattest.py), with its
configuration written into the run's temporary directory; client
processes are ended by PID too, also on Ctrl-C.  Needs mosquitto and
openssl, and for their columns stunnel and haproxy (Debian: apt-get
install mosquitto openssl stunnel4 haproxy; the packaged services need
not run); a missing stunnel or haproxy only drops its column, with a
note.  --pin puts the servers on CPU 1 and the clients on CPU 0.

  tests/bench/run.py                about 5 minutes
  tests/bench/run.py --quick        about 70 seconds
  tests/bench/run.py --policy       adds the moat+pol door
"""

import argparse
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import moattest as mt  # noqa: E402

# Every door in table order; a run measures the ones it has (moat+pol only
# with --policy or --moat-ini-extra, and only if moat accepts the text).
DOORS = ("moat", "moat+pol", "haproxy", "stunnel", "mosq-tls", "plain")
HEADS = {"moat": "moat", "moat+pol": "moat+pol", "haproxy": "haproxy",
         "stunnel": "stunnel", "mosq-tls": "mosq-TLS", "plain": "plainTCP"}
# The doors that take part in the handshake and s_time runs (the policy
# variant changes nothing before CONNACK).
HS_DOORS = ("moat", "haproxy", "stunnel", "mosq-tls", "plain")
# The CN of the bench's client certificate; moat's [identity] source is
# the CN, so this is the {identity} that the policy rules see, and every
# topic of the bench lies under bench/<identity>/.
IDENTITY = "bench"
POLICY = ("[policy]\n"
          "publish = bench/{identity}/#\n"
          "subscribe = bench/{identity}/#\n")
# The doors that run as a process of their own (keys of Bench.pids, with
# "mosquitto"); mosq-tls is the broker itself, plain has no door.
OWN_PROC = ("moat", "moat+pol", "haproxy", "stunnel")
# The process whose CPU counts as the door's: the broker for mosq-tls.
DOOR_PROC = {d: d for d in OWN_PROC}
DOOR_PROC["mosq-tls"] = "mosquitto"
SMALL = 64          # payload bytes of the small-message runs
# The two small-message runs and the prefix of their result keys: "in",
# publisher through the door and subscriber on plain TCP; "both", both
# through the door.
SMALL_WAYS = {"in": "si", "both": "sb"}
DISCONNECT = b"\xe0\x00"
TICK = os.sysconf("SC_CLK_TCK")

say = mt.say


# ---------------------------------------------------------------------------
# /proc

def cpu_s(pid):
    """utime + stime of pid (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_ns(pid):
    """Time on CPU of all live threads of pid, in nanoseconds, from the
    scheduler's counters (finer than the 10 ms ticks of /proc/PID/stat;
    a thread that ended between two readings is missed, so read only
    while the connections measured are open)."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return int(cpu_s(pid) * 1e9)
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass   # the thread ended meanwhile
    return total


def machine_ticks():
    """(busy, all) clock ticks of all CPUs since boot, from /proc/stat:
    the share of the machine used by every process, ours or not."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


def mem_kib(pid):
    """(VmRSS, VmHWM) of pid in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


# ---------------------------------------------------------------------------
# servers

class QuietMosquitto(mt.Mosquitto):
    """The harness's Mosquitto without `log_type all`: logging every
    PUBLISH would make the broker, not the door, the thing measured."""

    def _write_conf(self, conf, tcp, extra):
        super()._write_conf(conf, tcp, extra)
        with open(conf) as f:
            text = f.read()
        text = text.replace("log_type all\n", "log_type error\n"
                            "log_type warning\nlog_type notice\n"
                            "log_type information\n")
        with open(conf, "w") as f:
            f.write(text)


def start_broker(t, tls_port, nodelay):
    s, k = t.pki.server()
    # set_tcp_nodelay is global in Mosquitto 2.0 (every listener). Without
    # it the TLS listener's small post-handshake writes (session tickets,
    # then CONNACK) meet Nagle and delayed ACKs: ~40 ms per connection.
    extra = (["set_tcp_nodelay true"] if nodelay else []) + [
             "listener %d 127.0.0.1" % tls_port,
             "cafile " + t.pki.ca,
             "certfile " + s,
             "keyfile " + k,
             "require_certificate true",
             "tls_version tlsv1.3"]
    return QuietMosquitto(t, extra=extra)


class Stunnel(mt.Proc):
    """stunnel in the foreground: TLS 1.3, client certificates of the test
    CA required (verify = 2), forwarding to the broker."""

    def __init__(self, t, backend_port):
        mt.need_tool("stunnel")
        s, k = t.pki.server()
        self.port = mt.free_port()
        conf = t.write("stunnel.conf", "\n".join([
            "foreground = yes",
            "syslog = no",
            "pid =",
            "debug = notice",
            "[mqtt]",
            "accept = 127.0.0.1:%d" % self.port,
            "connect = 127.0.0.1:%d" % backend_port,
            "cert = " + s,
            "key = " + k,
            "CAfile = " + t.pki.ca,
            "verify = 2",
            "sslVersion = TLSv1.3",
        ]) + "\n")
        say("  starting stunnel (127.0.0.1:%d)" % self.port)
        super().__init__(t, "stunnel", ["stunnel", conf],
                         t.path("stunnel.log"))
        for _ in mt.deadline_loop(10, 0.05):
            if not self.alive():
                raise mt.Failure("stunnel exited (%s):\n%s" % (
                    self.p.returncode, mt.tail(self.log)))
            if "Configuration successful" in self.text():
                try:
                    socket.create_connection(("127.0.0.1", self.port),
                                             0.5).close()
                    return
                except OSError:
                    pass
        raise mt.Failure("stunnel did not start within 10 s:\n%s"
                         % mt.tail(self.log))


class HAProxy(mt.Proc):
    """HAProxy in the foreground (-db), mode tcp, one thread: TLS 1.3
    only, client certificates of the test CA required (verify required),
    forwarding the plaintext to the broker. The certificate and key go
    into one PEM file, as HAProxy wants them."""

    def __init__(self, t, backend_port):
        mt.need_tool("haproxy")
        s, k = t.pki.server()
        pem = t.write("haproxy.pem", mt.read_text(s) + mt.read_text(k))
        os.chmod(pem, 0o600)
        self.port = mt.free_port()
        conf = t.write("haproxy.cfg", "\n".join([
            "global",
            "    nbthread 1",
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 120s",
            "    timeout server 120s",
            "frontend mqtts",
            "    bind 127.0.0.1:%d ssl crt %s ca-file %s verify required "
            "ssl-min-ver TLSv1.3" % (self.port, pem, t.pki.ca),
            "    default_backend broker",
            "backend broker",
            "    server mosquitto 127.0.0.1:%d" % backend_port,
        ]) + "\n")
        r = mt.run_cmd(["haproxy", "-c", "-q", "-f", conf])
        if r.returncode != 0:
            raise mt.Failure("haproxy -c refused %s:\n%s"
                             % (conf, r.stdout + r.stderr))
        say("  starting haproxy (127.0.0.1:%d)" % self.port)
        super().__init__(t, "haproxy", ["haproxy", "-db", "-f", conf],
                         t.path("haproxy.log"))
        for _ in mt.deadline_loop(10, 0.05):
            if not self.alive():
                raise mt.Failure("haproxy exited (%s):\n%s" % (
                    self.p.returncode, mt.tail(self.log)))
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.5).close()
                return
            except OSError:
                pass
        raise mt.Failure("haproxy did not start within 10 s:\n%s"
                         % mt.tail(self.log))


def start_moat_variant(t, backend, extra):
    """A second moat with extra text appended to the harness's moat.ini.
    Returns (Moat, None) or, when moat refuses the configuration at
    start-up, (None, the first error line of its log)."""
    m = t.start_moat(backend, name="moat-pol", extra=extra,
                     expect_start=False)
    try:
        m._wait_ready(1)
        return m, None
    except mt.Failure:
        m.stop()    # by PID; also takes it off the harness's list
        lines = [l.strip().replace(t.dir + os.sep, "")
                 for l in mt.read_text(m.log).splitlines() if l.strip()]
        first = next((l for l in lines
                      if re.search(r"error|refus|unknown|invalid", l, re.I)),
                     lines[0] if lines else "exit %s" % m.p.returncode)
        return None, first


# ---------------------------------------------------------------------------
# client processes (forked; each sends its result back through a pipe)

def reset_signals():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent ends us


def open_mqtt(port, ctx, client_id, timeout=10):
    """TCP (+ TLS) connect, CONNECT, CONNACK; returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(mt.mqtt_connect(client_id))
    got = b""
    while len(got) < 4:
        chunk = s.recv(4 - len(got))
        if not chunk:
            raise EOFError("closed before CONNACK")
        got += chunk
    if got[0] != 0x20 or got[3] != 0:
        raise ValueError("CONNACK refused: %r" % got)
    return s


def hs_worker(conn, port, ctx, tag, start, end):
    reset_signals()
    lat, errs, n, last_err = [], 0, 0, ""
    c0 = os.times()
    while time.monotonic() < start:
        time.sleep(0.001)
    last = time.monotonic()
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        n += 1
        try:
            s = open_mqtt(port, ctx, "%s-%d" % (tag, n))
            t1 = time.monotonic()
            try:
                s.sendall(DISCONNECT)
            except OSError:
                pass
            s.close()
            lat.append(t1 - t0)
            last = time.monotonic()
        except Exception as e:  # count and go on: a benchmark, not a test
            errs += 1
            last_err = repr(e)
            time.sleep(0.01)
    c1 = os.times()
    conn.send((lat, errs, last_err, last,
               (c1.user - c0.user) + (c1.system - c0.system)))
    conn.close()


def sub_worker(conn, port, ctx, topic, total, ready, got, done_at, release,
               deadline):
    reset_signals()
    try:
        s = open_mqtt(port, ctx, "bench-sub-%d" % os.getpid())
        s.sendall(mt.mqtt_subscribe(1, topic, 0))
        read_suback(s)
        s.settimeout(1.0)
        ready.set()
        buf = bytearray(256 * 1024)
        mv = memoryview(buf)
        n = 0
        while n < total and time.monotonic() < deadline:
            try:
                k = s.recv_into(mv)
            except socket.timeout:
                continue
            if not k:
                break
            n += k
            got.value = n
        done_at.value = time.monotonic()
        conn.send(("ok", n))
        release.wait(30)    # the parent reads the door's CPU first
        try:
            s.sendall(DISCONNECT)
        except OSError:
            pass
        s.close()
    except Exception as e:
        ready.set()
        conn.send(("error", repr(e)))


def pub_worker(conn, port, ctx, topic, pkt, count, window, ready, got,
               started, release, deadline):
    reset_signals()
    try:
        s = open_mqtt(port, ctx, "bench-pub-%d" % os.getpid())
        if not ready.wait(10):
            raise TimeoutError("subscriber not ready")
        batch = max(1, 65536 // len(pkt))
        chunk = pkt * batch
        sent = 0
        started.value = time.monotonic()
        while count > 0 and time.monotonic() < deadline:
            while sent - got.value > window:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.0002)
            k = min(batch, count)
            s.sendall(chunk if k == batch else pkt * k)
            sent += k * len(pkt)
            count -= k
        conn.send(("ok", sent))
        # keep the connection until the subscriber has it all (or gives up)
        while got.value < sent and time.monotonic() < deadline:
            time.sleep(0.005)
        release.wait(30)
        try:
            s.sendall(DISCONNECT)
        except OSError:
            pass
        s.close()
    except Exception as e:
        conn.send(("error", repr(e)))


def read_suback(s):
    suback = b""
    while len(suback) < 5:
        chunk = s.recv(5 - len(suback))
        if not chunk:
            raise EOFError("closed before SUBACK")
        suback += chunk
    if suback[0] != 0x90 or suback[4] >= 0x80:
        raise ValueError("subscription refused: %r" % suback)


def sm_sub_worker(conn, port, ctx, topic, total, ev, got, done_at,
                  deadline):
    """Small messages, subscriber: counts the bytes of the PUBLISH
    packets it receives (all of one size) into got, reports, then keeps
    the connection until ev["release"] so that the door's threads are
    still there when the parent reads their CPU time."""
    reset_signals()
    try:
        s = open_mqtt(port, ctx, "bench-ssub-%d" % os.getpid())
        s.sendall(mt.mqtt_subscribe(1, topic, 0))
        read_suback(s)
        s.settimeout(0.5)
        c0 = time.process_time()
        ev["ready"].set()
        buf = bytearray(256 * 1024)
        mv = memoryview(buf)
        n = 0
        while n < total and time.monotonic() < deadline:
            try:
                k = s.recv_into(mv)
            except socket.timeout:
                continue
            if not k:
                break
            n += k
            got.value = n
        done_at.value = time.monotonic()
        conn.send(("ok", n, time.process_time() - c0))
        ev["release"].wait(30)
        try:
            s.sendall(DISCONNECT)
        except OSError:
            pass
        s.close()
    except Exception as e:
        ev["ready"].set()
        conn.send(("error", repr(e)))


def sm_pub_worker(conn, port, ctx, pkt, count, window, ev, got, started,
                  deadline):
    """Small messages, publisher: connects, waits for ev["go"], then
    sends count copies of the pre-encoded PUBLISH pkt in large writes
    (one sendall of ~64 KiB is ~800 messages in four TLS records), never
    more than window bytes ahead of what the subscriber has counted."""
    reset_signals()
    try:
        s = open_mqtt(port, ctx, "bench-spub-%d" % os.getpid())
        ev["pub_ready"].set()
        if not ev["go"].wait(30):
            raise TimeoutError("no go")
        c0 = time.process_time()
        batch = max(1, min(65536, window // 2) // len(pkt))
        chunk = pkt * batch
        sent = 0
        started.value = time.monotonic()
        while count > 0 and time.monotonic() < deadline:
            while sent - got.value > window - len(chunk):
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.0001)
            k = min(batch, count)
            s.sendall(chunk if k == batch else pkt * k)
            sent += k * len(pkt)
            count -= k
        conn.send(("ok", sent, time.process_time() - c0))
        ev["release"].wait(30)
        try:
            s.sendall(DISCONNECT)
        except OSError:
            pass
        s.close()
    except Exception as e:
        ev["pub_ready"].set()
        conn.send(("error", repr(e)))


class Workers:
    """Forked client processes, always ended by PID (terminate, then
    kill) when the block ends, also on an exception or Ctrl-C."""

    def __init__(self):
        self.ctx = mp.get_context("fork")
        self.procs = []

    def start(self, target, *args):
        parent, child = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=target, args=(child,) + args)
        p.start()
        child.close()
        self.procs.append((p, parent))
        return parent

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p, _ in self.procs:
            p.join(timeout=0 if exc[0] else 2)
            if p.is_alive():
                p.terminate()
                p.join(2)
            if p.is_alive():
                p.kill()
                p.join(2)
        for _, c in self.procs:
            c.close()
        return False


def recv(conn, timeout):
    if not conn.poll(timeout):
        raise mt.Failure("a client process sent no result within %ss"
                         % timeout)
    return conn.recv()


# ---------------------------------------------------------------------------
# measurements

def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


class Bench:
    def __init__(self, t, args):
        self.t = t
        self.args = args
        self.ports = {}
        self.ctx = {}
        self.pids = {}      # door in OWN_PROC or "mosquitto" -> pid
        self.doors = []     # the doors of this run, in DOORS order
        self.results = {}   # (metric, door) -> [values per rep]
        self.detail = []
        self.notes = []     # lines for the head of the report
        self.policy_ok = None   # what the policy check of moat+pol found
        with open("/proc/loadavg") as f:
            self.load = " ".join(f.read().split()[:3])

    def add(self, metric, door, value):
        self.results.setdefault((metric, door), []).append(value)

    def cpu(self):
        return {name: cpu_s(pid) for name, pid in self.pids.items()}

    def handshakes(self, door, rep):
        a = self.args
        port, ctx = self.ports[door], self.ctx[door]
        cpu0 = self.cpu()
        mach0 = machine_ticks()
        start = time.monotonic() + 0.3
        end = start + a.duration
        with Workers() as w:
            conns = [w.start(hs_worker, port, ctx, "hs%d-%s-%d" % (rep, door, i),
                             start, end)
                     for i in range(a.clients)]
            res = [recv(c, a.duration + 30) for c in conns]
        cpu1 = self.cpu()
        mach1 = machine_ticks()
        lat = sorted(x for r in res for x in r[0])
        errs = sum(r[1] for r in res)
        wall = max(r[3] for r in res) - start
        n = len(lat)
        rate = n / wall if wall > 0 else 0.0
        broker = cpu1["mosquitto"] - cpu0["mosquitto"]
        doorcpu = (cpu1[door] - cpu0[door]) if door in OWN_PROC else 0.0
        client = sum(r[4] for r in res)
        self.add("hs_rate", door, rate)
        self.add("hs_p50", door, pct(lat, 0.50) * 1e3)
        self.add("hs_p99", door, pct(lat, 0.99) * 1e3)
        if n:
            self.add("hs_door_cpu", door,
                     (broker if door == "mosq-tls" else doorcpu) / n * 1e3)
            self.add("hs_server_cpu", door, (broker + doorcpu) / n * 1e3)
            self.add("hs_client_cpu", door, client / n * 1e3)
            self.add("hs_busy", door, (broker + doorcpu + client) /
                     (wall * os.cpu_count()) * 100)
        if mach1[1] > mach0[1]:
            self.add("hs_machine", door, (mach1[0] - mach0[0]) /
                     (mach1[1] - mach0[1]) * 100)
        msg = ("  rep %d %-8s handshakes: %6.0f conn/s  p50 %6.2f ms  "
               "p99 %6.2f ms  (%d conns, %d errors)"
               % (rep, door, rate, pct(lat, .5) * 1e3, pct(lat, .99) * 1e3,
                  n, errs))
        say(msg)
        if errs:
            last = next(r[2] for r in res if r[2])
            say("      last client error: %s" % last)
            self.detail.append("%s rep %d: %d handshake errors, last %s"
                               % (door, rep, errs, last))

    def s_time(self, door, rep):
        c, k = self.t.pki.device("bench")
        argv = ["openssl", "s_time", "-connect",
                "127.0.0.1:%d" % self.ports[door], "-new",
                "-time", str(self.args.stime), "-cert", c, "-key", k,
                "-CAfile", self.t.pki.ca]
        r = mt.run_cmd(argv, timeout=self.args.stime + 30)
        m = re.search(r"(\d+) connections in (\d+) real seconds", r.stdout)
        if r.returncode != 0 or not m or int(m.group(2)) == 0:
            say("  rep %d %-8s s_time: failed (%d) %s" % (
                rep, door, r.returncode, (r.stdout + r.stderr)[-300:]))
            return
        rate = int(m.group(1)) / int(m.group(2))
        self.add("stime_rate", door, rate)
        say("  rep %d %-8s s_time:     %6.0f conn/s" % (rep, door, rate))

    def throughput(self, door, size, rep):
        a = self.args
        port, ctx = self.ports[door], self.ctx[door]
        topic = topic_for(door, rep, size)
        pkt = mt.mqtt_publish(topic, os.urandom(size))
        count = max(1, a.bytes // size)
        total = count * len(pkt)
        c = mp.get_context("fork")
        ready = c.Event()
        got = c.RawValue("q", 0)
        done_at = c.RawValue("d", 0.0)
        started = c.RawValue("d", 0.0)
        release = c.Event()
        deadline = time.monotonic() + a.tput_timeout
        cpu0 = self.cpu_ns()
        with Workers() as w:
            sc = w.start(sub_worker, port, ctx, topic, total, ready, got,
                         done_at, release, deadline)
            pc = w.start(pub_worker, port, ctx, topic, pkt, count, a.window,
                         ready, got, started, release, deadline)
            try:
                sres = recv(sc, a.tput_timeout + 30)
                pres = recv(pc, a.tput_timeout + 30)
                cpu1 = self.cpu_ns()
            finally:
                release.set()
        if sres[0] != "ok" or pres[0] != "ok":
            say("  rep %d %-8s %5d B: error: sub %r pub %r"
                % (rep, door, size, sres, pres))
            self.detail.append("%s %d B rep %d: sub %r pub %r"
                               % (door, size, rep, sres, pres))
            return
        secs = done_at.value - started.value
        payload = sres[1] / len(pkt) * size
        mbps = payload / secs / 1e6 if secs > 0 else 0.0
        note = ""
        if sres[1] < total:
            note = "  INCOMPLETE: %.0f%% arrived" % (100.0 * sres[1] / total)
            self.detail.append("%s %d B rep %d:%s" % (door, size, rep, note))
        self.add("tp%d" % size, door, mbps)
        mb = payload / 1e6
        proc = DOOR_PROC.get(door)
        if proc and mb:
            self.add("tp%d_cpu" % size, door,
                     (cpu1[proc] - cpu0[proc]) / 1e9 / mb * 1e3)
        say("  rep %d %-8s %5d B:   %7.1f MB/s (%.1f MB in %.2f s)%s"
            % (rep, door, size, mbps, mb, secs, note))


    def cpu_ns(self):
        return {name: cpu_ns(pid) for name, pid in self.pids.items()}

    def small(self, door, rep, way):
        """QoS 0, 64-byte payloads, --msgs of them: msgs/s and CPU per
        message of the door, the broker and the clients. way "in": only
        the publisher goes through the door (the subscriber is on plain
        TCP), the path a topic policy checks; "both": the subscriber too,
        so the door also carries the broker's per-message writes."""
        a = self.args
        pfx = SMALL_WAYS[way]
        sub_door = "plain" if way == "in" else door
        topic = topic_for(door, rep, SMALL) + "/" + way
        pkt = mt.mqtt_publish(topic, os.urandom(SMALL))
        total = a.msgs * len(pkt)
        c = mp.get_context("fork")
        ev = {k: c.Event() for k in ("ready", "pub_ready", "go", "release")}
        got = c.RawValue("q", 0)
        done_at = c.RawValue("d", 0.0)
        started = c.RawValue("d", 0.0)
        deadline = time.monotonic() + a.tput_timeout + 10
        with Workers() as w:
            sc = w.start(sm_sub_worker, self.ports[sub_door],
                         self.ctx[sub_door], topic, total, ev, got, done_at,
                         deadline)
            pc = w.start(sm_pub_worker, self.ports[door], self.ctx[door], pkt,
                         a.msgs, a.msg_window * len(pkt), ev, got, started,
                         deadline)
            ev["ready"].wait(15)
            ev["pub_ready"].wait(15)
            cpu0, mach0 = self.cpu_ns(), machine_ticks()
            ev["go"].set()
            try:
                sres = recv(sc, a.tput_timeout + 40)
                pres = recv(pc, a.tput_timeout + 40)
                cpu1, mach1 = self.cpu_ns(), machine_ticks()
            finally:
                ev["release"].set()
        what = "small %-4s" % way
        if sres[0] != "ok" or pres[0] != "ok":
            say("  rep %d %-8s %s: error: sub %r pub %r"
                % (rep, door, what, sres, pres))
            self.detail.append("%s %s rep %d: sub %r pub %r"
                               % (door, what, rep, sres, pres))
            return
        secs = done_at.value - started.value
        n = sres[1] // len(pkt)
        if n == 0 or secs <= 0:
            self.detail.append("%s %s rep %d: nothing arrived"
                               % (door, what, rep))
            return
        note = ""
        if n < a.msgs:
            note = "  INCOMPLETE: %d of %d arrived" % (n, a.msgs)
            self.detail.append("%s %s rep %d:%s" % (door, what, rep, note))
        broker = (cpu1["mosquitto"] - cpu0["mosquitto"]) / 1e9
        proc = DOOR_PROC.get(door)
        doorcpu = (cpu1[proc] - cpu0[proc]) / 1e9 if proc else None
        pub, sub = pres[2], sres[2]
        self.add(pfx + "_rate", door, n / secs)
        if doorcpu is not None:
            self.add(pfx + "_cpu", door, doorcpu / n * 1e6)
            self.add(pfx + "_door_core", door, doorcpu / secs * 100)
        self.add(pfx + "_broker", door, broker / n * 1e6)
        self.add(pfx + "_broker_core", door, broker / secs * 100)
        self.add(pfx + "_client", door, (pub + sub) / n * 1e6)
        self.add(pfx + "_pub_core", door, pub / secs * 100)
        self.add(pfx + "_sub_core", door, sub / secs * 100)
        own = doorcpu if door in OWN_PROC else 0.0
        self.add(pfx + "_busy", door, (own + broker + pub + sub) /
                 (secs * os.cpu_count()) * 100)
        if mach1[1] > mach0[1]:
            self.add(pfx + "_machine", door, (mach1[0] - mach0[0]) /
                     (mach1[1] - mach0[1]) * 100)
        say("  rep %d %-8s %s: %7.0f msg/s  door %s us/msg  broker "
            "%.3f us/msg  clients %.3f us/msg  (%d msgs in %.2f s)%s"
            % (rep, door, what, n / secs,
               "-" if doorcpu is None else "%.3f" % (doorcpu / n * 1e6),
               broker / n * 1e6, (pub + sub) / n * 1e6, n, secs, note))


def topic_for(door, rep, size):
    """A topic under bench/<identity>/ (so the policy variant allows it),
    one per door, repetition and size; no MQTT wildcard characters."""
    return "bench/%s/%d/%s/%d" % (IDENTITY, rep,
                                  re.sub(r"[^A-Za-z0-9-]", "-", door), size)


def policy_probe(b):
    """Whether the policy is in force in moat+pol: a SUBSCRIBE to "#"
    must be refused (or the connection closed), one to the bench's own
    namespace granted."""
    out = []
    for filt in ("#", "bench/%s/#" % IDENTITY):
        try:
            s = open_mqtt(b.ports["moat+pol"], b.ctx["moat+pol"],
                          "bench-policy-probe", timeout=5)
            s.sendall(mt.mqtt_subscribe(7, filt, 0))
            got = b""
            while len(got) < 5:
                chunk = s.recv(5 - len(got))
                if not chunk:
                    break
                got += chunk
            s.close()
            out.append("SUBSCRIBE %s -> %s" % (
                filt, "SUBACK 0x%02x" % got[4] if len(got) == 5 and
                got[0] == 0x90 else "closed (%r)" % got))
        except (OSError, ValueError, EOFError) as e:
            out.append("SUBSCRIBE %s -> %r" % (filt, e))
    refused = "0x80" in out[0] or "closed" in out[0]
    granted = "SUBACK 0x00" in out[1]
    b.policy_ok = refused and granted
    return "policy check: %s; %s" % ("; ".join(out), (
        "in force" if refused and granted else
        "NOT AS EXPECTED: the figures of moat+pol may not include a policy"))


def probe(b, door):
    """Negotiated protocol, cipher (Python) and key-exchange group
    (openssl s_client) of one connection, for the report."""
    if door == "plain":
        return "plain TCP"
    s = open_mqtt(b.ports[door], b.ctx[door], "bench-probe")
    info = "%s %s" % (s.version(), s.cipher()[0])
    s.sendall(DISCONNECT)
    s.close()
    c, k = b.t.pki.device("bench")
    try:
        r = subprocess.run(["openssl", "s_client", "-brief", "-connect",
                            "127.0.0.1:%d" % b.ports[door], "-cert", c,
                            "-key", k, "-CAfile", b.t.pki.ca],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        m = re.search(r"(?:Peer|Server) Temp Key: ([^\n]+)", r.stdout)
        if m:
            info += ", " + m.group(1).strip()
    except subprocess.TimeoutExpired:
        pass
    return info


# ---------------------------------------------------------------------------
# report

ROWS = [
    # key, label, format
    ("hs_rate", "handshake+CONNACK conn/s (%d clients)", "%.0f"),
    ("hs_p50", "  latency p50 ms", "%.2f"),
    ("hs_p99", "  latency p99 ms", "%.2f"),
    ("hs_door_cpu", "  door CPU ms/conn", "%.3f"),
    ("hs_server_cpu", "  door+broker CPU ms/conn", "%.3f"),
    ("hs_client_cpu", "  client CPU ms/conn (Python)", "%.3f"),
    ("hs_busy", "  CPU busy % of all cores", "%.0f"),
    ("hs_machine", "  machine busy % (every process)", "%.0f"),
    ("stime_rate", "s_time conn/s (1 C client, TLS only)", "%.0f"),
] + [row for pfx, head in (
    ("si", "small msgs in: QoS 0 64 B msg/s"),
    ("sb", "small msgs both ways: msg/s")) for row in (
    (pfx + "_rate", head, "%.0f"),
    (pfx + "_cpu", "  door CPU us/msg", "%.3f"),
    (pfx + "_broker", "  broker CPU us/msg", "%.3f"),
    (pfx + "_client", "  clients CPU us/msg (pub+sub)", "%.3f"),
    (pfx + "_door_core", "  door % of one core", "%.0f"),
    (pfx + "_broker_core", "  broker % of one core", "%.0f"),
    (pfx + "_pub_core", "  publisher % of one core", "%.0f"),
    (pfx + "_sub_core", "  subscriber % of one core", "%.0f"),
    (pfx + "_busy", "  CPU busy % of all cores", "%.0f"),
    (pfx + "_machine", "  machine busy % (every process)", "%.0f"))] + [
    ("tp1024", "throughput 1 KiB MB/s", "%.1f"),
    ("tp1024_cpu", "  door CPU ms/MB", "%.2f"),
    ("tp65536", "throughput 64 KiB MB/s", "%.1f"),
    ("tp65536_cpu", "  door CPU ms/MB", "%.2f"),
    ("rss", "RSS after runs KiB", "%.0f"),
    ("hwm", "peak RSS KiB", "%.0f"),
    ("cpu_total", "CPU time whole run s", "%.2f"),
]

# Ratio columns: (heading, numerator door, denominator door).
RATIOS = [
    ("m/hap", "moat", "haproxy"),
    ("m/stun", "moat", "stunnel"),
    ("m/mosq", "moat", "mosq-tls"),
    ("pol/m", "moat+pol", "moat"),
    ("pol/hap", "moat+pol", "haproxy"),
]


def median(vals):
    return statistics.median(vals) if vals else None


def fmt(f, v):
    return "-" if v is None else f % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2f" % (a / b)


def report(b, versions, info, took):
    a = b.args
    doors = b.doors
    ratios = [r for r in RATIOS if r[1] in doors and r[2] in doors]
    say("")
    say("=" * 78)
    say("moat benchmark  %s  host %s  nproc %d  %s"
        % (time.strftime("%Y-%m-%d %H:%M %Z"), platform.node(),
           os.cpu_count(), platform.machine()))
    for v in versions:
        say("  " + v)
    say("  %d reps (median shown), %d handshake clients x %.1f s, "
        "%d small messages (window %d), %.0f MiB per throughput run "
        "(window %d KiB), run took %.0f s"
        % (a.reps, a.clients, a.duration, a.msgs, a.msg_window,
           a.bytes / 2**20, a.window // 1024, took))
    say("  load average at the start %s" % b.load)
    say("  Mosquitto set_tcp_nodelay %s%s"
        % ("false (default)" if a.mosq_default_nodelay else "true",
           "; servers on CPU %d, clients on CPU %d" % PIN if a.pin else ""))
    for d in doors:
        say("  %-9s %s" % (d, info.get(d, "")))
    for line in b.notes:
        say("  " + line)
    say("")
    say("per-repetition values:")
    for key, label, f in ROWS:
        label = label.strip()
        if "%d" in label:
            label = label % a.clients
        for d in doors:
            vals = b.results.get((key, d))
            if vals and len(vals) > 1:
                say("  %-36s %-9s %s" % (label, d,
                                         " ".join(f % v for v in vals)))
    for line in b.detail:
        say("  note: " + line)
    say("")
    hdr = "%-38s" % "metric (median)" + "".join(
        " %9s" % HEADS[d] for d in doors) + "".join(
        " %7s" % r[0] for r in ratios)
    say(hdr)
    say("-" * len(hdr))
    for key, label, f in ROWS:
        if "%d" in label:
            label = label % a.clients
        m = {d: median(b.results.get((key, d), [])) for d in doors}
        if all(v is None for v in m.values()):
            continue
        say("%-38s" % label + "".join(" %9s" % fmt(f, m[d]) for d in doors)
            + "".join(" %7s" % ratio(m[x], m[y]) for _, x, y in ratios))
    say("-" * len(hdr))
    say("ratios: " + ", ".join("%s = %s / %s" % (h, HEADS[x], HEADS[y])
                               for h, x, y in ratios) +
        "; above 1 is better for conn/s, msg/s and MB/s, worse for "
        "latency, CPU and memory.")
    say("mosq-TLS door CPU is the whole broker process (TLS + MQTT); RSS "
        "and CPU of mosq-TLS are the broker's, shared by all runs.")
    say("")
    for line in closing(b):
        say(line)
    for line in bottlenecks(b):
        say("* " + line)


def closing(b):
    """The CPU per QoS 0 message, policy on and off and HAProxy, as lines
    that can be quoted."""
    out = []
    for way, pfx in SMALL_WAYS.items():
        med = lambda d: median(  # noqa: E731
            b.results.get((pfx + "_cpu", d), []))
        m, p, h = med("moat"), med("moat+pol"), med("haproxy")
        if m is None:
            continue
        parts = ["moat %.3f" % m]
        if p is not None:
            parts.append("moat+policy %.3f" % p)
        if h is not None:
            parts.append("HAProxy %.3f" % h)
        rs = []
        if p is not None:
            rs.append("policy on/off %s%s" % (ratio(p, m), {
                True: "", None: "",
                False: " (the policy was NOT in force: see the policy "
                       "check)"}[b.policy_ok]))
        if h is not None:
            rs.append("moat/HAProxy %s" % ratio(m, h))
        if p is not None and h is not None:
            rs.append("moat+policy/HAProxy %s" % ratio(p, h))
        out.append("door CPU us per QoS 0 64-byte message, %s (median): %s%s"
                   % ({"in": "device->broker only",
                       "both": "both ways through the door"}[way],
                      ", ".join(parts),
                      "; " + ", ".join(rs) if rs else ""))
    return out + [""] if out else []


def bottlenecks(b):
    a = b.args
    out = []
    med = lambda k, d: median(b.results.get((k, d), []))  # noqa: E731
    plain = med("hs_rate", "plain")
    for d in b.doors:
        if d == "plain":
            continue
        cl, sv, busy = (med("hs_client_cpu", d), med("hs_server_cpu", d),
                        med("hs_busy", d))
        if cl is None or sv is None:
            continue
        mach = med("hs_machine", d)
        if busy is not None and mach is not None and mach > 85 and \
                mach - busy > 15:
            out.append("%s handshakes: the machine was %.0f%% busy, %.0f "
                       "points of it other processes: conn/s is bound by "
                       "that load; compare door CPU ms/conn."
                       % (d, mach, mach - busy))
        elif busy is not None and busy > 75 and cl > sv:
            out.append("%s handshakes: CPU %.0f%% busy and the Python clients "
                       "use %.1fx the CPU of door+broker per connection: the "
                       "clients share the cores and bound conn/s; compare "
                       "door CPU ms/conn instead." % (d, busy, cl / sv))
        elif busy is not None and busy < 70:
            out.append("%s handshakes: CPU only %.0f%% busy: latency-bound "
                       "(too few clients, or waits in the door); try "
                       "--clients %d." % (d, busy, a.clients * 2))
    if plain:
        out.append("plain TCP (no TLS) reaches %.0f conn/s with the same "
                   "clients: the ceiling of the Python clients plus "
                   "Mosquitto." % plain)
    out += small_bottlenecks(b, med)
    for size in (1024, 65536):
        p = med("tp%d" % size, "plain")
        for d in b.doors:
            v = med("tp%d" % size, d)
            if d != "plain" and p and v and v > 0.8 * p:
                out.append("%s %d B throughput is %.0f%% of plain TCP: at "
                           "the ceiling of the Python clients and Mosquitto, "
                           "so the door is not what limits it (see door "
                           "CPU ms/MB)."
                           % (d, size, 100 * v / p))
    return out


def small_bottlenecks(b, med):
    """Which process of a small-message run was nearest to a full core
    (each is single-threaded, so ~100% of a core is its ceiling)."""
    out = []
    for way, pfx in SMALL_WAYS.items():
        names = ((pfx + "_door_core", "the door"),
                 (pfx + "_broker_core", "Mosquitto"),
                 (pfx + "_pub_core", "the publisher"),
                 (pfx + "_sub_core", "the subscriber"))
        for d in b.doors:
            loads = [(med(k, d), who) for k, who in names
                     if med(k, d) is not None]
            if not loads:
                continue
            top, who = max(loads)
            busy = med(pfx + "_busy", d)
            mach = med(pfx + "_machine", d)
            if busy is not None and mach is not None and mach > 85 and \
                    mach - busy > 15:
                bound = ("the machine was %.0f%% busy, %.0f points of it "
                         "other processes: bound by the machine's other "
                         "load (%s busiest, %.0f%% of a core)"
                         % (mach, mach - busy, who, top))
            elif busy is not None and busy > 85:
                bound = ("all cores busy (%.0f%%), %s busiest (%.0f%% of a "
                         "core): bound by the machine" % (busy, who, top))
            elif top > 85:
                bound = "bound by %s (%.0f%% of a core)" % (who, top)
            else:
                bound = ("no process near a full core (busiest %s, %.0f%%; "
                         "all %.0f%% of the cores): bound by the hand-offs "
                         "between processes" % (who, top, busy or 0))
            out.append("%s small messages %s: %s." % (d, way, bound))
    if med("si_rate", "plain"):
        out.append("small messages: read door CPU us/msg; msg/s says as "
                   "much about Mosquitto and the clients sharing 2 cores "
                   "(plain TCP: %.0f msg/s)." % med("si_rate", "plain"))
    return out


# ---------------------------------------------------------------------------

def versions(t):
    out = []
    r = t.moat_run(["--version"])
    out.append(" / ".join(l.strip() for l in r.stdout.splitlines() if l))
    if shutil.which("haproxy"):
        r = mt.run_cmd(["haproxy", "-vv"])
        lines = [l.strip() for l in r.stdout.splitlines()
                 if l.startswith(("HAProxy version", "Running on OpenSSL"))]
        out.append(" / ".join(lines))
    if shutil.which("stunnel"):
        r = mt.run_cmd(["stunnel", "-version"])
        lines = [l.strip() for l in (r.stdout + r.stderr).splitlines()
                 if l.strip().startswith("stunnel ") or "OpenSSL" in l]
        out.append(" / ".join(lines[:3]))
    r = mt.run_cmd(["mosquitto", "-h"])
    out.append((r.stdout + r.stderr).splitlines()[0].strip())
    r = mt.run_cmd(["openssl", "version"])
    out.append(r.stdout.strip() + " (clients: Python %s, %s)"
               % (platform.python_version(), ssl.OPENSSL_VERSION))
    return out


TOOLS = {"mosquitto": "mosquitto", "openssl": "openssl",
         "stunnel": "stunnel4", "haproxy": "haproxy"}
PIN = (1, 0)    # (CPU of the servers, CPU of the clients) with --pin


def variant_extra(args):
    """The text appended to moat.ini for moat+pol, or None."""
    text = ""
    if args.moat_ini_extra:
        text += mt.read_text(args.moat_ini_extra)
        if text and not text.endswith("\n"):
            text += "\n"
    if args.policy:
        text += "\n" + POLICY
    return text if (args.policy or args.moat_ini_extra) else None


def start_servers(t, b, args):
    """Broker, moat, moat+pol, HAProxy and stunnel; fills b.ports,
    b.pids and b.doors. Returns {name: Proc} to watch."""
    tls_port = mt.free_port()
    broker = start_broker(t, tls_port, not args.mosq_default_nodelay)
    backend = "127.0.0.1:%d" % broker.port
    procs = {"mosquitto": broker, "moat": t.start_moat(backend)}
    extra = variant_extra(args)
    if extra is not None:
        m, err = start_moat_variant(t, backend, extra)
        if m is None:
            what = ("the [policy] section" if args.policy
                    else "the text of --moat-ini-extra")
            note = "%s skipped: moat refused %s (%s)" % (
                "moat+policy" if args.policy else "moat+pol", what, err)
            say("  " + note)
            b.notes.append(note)
        else:
            procs["moat+pol"] = m
            b.notes.append("moat+pol  moat.ini + %s" % " + ".join(
                ([args.moat_ini_extra] if args.moat_ini_extra else []) +
                (["[policy] publish/subscribe = bench/{identity}/# "
                  "(identity %r)" % IDENTITY] if args.policy else [])))
    for name, cls in (("haproxy", HAProxy), ("stunnel", Stunnel)):
        if shutil.which(name) is None:
            note = "%s skipped: not installed (Debian: apt-get install %s)" \
                % (name, TOOLS[name])
            say("  " + note)
            b.notes.append(note)
        else:
            procs[name] = cls(t, broker.port)
    for d in DOORS:
        if d in procs:
            b.ports[d] = procs[d].port
    b.ports["mosq-tls"] = tls_port
    b.ports["plain"] = broker.port
    b.pids = {name: p.pid for name, p in procs.items()}
    b.doors = [d for d in DOORS if d in b.ports]
    return procs


def main(t, args):
    for tool in ("mosquitto", "openssl"):
        pkg = TOOLS[tool]
        if shutil.which(tool) is None:
            raise mt.Skip("%s not found on PATH (Debian: apt-get install %s)"
                          % (tool, pkg))
    if args.moat_ini_extra and not os.path.isfile(args.moat_ini_extra):
        raise mt.Failure("--moat-ini-extra: no file %s" % args.moat_ini_extra)
    t0 = time.monotonic()
    vers = versions(t)
    b = Bench(t, args)
    t.step("certificates and servers")
    ca = t.pki.ca
    c, k = t.pki.device(IDENTITY)
    if args.pin:
        os.sched_setaffinity(0, {PIN[0]})     # the servers inherit it
    procs = start_servers(t, b, args)
    if args.pin:
        os.sched_setaffinity(0, {PIN[1]})     # the clients inherit this
    for d in b.doors:
        b.ctx[d] = None if d == "plain" else \
            mt.client_context(ca=ca, cert=c, key=k)
    info = {d: probe(b, d) for d in b.doors}
    if "moat+pol" in b.doors and args.policy:
        info["moat+pol"] += "; " + policy_probe(b)
    for d in b.doors:
        say("  %-9s port %d: %s" % (d, b.ports[d], info[d]))
    hs_doors = [d for d in b.doors if d in HS_DOORS]

    for rep in range(1, args.reps + 1):
        t.step("repetition %d of %d: handshakes" % (rep, args.reps))
        for d in rotate(hs_doors, rep):
            b.handshakes(d, rep)
        if args.stime:
            t.step("repetition %d of %d: openssl s_time" % (rep, args.reps))
            for d in rotate([d for d in hs_doors if d != "plain"], rep):
                b.s_time(d, rep)
        t.step("repetition %d of %d: small messages" % (rep, args.reps))
        for way in SMALL_WAYS:
            for d in rotate(b.doors, rep):
                b.small(d, rep, way)
        t.step("repetition %d of %d: throughput" % (rep, args.reps))
        for size in (1024, 65536):
            for d in rotate(b.doors, rep):
                b.throughput(d, size, rep)
        for name, p in procs.items():
            if not p.alive():
                raise mt.Failure("%s exited during the benchmark:\n%s"
                                 % (name, mt.tail(p.log)))

    for name, p in procs.items():
        door = "mosq-tls" if name == "mosquitto" else name
        rss, hwm = mem_kib(p.pid)
        b.add("rss", door, rss)
        b.add("hwm", door, hwm)
        b.add("cpu_total", door, cpu_s(p.pid))
    report(b, vers, info, time.monotonic() - t0)


def rotate(seq, n):
    """The doors take turns going first, so none always runs on a machine
    that the previous run left warm (or busy)."""
    n %= len(seq)
    return seq[n:] + seq[:n]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="moat vs HAProxy vs stunnel vs Mosquitto TLS on "
        "loopback (not a test: prints numbers and ratios)")
    p.add_argument("--quick", action="store_true",
                   help="shorter runs (about a minute in all)")
    p.add_argument("--reps", type=int, default=3,
                   help="repetitions of each measurement (median shown)")
    p.add_argument("--clients", type=int, default=4,
                   help="parallel handshake client processes (default 4)")
    p.add_argument("--duration", type=float,
                   help="seconds per handshake run (default 4, quick 1)")
    p.add_argument("--msgs", type=int,
                   help="messages per small-message run "
                   "(default 200000, quick 20000)")
    p.add_argument("--msg-window", type=int, default=20000,
                   help="messages the small-message publisher may be "
                   "ahead of the subscriber (default 20000)")
    p.add_argument("--mib", type=float,
                   help="MiB of payload per throughput run "
                   "(default 32, quick 8)")
    p.add_argument("--stime", type=int,
                   help="seconds per openssl s_time run, 0 = skip "
                   "(default 2, quick 1)")
    p.add_argument("--policy", action="store_true",
                   help="add the moat+pol door: moat.ini plus [policy] "
                   "publish = subscribe = bench/{identity}/#")
    p.add_argument("--moat-ini-extra", metavar="FILE",
                   help="add the moat+pol door: moat.ini plus the text of "
                   "FILE (with --policy, plus the [policy] section too)")
    p.add_argument("--pin", action="store_true",
                   help="servers on CPU %d, clients on CPU %d" % PIN)
    p.add_argument("--mosq-default-nodelay", action="store_true",
                   help="leave Mosquitto's set_tcp_nodelay at its default "
                   "(false): its TLS listener then waits on Nagle")
    p.add_argument("--window", type=int, default=4 << 20,
                   help="bytes the publisher may be ahead of the subscriber")
    a = p.parse_args(argv)
    if a.duration is None:
        a.duration = 1.0 if a.quick else 4.0
    if a.mib is None:
        a.mib = 8 if a.quick else 32
    if a.stime is None:
        a.stime = 1 if a.quick else 2
    if a.msgs is None:
        a.msgs = 20000 if a.quick else 200000
    a.bytes = int(a.mib * 2**20)
    a.tput_timeout = 10 if a.quick else 20
    if not (1 <= a.reps <= 20 and 1 <= a.clients <= 64 and
            0.2 <= a.duration <= 60 and 0.01 <= a.mib <= 1024 and
            0 <= a.stime <= 30 and 1000 <= a.msgs <= 10**8 and
            100 <= a.msg_window <= 10**7):
        p.error("--reps 1..20, --clients 1..64, --duration 0.2..60, "
                "--mib 0.01..1024, --stime 0..30, --msgs 1000..1e8, "
                "--msg-window 100..1e7")
    if a.pin and os.cpu_count() < 2:
        p.error("--pin needs two CPUs")
    return a


if __name__ == "__main__":
    ARGS = parse_args(sys.argv[1:])
    mt.run(lambda t: main(t, ARGS), "bench")
