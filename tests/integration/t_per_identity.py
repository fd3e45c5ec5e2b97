#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""[limits] max_connections_per_identity and on_duplicate, across workers.

One moat with workers = 2 in front of a real Mosquitto; each device
connects from a source address chosen so that moat's steering puts it on
the worker the case needs (the log's worker= field proves where it was).
[limits] max_connections_per_identity = 1 with the default on_duplicate
(replace); the identity map overrides it for some identities:

  replace5   sensor-a twice over MQTT 5, on different workers, with
             different client ids: the first receives DISCONNECT 0x8E
             (session taken over) and then the end of the stream, and its
             close line says reason=session_taken_over naming the second;
             the second works (a publish comes back through the broker).
  replace5s  the same with one client id: moat ends the old connection
             before the new one reaches the broker, so the broker never
             takes the session over itself (its log never says "already
             connected"), the device gets exactly one DISCONNECT, and the
             close reason is session_taken_over.
  replace3   sensor-a twice over MQTT 3.1.1 on one worker: the first is
             closed without a byte (3.1.1 has no DISCONNECT from the
             server), reason=session_taken_over; the second works.
  refuse     sensor-r (on_duplicate = refuse in the map), MQTT 5 and
             3.1.1, the second on the other worker: the second gets
             CONNACK 0x97 (quota exceeded) or 0x03 (server unavailable)
             and the end of the stream, reason=too_many_per_identity, and
             never reaches the broker; the first keeps working.
  others     while sensor-a is connected, sensor-b connects twice, once on
             each worker: the second sensor-b replaces the first, and
             nothing of sensor-a's is closed (the limit never touches
             another identity); sensor-a and the second sensor-b work.
  two        sensor-t (max_connections_per_identity = 2 in the map): a third
             connection replaces the oldest alone; the other two work.
  unlimited  sensor-g (max_connections_per_identity = 0 in the map): two
             connections, both work.
  reload     sensor-g's map entry changes to max_connections_per_identity
             = 1 and moat reloads: its two open connections stay (a lowered
             limit closes no one) but count, so the next sensor-g replaces
             both.
  metrics    /metrics counts the refusals under moat_connect_refused_total
             and the replacements under moat_connections_closed_total.
  off        a second moat without the option: two sensor-a connections
             both work, as before the option existed.
"""

import ipaddress
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402
import t_admin  # noqa: E402

MAP = """\
[sensor-a]
[sensor-b]
[sensor-r]
on_duplicate = refuse
[sensor-g]
max_connections_per_identity = 0
[sensor-t]
max_connections_per_identity = 2
"""

DISCONNECT = 0xe0
PUBLISH = 3
TAKEN_OVER = 0x8e
QUOTA_EXCEEDED = 0x97
SERVER_UNAVAILABLE = 0x03


def worker_of(addr, n=2):
    """The worker moat's SO_REUSEPORT program picks for an IPv4 source."""
    a = int(ipaddress.IPv4Address(addr))
    return (((a * 2654435761) & 0xffffffff) >> 16) % n


class Sources:
    """Distinct 127.0.0.x source addresses, each on the worker asked for."""

    def __init__(self):
        self.free = ["127.0.0.%d" % i for i in range(10, 250)]

    def on(self, worker):
        addr = next(a for a in self.free if worker_of(a) == worker)
        self.free.remove(addr)
        return addr


def connect(t, moat, dev, cid, version, src):
    c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx(dev), timeout=10,
                     source=src)
    c.send(mt.mqtt_connect(cid, version=version))
    return c


def connected(t, moat, dev, cid, version, src, what):
    c = connect(t, moat, dev, cid, version, src)
    code, _ = c.read_connack()
    t.check(code == 0, "%s: CONNACK 0 (%s, MQTT %s, from %s, worker %d)"
            % (what, dev, "5" if version == 5 else "3.1.1", src,
               worker_of(src)))
    return c


def works(t, c, version, topic, what):
    """c subscribes to topic and publishes to it: the message comes back
    through the broker."""
    code = c.subscribe(topic, qos=0, version=version)
    t.check(code == 0, "%s: SUBACK granted QoS 0" % what)
    payload = os.urandom(6).hex().encode()
    if version == 5:
        body = mt.mqtt_str(topic) + b"\x00" + payload
        c.send(mt.mqtt_packet(0x30, body))
    else:
        c.send(mt.mqtt_publish(topic, payload))
    first, body = c.read_packet(5)
    t.check(first >> 4 == PUBLISH, "%s: a PUBLISH comes back" % what)
    got = mt.RawClient.parse_publish(first, body, version)
    t.check(got[0] == topic and got[1] == payload,
            "%s: it is the one it sent (%s)" % (what, topic))


def ping(c):
    c.send(b"\xc0\x00")
    try:
        first, _ = c.read_packet(5)
    except (EOFError, OSError):
        return False
    return first == 0xd0


def line_of(moat, mark, cid):
    return moat.wait_closed_match(r"client_id=\"?%s\b" % re.escape(cid),
                                  mark)


def expect_replaced(t, moat, c, version, mark, cid, what):
    """c ends: MQTT 5 sees DISCONNECT 0x8E first, 3.1.1 nothing; then the
    end of the stream; moat logs session_taken_over."""
    if version == 5:
        try:
            first, body = c.read_packet(5)
        except (EOFError, OSError) as e:
            t.fail("%s: no DISCONNECT before the end (%s)" % (what, e))
        t.check(first == DISCONNECT and body[:1] == bytes([TAKEN_OVER]),
                "%s: DISCONNECT 0x8E, session taken over (got %02x %s)"
                % (what, first, body.hex()))
    data, how = c.read_rest(5)
    c.close()
    t.check(how == "eof" and data == b"", "%s: then the end of the stream "
            "(%s, %d more bytes)" % (what, how, len(data)))
    line = line_of(moat, mark, cid)
    t.check(mt.reason_of(line) == "session_taken_over" and
            re.search(r"replaced by connection \d+ from 127\.0\.0\.\d+", line),
            "%s: reason=session_taken_over, the detail names the newer "
            "connection" % what, line)
    return line


def worker_in(line):
    return int(re.search(r"worker=(\d+)", line).group(1))


def close_and_worker(t, moat, c, cid):
    mark = moat.mark()
    c.close()
    return worker_in(line_of(moat, mark, cid))


def replace5(t, moat, broker, src, same_cid):
    what = "replace5s" if same_cid else "replace5"
    cid1 = "a5-%s-1" % ("s" if same_cid else "d")
    cid2 = cid1 if same_cid else "a5-d-2"
    s1, s2 = src.on(0), src.on(1)
    mark = moat.mark()
    c1 = connected(t, moat, "sensor-a", cid1, 5, s1, what + " first")
    works(t, c1, 5, "moat/a/1", what + " first")
    c2 = connected(t, moat, "sensor-a", cid2, 5, s2, what + " second")
    line = expect_replaced(t, moat, c1, 5, mark, cid1, what + " first")
    t.check(worker_in(line) == 0, "%s: the first was on worker 0" % what,
            line)
    works(t, c2, 5, "moat/a/2", what + " second")
    t.check("Client %s already connected" % cid1 not in broker.text(),
            "%s: the broker never had both sessions at once (no takeover "
            "in its log)" % what)
    t.check(close_and_worker(t, moat, c2, cid2) == 1,
            "%s: the second was on worker 1" % what)


def replace3(t, moat, src):
    s1 = src.on(1)
    s2 = src.on(1)
    mark = moat.mark()
    c1 = connected(t, moat, "sensor-a", "a3-1", 4, s1, "replace3 first")
    c2 = connected(t, moat, "sensor-a", "a3-2", 4, s2, "replace3 second")
    line = expect_replaced(t, moat, c1, 4, mark, "a3-1", "replace3 first")
    t.check(worker_in(line) == 1, "replace3: the first was on worker 1",
            line)
    works(t, c2, 4, "moat/a/3", "replace3 second")
    t.check(close_and_worker(t, moat, c2, "a3-2") == 1,
            "replace3: the second was on worker 1 too")


def refuse(t, moat, broker, src, version):
    tag = "refuse%d" % (5 if version == 5 else 3)
    s1, s2 = src.on(0), src.on(1)
    cid1, cid2 = tag + "-1", tag + "-2"
    mark = moat.mark()
    c1 = connected(t, moat, "sensor-r", cid1, version, s1, tag + " first")
    c2 = connect(t, moat, "sensor-r", cid2, version, s2)
    code, _ = c2.read_connack()
    want = QUOTA_EXCEEDED if version == 5 else SERVER_UNAVAILABLE
    t.check(code == want, "%s second: CONNACK 0x%02x (got 0x%02x)"
            % (tag, want, code))
    data, how = c2.read_rest(5)
    c2.close()
    t.check(how == "eof", "%s second: then the end of the stream (%s)"
            % (tag, how))
    line = line_of(moat, mark, cid2)
    t.check(mt.reason_of(line) == "too_many_per_identity" and
            worker_in(line) == 1 and "on_duplicate = refuse" in line,
            "%s second: reason=too_many_per_identity on worker 1" % tag,
            line)
    t.check(("as %s " % cid2) not in broker.text(),
            "%s second: never reached the broker" % tag)
    works(t, c1, version, "moat/r/%d" % version, tag + " first, still")
    t.check(close_and_worker(t, moat, c1, cid1) == 0,
            "%s: the first was on worker 0" % tag)


def others(t, moat, src):
    mark = moat.mark()
    a = connected(t, moat, "sensor-a", "oth-a", 5, src.on(0), "others a")
    b1 = connected(t, moat, "sensor-b", "oth-b1", 5, src.on(0),
                   "others b, same worker as a")
    b2 = connected(t, moat, "sensor-b", "oth-b2", 4, src.on(1),
                   "others b, the other worker")
    expect_replaced(t, moat, b1, 5, mark, "oth-b1", "others b1")
    t.check(ping(a), "others: sensor-a still connected after sensor-b's "
            "two connections")
    t.check(not any("oth-a" in ln for ln in moat.closed_lines(mark)),
            "others: nothing of sensor-a's was closed")
    works(t, a, 5, "moat/oth/a", "others a")
    works(t, b2, 4, "moat/oth/b", "others b2")
    a.close()
    b2.close()


def two(t, moat, src):
    mark = moat.mark()
    t1 = connected(t, moat, "sensor-t", "t-1", 5, src.on(0), "two t1")
    t2 = connected(t, moat, "sensor-t", "t-2", 4, src.on(1), "two t2")
    t.check(ping(t1) and ping(t2), "two: two connections fit the limit")
    t3 = connected(t, moat, "sensor-t", "t-3", 5, src.on(1), "two t3")
    expect_replaced(t, moat, t1, 5, mark, "t-1", "two t1")
    works(t, t2, 4, "moat/t/2", "two t2, still")
    works(t, t3, 5, "moat/t/3", "two t3")
    t2.close()
    t3.close()


def unlimited(t, moat, src):
    g1 = connected(t, moat, "sensor-g", "g-1", 5, src.on(0), "unlimited 1")
    g2 = connected(t, moat, "sensor-g", "g-2", 5, src.on(1), "unlimited 2")
    g3 = connected(t, moat, "sensor-g", "g-3", 4, src.on(1), "unlimited 3")
    for i, c in enumerate((g1, g2), 1):
        works(t, c, 5, "moat/g/%d" % i, "unlimited %d" % i)
    works(t, g3, 4, "moat/g/3", "unlimited 3")
    for c in (g1, g2, g3):
        c.close()


def reload(t, moat, src, mapfile):
    g1 = connected(t, moat, "sensor-g", "rg-1", 5, src.on(0), "reload g1")
    g2 = connected(t, moat, "sensor-g", "rg-2", 4, src.on(1), "reload g2")
    with open(mapfile, "w") as f:
        f.write(MAP.replace("[sensor-g]\nmax_connections_per_identity = 0",
                            "[sensor-g]\nmax_connections_per_identity = 1"))
    mark = moat.mark()
    moat.p.send_signal(signal.SIGHUP)
    t.check(mt.wait_for(lambda: "reloaded " in moat.text()[mark:], 10),
            "reload: moat reloaded", moat.text()[mark:])
    time.sleep(0.5)
    t.check(ping(g1) and ping(g2), "reload: both open sensor-g connections "
            "stay under the lowered limit")
    g3 = connected(t, moat, "sensor-g", "rg-3", 5, src.on(1), "reload g3")
    expect_replaced(t, moat, g1, 5, mark, "rg-1", "reload g1")
    expect_replaced(t, moat, g2, 4, mark, "rg-2", "reload g2")
    works(t, g3, 5, "moat/g/r", "reload g3")
    g3.close()


def metrics(t, port):
    _, s = t_admin.metrics(t, port)
    refused = t_admin.val(s, "moat_connect_refused_total",
                          reason="too_many_per_identity")
    taken = t_admin.val(s, "moat_connections_closed_total",
                        reason="session_taken_over")
    t.check(refused == 2, "moat_connect_refused_total{reason="
            "\"too_many_per_identity\"} = 2 (got %s)" % refused)
    t.check(taken == 7, "moat_connections_closed_total{reason="
            "\"session_taken_over\"} = 7 (got %s)" % taken)


def off(t, broker):
    t.step("off: the same certificate twice without the option")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-off",
                        workers="2")
    src = Sources()
    mark = moat.mark()
    c1 = connected(t, moat, "sensor-a", "off-1", 5, src.on(0), "off first")
    c2 = connected(t, moat, "sensor-a", "off-2", 5, src.on(1),
                   "off second")
    time.sleep(0.5)
    t.check(ping(c1) and ping(c2), "off: both connections stay")
    t.check(moat.closed_lines(mark) == [], "off: nothing was closed")
    works(t, c1, 5, "moat/off/1", "off first")
    works(t, c2, 5, "moat/off/2", "off second")
    c1.close()
    c2.close()


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    mapfile = t.write("identities.ini", MAP)
    admin = mt.free_port()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, workers="2",
                        limits={"max_connections_per_identity": "1"},
                        identity={"unknown": "reject", "map": mapfile,
                                  "client_id": "keep"},
                        extra="[admin]\naddress = 127.0.0.1:%d\n" % admin)
    src = Sources()
    with t.subcase("replace5"):
        t.step("replace, MQTT 5, two workers, two client ids")
        replace5(t, moat, broker, src, False)
    with t.subcase("replace5s"):
        t.step("replace, MQTT 5, two workers, one client id")
        replace5(t, moat, broker, src, True)
    with t.subcase("replace3"):
        t.step("replace, MQTT 3.1.1, one worker")
        replace3(t, moat, src)
    for version in (5, 4):
        with t.subcase("refuse%d" % version):
            t.step("refuse (the map's on_duplicate), MQTT %s"
                   % ("5" if version == 5 else "3.1.1"))
            refuse(t, moat, broker, src, version)
    with t.subcase("others"):
        t.step("another identity is unaffected")
        others(t, moat, src)
    with t.subcase("two"):
        t.step("the map's max_connections_per_identity = 2")
        two(t, moat, src)
    with t.subcase("unlimited"):
        t.step("the map's max_connections_per_identity = 0")
        unlimited(t, moat, src)
    with t.subcase("reload"):
        t.step("reload: a lowered limit for open connections")
        reload(t, moat, src, mapfile)
    with t.subcase("metrics"):
        t.step("/metrics")
        metrics(t, admin)
    with t.subcase("off"):
        off(t, broker)


if __name__ == "__main__":
    mt.run(main, "t_per_identity")
