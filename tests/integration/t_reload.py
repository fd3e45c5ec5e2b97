#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SIGHUP reloads the configuration for new connections: a device denied
in the new identity map is refused from then on, and its connection that
was already open is closed (issue 9: revocation reaches live sessions;
t_revoke.py tests that in depth). A file with
an error is refused and the running configuration kept; nothing falls back
to defaults. moat tells systemd about it over $NOTIFY_SOCKET: READY=1 at
start, RELOADING=1 and READY=1 around a reload, STOPPING=1 at SIGTERM."""

import os
import re
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

MAP_BOTH = "[sensor-a]\n\n[sensor-b]\n"
MAP_DENY_A = "[sensor-a]\ndeny = true\n\n[sensor-b]\n"


def connack(t, port, dev, client_id):
    """Connect as dev and return (client, CONNACK code); None on EOF."""
    cert, key = t.pki.device(dev)
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    c = mt.RawClient("127.0.0.1", port, ctx, timeout=10)
    c.send(mt.mqtt_connect(client_id))
    try:
        first, body = c.read_packet(5)
    except EOFError:
        return c, None
    t.check(first >> 4 == 2, "the first packet back is a CONNACK",
            "got type %d" % (first >> 4))
    return c, body[1]


def logged(moat, pattern, start, timeout=10):
    """Wait for pattern in moat's log after offset start."""
    rx = re.compile(pattern)
    return mt.wait_for(lambda: rx.search(moat.text()[start:]), timeout)


def ping(c):
    """PINGREQ; True when PINGRESP comes back."""
    c.send(b"\xc0\x00")
    first, _ = c.read_packet(5)
    return first == 0xd0


def notifications(sock, want, timeout=5):
    """Read datagrams until every state in want was seen (in order)."""
    got = []
    for _ in mt.deadline_loop(timeout, 0):
        sock.settimeout(0.2)
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        if [g for g in got if g in want] == list(want):
            break
    return got


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    mapfile = t.write("identities.ini", MAP_BOTH)
    ident = {"unknown": "reject", "map": mapfile}

    # A datagram socket standing in for systemd's notification socket.
    nsock_path = t.path("notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    os.environ["NOTIFY_SOCKET"] = nsock_path
    try:
        moat = t.start_moat("127.0.0.1:%d" % broker.port, identity=ident)
    finally:
        del os.environ["NOTIFY_SOCKET"]

    t.step("start-up: READY=1 on the notification socket")
    got = notifications(nsock, ["READY=1"])
    t.check("READY=1" in got, "moat sent READY=1", repr(got))

    t.step("sensor-a and sensor-b are in the map: both get in")
    a_old, code = connack(t, moat.port, "sensor-a", "a-old")
    t.check(code == 0, "sensor-a: CONNACK 0 (got %r)" % code)
    b, code = connack(t, moat.port, "sensor-b", "b-1")
    t.check(code == 0, "sensor-b: CONNACK 0 (got %r)" % code)
    b.close()

    t.step("deny sensor-a in the map, then SIGHUP")
    t.write("identities.ini", MAP_DENY_A)
    mark = moat.mark()
    moat.p.send_signal(signal.SIGHUP)
    t.check(logged(moat, r"reloaded ", mark),
            "moat logged the reload", mt.tail(moat.log))
    got = notifications(nsock, ["RELOADING=1", "READY=1"])
    t.check("RELOADING=1" in got and got[-1] == "READY=1",
            "RELOADING=1 then READY=1 on the notification socket", repr(got))

    t.step("a new sensor-a connection is refused; the open one is closed")
    a_new, code = connack(t, moat.port, "sensor-a", "a-new")
    t.check(code == 0x05, "new sensor-a: CONNACK 0x05 not authorised "
            "(got %r)" % code)
    a_new.close()
    data, how = a_old.read_rest(3)
    t.check(how == "eof", "the sensor-a connection opened before the "
            "reload is closed (%s)" % how)
    a_old.close()
    b, code = connack(t, moat.port, "sensor-b", "b-2")
    t.check(code == 0, "sensor-b still gets in (got %r)" % code)
    b.close()

    t.step("a configuration with an error: SIGHUP keeps the running one")
    with open(moat.ini) as f:
        good = f.read()
    t.write(os.path.basename(moat.ini), good + "\n[limits]\nno_such_key = 1\n")
    mark = moat.mark()
    moat.p.send_signal(signal.SIGHUP)
    t.check(logged(moat, r"reload failed.*no_such_key", mark),
            "moat logged that the reload failed, naming the problem",
            mt.tail(moat.log))
    t.check(moat.alive(), "moat is still running")
    a_new, code = connack(t, moat.port, "sensor-a", "a-new2")
    t.check(code == 0x05, "sensor-a is still refused: the denying map "
            "stays in force (got %r)" % code)
    a_new.close()
    b, code = connack(t, moat.port, "sensor-b", "b-3")
    t.check(code == 0, "sensor-b still gets in (got %r)" % code)
    b.close()

    t.step("SIGTERM: STOPPING=1, clean exit")
    moat.stop_and_check()
    got = notifications(nsock, ["STOPPING=1"])
    t.check("STOPPING=1" in got, "moat sent STOPPING=1", repr(got))
    nsock.close()


if __name__ == "__main__":
    mt.run(main, "t_reload")
