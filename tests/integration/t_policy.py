#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The topic policy in front of a stock Mosquitto with no ACL at all
(allow_anonymous true, no password file): moat alone keeps each device to
its own topics. Devices A and B (certificates CN=A, CN=B) talk raw MQTT
3.1.1 and 5 over TLS; a subscriber on '#' connected straight to the broker
sees what really gets through, and a relay between moat and the broker
records every byte moat sends, so "never reaches the broker" is read off
the wire. Every non-delivery is bounded by a sentinel that must arrive
after it on the same path.

  [policy] publish = devices/{identity}/#
           subscribe = devices/{identity}/#, broadcast/#

  own topics   (3.1.1, 5) A's subscriptions to devices/A/# and broadcast/#
               are granted and deliver what a broker client publishes
               there; A's PUBLISH to devices/A/x reaches the subscriber.
  wildcard     A's subscription to '#' gets 0x80 (3.1.1) / 0x87 (5), and
               A gets nothing of B's devices/B/y, which the broker's own
               subscriber does get; $share/g/#, $SYS/#, +/A/x and
               $share/g/devices/B/# are refused too.
  foreign pub  A's PUBLISH to devices/B/y never reaches the broker: 3.1.1
               (on_denied_publish = disconnect, the default) closes with
               reason topic_refused; 5 answers QoS 1 with PUBACK 0x87,
               QoS 2 with PUBREC 0x87, drops QoS 0 and keeps the
               connection.
  drop         on_denied_publish = drop, 3.1.1: QoS 0 dropped, QoS 1 gets
               moat's PUBACK, QoS 2 moat's PUBREC and its PUBREL moat's
               PUBCOMP; the connection stays; nothing reaches the broker.
  will         a CONNECT whose Will is on devices/B/will: the Will never
               reaches a subscriber once the device drops its TCP
               connection (or the CONNECT is refused); twin: a Will on
               devices/A/will is delivered.
  policy off   without [policy] the same '#' subscription is granted and
               delivers B's message, and moat says at start-up "topic
               policy off: the broker's ACL is the only guard".
  three        (3.1.1, 5) one SUBSCRIBE [devices/A/m/#, #, broadcast/m]:
               SUBACK [granted, refused, granted] with the packet id
               kept; the broker got a SUBSCRIBE with the two allowed
               filters only; both deliver, '#' does not.
  alias        MQTT 5 topic alias 1 bound to devices/A/t (delivered), then
               re-bound to devices/B/t (PUBACK 0x87), then used with an
               empty topic (PUBACK 0x87): nothing reaches devices/B/t nor
               devices/A/t; binding it again to an allowed topic works.
  connect      a second CONNECT after CONNACK: 3.1.1 closed, 5 DISCONNECT
               0x82, reason protocol_error; the broker got one CONNECT.
  auth         MQTT 5 AUTH after CONNACK: DISCONNECT 0x8C, reason
               auth_method_refused; no AUTH reached the broker.
  malformed    PUBLISH with QoS 3, or with a wildcard in its topic:
               closed (5: DISCONNECT 0x81), reason packet_malformed; the
               broker got no PUBLISH.
  too large    (when [limits] max_packet_size exists) a PUBLISH over it:
               closed (5: DISCONNECT 0x95), reason packet_too_large; one
               under it goes through."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

POLICY = ("[policy]\n"
          "publish = devices/{identity}/#\n"
          "subscribe = devices/{identity}/#, broadcast/#\n")
RC_ADMINISTRATIVE = 0x98
POLICY_OFF_LINE = "topic policy off: the broker's ACL is the only guard"
MAX_PACKET = 4096

# MQTT packet types and codes, by name
CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, DISCONNECT, AUTH = 8, 9, 14, 15
V3_SUB_FAILURE = 0x80
RC_NOT_AUTHORIZED = 0x87
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_BAD_AUTH_METHOD = 0x8C
RC_TOO_LARGE = 0x95
AUTH_REAUTHENTICATE = 0x19

WAIT = 5          # a message that must arrive
QUIET = 0.3       # extra time given to a message that must not arrive


def tok(what):
    return ("%s-%s" % (what, os.urandom(4).hex())).encode()


def refusal(v):
    return RC_NOT_AUTHORIZED if v == 5 else V3_SUB_FAILURE


class Watcher:
    """A plain MQTT 3.1.1 client of the broker itself (not through moat),
    subscribed to '#': what it sees is what got through. Reads on its own
    thread; every wait is bounded."""

    def __init__(self, broker, cid="watch"):
        self.c = mt.RawClient(broker.host, broker.port, None, timeout=5)
        self.c.connect(cid)
        rc = self.c.subscribe("#", qos=0, pid=1)
        if rc != 0:
            raise mt.Failure("the broker refused '#' to its own client "
                             "(%d): is there an ACL?" % rc)
        self.msgs = []
        self.lock = threading.Lock()
        self.stopping = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stopping:
            try:
                first, body = self.c.read_packet(0.2)
            except (socket.timeout, TimeoutError):
                continue
            except (OSError, EOFError, ValueError):
                return
            if first >> 4 == PUBLISH:
                topic, payload, _, _ = mt.RawClient.parse_publish(first, body)
                with self.lock:
                    self.msgs.append((topic, payload))

    def seen(self, payload):
        """Topics on which payload arrived so far."""
        with self.lock:
            return [tp for tp, pl in self.msgs if pl == payload]

    def wait(self, topic, payload, timeout=WAIT):
        return mt.wait_for(lambda: topic in self.seen(payload), timeout)

    def stop(self):
        self.stopping = True
        self.th.join(2)
        self.c.close()


class Direct:
    """A plain client of the broker that publishes at QoS 1 and waits for
    the PUBACK, so that the broker has handled the message on return."""

    def __init__(self, broker, cid="direct"):
        self.c = mt.RawClient(broker.host, broker.port, None, timeout=5)
        self.c.connect(cid)
        self.pid = 0

    def publish(self, topic, payload):
        self.pid += 1
        self.c.send(mt.mqtt_publish(topic, payload, qos=1, pid=self.pid))
        first, body = self.c.read_packet(WAIT)
        if first >> 4 != PUBACK:
            raise mt.Failure("direct publisher: expected PUBACK, got type %d"
                             % (first >> 4))

    def close(self):
        self.c.close()


class Device:
    """A device through moat over TLS: raw MQTT 3.1.1 (v=4) or 5. PUBLISH
    packets it receives are kept in .got (QoS 1 ones acknowledged)."""

    def __init__(self, t, moat, dev, cid, v=4, will=None, expect_rc=0):
        self.t = t
        self.moat = moat
        self.v = v
        self.cid = cid
        self.got = []
        self.mark = moat.mark()
        self.c = mt.RawClient(moat.host, moat.port, t.device_ctx(dev),
                              timeout=5)
        self.port = self.c.sock.getsockname()[1]
        self.c.send(mt.mqtt_connect_full(cid, version=v, will=will))
        self.rc = None
        if expect_rc is not None:
            self.rc, _ = self.c.read_connack(WAIT)
            if self.rc != expect_rc:
                raise mt.Failure("%s: CONNACK %#x, expected %#x"
                                 % (cid, self.rc, expect_rc))

    def read(self, timeout=WAIT):
        first, body = self.c.read_packet(timeout)
        if first >> 4 == PUBLISH:
            topic, payload, qos, pid = mt.RawClient.parse_publish(
                first, body, self.v)
            self.got.append((topic, payload))
            if qos == 1:
                self.c.send(mt.mqtt_puback(pid))
        return first, body

    def expect(self, ptype, timeout=WAIT):
        """Read until a packet of type ptype (received PUBLISHes are kept
        on the way); returns its body."""
        deadline = time.monotonic() + timeout
        while True:
            first, body = self.read(max(0.01, deadline - time.monotonic()))
            if first >> 4 == ptype:
                return body
            if first >> 4 != PUBLISH:
                raise mt.Failure("%s: expected packet type %d, got %02x %s"
                                 % (self.cid, ptype, first, body.hex(" ")))

    def wait_msg(self, topic, payload, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while (topic, payload) not in self.got:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.read(left)
            except (socket.timeout, TimeoutError):
                return False
        return True

    def subscribe(self, pid, filters):
        """One SUBSCRIBE; returns (packet id, codes) of its SUBACK."""
        self.c.send(mt.mqtt_subscribe_many(pid, filters, self.v))
        return mt.mqtt_parse_suback(self.expect(SUBACK), self.v)

    def publish(self, topic, payload, qos=0, pid=1, props=b""):
        if self.v == 5:
            self.c.send(mt.mqtt_publish_v5(topic, payload, qos, pid, props))
        else:
            self.c.send(mt.mqtt_publish(topic, payload, qos, pid))

    def publish_acked(self, topic, payload, qos, pid, props=b"",
                      ack=PUBACK):
        """PUBLISH at QoS 1/2 and read its PUBACK/PUBREC: (pid, code)."""
        self.publish(topic, payload, qos, pid, props)
        self.last = self.expect(ack)
        return mt.mqtt_parse_ack(self.last)

    def closed(self, timeout=WAIT):
        """Read to the end: (bytes before the close, how, conn_closed
        line of this connection in moat's log)."""
        got, how = self.c.read_rest(timeout)
        self.c.close()            # moat lingers until the device closes too
        line = self.moat.wait_closed_match("peer=127.0.0.1:%d " % self.port,
                                           self.mark)
        mt.say("      moat: %s" % line.strip())
        return got, how, line

    def still_open(self):
        """Round trip a PINGREQ: True when a PINGRESP comes back."""
        try:
            self.c.send(b"\xc0\x00")
            self.expect(13, 2)
            return True
        except (OSError, EOFError, ValueError, mt.Failure):
            return False

    def close(self):
        self.c.close()


class Upstream:
    """What moat sent to the broker, per client id, from the relay."""

    def __init__(self, rec):
        self.rec = rec

    def packets(self, cid):
        out = []
        for data in self._streams():
            pk = mt.mqtt_split(data)
            if not pk or pk[0][0] >> 4 != 1:
                continue
            first, body = pk[0]
            raw = bytes([first]) + mt.mqtt_varint(len(body)) + body
            try:
                if mt.mqtt_parse_connect(raw)["client_id"] == cid.encode():
                    out += pk
            except (ValueError, IndexError):
                continue
        return out

    def _streams(self):
        with self.rec._lock:
            return [bytes(c["up"]) for c in self.rec.conns]

    def types(self, cid):
        return [first >> 4 for first, _ in self.packets(cid)]

    def carries(self, cid, needle):
        """True when any packet moat sent for cid holds the bytes needle."""
        return any(needle in body for _, body in self.packets(cid))


def nothing_leaked(t, watch, direct, payloads, sentinel_topic):
    """payloads must never reach the broker's subscriber: a sentinel
    published straight to the broker after them must arrive (so the
    subscriber was listening), and none of payloads before it."""
    time.sleep(QUIET)
    mark = tok("sentinel")
    direct.publish(sentinel_topic, mark)
    t.check(watch.wait(sentinel_topic, mark) is not None,
            "the broker's subscriber gets a sentinel on %s"
            % sentinel_topic)
    leaked = {p: watch.seen(p) for p in payloads if watch.seen(p)}
    t.check(not leaked, "none of the refused messages reached the broker's "
            "subscriber on '#'", "leaked: %r" % leaked)


def no_publish_upstream(t, up, cid, needles):
    got = [n for n in needles if up.carries(cid, n)]
    t.check(not got, "moat sent the broker none of the refused PUBLISHes "
            "of %s" % cid, "sent: %r" % got)


# ---------------------------------------------------------------------------
# acceptance 1

def own_topics(t, pol, watch, direct, up, v):
    """A's own namespace and broadcast work; '#' is refused and gets
    nothing of B's; A's publish to B's namespace does not get through."""
    a = Device(t, pol, "A", "A-own-v%d" % v, v)
    try:
        pid, codes = a.subscribe(1, ["devices/A/#"])
        t.check(codes == [0], "v%d: devices/A/# granted" % v,
                "SUBACK %r" % codes)
        pid, codes = a.subscribe(2, ["broadcast/#"])
        t.check(codes == [0], "v%d: broadcast/# granted" % v,
                "SUBACK %r" % codes)
        pid, codes = a.subscribe(3, ["#"])
        t.check(pid == 3 and codes == [refusal(v)],
                "v%d: '#' refused with %#x (packet id kept)"
                % (v, refusal(v)), "SUBACK pid %d codes %r" % (pid, codes))
        wide = ["$share/g/#", "$SYS/#", "+/A/x", "$share/g/devices/B/#"]
        pid, codes = a.subscribe(4, wide)
        t.check(codes == [refusal(v)] * len(wide),
                "v%d: %s all refused" % (v, ", ".join(wide)),
                "SUBACK codes %r" % codes)

        m = tok("a-own")
        pid, rc = a.publish_acked("devices/A/x", m, 1, 10)
        t.check(rc == 0, "v%d: PUBLISH devices/A/x acknowledged" % v,
                "PUBACK code %#x" % rc)
        t.check(watch.wait("devices/A/x", m) is not None,
                "v%d: the broker's subscriber got A's devices/A/x" % v)

        for topic in ("devices/A/in", "broadcast/all"):
            m = tok("to-a")
            direct.publish(topic, m)
            t.check(a.wait_msg(topic, m), "v%d: A received %s from a broker "
                    "client" % (v, topic))

        b = Device(t, pol, "B", "B-v%d" % v, 4)
        try:
            mb = tok("b-own")
            pid, rc = b.publish_acked("devices/B/y", mb, 1, 1)
            t.check(rc == 0, "v%d: B's PUBLISH devices/B/y acknowledged" % v)
        finally:
            b.close()
        t.check(watch.wait("devices/B/y", mb) is not None,
                "v%d: the broker's subscriber got B's devices/B/y" % v)
        s = tok("sentinel")
        direct.publish("broadcast/after-b", s)
        t.check(a.wait_msg("broadcast/after-b", s),
                "v%d: A got a broadcast sent after B's message" % v)
        t.check(not [g for g in a.got if g[1] == mb],
                "v%d: A got nothing of B's devices/B/y" % v,
                "A got %r" % a.got)
        types = up.types(a.cid)
        t.check(types.count(SUBSCRIBE) == 2, "v%d: the broker got A's two "
                "allowed SUBSCRIBEs, not the one for '#'" % v,
                "packet types sent: %r" % types)

        if v == 5:
            refused_publish_v5(t, a, watch, direct, up)
        else:
            refused_publish_v4(t, a, watch, direct, up)
    finally:
        a.close()


def refused_publish_v5(t, a, watch, direct, up):
    m1, m0 = tok("a-to-b-q1"), tok("a-to-b-q0")
    pid, rc = a.publish_acked("devices/B/y", m1, 1, 20)
    t.check(pid == 20 and rc == RC_NOT_AUTHORIZED,
            "v5: QoS 1 PUBLISH to devices/B/y gets PUBACK 0x87",
            "PUBACK pid %d code %#x" % (pid, rc))
    a.publish("devices/B/y", m0, 0)
    m2 = tok("a-to-b-q2")
    pid, rc = a.publish_acked("devices/B/y", m2, 2, 22, ack=PUBREC)
    t.check(pid == 22 and rc == RC_NOT_AUTHORIZED,
            "v5: QoS 2 PUBLISH to devices/B/y gets PUBREC 0x87",
            "PUBREC pid %d code %#x" % (pid, rc))
    m = tok("a-after")
    pid, rc = a.publish_acked("devices/A/after", m, 1, 21)
    t.check(rc == 0, "v5: the connection stays: a later PUBLISH to "
            "devices/A/after is acknowledged")
    t.check(watch.wait("devices/A/after", m) is not None,
            "v5: the broker's subscriber got devices/A/after")
    seen = [watch.seen(x) for x in (m1, m0, m2)]
    t.check(not any(seen), "v5: no refused PUBLISH (QoS 1, 0, 2) reached "
            "the broker's subscriber before it", "seen: %r" % seen)
    no_publish_upstream(t, up, a.cid, [m1, m0, m2])


def refused_publish_v4(t, a, watch, direct, up):
    m = tok("a-to-b")
    a.publish("devices/B/y", m, 1, 20)
    got, how, line = a.closed()
    t.check(how in ("eof", "reset") and not got,
            "3.1.1: PUBLISH to devices/B/y: no PUBACK, connection closed",
            "got %s, then %s" % (got.hex(" ") or "nothing", how))
    t.check(mt.reason_of(line) == "topic_refused",
            "3.1.1: conn_closed reason=topic_refused", line)
    nothing_leaked(t, watch, direct, [m], "devices/B/sentinel")
    no_publish_upstream(t, up, a.cid, [m])


def denied_drop(t, drop, watch, direct, up):
    """on_denied_publish = drop at 3.1.1."""
    a = Device(t, drop, "A", "A-drop", 4)
    try:
        m0, m1, m2 = tok("drop-q0"), tok("drop-q1"), tok("drop-q2")
        a.publish("devices/B/y", m0, 0)
        pid, rc = a.publish_acked("devices/B/y", m1, 1, 11)
        t.check(a.last == b"\x00\x0b", "QoS 1 to devices/B/y: a 3.1.1 "
                "PUBACK for id 11", a.last.hex(" "))
        pid, rc = a.publish_acked("devices/B/y", m2, 2, 12, ack=PUBREC)
        t.check(a.last == b"\x00\x0c", "QoS 2 to devices/B/y: a 3.1.1 "
                "PUBREC for id 12", a.last.hex(" "))
        a.c.send(mt.mqtt_packet(0x62, b"\x00\x0c"))
        body = a.expect(PUBCOMP)
        t.check(body == b"\x00\x0c", "its PUBREL gets a PUBCOMP for id 12",
                body.hex(" "))
        m = tok("drop-after")
        pid, rc = a.publish_acked("devices/A/after", m, 1, 13)
        t.check(pid == 13 and rc == 0, "the connection stays: a PUBLISH "
                "to devices/A/after is acknowledged")
        t.check(watch.wait("devices/A/after", m) is not None,
                "the broker's subscriber got devices/A/after")
        seen = [watch.seen(x) for x in (m0, m1, m2)]
        t.check(not any(seen), "none of the three refused PUBLISHes "
                "reached the broker's subscriber before it", repr(seen))
        no_publish_upstream(t, up, a.cid, [m0, m1, m2])
        types = up.types(a.cid)
        t.check(PUBREL not in types, "the PUBREL of the refused QoS 2 did "
                "not reach the broker", "packet types sent: %r" % types)
    finally:
        a.close()


def will_case(t, pol, broker, watch, direct, v):
    """A Will on a refused topic never reaches a subscriber; the twin on
    an allowed topic does, through the same moat."""
    ok = tok("will-ok")
    a = Device(t, pol, "A", "A-will-ok-v%d" % v, v,
               will=("devices/A/will", ok, 0, False))
    a.close()                     # no DISCONNECT: the Will must go out
    t.check(watch.wait("devices/A/will", ok) is not None,
            "v%d: twin: a Will on devices/A/will is delivered when the "
            "device drops" % v)

    bad = tok("will-bad")
    a = Device(t, pol, "A", "A-will-bad-v%d" % v, v,
               will=("devices/B/will", bad, 0, False), expect_rc=None)
    try:
        rc, _ = a.c.read_connack(WAIT)
        how = "CONNACK %#x" % rc
    except (OSError, EOFError, ValueError) as e:
        rc, how = None, "closed without CONNACK (%s)" % type(e).__name__
    a.close()
    line = pol.wait_closed_match("peer=127.0.0.1:%d " % a.port, a.mark)
    mt.say("      moat: %s" % line.strip())
    if rc == 0:
        mt.say("      observed: the CONNECT with a Will on devices/B/will "
               "was accepted; the device then dropped its connection")
    else:
        mt.say("      observed: the CONNECT with a Will on devices/B/will "
               "was refused (%s, reason=%s)" % (how, mt.reason_of(line)))
    t.check(mt.wait_for(lambda: ("Client %s closed its connection" % a.cid)
                        in broker.text() or rc != 0, WAIT),
            "v%d: the broker saw the device go (or never had it)" % v)
    nothing_leaked(t, watch, direct, [bad], "devices/B/sentinel")


def policy_off(t, off, watch, direct):
    a = Device(t, off, "A", "A-off", 4)
    try:
        pid, codes = a.subscribe(1, ["#"])
        t.check(codes == [0], "without [policy] '#' is granted", repr(codes))
        m = tok("b-off")
        direct.publish("devices/B/y", m)
        t.check(a.wait_msg("devices/B/y", m), "... and delivers devices/B/y")
    finally:
        a.close()


# ---------------------------------------------------------------------------
# acceptance 2

def three_filters(t, pol, broker, direct, up, v):
    a = Device(t, pol, "A", "A-three-v%d" % v, v)
    try:
        filters = [("devices/A/m/#", 1), ("#", 1), ("broadcast/m", 1)]
        pid, codes = a.subscribe(0x1234, filters)
        t.check(pid == 0x1234, "v%d: SUBACK keeps the packet id 0x1234" % v,
                "got %#x" % pid)
        t.check(codes == [1, refusal(v), 1], "v%d: SUBACK codes in order "
                "[1, %#x, 1]" % (v, refusal(v)), "got %r" % codes)
        subs = [body for first, body in up.packets(a.cid)
                if first >> 4 == SUBSCRIBE]
        t.check(len(subs) == 1 and b"devices/A/m/#" in subs[0] and
                b"broadcast/m" in subs[0] and
                mt.mqtt_str("#") not in subs[0],
                "v%d: the broker got one SUBSCRIBE with the two allowed "
                "filters only" % v, "got %r" % subs)
        other = tok("other")
        direct.publish("elsewhere/x", other)
        for topic in ("devices/A/m/1", "broadcast/m"):
            m = tok("three")
            direct.publish(topic, m)
            t.check(a.wait_msg(topic, m), "v%d: %s delivered" % (v, topic))
        t.check(not [g for g in a.got if g[1] == other],
                "v%d: elsewhere/x (only '#' matches it) was not" % v,
                "A got %r" % a.got)
    finally:
        a.close()


# ---------------------------------------------------------------------------
# acceptance 3

def aliases(t, pol, watch, up):
    a = Device(t, pol, "A", "A-alias", 5)
    al = mt.mqtt_prop_topic_alias(1)
    try:
        m1, m2, m3 = tok("alias-a"), tok("alias-b"), tok("alias-empty")
        pid, rc = a.publish_acked("devices/A/t", m1, 1, 1, al)
        t.check(rc == 0, "devices/A/t with alias 1: acknowledged",
                "code %#x" % rc)
        t.check(watch.wait("devices/A/t", m1) is not None,
                "... and delivered")
        pid, rc = a.publish_acked("devices/B/t", m2, 1, 2, al)
        t.check(pid == 2 and rc == RC_NOT_AUTHORIZED,
                "alias 1 re-bound to devices/B/t: PUBACK 0x87",
                "pid %d code %#x" % (pid, rc))
        pid, rc = a.publish_acked("", m3, 1, 3, al)
        t.check(pid == 3 and rc == RC_NOT_AUTHORIZED,
                "empty topic with alias 1: PUBACK 0x87",
                "pid %d code %#x" % (pid, rc))
        m4 = tok("alias-again")
        pid, rc = a.publish_acked("devices/A/t3", m4, 1, 4, al)
        t.check(rc == 0, "alias 1 bound again to devices/A/t3: "
                "acknowledged", "code %#x" % rc)
        m5 = tok("alias-reuse")
        pid, rc = a.publish_acked("", m5, 1, 5, al)
        t.check(rc == 0, "... and used with an empty topic: acknowledged",
                "code %#x" % rc)
        t.check(watch.wait("devices/A/t3", m5) is not None,
                "... and delivered on devices/A/t3")
        seen = (watch.seen(m2), watch.seen(m3))
        t.check(seen == ([], []), "neither refused PUBLISH reached a "
                "subscriber (not on devices/B/t, not on devices/A/t)",
                "seen: %r" % (seen,))
        no_publish_upstream(t, up, a.cid, [m2, m3])
    finally:
        a.close()


# ---------------------------------------------------------------------------
# acceptance 4 and the framing after CONNECT

def closes(t, pol, up, v, what, send, rc5, reason, not_types=()):
    """After CONNACK, send; 3.1.1: closed with nothing sent back; 5: a
    DISCONNECT rc5 and closed. Moat logs reason; the packet never
    reached the broker."""
    cid = "A-%s-v%d" % (what.split()[0], v)
    a = Device(t, pol, "A", cid, v)
    try:
        try:
            a.c.send(send)
        except OSError:
            pass                  # moat may close while a big one is sent
        got, how, line = a.closed()
    finally:
        a.close()
    want = b"\xe0\x01" + bytes([rc5]) if v == 5 else b""
    pk = mt.mqtt_split(got)
    if v == 5:
        ok = (len(pk) == 1 and pk[0][0] == 0xe0 and pk[0][1][:1] ==
              bytes([rc5]))
    else:
        ok = not got
    t.check(ok and how in ("eof", "reset"), "v%d %s: %s, then closed"
            % (v, what, "DISCONNECT %#x" % rc5 if v == 5 else "nothing"),
            "got %s (want %s), then %s" % (got.hex(" ") or "nothing",
                                           want.hex(" ") or "nothing", how))
    t.check(mt.reason_of(line) == reason, "v%d %s: conn_closed reason=%s"
            % (v, what, reason), line)
    time.sleep(QUIET)
    types = up.types(cid)
    t.check(types[:1] == [1] and types.count(1) == 1 and
            not set(not_types) & set(types),
            "v%d %s: the broker got one CONNECT and none of it" % (v, what),
            "packet types moat sent: %r" % types)
    return cid


def second_connect(t, pol, broker, up, v):
    cid = closes(t, pol, up, v, "second CONNECT",
                 mt.mqtt_connect_full("again", version=v),
                 RC_PROTOCOL_ERROR, "protocol_error")
    t.check("multiple CONNECT" not in broker.text(),
            "v%d: the broker never logged a second CONNECT" % v)
    n = broker.text().count("as %s " % cid)
    t.check(n == 1, "v%d: the broker logged one connection of %s"
            % (v, cid), "%d" % n)


def reload_rules(t, broker):
    """A reload that changes the topic rules ends the live connections
    they apply to (the broker keeps their old subscriptions): MQTT 5 sees
    DISCONNECT 0x98 first; reason topic_rules_changed. A reload that leaves
    the rules as they were leaves them open."""
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-reload",
                        extra=POLICY, process={"watch_files": "false"})
    a5 = Device(t, moat, "A", "A-reload-v5", 5)
    b4 = Device(t, moat, "B", "B-reload-v4", 4)
    try:
        with open(moat.ini, "a") as f:
            f.write("; a comment: the same rules\n")
        mark = moat.mark()
        moat.p.send_signal(signal.SIGHUP)
        t.check(mt.wait_for(lambda: "reloaded " in moat.text()[mark:], 10),
                "the reload with the same rules is done")
        t.check(a5.still_open() and b4.still_open(), "the same rules: both "
                "devices stay connected")
        with open(moat.ini) as f:
            text = f.read()
        with open(moat.ini, "w") as f:
            f.write(text.replace("broadcast/#", "broadcast/{identity}/#"))
        os.kill(moat.p.pid, signal.SIGHUP)
        for d, v in ((a5, 5), (b4, 4)):
            got, how, line = d.closed(timeout=5)
            pk = mt.mqtt_split(got)
            if v == 5:
                t.check(pk and pk[-1][0] == 0xe0 and pk[-1][1][:1] ==
                        bytes([RC_ADMINISTRATIVE]), "v5: DISCONNECT 0x98 "
                        "before the close", got.hex(" "))
            t.check(mt.reason_of(line) == "topic_rules_changed",
                    "v%d: conn_closed reason=topic_rules_changed" % v, line)
    finally:
        a5.close()
        b4.close()


def max_packet_size_known(t):
    r = t.moat_run(["--help"])
    return "max_packet_size" in r.stdout + r.stderr


def main(t):
    mt.need_tool("mosquitto")
    for dev in ("A", "B"):
        t.pki.device(dev)
    t.step("a broker with no ACL, a relay before it, three moats")
    broker = t.mosquitto()
    rec = mt.TcpRecorder(t, broker.port)
    up = Upstream(rec)
    big = max_packet_size_known(t)
    lim = {"max_packet_size": str(MAX_PACKET)} if big else None
    backend = "127.0.0.1:%d" % rec.port
    pol = t.start_moat(backend, name="moat-pol", extra=POLICY, limits=lim)
    drop = t.start_moat(backend, name="moat-drop",
                        extra=POLICY + "on_denied_publish = drop\n")
    off = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-off")
    watch = Watcher(broker)
    direct = Direct(broker)
    try:
        for v in (4, 5):
            t.step("1. own topics, '#', foreign PUBLISH (v%d)" % v)
            with mt.client_case(t, "own topics v%d" % v):
                own_topics(t, pol, watch, direct, up, v)
        t.step("1. on_denied_publish = drop (3.1.1)")
        with mt.client_case(t, "drop"):
            denied_drop(t, drop, watch, direct, up)
        for v in (4, 5):
            t.step("1. a Will on a refused topic (v%d)" % v)
            with mt.client_case(t, "will v%d" % v):
                will_case(t, pol, broker, watch, direct, v)
        t.step("1. twin: no [policy]")
        with mt.client_case(t, "policy off"):
            policy_off(t, off, watch, direct)
        with t.subcase("start-up lines"):
            t.check(POLICY_OFF_LINE in off.text(), "moat without [policy] "
                    "says %r" % POLICY_OFF_LINE)
            t.check(POLICY_OFF_LINE not in pol.text(), "moat with [policy] "
                    "does not")
        for v in (4, 5):
            t.step("2. three filters, the middle refused (v%d)" % v)
            with mt.client_case(t, "three filters v%d" % v):
                three_filters(t, pol, broker, direct, up, v)
        t.step("3. topic aliases (v5)")
        with mt.client_case(t, "aliases"):
            aliases(t, pol, watch, up)
        for v in (4, 5):
            t.step("4. second CONNECT (v%d)" % v)
            with mt.client_case(t, "second CONNECT v%d" % v):
                second_connect(t, pol, broker, up, v)
        t.step("4. AUTH after CONNACK (v5)")
        with mt.client_case(t, "AUTH"):
            closes(t, pol, up, 5, "AUTH",
                   mt.mqtt_packet(0xf0, bytes([AUTH_REAUTHENTICATE, 0])),
                   RC_BAD_AUTH_METHOD, "auth_method_refused", [AUTH])
        for v in (4, 5):
            t.step("malformed PUBLISH (v%d)" % v)
            with mt.client_case(t, "QoS 3 v%d" % v):
                body = mt.mqtt_str("devices/A/q3") + b"\x00\x01"
                if v == 5:
                    body += b"\x00"
                closes(t, pol, up, v, "qos3 PUBLISH",
                       mt.mqtt_packet(0x36, body + b"x"), RC_MALFORMED,
                       "packet_malformed", [PUBLISH])
            with mt.client_case(t, "wildcard topic v%d" % v):
                pkt = (mt.mqtt_publish_v5("devices/A/+", b"x") if v == 5
                       else mt.mqtt_publish("devices/A/+", b"x"))
                closes(t, pol, up, v, "wildcard PUBLISH", pkt, RC_MALFORMED,
                       "packet_malformed", [PUBLISH])
        t.step("a reload that changes the topic rules")
        with mt.client_case(t, "reload"):
            reload_rules(t, broker)
        if not big:
            mt.say("    note: moat has no [limits] max_packet_size; the "
                   "packet_too_large cases are left out")
        for v in ((4, 5) if big else ()):
            t.step("packet over max_packet_size (v%d)" % v)
            with mt.client_case(t, "too large v%d" % v):
                a = Device(t, pol, "A", "A-fits-v%d" % v, v)
                try:
                    m = tok("fits") + b"." * (MAX_PACKET // 2)
                    pid, rc = a.publish_acked("devices/A/big", m, 1, 1)
                    t.check(rc == 0, "v%d: a %d-byte PUBLISH fits" %
                            (v, len(m)))
                finally:
                    a.close()
                pkt = (mt.mqtt_publish_v5 if v == 5 else mt.mqtt_publish)(
                    "devices/A/big", tok("big") + b"." * MAX_PACKET)
                closes(t, pol, up, v, "oversized PUBLISH", pkt, RC_TOO_LARGE,
                       "packet_too_large", [PUBLISH])
    finally:
        watch.stop()
        direct.close()


if __name__ == "__main__":
    mt.run(main, "t_policy")
