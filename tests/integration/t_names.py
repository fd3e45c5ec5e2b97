#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
r"""Names that cannot mislead, end to end: moat with the usual [identity]
(username = the CN, client_id = keep) in front of a stock Mosquitto.

  '$'          a device whose certificate CN is "$SYS" would reach the
               broker as user "$SYS", and an ACL such as `pattern
               readwrite %u/#` would then hand it $SYS/#: moat answers
               CONNACK "not authorized" (0x05 under 3.1.1, 0x87 under 5),
               closes, logs conn_closed reason=identity_refused saying the
               name begins with '$', and the broker sees no connection.
  bidi         the same for a CN holding U+202E (RIGHT-TO-LEFT OVERRIDE),
               which makes "sensor-\u202egnp.exe" display as
               "sensor-exe.png"; the reason names the code point and
               quotes the CN with the character escaped (\xe2\x80\xae).
  client id    under client_id = keep a device with a plain CN that sends
               client id "$SYS" is refused the same way.
  accepted     in the same run, devices with plain CNs publish and
               subscribe through moat, before and after the refusals; one
               of them keeps a client id with '$' inside ("plain$1")."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

RLO = "\u202e"
CONNACK_NOT_AUTHORIZED = {4: b"\x20\x02\x00\x05", 5: b"\x20\x03\x00\x87\x00"}


def refused(t, moat, broker, ctx, cid, what, rx):
    """A raw device with ctx is refused under MQTT 3.1.1 and 5 with CONNACK
    "not authorized", moat's conn_closed matches rx, the broker sees
    nothing."""
    before = broker.new_connections()
    for version in (4, 5):
        want = CONNACK_NOT_AUTHORIZED[version]
        mark = moat.mark()
        c = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
        port = c.sock.getsockname()[1]
        try:
            c.send(mt.mqtt_connect(cid, version=version))
            got, how = c.read_rest(5)
        finally:
            c.close()
        t.check(got == want and how == "eof", "%s, MQTT level %d: CONNACK "
                "%s (not authorized), then closed" % (what, version,
                                                       want.hex(" ")),
                "got %r, %s" % (got, how))
        line = moat.wait_closed_match("peer=127.0.0.1:%d " % port, mark)
        mt.say("      moat: %s" % line.strip())
        t.check(mt.reason_of(line) == "identity_refused" and
                re.search(rx, line), "conn_closed reason=identity_refused "
                "says why (%s)" % rx, line)
        detail = re.search(r'detail="((?:[^"\\]|\\.)*)"', line)
        t.check(detail and RLO not in detail.group(1), "the reason quotes "
                "the name without a raw U+202E", line)
    time.sleep(0.2)
    t.check(broker.new_connections() == before, "%s: the broker saw no "
            "connection (%d new)" % (what, broker.new_connections() - before))


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    t.step("certificates: CN $SYS, CN sensor-<U+202E>gnp.exe, plain CNs")
    dollar = t.pki.custom("cn-dollar", "/CN=$SYS")
    bidi = t.pki.custom("cn-bidi", "/CN=sensor-" + RLO + "gnp.exe")
    for cn in ("sensor-a", "sensor-b"):
        t.pki.device(cn)

    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)

    t.step("control: plain CNs publish and subscribe through moat")
    with mt.client_case(t, "plain before"):
        t.pub_sub_roundtrip(moat.port, broker, topic="names/plain",
                            tag="before")

    t.step("CN \"$SYS\"")
    with mt.client_case(t, "CN $SYS"):
        refused(t, moat, broker, t.device_ctx(cert=dollar), "dev-1",
                "CN $SYS", r"CN \\+\"\$SYS\\+\" begins with '\$', which "
                r"Mosquitto reserves for \$SYS topics")
        before = broker.new_connections()
        r = t.pub(moat.port, "names/x", "m", cert=dollar, timeout=10)
        t.check(r.returncode != 0 and "not authori" in r.stderr,
                "mosquitto_pub with CN $SYS is refused: %s"
                % r.stderr.strip())
        time.sleep(0.2)
        t.check(broker.new_connections() == before,
                "the broker saw no connection from it")

    t.step("CN with U+202E (right-to-left override)")
    with mt.client_case(t, "CN with U+202E"):
        refused(t, moat, broker, t.device_ctx(cert=bidi), "dev-2",
                "CN with U+202E", r"sensor-\\+xe2\\+x80\\+xaegnp\.exe"
                r".*U\+202E, which can make one name look like another")
        before = broker.new_connections()
        r = t.pub(moat.port, "names/x", "m", cert=bidi, timeout=10)
        t.check(r.returncode != 0 and "not authori" in r.stderr,
                "mosquitto_pub with that CN is refused: %s"
                % r.stderr.strip())
        time.sleep(0.2)
        t.check(broker.new_connections() == before,
                "the broker saw no connection from it")

    t.step("client_id = keep: a plain CN sending client id \"$SYS\"")
    with mt.client_case(t, "client id $SYS"):
        refused(t, moat, broker, t.device_ctx("sensor-a"), "$SYS",
                "client id $SYS", r"the device's client id \\+\"\$SYS\\+\" "
                r"begins with '\$'")

    t.step("the plain devices still get through, '$' inside a name too")
    with mt.client_case(t, "plain after"):
        t.pub_sub_roundtrip(moat.port, broker, topic="names/plain",
                            tag="after")
        mark = len(broker.text())
        r = t.pub(moat.port, "names/inner", "m", dev="sensor-b",
                  client_id="plain$1")
        t.check(r.returncode == 0, "client id plain$1 publishes",
                r.stderr)
        t.check("as plain$1 " in broker.text()[mark:],
                "the broker saw client plain$1")
        text = broker.text()
        t.check("u'$SYS'" not in text and "as $SYS" not in text and
                RLO not in text, "the broker never saw a client or user "
                "$SYS or a name with U+202E")


if __name__ == "__main__":
    mt.run(main, "t_names")
