#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark: moat against stunnel and Mosquitto's own TLS listener.

Three TLS front doors, all in the same run, all in front of one Mosquitto
on 127.0.0.1 (plain listener for moat and stunnel, a TLS listener with
require_certificate for Mosquitto itself), plus plain TCP straight to that
broker as the ceiling that shows what the Python clients and the broker
can do without TLS:

  handshakes   N client processes, each in a loop: TCP connect, full TLS
               handshake with an ECDSA P-256 client certificate, MQTT
               CONNECT, wait for CONNACK, DISCONNECT, close.  conn/s,
               p50/p99 latency (connect to CONNACK), and CPU per
               connection of the front door, the broker and the clients
               (from /proc and os.times), so that a client-bound run can
               be told from a server-bound one.
  s_time       openssl s_time -new: one C client, TLS handshakes only (no
               MQTT), as a cross-check that is not limited by Python.
  throughput   one publisher and one subscriber through the door, QoS 0,
               1 KiB and 64 KiB payloads, a fixed byte count; MB/s of
               payload and the door's CPU per MB.  The publisher keeps at
               most --window bytes ahead of the subscriber, so Mosquitto
               never has to drop QoS 0 messages.
  footprint    RSS (now and peak) and total CPU time of moat, stunnel and
               Mosquitto after all runs.

Each measurement is repeated --reps times (default 3), the doors taking
turns within each repetition; the table shows medians and the ratios
moat/stunnel and moat/mosquitto-TLS.  This is not a test: it never fails
on a number.  Machines are small and noisy; read the per-repetition
spread printed above the table before trusting a ratio.

Loopback only; every server is started and stopped by PID through the
integration harness (tests/integration/moattest.py); client processes are
ended by PID too, also on Ctrl-C.  Needs mosquitto, openssl and stunnel
(Debian: apt-get install mosquitto openssl stunnel4).

  tests/bench/run.py            about 3 minutes
  tests/bench/run.py --quick    about 40 seconds
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

DOORS = ("moat", "stunnel", "mosq-tls", "plain")
TLS_DOORS = DOORS[:3]
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


def sub_worker(conn, port, ctx, topic, total, ready, got, done_at, deadline):
    reset_signals()
    try:
        s = open_mqtt(port, ctx, "bench-sub-%d" % os.getpid())
        s.sendall(mt.mqtt_subscribe(1, topic, 0))
        suback = b""
        while len(suback) < 5:
            chunk = s.recv(5 - len(suback))
            if not chunk:
                raise EOFError("closed before SUBACK")
            suback += chunk
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
        try:
            s.sendall(DISCONNECT)
        except OSError:
            pass
        s.close()
    except Exception as e:
        ready.set()
        conn.send(("error", repr(e)))


def pub_worker(conn, port, ctx, topic, pkt, count, window, ready, got,
               started, deadline):
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
        try:
            s.sendall(DISCONNECT)
        except OSError:
            pass
        s.close()
    except Exception as e:
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
        self.pids = {}      # door -> pid of its own process (not plain)
        self.results = {}   # (metric, door) -> [values per rep]
        self.detail = []

    def add(self, metric, door, value):
        self.results.setdefault((metric, door), []).append(value)

    def cpu(self):
        return {name: cpu_s(pid) for name, pid in self.pids.items()}

    def handshakes(self, door, rep):
        a = self.args
        port, ctx = self.ports[door], self.ctx[door]
        cpu0 = self.cpu()
        start = time.monotonic() + 0.3
        end = start + a.duration
        with Workers() as w:
            conns = [w.start(hs_worker, port, ctx, "hs%d-%s-%d" % (rep, door, i),
                             start, end)
                     for i in range(a.clients)]
            res = [recv(c, a.duration + 30) for c in conns]
        cpu1 = self.cpu()
        lat = sorted(x for r in res for x in r[0])
        errs = sum(r[1] for r in res)
        wall = max(r[3] for r in res) - start
        n = len(lat)
        rate = n / wall if wall > 0 else 0.0
        broker = cpu1["mosquitto"] - cpu0["mosquitto"]
        doorcpu = (cpu1[door] - cpu0[door]) if door in ("moat", "stunnel") \
            else 0.0
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
        topic = "bench/%d/%s/%d" % (rep, door, size)
        pkt = mt.mqtt_publish(topic, os.urandom(size))
        count = max(1, a.bytes // size)
        total = count * len(pkt)
        c = mp.get_context("fork")
        ready = c.Event()
        got = c.RawValue("q", 0)
        done_at = c.RawValue("d", 0.0)
        started = c.RawValue("d", 0.0)
        deadline = time.monotonic() + a.tput_timeout
        cpu0 = self.cpu()
        with Workers() as w:
            sc = w.start(sub_worker, port, ctx, topic, total, ready, got,
                         done_at, deadline)
            pc = w.start(pub_worker, port, ctx, topic, pkt, count, a.window,
                         ready, got, started, deadline)
            sres = recv(sc, a.tput_timeout + 30)
            pres = recv(pc, a.tput_timeout + 30)
        cpu1 = self.cpu()
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
        if door in ("moat", "stunnel") and mb:
            self.add("tp%d_cpu" % size, door,
                     (cpu1[door] - cpu0[door]) / mb * 1e3)
        elif door == "mosq-tls" and mb:
            self.add("tp%d_cpu" % size, door,
                     (cpu1["mosquitto"] - cpu0["mosquitto"]) / mb * 1e3)
        say("  rep %d %-8s %5d B:   %7.1f MB/s (%.1f MB in %.2f s)%s"
            % (rep, door, size, mbps, mb, secs, note))


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
    # key, label, format, higher is better?
    ("hs_rate", "handshake+CONNACK conn/s (%d clients)", "%.0f", True),
    ("hs_p50", "  latency p50 ms", "%.2f", False),
    ("hs_p99", "  latency p99 ms", "%.2f", False),
    ("hs_door_cpu", "  door CPU ms/conn", "%.3f", False),
    ("hs_server_cpu", "  door+broker CPU ms/conn", "%.3f", False),
    ("hs_client_cpu", "  client CPU ms/conn (Python)", "%.3f", False),
    ("hs_busy", "  CPU busy % of all cores", "%.0f", None),
    ("stime_rate", "s_time conn/s (1 C client, TLS only)", "%.0f", True),
    ("tp1024", "throughput 1 KiB MB/s", "%.1f", True),
    ("tp1024_cpu", "  door CPU ms/MB", "%.2f", False),
    ("tp65536", "throughput 64 KiB MB/s", "%.1f", True),
    ("tp65536_cpu", "  door CPU ms/MB", "%.2f", False),
    ("rss", "RSS after runs KiB", "%.0f", False),
    ("hwm", "peak RSS KiB", "%.0f", False),
    ("cpu_total", "CPU time whole run s", "%.2f", False),
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
    say("")
    say("=" * 78)
    say("moat benchmark  %s  host %s  nproc %d  %s"
        % (time.strftime("%Y-%m-%d %H:%M %Z"), platform.node(),
           os.cpu_count(), platform.machine()))
    for v in versions:
        say("  " + v)
    say("  %d reps (median shown), %d handshake clients x %.1f s, "
        "%.0f MiB per throughput run, window %d KiB, run took %.0f s"
        % (a.reps, a.clients, a.duration, a.bytes / 2**20, a.window // 1024,
           took))
    say("  Mosquitto set_tcp_nodelay %s"
        % ("false (default)" if a.mosq_default_nodelay else "true"))
    for d in DOORS:
        say("  %-9s %s" % (d, info.get(d, "")))
    say("")
    say("per-repetition values:")
    for key, label, f, _ in ROWS:
        for d in DOORS:
            vals = b.results.get((key, d))
            if vals and len(vals) > 1:
                say("  %-32s %-9s %s" % (label.strip() % a.clients
                                         if "%d" in label else label.strip(),
                                         d, " ".join(f % v for v in vals)))
    for line in b.detail:
        say("  note: " + line)
    say("")
    hdr = "%-38s %9s %9s %9s %9s %7s %7s" % (
        "metric (median)", "moat", "stunnel", "mosq-TLS", "plainTCP",
        "m/stun", "m/mosq")
    say(hdr)
    say("-" * len(hdr))
    for key, label, f, _ in ROWS:
        if "%d" in label:
            label = label % a.clients
        m = {d: median(b.results.get((key, d), [])) for d in DOORS}
        if all(v is None for v in m.values()):
            continue
        say("%-38s %9s %9s %9s %9s %7s %7s" % (
            label, fmt(f, m["moat"]), fmt(f, m["stunnel"]),
            fmt(f, m["mosq-tls"]), fmt(f, m["plain"]),
            ratio(m["moat"], m["stunnel"]), ratio(m["moat"], m["mosq-tls"])))
    say("-" * len(hdr))
    say("ratios are moat / peer: above 1 is better for conn/s and MB/s, "
        "worse for latency, CPU and memory.")
    say("mosq-TLS door CPU is the whole broker process (TLS + MQTT); RSS "
        "and CPU of mosq-TLS are the broker's, shared by all runs.")
    say("")
    for line in bottlenecks(b):
        say("* " + line)


def bottlenecks(b):
    a = b.args
    out = []
    med = lambda k, d: median(b.results.get((k, d), []))  # noqa: E731
    plain = med("hs_rate", "plain")
    for d in TLS_DOORS:
        cl, sv, busy = (med("hs_client_cpu", d), med("hs_server_cpu", d),
                        med("hs_busy", d))
        if cl is None or sv is None:
            continue
        if busy is not None and busy > 75 and cl > sv:
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
    for size in (1024, 65536):
        p = med("tp%d" % size, "plain")
        for d in TLS_DOORS:
            v = med("tp%d" % size, d)
            if p and v and v > 0.8 * p:
                out.append("%s %d B throughput is %.0f%% of plain TCP: at "
                           "the ceiling of the Python clients and Mosquitto, "
                           "so the door is not what limits it (see door "
                           "CPU ms/MB)."
                           % (d, size, 100 * v / p))
    return out


# ---------------------------------------------------------------------------

def versions(t):
    out = []
    r = t.moat_run(["--version"])
    out.append(" / ".join(l.strip() for l in r.stdout.splitlines() if l))
    r = mt.run_cmd(["stunnel", "-version"])
    lines = [l.strip() for l in (r.stdout + r.stderr).splitlines()
             if l.strip().startswith("stunnel ") or "OpenSSL" in l]
    out.append(" / ".join(lines[:3]))
    r = mt.run_cmd(["mosquitto", "-h"])
    out.append((r.stdout + r.stderr).splitlines()[0].strip())
    r = mt.run_cmd(["openssl", "version"])
    out.append(r.stdout.strip() + " (clients: Python %s, %s)"
               % (platform.python_version(), ssl.OPENSSL_VERSION))
    r = mt.run_cmd(["nproc"])
    out.append("nproc " + r.stdout.strip())
    return out


def main(t, args):
    for tool in ("mosquitto", "openssl", "stunnel"):
        if shutil.which(tool) is None:
            raise mt.Skip("%s not found on PATH (Debian: apt-get install %s)"
                          % (tool, {"stunnel": "stunnel4"}.get(tool, tool)))
    t0 = time.monotonic()
    vers = versions(t)
    b = Bench(t, args)
    t.step("certificates and servers")
    ca = t.pki.ca
    c, k = t.pki.device("bench")
    tls_port = mt.free_port()
    broker = start_broker(t, tls_port, not args.mosq_default_nodelay)
    moat = t.start_moat("127.0.0.1:%d" % broker.port)
    stun = Stunnel(t, broker.port)
    b.ports = {"moat": moat.port, "stunnel": stun.port,
               "mosq-tls": tls_port, "plain": broker.port}
    b.pids = {"moat": moat.pid, "stunnel": stun.pid, "mosquitto": broker.pid}
    for d in TLS_DOORS:
        b.ctx[d] = mt.client_context(ca=ca, cert=c, key=k)
    b.ctx["plain"] = None
    info = {d: probe(b, d) for d in DOORS}
    for d in DOORS:
        say("  %-9s port %d: %s" % (d, b.ports[d], info[d]))

    for rep in range(1, args.reps + 1):
        t.step("repetition %d of %d: handshakes" % (rep, args.reps))
        for d in rotate(DOORS, rep):
            b.handshakes(d, rep)
        if args.stime:
            t.step("repetition %d of %d: openssl s_time" % (rep, args.reps))
            for d in rotate(TLS_DOORS, rep):
                b.s_time(d, rep)
        t.step("repetition %d of %d: throughput" % (rep, args.reps))
        for size in (1024, 65536):
            for d in rotate(DOORS, rep):
                b.throughput(d, size, rep)
        for name, p in (("moat", moat), ("stunnel", stun),
                        ("mosquitto", broker)):
            if not p.alive():
                raise mt.Failure("%s exited during the benchmark:\n%s"
                                 % (name, mt.tail(p.log)))

    for name, pid in (("moat", moat.pid), ("stunnel", stun.pid),
                      ("mosq-tls", broker.pid)):
        rss, hwm = mem_kib(pid)
        b.add("rss", name, rss)
        b.add("hwm", name, hwm)
        b.add("cpu_total", name, cpu_s(pid))
    report(b, vers, info, time.monotonic() - t0)


def rotate(seq, n):
    """The doors take turns going first, so none always runs on a machine
    that the previous run left warm (or busy)."""
    n %= len(seq)
    return seq[n:] + seq[:n]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="moat vs stunnel vs Mosquitto TLS on loopback "
        "(not a test: prints numbers and ratios)")
    p.add_argument("--quick", action="store_true",
                   help="shorter runs (about 40 s in all)")
    p.add_argument("--reps", type=int, default=3,
                   help="repetitions of each measurement (median shown)")
    p.add_argument("--clients", type=int, default=4,
                   help="parallel handshake client processes (default 4)")
    p.add_argument("--duration", type=float,
                   help="seconds per handshake run (default 4, quick 1)")
    p.add_argument("--mib", type=float,
                   help="MiB of payload per throughput run "
                   "(default 32, quick 8)")
    p.add_argument("--stime", type=int,
                   help="seconds per openssl s_time run, 0 = skip "
                   "(default 2, quick 1)")
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
    a.bytes = int(a.mib * 2**20)
    a.tput_timeout = 10 if a.quick else 20
    if not (1 <= a.reps <= 20 and 1 <= a.clients <= 64 and
            0.2 <= a.duration <= 60 and 0.01 <= a.mib <= 1024 and
            0 <= a.stime <= 30):
        p.error("--reps 1..20, --clients 1..64, --duration 0.2..60, "
                "--mib 0.01..1024, --stime 0..30")
    return a


if __name__ == "__main__":
    ARGS = parse_args(sys.argv[1:])
    mt.run(lambda t: main(t, ARGS), "bench")
