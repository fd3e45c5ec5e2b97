#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The broker is down (nothing listens on the backend port): a device still
completes the TLS handshake, its connection is closed promptly (a refused
loopback connect at once; in any case within connect_timeout + slack) and
moat logs why, with the backend address. Once the broker is up, the same
device gets through."""

import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

CONNECT_TIMEOUT = 3.0
SLACK = 2.0
REASONS = ("backend_refused", "connect_timeout")


def device_attempt(t, port, ctx, version=4):
    """Handshake, CONNECT, read until closed. Returns (seconds from the end
    of the handshake to the close, CONNACK code or None, how it ended)."""
    try:
        c = mt.RawClient("127.0.0.1", port, ctx, timeout=10)
    except (OSError, ssl.SSLError) as e:
        t.fail("the TLS handshake did not complete: %s: %s"
               % (type(e).__name__, e))
    try:
        t0 = time.monotonic()
        t.ok("TLS handshake completed (%s)" % c.sock.version())
        connack = None
        how = None
        try:
            c.send(mt.mqtt_connect("down-%d" % os.getpid(), version=version))
        except (OSError, ssl.SSLError) as e:
            how = "send failed: %s" % e
        limit = CONNECT_TIMEOUT + SLACK + 3
        while how is None:
            left = t0 + limit - time.monotonic()
            if left <= 0:
                how = "still open after %.1f s" % limit
                break
            try:
                first, body = c.read_packet(left)
                if first >> 4 == 2:
                    connack = body[1]
            except EOFError:
                how = "EOF"
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError) as e:
                how = "%s: %s" % (type(e).__name__, e)
        return time.monotonic() - t0, connack, how
    finally:
        c.close()


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub")
    cert, key = t.pki.device("sensor-a")
    port = mt.free_port()
    backend = "127.0.0.1:%d" % port
    t.step("moat with backend %s where nothing listens, connect_timeout = "
           "%gs" % (backend, CONNECT_TIMEOUT))
    moat = t.start_moat(backend, limits={"connect_timeout": "3s"})
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)

    for version in (4, 5):
        t.step("a device (MQTT %s) connects" % ("3.1.1" if version == 4
                                                 else "5"))
        mark = moat.mark()
        secs, connack, how = device_attempt(t, moat.port, ctx, version)
        mt.say("      closed after %.2f s (%s; CONNACK %s)"
               % (secs, how, "none" if connack is None else
                  "0x%02x" % connack))
        t.check(not how.startswith("still open"),
                "moat closed the connection (%s)" % how)
        t.check(secs <= CONNECT_TIMEOUT + SLACK,
                "within connect_timeout + %gs (%.2f s)" % (SLACK, secs))
        t.check(connack is None or connack != 0,
                "no CONNACK 'accepted' was faked")
        line = moat.wait_closed(mark, 1, timeout=5)[0]
        mt.say("      moat: %s" % line.strip())
        reason = mt.reason_of(line)
        t.check(reason in REASONS, "reason is one of %s (%s)"
                % ("/".join(REASONS), reason), line)
        if reason == "backend_refused":
            t.check(secs < 1.5, "a refused loopback connect closes at once "
                    "(%.2f s)" % secs)
        log = moat.text()[mark:]
        t.check(backend in log, "moat's log names the backend %s" % backend,
                log)

    t.step("mosquitto_pub through moat fails fast too")
    t0 = time.monotonic()
    r = t.pub(moat.port, "moat/down", "nobody home", timeout=20)
    secs = time.monotonic() - t0
    mt.say("      mosquitto_pub: exit %d after %.2f s: %s"
           % (r.returncode, secs, (r.stderr or r.stdout).strip()))
    t.check(r.returncode != 0, "mosquitto_pub exits non-zero")
    t.check(secs <= CONNECT_TIMEOUT + SLACK + 1, "within %.1f s"
            % (CONNECT_TIMEOUT + SLACK + 1))

    t.step("the broker comes up on %s: the same device gets through" % backend)
    broker = t.mosquitto(port=port)
    ok, how = mt.try_tls_mqtt(moat.port, ctx, client_id="back-up")
    t.check(ok, "raw TLS client: %s" % how)
    t.pki.device("sensor-b")
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/down/up", tag="up")


if __name__ == "__main__":
    mt.run(main, "t_broker_down")
