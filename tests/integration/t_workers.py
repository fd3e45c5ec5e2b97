#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""[process] workers: several worker threads, each with its own event loop
and its own listening socket, and one worker binding without SO_REUSEPORT.

  workers = 2    moat says "2 workers" when ready; 24 devices from 24
                 source addresses (127.0.0.10-33) connect one after
                 another, each gets CONNACK 0, and the conn_closed lines
                 name both worker=0 and worker=1 (moat steers connections
                 by source address, and these 24 addresses hash to both);
                 8 devices from one address all land on one worker (so a
                 per-address budget holds for the address as a whole); a
                 publish goes end to end; a socket with SO_REUSEPORT can
                 join the port (moat set it).
  reload         SIGHUP with a new username template reaches both workers:
                 24 more devices, on both workers, all carry the new
                 username; moat exits 0 on SIGTERM with every loop closed,
                 and its last line counts the connections of both workers.
  auto           without [process], moat starts one worker per CPU it may
                 run on, and says how many.
  workers = 1    the socket is bound without SO_REUSEPORT: a second moat on
                 the same port fails to start (exit 1, naming bind and the
                 address in use), with workers = 1 and with workers = 2,
                 and so does a plain socket with SO_REUSEPORT; the first
                 moat keeps serving."""

import os
import re
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

DEVICES = 24


def reuseport_bind(port):
    """Bind a SO_REUSEPORT socket to 127.0.0.1:port: None, or the error."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        return None
    except OSError as e:
        return e
    finally:
        s.close()


def devices(t, moat, ctx, tag, n=DEVICES, source=None):
    """n devices connect and close, device i from 127.0.0.(10+i) or all from
    source; returns their conn_closed lines."""
    mark = moat.mark()
    for i in range(n):
        ok, how = mt.try_tls_mqtt(moat.port, ctx, "%s-%d" % (tag, i),
                                  source=source or "127.0.0.%d" % (10 + i))
        if not ok:
            t.fail("device %s-%d: %s" % (tag, i, how))
    t.ok("%d devices got CONNACK 0" % n)
    return moat.wait_closed(mark, n, timeout=10)


def workers_of(t, lines):
    seen = {}
    for ln in lines:
        m = re.search(r"\bworker=(\d+)", ln)
        if not m:
            t.fail("conn_closed without worker=: %s" % ln)
        seen[int(m.group(1))] = seen.get(int(m.group(1)), 0) + 1
    mt.say("      connections per worker: %s" % ", ".join(
        "worker %d: %d" % kv for kv in sorted(seen.items())))
    return seen


def two_workers(t, broker, ctx):
    t.step("moat with [process] workers = 2")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-w2",
                        workers="2")
    t.check(mt.wait_for(lambda: "; 2 workers" in moat.text(), 5),
            "moat says it runs 2 workers", mt.tail(moat.log, 5))
    seen = workers_of(t, devices(t, moat, ctx, "w2"))
    t.check(sorted(seen) == [0, 1], "connections landed on both workers "
            "(%r)" % seen)
    one = workers_of(t, devices(t, moat, ctx, "w2one", n=8,
                                source="127.0.0.77"))
    t.check(len(one) == 1, "8 connections from one address land on one "
            "worker (%r)" % one)
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/workers/two",
                        tag="w2")
    err = reuseport_bind(moat.port)
    t.check(err is None, "a SO_REUSEPORT socket may join the port (%s)"
            % (err or "bound"))

    t.step("SIGHUP with username = w-{identity} reaches both workers")
    t.write_ini("moat-w2.ini", "127.0.0.1:%d" % broker.port,
                identity={"unknown": "template", "client_id": "keep",
                          "username": "w-{identity}"},
                workers="2")
    mark = moat.mark()
    moat.p.send_signal(signal.SIGHUP)
    t.check(mt.wait_for(lambda: "reloaded " in moat.text()[mark:], 10),
            "moat reloaded", mt.tail(moat.log, 10))
    lines = devices(t, moat, ctx, "w2r")
    seen = workers_of(t, lines)
    t.check(sorted(seen) == [0, 1], "after the reload, connections land "
            "on both workers (%r)" % seen)
    old = [ln for ln in lines if "username=w-sensor-a " not in ln]
    t.check(not old, "every connection, on either worker, carries the "
            "new username w-sensor-a", "\n".join(old))
    moat.stop_and_check()
    t.ok("moat exited 0 on SIGTERM")
    m = re.search(r"stopped; (\d+) connections accepted", moat.text())
    t.check(m and int(m.group(1)) >= 2 * DEVICES,
            "its last line sums both workers' counters (%s accepted, at "
            "least %d)" % (m.group(1) if m else "none", 2 * DEVICES),
            mt.tail(moat.log, 3))


def second_moat(t, broker, port, n):
    """Start a moat with n workers on port; must fail. Returns its log."""
    ini = t.write_ini("second-%d.ini" % n, "127.0.0.1:%d" % broker.port,
                      listen=("127.0.0.1:%d" % port,), workers=str(n))
    log = t.path("second-%d.log" % n)
    p = mt.Proc(t, "moat-second", [t.moat, "-c", ini], log,
                env=t.moat_env())
    try:
        p.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.stop()
        t.fail("a second moat with workers = %d started on port %d"
               % (n, port))
    rc = p.p.returncode
    p.stop()
    t.check_sanitizers(log)
    return rc, p.text()


def one_worker(t, broker, ctx):
    t.step("moat with [process] workers = 1")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-w1",
                        workers="1")
    t.check(mt.wait_for(lambda: "; 1 worker" in moat.text(), 5),
            "moat says it runs 1 worker", mt.tail(moat.log, 5))
    for n in (1, 2):
        rc, out = second_moat(t, broker, moat.port, n)
        t.check(rc == 1 and "bind" in out and "in use" in out,
                "a second moat with workers = %d on port %d fails to start "
                "(exit %s)" % (n, moat.port, rc), out)
        mt.say("      it said: %s" % out.strip().splitlines()[-1])
    err = reuseport_bind(moat.port)
    t.check(err is not None, "a SO_REUSEPORT socket cannot join the port "
            "(%s)" % (err or "it bound"))
    ok, how = mt.try_tls_mqtt(moat.port, ctx, "w1-after")
    t.check(ok, "the first moat still serves devices (%s)" % how)
    closed = moat.wait_closed(0, 1)
    t.check("worker=0" in closed[0], "its connection names worker=0",
            closed[0])
    moat.stop_and_check()


def auto_workers(t, broker, ctx):
    cpus = len(os.sched_getaffinity(0))
    t.step("moat without [process]: workers = auto (%d CPUs here)" % cpus)
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-auto",
                        workers="")
    want = "; %d worker%s" % (cpus, "" if cpus == 1 else "s")
    t.check(mt.wait_for(lambda: want in moat.text(), 5),
            "moat says it runs %d worker(s)" % cpus, mt.tail(moat.log, 5))
    ok, how = mt.try_tls_mqtt(moat.port, ctx, "auto")
    t.check(ok, "a device connects (%s)" % how)
    moat.stop_and_check()


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    cert, key = t.pki.device("sensor-a")
    broker = t.mosquitto()
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    with t.subcase("two_workers"):
        two_workers(t, broker, ctx)
    with t.subcase("auto_workers"):
        auto_workers(t, broker, ctx)
    with t.subcase("one_worker"):
        one_worker(t, broker, ctx)


if __name__ == "__main__":
    mt.run(main, "t_workers")
