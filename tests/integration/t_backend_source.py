#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Past 28,000 connections: loopback TCP to one broker port has about 28,000
source ports per source address, and [backend] source spreads moat's
connections over several loopback addresses; a Unix socket backend has no
such limit. A test cannot reach 28,000 here, so it checks the spreading.

  source = 127.0.0.2-127.0.0.5   a broker bound to 127.0.0.1 (log_type all)
                 logs the DEVICES connections moat makes for as many
                 devices held open at once as coming from 127.0.0.2, .3, .4
                 and .5, each address DEVICES/4 times (round robin); a
                 publish goes end to end.
  no source      the twin: the same devices all arrive from 127.0.0.1.
  unix backend   a broker with only "listener 0 PATH" (Mosquitto 2.0) takes
                 DEVICES devices held open at once through moat, and a
                 publish goes end to end.
  refused        --check and start-up refuse, each at FILE:LINE of the
                 source line and saying why: an address off loopback, a
                 reversed range, IPv4 mixed with IPv6, more than 256
                 addresses, a source with a Unix socket backend, and an
                 IPv6 source with an IPv4 backend."""

import collections
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

DEVICES = 8
SOURCES = ["127.0.0.%d" % i for i in range(2, 6)]
NEW_CONN_RX = re.compile(r"New connection from (\S+?):(\d+) on port")


def source_extra(value):
    """The [backend] source line, in a second [backend] section after the
    harness's own sections."""
    return "[backend]\nsource = %s\n" % value


def hold_devices(t, moat, tag):
    """DEVICES devices connect through moat and stay connected (each got
    CONNACK 0). Returns the open clients."""
    ctx = t.device_ctx()
    clients = []
    try:
        for i in range(DEVICES):
            c = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
            clients.append(c)
            rc = c.connect("%s-%d" % (tag, i))
            t.check(rc == 0, "device %s-%d gets CONNACK 0 (got %d)"
                    % (tag, i, rc))
    except BaseException:
        close_all(clients)
        raise
    t.ok("%d devices connected at once through moat" % DEVICES)
    return clients


def close_all(clients):
    for c in clients:
        c.close()


def broker_sources(t, broker, count):
    """The source addresses of the first count connections the broker
    logged after becoming ready (its readiness probe left out)."""
    t.check(mt.wait_for(lambda: broker.new_connections() >= count, 10),
            "the broker logged %d new connections (got %d)"
            % (count, broker.new_connections()), mt.tail(broker.log))
    found = NEW_CONN_RX.findall(broker.text())[broker.baseline:]
    return [addr for addr, _ in found][:count]


def spread(t, broker):
    t.step("source = %s-%s: the broker sees the connections come from "
           "every address" % (SOURCES[0], SOURCES[-1]))
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-source",
                        extra=source_extra("%s-%s" % (SOURCES[0],
                                                      SOURCES[-1])))
    clients = hold_devices(t, moat, "spread")
    try:
        addrs = broker_sources(t, broker, DEVICES)
    finally:
        close_all(clients)
    per = collections.Counter(addrs)
    mt.say("    broker saw: %s" % ", ".join(
        "%s x%d" % (a, n) for a, n in sorted(per.items())))
    t.check(sorted(per) == SOURCES, "the connections came from %s"
            % ", ".join(SOURCES), "got %r" % addrs)
    t.check(all(n == DEVICES // len(SOURCES) for n in per.values()),
            "each address carried %d of them (round robin)"
            % (DEVICES // len(SOURCES)), "got %r" % dict(per))
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/source/spread",
                        tag="spread")
    moat.stop_and_check()


def no_source(t, broker):
    t.step("without source the same devices all come from 127.0.0.1")
    before = broker.connections()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-nosource")
    clients = hold_devices(t, moat, "plain")
    try:
        t.check(mt.wait_for(lambda: broker.connections() >= before +
                            DEVICES, 10),
                "the broker logged %d more connections" % DEVICES,
                mt.tail(broker.log))
        addrs = [a for a, _ in NEW_CONN_RX.findall(broker.text())[before:]]
    finally:
        close_all(clients)
    t.check(len(addrs) >= DEVICES and set(addrs) == {"127.0.0.1"},
            "all %d came from 127.0.0.1" % DEVICES, "got %r" % addrs)
    moat.stop_and_check()


def unix_backend(t):
    t.step("a Unix socket backend (Mosquitto: listener 0 PATH) carries "
           "%d devices at once" % DEVICES)
    sock = t.path("mqtt.sock")
    broker = t.mosquitto(unix=sock, tcp=False, name="mosquitto-unix")
    moat = t.start_moat("unix:%s" % sock, name="moat-unix")
    before = broker.connections()
    clients = hold_devices(t, moat, "unix")
    try:
        t.check(mt.wait_for(lambda: broker.connections() >= before +
                            DEVICES, 10),
                "the broker logged %d new connections on its Unix socket"
                % DEVICES, mt.tail(broker.log))
    finally:
        close_all(clients)
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/source/unix",
                        tag="unix")
    moat.stop_and_check()
    broker.stop()


def refuse(t, backend, source, why):
    t.step("source = %s with backend %s is refused (%s)"
           % (source, backend, why))
    refuse.n = getattr(refuse, "n", 0) + 1
    ini = t.write_ini("refuse-%d.ini" % refuse.n, backend,
                      extra=source_extra(source))
    with open(ini) as f:
        line = [i for i, ln in enumerate(f, 1)
                if ln.startswith("source = ")][0]
    where = "%s:%d: " % (ini, line)
    r = t.moat_run(["--check", "-c", ini], timeout=20)
    out = r.stdout + r.stderr
    t.check(r.returncode == 1, "moat --check exits 1 (got %s)"
            % r.returncode, out)
    t.check(where in out and why in out, "it says %s at %s" % (
        why, where.rstrip(": ")), out)
    mt.say("      moat said: %s" % out.strip().splitlines()[-1])

    log = t.path("refuse-%d-start.log" % refuse.n)
    p = mt.Proc(t, "moat-refuse", [t.moat, "-c", ini], log, env=t.moat_env())
    try:
        p.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.stop()
        t.fail("moat -c started with source = %s" % source)
    rc = p.p.returncode
    p.stop()
    out = p.text()
    t.check(rc == 1 and where in out, "moat -c exits 1 at start-up with "
            "the same message (got %s)" % rc, out)
    t.check("listening on" not in out, "without ever listening", out)
    t.check_sanitizers(log)


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    t.pki.device("sensor-a")
    t.pki.device("sensor-b")

    broker = t.mosquitto(host="127.0.0.1", name="mosquitto-tcp")
    spread(t, broker)
    no_source(t, broker)
    broker.stop()

    unix_backend(t)

    tcp = "127.0.0.1:1883"
    refuse(t, tcp, "10.0.0.2-10.0.0.9", "10.0.0.2 is not a loopback address")
    refuse(t, tcp, "127.0.0.9-127.0.0.2", "the first address comes after "
           "the last; write it as 127.0.0.2-127.0.0.9")
    refuse(t, tcp, "127.0.0.2-::1", "mixes IPv4 and IPv6")
    refuse(t, tcp, "127.0.0.1-127.0.1.1", "more than the 256 allowed")
    refuse(t, "unix:%s" % t.path("none.sock"), "127.0.0.2-127.0.0.5",
           "source is set but the backend is a Unix socket")
    refuse(t, tcp, "::1", "source is IPv6 but the backend address "
           "127.0.0.1 is IPv4")


if __name__ == "__main__":
    mt.run(main, "t_backend_source")
