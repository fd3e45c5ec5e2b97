#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Backpressure: a device subscribes through moat and stops reading while
50 MiB are published to it. moat must not buffer it (RSS growth stays below
32 MiB while the data is stuck); when the device reads again, every byte
arrives intact (SHA-256 of the payloads equals what was sent)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

MSGS = 50
SIZE = 1 << 20            # 1 MiB each, 50 MiB in all
LIMIT_KIB = 32 * 1024     # allowed RSS growth
TOPIC = "big"


def main(t):
    mt.need_tool("mosquitto")
    cert, key = t.pki.device("sensor-a")
    # Mosquitto must not drop anything for a slow subscriber: no queue
    # limits, no in-flight limit (so it pushes all 50 MiB towards moat).
    broker = t.mosquitto(extra=["max_queued_messages 0",
                                "max_queued_bytes 0",
                                "max_inflight_messages 0"])
    moat = t.start_moat("127.0.0.1:%d" % broker.port)

    t.step("a device connects through moat, subscribes to %r and stops "
           "reading" % TOPIC)
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    try:
        dev = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10,
                           rcvbuf=128 * 1024)
        rc = dev.connect("slow-reader-%d" % os.getpid())
        granted = dev.subscribe(TOPIC, qos=1)
    except (OSError, EOFError, ValueError) as e:
        t.fail("the device could not connect and subscribe through moat: "
               "%s: %s" % (type(e).__name__, e))
    try:
        t.check(rc == 0, "CONNACK 0 through moat (got %d)" % rc)
        t.check(granted == 1, "SUBACK grants QoS 1 (got %d)" % granted)
        run(t, broker, moat, dev)
    finally:
        dev.close()


def run(t, broker, moat, dev):
    time.sleep(0.3)
    base = moat.rss_kib()
    mt.say("      moat RSS before: %.1f MiB" % (base / 1024))

    payloads = [os.urandom(SIZE) for _ in range(MSGS)]
    sent_hash = mt.sha256(payloads)
    pub_err = []
    pub_done = threading.Event()

    def publish():
        # straight to Mosquitto, plain MQTT, QoS 1, one PUBACK at a time
        try:
            p = mt.RawClient("127.0.0.1", broker.port, None, timeout=30)
            try:
                rc = p.connect("big-publisher-%d" % os.getpid())
                if rc:
                    raise RuntimeError("publisher CONNACK %d" % rc)
                for i, data in enumerate(payloads):
                    p.send(mt.mqtt_publish(TOPIC, data, qos=1, pid=i + 1))
                    first, body = p.read_packet(30)
                    if first >> 4 != 4:
                        raise RuntimeError("expected PUBACK, got type %d"
                                           % (first >> 4))
            finally:
                p.close()
        except Exception as e:  # reported by the main thread
            pub_err.append(e)
        finally:
            pub_done.set()

    t.step("publish %d x %d KiB = %d MiB on %r straight to Mosquitto"
           % (MSGS, SIZE >> 10, MSGS * SIZE >> 20, TOPIC))
    th = threading.Thread(target=publish, daemon=True)
    th.start()
    peak = base
    t0 = time.monotonic()
    for _ in mt.deadline_loop(60, 0.1):
        peak = max(peak, moat.rss_kib())
        if pub_done.is_set():
            break
    t.check(pub_done.is_set(), "the publisher finished within 60 s")
    t.check(not pub_err, "Mosquitto acknowledged all %d messages (%s)"
            % (MSGS, pub_err[0] if pub_err else "ok"))
    mt.say("      published in %.2f s" % (time.monotonic() - t0))

    t.step("the data is stuck; watch moat's RSS for 3 s")
    for _ in mt.deadline_loop(3, 0.1):
        peak = max(peak, moat.rss_kib())
    growth = peak - base
    mt.say("      moat RSS peak %.1f MiB, growth %.1f MiB (limit %d MiB)"
           % (peak / 1024, growth / 1024, LIMIT_KIB >> 10))
    t.check(growth < LIMIT_KIB, "RSS growth below %d MiB while stuck"
            % (LIMIT_KIB >> 10))

    t.step("the device reads again: all %d MiB arrive intact"
           % (MSGS * SIZE >> 20))
    got = []
    t0 = time.monotonic()
    deadline = t0 + 90
    try:
        while len(got) < MSGS and time.monotonic() < deadline:
            first, body = dev.read_packet(max(0.1,
                                              deadline - time.monotonic()))
            if first >> 4 != 3:
                continue
            topic, payload, qos, pid = dev.parse_publish(first, body)
            if topic != TOPIC:
                continue
            got.append(payload)
            if qos:
                dev.send(mt.mqtt_puback(pid))
    except (OSError, EOFError, ValueError) as e:
        t.fail("reading stopped after %d of %d messages: %s: %s"
               % (len(got), MSGS, type(e).__name__, e))
    mt.say("      read %d messages (%d bytes) in %.2f s"
           % (len(got), sum(map(len, got)), time.monotonic() - t0))
    t.check(len(got) == MSGS, "got all %d messages (%d)" % (MSGS, len(got)))
    t.check(mt.sha256(got) == sent_hash, "SHA-256 of what arrived equals "
            "what was sent (%s...)" % sent_hash[:16])
    dev.send(b"\xe0\x00")  # DISCONNECT
    peak = max(peak, moat.rss_kib())
    mt.say("      moat RSS at the end: %.1f MiB" % (moat.rss_kib() / 1024))


if __name__ == "__main__":
    mt.run(main, "t_slow_reader")
