#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connections that end on their own clock, on the connection's one timer.

  lifetime   [limits] max_connection_lifetime = 2s: an MQTT 5 device gets
             DISCONNECT 0x98 (administrative action) and the end of the
             stream between 1.5 and 4 s after connecting, an MQTT 3.1.1
             device the end of the stream; both close lines say
             reason=lifetime. Twin: a moat without the option keeps a
             device connected past 4 s (PINGRESP).
  expiry     a device certificate whose notAfter is a few seconds away
             (openssl ca -enddate): with close_on_cert_expiry left at its
             default (true) moat ends the connection (MQTT 5: DISCONNECT
             0x98) once notAfter has passed and within 2.5 s of it,
             reason=cert_expired; idle traffic meanwhile is served. Twin:
             with close_on_cert_expiry = false the same certificate's
             connection is still served after notAfter.
"""

import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402


def ping(c, timeout=5):
    c.send(b"\xc0\x00")
    first, _ = c.read_packet(timeout)
    return first == 0xd0


def device(t, moat, name, version, cert=None, cid=None):
    c = mt.RawClient("127.0.0.1", moat.port,
                     t.device_ctx(name, cert=cert), timeout=10)
    code = c.connect(cid or "cid-" + name, version=version)
    t.check(code == 0, "%s (MQTT %s): CONNACK 0" % (name, version))
    return c, time.monotonic()


def wait_end(t, c, name, version, timeout):
    """DISCONNECT 0x98 (MQTT 5) and then EOF; returns when EOF came."""
    if version == 5:
        try:
            first, body = c.read_packet(timeout)
        except Exception as e:
            t.fail("%s: no DISCONNECT within %s s (%s)" % (name, timeout, e))
        t.check(first == 0xe0 and body[:1] == b"\x98",
                "%s: DISCONNECT 0x98 (got %02x %s)" % (name, first,
                                                        body.hex()))
    data, how = c.read_rest(timeout)
    at = time.monotonic()
    c.close()
    t.check(how == "eof", "%s: end of the stream (%s)" % (name, how))
    return at


def lifetime(t, broker):
    t.step("max_connection_lifetime = 2s")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-life",
                        limits={"max_connection_lifetime": "2s"})
    plain = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-plain")
    mark = moat.mark()
    c5, t5 = device(t, moat, "sensor-a", 5)
    c3, t3 = device(t, moat, "sensor-b", 4)
    keep, _ = device(t, plain, "sensor-c", 5)
    t.check(ping(c5), "sensor-a: PINGRESP while young")
    for c, t0, name, v in ((c5, t5, "sensor-a", 5), (c3, t3, "sensor-b", 4)):
        took = wait_end(t, c, name, v, 6) - t0
        t.check(1.5 <= took <= 4.0, "%s: closed %.2f s after connecting"
                % (name, took))
        line = moat.wait_closed_match(r"client_id=\"?cid-%s\b" % name, mark)
        t.check(mt.reason_of(line) == "lifetime", "%s: reason=lifetime"
                % name, line)
    time.sleep(max(0.0, t5 + 4.2 - time.monotonic()))
    t.check(ping(keep), "twin: without the option sensor-c is still "
            "served after 4 s")
    keep.close()


def expiry(t, broker):
    t.step("a device certificate that expires while connected")
    end = (datetime.datetime.now(datetime.timezone.utc) +
           datetime.timedelta(seconds=5)).replace(microsecond=0)
    cert = t.pki._issue("soon", "sensor-soon", "ext_client",
                        enddate=end.strftime("%y%m%d%H%M%SZ"))
    on = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-expiry")
    off = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-noexpiry",
                       tls={"close_on_cert_expiry": "false"})
    mark = on.mark()
    c, _ = device(t, on, "sensor-soon", 5, cert=cert)
    twin, _ = device(t, off, "sensor-soon", 5, cert=cert, cid="twin-soon")
    left = (end - datetime.datetime.now(datetime.timezone.utc)
            ).total_seconds()
    t.check(left > 0.5, "connected %.1f s before notAfter" % left)
    t.check(ping(c), "PINGRESP before notAfter")
    wait_end(t, c, "sensor-soon", 5, left + 5)
    after = (datetime.datetime.now(datetime.timezone.utc) - end
             ).total_seconds()
    t.check(0.0 < after <= 2.5, "closed %.2f s after notAfter" % after)
    line = on.wait_closed_match(r"client_id=\"?cid-sensor-soon\b", mark)
    t.check(mt.reason_of(line) == "cert_expired", "reason=cert_expired",
            line)
    time.sleep(0.5)
    t.check(ping(twin), "twin: with close_on_cert_expiry = false the "
            "connection is still served after notAfter")
    twin.close()


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    lifetime(t, broker)
    expiry(t, broker)


if __name__ == "__main__":
    mt.run(main, "t_lifetime")
