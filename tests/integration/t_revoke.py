#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Revocation reaches live sessions: after a reload every live connection
is checked again against the new CRL and identity map, on every worker.

With workers = 2 and devices from source addresses chosen so that moat
steers them to both workers (its steering hash is recomputed here), six
devices connect, MQTT 5 and MQTT 3.1.1 alike:

  crl     the serials of sensor-a (MQTT 5, worker 0) and sensor-b (3.1.1,
          worker 1) are added to the CRL, then SIGHUP: within 2 s of the
          reload sensor-a receives DISCONNECT 0x98 (administrative
          action) and then the end of the stream, sensor-b the end of the
          stream (MQTT 3.1.1 has no DISCONNECT from the server); both
          close lines say reason=revoked and name the CRL.
  deny    deny = true for sensor-c (MQTT 5, worker 1) and sensor-d (3.1.1,
          worker 0), then SIGHUP: the same, the detail naming the map.
  others  sensor-k5 and sensor-k3 (one per worker) stay connected through
          both reloads and still get PINGRESP; a new sensor-a is refused.
"""

import ipaddress
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

NAMES = ["sensor-a", "sensor-b", "sensor-c", "sensor-d", "sensor-k5",
         "sensor-k3"]
VERSION = {"sensor-a": 5, "sensor-b": 4, "sensor-c": 5, "sensor-d": 4,
           "sensor-k5": 5, "sensor-k3": 4}
WORKER = {"sensor-a": 0, "sensor-b": 1, "sensor-c": 1, "sensor-d": 0,
          "sensor-k5": 0, "sensor-k3": 1}


def worker_of(addr, n=2):
    """The worker moat's SO_REUSEPORT program picks for an IPv4 source."""
    a = int(ipaddress.IPv4Address(addr))
    return (((a * 2654435761) & 0xffffffff) >> 16) % n


def sources():
    """A distinct source address for each device, on its worker."""
    free = ["127.0.0.%d" % i for i in range(10, 200)]
    out = {}
    for name in NAMES:
        addr = next(a for a in free if worker_of(a) == WORKER[name])
        free.remove(addr)
        out[name] = addr
    return out


def map_text(deny=()):
    return "".join("[%s]\n%s\n" % (n, "deny = true\n" if n in deny else "")
                   for n in NAMES)


def ping(c):
    c.send(b"\xc0\x00")
    first, _ = c.read_packet(5)
    return first == 0xd0


def connect_all(t, moat, src):
    conns = {}
    for name in NAMES:
        ctx = t.device_ctx(name)
        c = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10,
                         source=src[name])
        code = c.connect("cid-" + name, version=VERSION[name])
        t.check(code == 0, "%s (MQTT %s, from %s, worker %d): CONNACK 0"
                % (name, "5" if VERSION[name] == 5 else "3.1.1", src[name],
                   WORKER[name]))
        conns[name] = c
    return conns


def reload(t, moat):
    mark = moat.mark()
    moat.p.send_signal(signal.SIGHUP)
    if not mt.wait_for(lambda: re.search(r"reloaded ", moat.text()[mark:]),
                       10):
        t.fail("moat did not log the reload:\n" + mt.tail(moat.log))
    return mark, time.monotonic()


def expect_ended(t, moat, c, name, mark, t_reload, pattern):
    """c is ended within 2 s of the reload: DISCONNECT 0x98 first for MQTT
    5, then the end of the stream; its close line matches pattern."""
    if VERSION[name] == 5:
        try:
            first, body = c.read_packet(3)
        except (EOFError, OSError) as e:
            t.fail("%s: no DISCONNECT before the end (%s)" % (name, e))
        took = time.monotonic() - t_reload
        t.check(first == 0xe0 and body[:1] == b"\x98",
                "%s: DISCONNECT 0x98 after %.2f s (got %02x %s)"
                % (name, took, first, body.hex()))
    data, how = c.read_rest(3)
    took = time.monotonic() - t_reload
    c.close()
    t.check(how == "eof" and took < 2.0, "%s: connection closed %.2f s "
            "after the reload (%s, %d more bytes)" % (name, took, how,
                                                       len(data)))


def expect_line(t, moat, name, mark, pattern):
    line = moat.wait_closed_match(r"client_id=\"?cid-%s\b" % name, mark)
    t.check(mt.reason_of(line) == "revoked" and re.search(pattern, line),
            "%s: closed with reason=revoked, %s" % (name, pattern), line)


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    ca = t.pki._ca if t.pki.ca else None
    certs = {n: t.pki.device(n) for n in NAMES}
    crl = t.path("crl.pem")
    ca.gencrl(crl)
    mapfile = t.write("identities.ini", map_text())
    moat = t.start_moat("127.0.0.1:%d" % broker.port, workers="2",
                        tls={"crl": crl},
                        identity={"unknown": "reject", "map": mapfile,
                                  "client_id": "keep"})
    src = sources()

    t.step("six devices connect, on both workers")
    conns = connect_all(t, moat, src)
    for name in NAMES:
        t.check(ping(conns[name]), "%s: PINGRESP" % name)

    t.step("crl: sensor-a and sensor-b revoked, SIGHUP")
    ca.revoke(certs["sensor-a"][0])
    ca.revoke(certs["sensor-b"][0])
    ca.gencrl(crl)
    mark, t0 = reload(t, moat)
    for name in ("sensor-a", "sensor-b"):
        expect_ended(t, moat, conns.pop(name), name, mark, t0,
                     r"revoked by the CRL")
    for name in ("sensor-a", "sensor-b"):
        expect_line(t, moat, name, mark, r"revoked by the CRL")
    for name in conns:
        t.check(ping(conns[name]), "%s: still connected, PINGRESP" % name)
    ok, how = mt.try_tls_mqtt(moat.port, t.device_ctx("sensor-a"),
                              source=src["sensor-a"])
    t.check(not ok, "a new sensor-a connection is refused (%s)" % how)

    t.step("deny: sensor-c and sensor-d denied in the map, SIGHUP")
    t.write("identities.ini", map_text(deny=("sensor-c", "sensor-d")))
    mark, t0 = reload(t, moat)
    for name in ("sensor-c", "sensor-d"):
        expect_ended(t, moat, conns.pop(name), name, mark, t0,
                     r"after reload: .*sensor-%s" % name[-1])
    for name in ("sensor-c", "sensor-d"):
        expect_line(t, moat, name, mark, r"after reload: .*sensor-%s"
                    % name[-1])
    for name in conns:
        t.check(ping(conns[name]), "%s: still connected, PINGRESP" % name)

    t.step("the keepers were on both workers")
    mark = moat.mark()
    for c in conns.values():
        c.close()
    lines = moat.wait_closed(mark, 2, timeout=10)
    seen = set(re.search(r"worker=(\d+)", ln).group(1) for ln in lines)
    t.check(seen == {"0", "1"}, "the keepers closed on workers %s"
            % sorted(seen))


if __name__ == "__main__":
    mt.run(main, "t_revoke")
