#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""[limits] publish_rate, publish_burst, publish_bytes_rate and
max_publish_size: the flood guard, per identity, across workers.

A real Mosquitto; a collector subscribed to flood/# on it directly (plain
MQTT, QoS 1, timing every arrival). moat "guard" has workers = 2,
publish_rate = 100 (publish_burst unset: one second's worth),
publish_bytes_rate = 100000 and max_publish_size = 32768; its map gives
sensor-slow publish_rate = 20 and sensor-topic its own bytes rate. moat
"open" has none of them. Floods are QoS 1 PUBLISHes pipelined over raw
TLS as fast as the socket takes them; their PUBACKs are read afterwards.
A flood obeys a limit when every run of arrivals i..j holds at most
rate * (t_j - t_i) + burst + one message (the one that went over), give
or take NOISE seconds' worth (a loaded machine may delay the collector,
which then sees several arrivals at once).

  flood      sensor-a floods 400 messages while sensor-b, on the same
             worker, times QoS 1 round trips (PUBLISH -> PUBACK) before
             and during the flood: the collector gets every message
             exactly once and in order, the flooder every PUBACK (slowed,
             not dropped), the arrivals obey 100/s + burst yet run above
             50/s after the burst, sensor-b's median round trip during the
             flood stays within 5x its idle one (at least 25 ms) and under
             200 ms, and moat_publish_throttled_seconds_total > 0.
  shared     sensor-a on two connections (one per worker, 200 messages
             each), at the same time sensor-c (200) and sensor-slow (60):
             sensor-a's two connections together obey 100/s (one state per
             identity); sensor-c still runs above 50/s (another identity
             has its own budget); sensor-slow obeys its map entry's 20/s
             and nobody else does.
  bytes      sensor-big sends 30 PUBLISHes of 10000 bytes: the arrivals
             obey 100000 bytes/s + one second's worth, and run above
             50000 bytes/s; all arrive, in order.
  topics     sensor-topic (map: publish_rate = 0, publish_bytes_rate =
             20000) sends 60 PUBLISHes with a 900-byte topic and a 90-byte
             payload: the bytes counted are the whole PUBLISH after its
             fixed header, so it obeys 20000 bytes/s by that measure.
  policy     the same through a third moat with [policy] on, where each
             PUBLISH is read and judged whole: the same bytes are counted
             (the payload alone would let it through at once).
  size       MQTT 5: a PUBLISH of exactly max_publish_size goes through;
             one byte more gets DISCONNECT 0x95, close reason
             packet_too_large with refused=1, and the broker never sees
             it; MQTT 3.1.1: the connection is closed the same way;
             moat_packets_refused_total{kind="too_large"} counts both.
  open       the same flood, the same large payloads and the same
             oversized PUBLISH through moat "open": the floods beat the
             limits clearly and the oversized PUBLISH arrives, so the
             limits are what slowed and closed them above;
             moat_publish_throttled_seconds_total stays 0 there.
"""

import os
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402
import t_admin  # noqa: E402
import t_per_identity  # noqa: E402

RATE = 100                  # [limits] publish_rate
BURST = RATE                # publish_burst unset: one second's worth
BYTES_RATE = 100000         # [limits] publish_bytes_rate
MAX_PUBLISH = 32768         # [limits] max_publish_size
SLOW_RATE = 20              # sensor-slow's publish_rate in the map
NOISE = 0.4                 # seconds of scheduling noise allowed
FLOOD = 400                 # messages in the main flood
BIG = 10000                 # payload bytes of the bytes flood
NBIG = 30

PUBLISH, PUBACK, DISCONNECT = 3, 4, 0xe0
PACKET_TOO_LARGE = 0x95

TOPIC_BYTES_RATE = 20000    # sensor-topic's publish_bytes_rate
LONG_TOPIC = "flood/" + "t" * 900
NLONG = 60

MAP = """\
[sensor-slow]
publish_rate = %d
[sensor-topic]
publish_rate = 0
publish_bytes_rate = %d
""" % (SLOW_RATE, TOPIC_BYTES_RATE)


class Collector(threading.Thread):
    """A QoS 1 subscriber to flood/# straight on the broker: every
    PUBLISH with the time it arrived, acknowledged at once."""

    def __init__(self, t, broker):
        super().__init__(daemon=True)
        self.c = mt.RawClient(broker.host, broker.port, None, timeout=10)
        t.check(self.c.connect("collector-%d" % os.getpid()) == 0,
                "collector: CONNACK 0 from the broker")
        t.check(self.c.subscribe("flood/#", qos=1) == 1,
                "collector: subscribed to flood/# at QoS 1")
        self.lock = threading.Lock()
        self.got = {}               # topic -> [(time, payload)]
        self.error = None
        self.halt = threading.Event()
        self.start()

    def run(self):
        while not self.halt.is_set():
            try:
                first, body = self.c.read_packet(0.2)
            except socket.timeout:
                continue
            except (EOFError, OSError, ValueError) as e:
                self.error = e
                return
            now = time.monotonic()
            if first >> 4 != PUBLISH:
                continue
            topic, payload, qos, pid = mt.RawClient.parse_publish(first,
                                                                  body)
            if qos == 1:
                try:
                    self.c.send(mt.mqtt_puback(pid))
                except OSError as e:
                    self.error = e
                    return
            with self.lock:
                self.got.setdefault(topic, []).append((now, payload))

    def arrivals(self, topic):
        with self.lock:
            return list(self.got.get(topic, []))

    def count(self, topic):
        with self.lock:
            return len(self.got.get(topic, []))

    def stop(self):
        self.halt.set()
        self.join(5)
        self.c.close()


def payloads(tag, n, size=0):
    out = []
    for i in range(n):
        p = b"%s %06d " % (tag.encode(), i)
        out.append(p + b"x" * max(0, size - len(p)))
    return out


def publish(topic, payload, pid, version):
    """A QoS 1 PUBLISH, MQTT 3.1.1 (4) or 5."""
    if version == 5:
        return mt.mqtt_packet(0x32, mt.mqtt_str(topic) +
                              struct.pack("!H", pid) + b"\x00" + payload)
    return mt.mqtt_publish(topic, payload, qos=1, pid=pid)


class Device:
    """A device on raw TLS through moat, from source address src."""

    def __init__(self, t, moat, dev, cid, src, version=4):
        self.t = t
        self.cid = cid
        self.version = version
        self.c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx(dev),
                              timeout=30, source=src)
        self.c.send(mt.mqtt_connect(cid, version=version))
        code, _ = self.c.read_connack()
        t.check(code == 0, "%s: CONNACK 0 (%s from %s, worker %d)"
                % (cid, dev, src, t_per_identity.worker_of(src)))
        self.sent = 0
        self.pid = 0

    def flood(self, topic, msgs):
        """Pipeline QoS 1 PUBLISHes as fast as the socket takes them."""
        pkts = []
        for p in msgs:
            self.pid = self.pid % 65535 + 1
            pkts.append(publish(topic, p, self.pid, self.version))
        self.c.send(b"".join(pkts))
        self.sent += len(msgs)

    def pubacks(self, timeout):
        """Read the PUBACKs of everything sent; returns how many came."""
        n = 0
        deadline = time.monotonic() + timeout
        while n < self.sent:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                first, _ = self.c.read_packet(left)
            except (socket.timeout, EOFError, OSError):
                break
            if first >> 4 == PUBACK:
                n += 1
        self.sent = 0
        return n

    def round_trips(self, k, gap=0.02):
        """k QoS 1 round trips (PUBLISH -> PUBACK), in seconds."""
        out = []
        for _ in range(k):
            self.pid = self.pid % 65535 + 1
            t0 = time.monotonic()
            self.c.send(publish("probe/%s" % self.cid, b"ping", self.pid,
                                self.version))
            while True:
                first, body = self.c.read_packet(5)
                if first >> 4 == PUBACK and \
                        struct.unpack("!H", body[:2])[0] == self.pid:
                    break
            out.append(time.monotonic() - t0)
            time.sleep(gap)
        return out

    def close(self):
        self.c.close()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def excess(times, weights, rate):
    """Largest (units in a run of arrivals) - rate * (its duration):
    what the arrivals got beyond the rate, over any window."""
    worst = 0.0
    for i in range(len(times)):
        units = 0
        for j in range(i, len(times)):
            units += weights[j]
            worst = max(worst, units - rate * (times[j] - times[i]))
    return worst


def delivered(t, col, topic, msgs, timeout, what):
    """Wait until the collector has len(msgs) on topic; they must be msgs,
    each once, in order. Returns the arrivals."""
    ok = mt.wait_for(lambda: col.count(topic) >= len(msgs) or
                     col.error is not None, timeout)
    got = col.arrivals(topic)
    t.check(ok and col.error is None and len(got) >= len(msgs),
            "%s: the broker's subscriber got all %d messages" %
            (what, len(msgs)), "got %d within %ss (%s)" %
            (len(got), timeout, col.error))
    time.sleep(0.2)             # a duplicate would come by now
    got = col.arrivals(topic)
    t.check([p for _, p in got] == msgs, "%s: each exactly once, in order"
            % what, "%d arrived" % len(got))
    return got


def obeys(t, got, rate, burst, what, unit="messages", weigh=None):
    """The arrivals stay within rate/s + burst (+ NOISE) over every
    window, yet run above rate / 2 after the burst."""
    times = [a for a, _ in got]
    w = [weigh(p) for _, p in got] if weigh else [1] * len(got)
    tol = NOISE * rate
    over = excess(times, w, rate)
    span = times[-1] - times[0]
    total = sum(w)
    t.check(over <= burst + max(w) + tol,
            "%s: at most %d %s/s + the burst of %d over any window "
            "(worst excess %.0f)" % (what, rate, unit, burst, over))
    after = (total - burst - max(w)) / span if span > 0 else float("inf")
    t.check(after > rate / 2, "%s: %.0f %s/s after the burst (%d in "
            "%.2f s): slowed, not stalled" % (what, after, unit, total, span))
    return span


def beats(t, got, rate, burst, what, unit="messages", weigh=None):
    """The arrivals exceed what rate/s + burst would let through."""
    times = [a for a, _ in got]
    w = [weigh(p) for _, p in got] if weigh else [1] * len(got)
    tol = NOISE * rate
    over = excess(times, w, rate)
    t.check(over > burst + max(w) + tol, "%s: beyond %d %s/s + the burst "
            "(excess %.0f over %d in %.2f s)" % (what, rate, unit, over,
                                                  sum(w), times[-1] -
                                                  times[0]))


def throttled(t, port):
    _, s = t_admin.metrics(t, port)
    return (t_admin.val(s, "moat_publish_throttled_seconds_total") or 0.0,
            t_admin.val(s, "moat_packets_refused_total", kind="too_large"))


# --- the cases -------------------------------------------------------------

def flood(t, moat, col, src, admin):
    s = src.on(0)
    b = Device(t, moat, "sensor-b", "probe-b", src.on(0))
    a = Device(t, moat, "sensor-a", "flood-a", s)
    idle = b.round_trips(25)
    msgs = payloads("a", FLOOD)
    a.flood("flood/a", msgs)
    time.sleep(0.3)             # past the burst: throttled now
    busy = b.round_trips(25)
    during = col.count("flood/a")
    got = delivered(t, col, "flood/a", msgs, 2 * FLOOD / RATE + 10, "flood")
    obeys(t, got, RATE, BURST, "flood")
    t.check(during < FLOOD, "flood: sensor-b's round trips overlapped the "
            "throttled flood (%d of %d delivered by their end)"
            % (during, FLOOD))
    t.check(a.pubacks(10) == FLOOD, "flood: the flooder got all %d PUBACKs"
            % FLOOD)
    p_idle, p_busy = median(idle), median(busy)
    bound = min(0.2, max(5 * p_idle, 0.025))
    t.check(p_busy < bound, "flood: sensor-b's median round trip %.1f ms "
            "during the flood (idle %.1f ms, bound %.0f ms)"
            % (p_busy * 1e3, p_idle * 1e3, bound * 1e3))
    secs, _ = throttled(t, admin)
    t.check(secs > 0, "flood: moat_publish_throttled_seconds_total = %.3f"
            % secs)
    a.close()
    b.close()


def shared(t, moat, col, src):
    a1 = Device(t, moat, "sensor-a", "shared-a1", src.on(0))
    a2 = Device(t, moat, "sensor-a", "shared-a2", src.on(1))
    c = Device(t, moat, "sensor-c", "shared-c", src.on(1))
    slow = Device(t, moat, "sensor-slow", "shared-slow", src.on(0))
    m1, m2 = payloads("a1", 200), payloads("a2", 200)
    mc, ms = payloads("c", 200), payloads("slow", 60)
    a1.flood("flood/a1", m1)
    a2.flood("flood/a2", m2)
    c.flood("flood/c", mc)
    slow.flood("flood/slow", ms)
    g1 = delivered(t, col, "flood/a1", m1, 15, "shared sensor-a first")
    g2 = delivered(t, col, "flood/a2", m2, 15, "shared sensor-a second")
    gc = delivered(t, col, "flood/c", mc, 15, "shared sensor-c")
    gs = delivered(t, col, "flood/slow", ms, 15, "shared sensor-slow")
    for d, m in ((a1, m1), (a2, m2), (c, mc), (slow, ms)):
        t.check(d.pubacks(10) == len(m), "shared: %s got every PUBACK"
                % d.cid)
        d.close()
    both = sorted(g1 + g2, key=lambda x: x[0])
    obeys(t, both, RATE, BURST, "shared sensor-a, two connections "
          "on two workers together")
    obeys(t, gc, RATE, BURST, "shared sensor-c, its own budget")
    obeys(t, gs, SLOW_RATE, SLOW_RATE, "shared sensor-slow (map: "
          "publish_rate = %d)" % SLOW_RATE)


def rem_len(topic, payload, version=4):
    return 2 + len(topic) + 2 + len(payload) + (1 if version == 5 else 0)


def big(t, moat, col, src):
    d = Device(t, moat, "sensor-big", "big", src.on(1))
    msgs = payloads("big", NBIG, BIG)
    d.flood("flood/big", msgs)
    got = delivered(t, col, "flood/big", msgs, 20, "bytes")
    t.check(d.pubacks(10) == NBIG, "bytes: every PUBACK came")
    d.close()
    obeys(t, got, BYTES_RATE, BYTES_RATE, "bytes", unit="bytes",
          weigh=lambda p: rem_len("flood/big", p))


def topics(t, moat, col, src, what):
    """Long topics, short payloads: the bytes charged are the whole
    PUBLISH after its fixed header, with topic policy on or off."""
    d = Device(t, moat, "sensor-topic", "topic-" + what, src.on(0))
    topic = LONG_TOPIC + "/" + what
    msgs = payloads(what, NLONG, 90)
    d.flood(topic, msgs)
    got = delivered(t, col, topic, msgs, 20, what)
    t.check(d.pubacks(10) == NLONG, "%s: every PUBACK came" % what)
    d.close()
    obeys(t, got, TOPIC_BYTES_RATE, TOPIC_BYTES_RATE, what, unit="bytes",
          weigh=lambda p: rem_len(topic, p))


def size(t, moat, broker, col, src, version):
    name = "size%d" % version
    d = Device(t, moat, "sensor-a", name, src.on(0), version)
    topic = "flood/" + name
    fits = b"f" * (MAX_PUBLISH - rem_len(topic, b"", version))
    d.flood(topic, [fits])
    t.check(d.pubacks(5) == 1, "%s: a PUBLISH of exactly max_publish_size "
            "is acknowledged" % name)
    delivered(t, col, topic, [fits], 5, name + " at the limit")
    mark = moat.mark()
    over = topic + "/over"
    d.flood(over, [b"o" * (MAX_PUBLISH + 1 - rem_len(over, b"", version))])
    data, how = d.c.read_rest(5)
    d.close()
    if version == 5:
        t.check(data[:1] == bytes([DISCONNECT]) and
                data[2:3] == bytes([PACKET_TOO_LARGE]),
                "%s: one byte more: DISCONNECT 0x95, packet too large"
                % name, data[:8].hex())
    else:
        t.check(data == b"", "%s: one byte more: closed without a byte "
                "(3.1.1 has no DISCONNECT from the server)" % name,
                data[:8].hex())
    t.check(how == "eof", "%s: then the end of the stream (%s)"
            % (name, how))
    line = moat.wait_closed_match(r'client_id="?%s\b' % name, mark)
    t.check(mt.reason_of(line) == "packet_too_large" and
            re.search(r"\brefused=1\b", line),
            "%s: reason=packet_too_large, refused=1" % name, line)
    time.sleep(0.3)
    t.check(col.count(over) == 0, "%s: the broker's subscriber never got "
            "it" % name)
    t.check("'%s'" % over not in broker.text(),
            "%s: the broker never logged it" % name)


def open_twins(t, broker, col, src):
    admin = mt.free_port()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="open",
                        workers="2", extra="[admin]\naddress = "
                        "127.0.0.1:%d\n" % admin)
    a = Device(t, moat, "sensor-a", "open-a", src.on(0))
    msgs = payloads("open", FLOOD)
    a.flood("flood/open", msgs)
    got = delivered(t, col, "flood/open", msgs, 20, "open flood")
    t.check(a.pubacks(10) == FLOOD, "open: every PUBACK came")
    beats(t, got, RATE, BURST, "open flood, no publish_rate")
    bigm = payloads("obig", NBIG, BIG)
    a.flood("flood/obig", bigm)
    got = delivered(t, col, "flood/obig", bigm, 20, "open bytes")
    t.check(a.pubacks(10) == NBIG, "open: every PUBACK of the large ones")
    beats(t, got, BYTES_RATE, BYTES_RATE, "open large payloads, no "
          "publish_bytes_rate", unit="bytes",
          weigh=lambda p: rem_len("flood/obig", p))
    over = "flood/oover"
    m = [b"o" * (MAX_PUBLISH + 1 - rem_len(over, b""))]
    a.flood(over, m)
    delivered(t, col, over, m, 5, "open: a PUBLISH over 32768 bytes")
    t.check(a.pubacks(5) == 1, "open: it is acknowledged")
    a.close()
    secs, _ = throttled(t, admin)
    t.check(secs == 0, "open: moat_publish_throttled_seconds_total = 0")


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    mapfile = t.write("identities.ini", MAP)
    admin = mt.free_port()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="guard",
                        workers="2",
                        limits={"publish_rate": str(RATE),
                                "publish_bytes_rate": str(BYTES_RATE),
                                "max_publish_size": str(MAX_PUBLISH)},
                        identity={"unknown": "template", "map": mapfile,
                                  "client_id": "keep"},
                        extra="[admin]\naddress = 127.0.0.1:%d\n" % admin)
    col = Collector(t, broker)
    src = t_per_identity.Sources()
    try:
        with t.subcase("flood"):
            t.step("flood: 400 QoS 1 messages under publish_rate = %d"
                   % RATE)
            flood(t, moat, col, src, admin)
        with t.subcase("shared"):
            t.step("shared: one identity on two workers, two others")
            shared(t, moat, col, src)
        with t.subcase("bytes"):
            t.step("bytes: large payloads under publish_bytes_rate = %d"
                   % BYTES_RATE)
            big(t, moat, col, src)
        with t.subcase("topics"):
            t.step("topics: long topics under publish_bytes_rate = %d"
                   % TOPIC_BYTES_RATE)
            topics(t, moat, col, src, "nopolicy")
        with t.subcase("policy"):
            t.step("policy: the same with topic policy on")
            pmoat = t.start_moat(
                "127.0.0.1:%d" % broker.port, name="policy",
                identity={"unknown": "template", "map": mapfile,
                          "client_id": "keep"},
                extra="[policy]\npublish = flood/#, probe/#\n"
                      "subscribe = flood/#\n")
            topics(t, pmoat, col, src, "policy")
            pmoat.stop_and_check()
        for version in (5, 4):
            with t.subcase("size%d" % version):
                t.step("size: max_publish_size = %d, MQTT %s"
                       % (MAX_PUBLISH, "5" if version == 5 else "3.1.1"))
                size(t, moat, broker, col, src, version)
        with t.subcase("metrics"):
            t.step("metrics: the refusals by kind")
            _, refused = throttled(t, admin)
            t.check(refused == 2, 'moat_packets_refused_total'
                    '{kind="too_large"} = 2 (got %s)' % refused)
        with t.subcase("open"):
            t.step("open: the same without the limits")
            open_twins(t, broker, col, src)
    finally:
        col.stop()


if __name__ == "__main__":
    mt.run(main, "t_publish_rate")
