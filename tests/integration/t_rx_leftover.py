#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Ciphertext that moat read but could not hand on yet (it stopped taking
the device's bytes: here [limits] publish_bytes_rate) is kept per
connection until reading resumes, and not one byte is lost or reordered:
a device sends 300 PUBLISHes of 1,000 bytes at once, over TLS 1.3 and
over TLS 1.2, and a subscriber on the broker gets them all, whole and in
order, spread over the seconds the rate asks for. Twins: with a
certificate from another CA, or an expired one, nothing reaches the
broker."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

COUNT = 300
SIZE = 1000
RATE = 100000            # bytes per second: the burst takes ~3 s


def payload(run, i):
    head = ("%s %04d " % (run, i)).encode()
    return head + bytes((i * 31 + j) & 0xFF for j in range(SIZE - len(head)))


def subscriber(broker, topic):
    s = mt.RawClient("127.0.0.1", broker.port, None, timeout=30)
    t_rc = s.connect("sub-%s" % topic.replace("/", "-"))
    if t_rc != 0:
        raise mt.Failure("the broker refused the subscriber (%d)" % t_rc)
    s.send(mt.mqtt_subscribe(1, topic))
    first, _ = s.read_packet()
    if first >> 4 != 9:
        raise mt.Failure("no SUBACK for the subscriber")
    return s


def burst(t, moat, broker, version, name):
    run = os.urandom(3).hex()
    topic = "rx/%s" % name
    sub = subscriber(broker, topic)
    ctx = t.device_ctx(min_version=version, max_version=version)
    dev = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=30)
    t.check(dev.connect("burst-%s" % name) == 0, "the device is accepted")
    data = b"".join(mt.mqtt_publish(topic, payload(run, i))
                    for i in range(COUNT))
    t0 = time.monotonic()
    dev.send(data)
    got = []
    while len(got) < COUNT:
        first, body = sub.read_packet(timeout=30)
        if first >> 4 == 3:
            tl = int.from_bytes(body[:2], "big")
            got.append(body[2 + tl:])
    took = time.monotonic() - t0
    want = [payload(run, i) for i in range(COUNT)]
    t.check(got == want, "the subscriber got all %d messages, whole and in "
            "order" % COUNT, "first difference at %d" % next(
                (i for i, (a, b) in enumerate(zip(got, want)) if a != b), -1))
    t.check(took >= 0.8 * (len(data) - RATE) / RATE,
            "the rate held the device back (%.1f s for %d bytes)"
            % (took, len(data)))
    dev.sock.close()
    sub.sock.close()


def refused(t, moat, broker, cert, key, what):
    before = broker.connections()
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    try:
        dev = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
        dev.send(mt.mqtt_connect("burst-%s" % what))
        dev.send(mt.mqtt_publish("rx/%s" % what, b"x" * SIZE))
        first, _ = dev.read_packet(timeout=10)
        got = "a packet of type %d" % (first >> 4)
    except (OSError, EOFError, ValueError) as e:
        got = "refused (%s)" % e.__class__.__name__
    t.check(got.startswith("refused"), "a device with %s is refused (%s)"
            % (what, got))
    time.sleep(0.3)
    t.check(broker.connections() == before, "nothing reached the broker")


def main(t):
    mt.need_tool("mosquitto")
    t.pki.device("sensor-a")
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port,
                        limits={"publish_bytes_rate": str(RATE)})
    for version, name in ((mt.ssl.TLSVersion.TLSv1_3, "tls13"),
                          (mt.ssl.TLSVersion.TLSv1_2, "tls12")):
        t.step("a burst of %d x %d bytes held back by publish_bytes_rate "
               "= %d over %s" % (COUNT, SIZE, RATE, name))
        burst(t, moat, broker, version, name)
    t.step("twins: certificates moat does not take")
    ocert, okey = t.pki.other_device()
    refused(t, moat, broker, ocert, okey, "another CA's certificate")
    ecert, ekey = t.pki.expired()
    refused(t, moat, broker, ecert, ekey, "an expired certificate")


if __name__ == "__main__":
    mt.run(main, "t_rx_leftover")
