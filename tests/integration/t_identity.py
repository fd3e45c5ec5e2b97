#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Identity mapping end to end, against a stock Mosquitto that trusts only
what moat puts into the CONNECT: allow_anonymous false, a password_file
made by `moat passwd --mosquitto` (password = hmac) and an acl_file with
`pattern readwrite devices/%u/#`.

  mapping      device A (CN=sensor-a) sends -u admin -P x -i sensor-b and
               reaches the broker as client sensor-a, user sensor-a; a
               subscriber of device B (client sensor-b) is not taken over
               and keeps receiving.
  ACL          A publishes and receives on devices/sensor-a/#; A's publish
               to devices/sensor-b/... never reaches B's subscriber and B's
               publish never reaches A's devices/sensor-b/# subscription
               (each absence watched for 1.5 s on a connection that has
               just proven delivery).
  versions     mosquitto_pub/sub -V mqttv31, mqttv311 and mqttv5.
  HMAC         the password file from moat passwd lets the device in; a
               moat with a different hmac_secret_file is refused by the
               broker (CONNACK 5 under 3.1.1), and moat relays that.
  refusals     a certificate of the CA that is not in the map (unknown =
               reject) and a deny = true entry: CONNACK 0x05 (3.1.1) /
               0x87 (5), conn_closed reason=identity_refused with the
               certificate's fingerprint, and the broker sees nothing.
  secrets      password = none and a device sending -u admin -P
               secret-from-device, through a TCP recorder between moat and
               an anonymous Mosquitto: the forwarded CONNECT carries user
               sensor-a, no password, client id sensor-a; the device's
               password appears neither there nor in moat's (debug) log,
               and the HMAC passwords never appear in moat's log."""

import hashlib
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

QUIET = 1.5      # how long an absence is watched
DEVICE_SECRET = "secret-from-device"

MAP = """\
; one section per identity (the certificate's CN)
[sensor-a]
[sensor-b]
; second certificates of the same users, so that a user can have a
; publisher and a subscriber at once (client id = identity differs)
[sensor-a-2]
username = sensor-a
[sensor-b-2]
username = sensor-b
; revoked by the map
[sensor-d]
deny = true
"""

CONNECTED = re.compile(r"New client connected from \S+ as (\S+) "
                       r"\(p(\d), c\d, k\d+, u'([^']*)'\)")


def fingerprint(cert):
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def lines_of(path):
    return mt.read_text(path).splitlines()


def wait_lines(path, n, timeout):
    return mt.wait_for(lambda: len(lines_of(path)) >= n, timeout)


def publishes(c, timeout):
    """(topic, payload) of every PUBLISH on raw client c within timeout."""
    got = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        try:
            first, body = c.read_packet(left)
        except socket.timeout:
            return got
        if first >> 4 == 3:
            topic, payload, _, _ = mt.RawClient.parse_publish(first, body)
            got.append((topic, payload))


def wait_publish(c, topic, payload, timeout=5):
    """Read until that PUBLISH arrives; returns everything read."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        first, body = c.read_packet(max(0.05, end - time.monotonic()))
        if first >> 4 == 3:
            got.append(mt.RawClient.parse_publish(first, body)[:2])
            if got[-1] == (topic, payload):
                return got
    raise mt.Failure("%s %r did not arrive within %ss (got %r)"
                     % (topic, payload, timeout, got))


def raw(t, port, dev, cid="ignored-by-moat", version=4):
    c = mt.RawClient("127.0.0.1", port, t.device_ctx(dev), timeout=10)
    rc = c.connect(cid, version=version)
    t.check(rc == 0, "raw client %s (MQTT level %d): CONNACK 0 through moat"
            % (dev, version), "got %d" % rc)
    return c


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    t.step("certificates: sensor-a, sensor-b, sensor-a-2, sensor-b-2, "
           "sensor-c (not in the map), sensor-d (deny = true)")
    for cn in ("sensor-a", "sensor-b", "sensor-a-2", "sensor-b-2",
               "sensor-c", "sensor-d"):
        t.pki.device(cn)
    mapfile = t.write("map.ini", MAP)
    secret = t.write("hmac.secret", os.urandom(24).hex() + "\n")
    wrong = t.write("hmac-wrong.secret", os.urandom(24).hex() + "\n")
    os.chmod(secret, 0o600)
    os.chmod(wrong, 0o600)
    ident = {"source": "cn", "map": mapfile, "unknown": "reject",
             "password": "hmac", "hmac_secret_file": secret,
             "client_id": "identity"}

    t.step("moat passwd: the broker's password file, offline")
    ini = t.write_ini("passwd.ini", "127.0.0.1:1883", identity=ident)
    r = t.moat_run(["passwd", "-c", ini, "--mosquitto", "sensor-a",
                    "sensor-b"])
    t.check(r.returncode == 0, "moat passwd --mosquitto exits 0",
            r.stdout + r.stderr)
    pwlines = r.stdout.splitlines()
    t.check(len(pwlines) == 2 and all(re.fullmatch(
        r"sensor-[ab]:\$7\$101\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", ln)
        for ln in pwlines), "two $7$ password_file lines, for sensor-a "
        "and sensor-b", r.stdout)
    pwfile = t.write("passwords", r.stdout)
    r = t.moat_run(["passwd", "-c", ini, "sensor-a", "sensor-b"])
    t.check(r.returncode == 0, "moat passwd (plain) exits 0", r.stderr)
    plain = dict(ln.split(" ", 1) for ln in r.stdout.splitlines())
    t.check(set(plain) == {"sensor-a", "sensor-b"},
            "plain passwords for sensor-a and sensor-b", r.stdout)
    acl = t.write("acl", "pattern readwrite devices/%u/#\n")

    t.step("Mosquitto: allow_anonymous false, password_file, acl_file")
    broker = t.mosquitto(extra=["allow_anonymous false",
                                "password_file " + pwfile,
                                "acl_file " + acl])
    with mt.client_case(t, "broker controls"):
        r = t.pub(broker.port, "devices/sensor-a/x", "anon", tls=False,
                  host="127.0.0.1", timeout=10)
        t.check(r.returncode != 0, "control: an anonymous client is "
                "refused by the broker itself (exit %d: %s)"
                % (r.returncode, r.stderr.strip()))
        r = t.pub(broker.port, "devices/sensor-a/x", "direct", tls=False,
                  host="127.0.0.1", timeout=10,
                  extra=["-u", "sensor-a", "-P", plain["sensor-a"]])
        t.check(r.returncode == 0, "control: the password printed by moat "
                "passwd matches the $7$ line (direct login works)",
                r.stderr)

    moat = t.start_moat("127.0.0.1:%d" % broker.port, identity=ident)
    ident_wrong = dict(ident, hmac_secret_file=wrong)
    moat_wrong = t.start_moat("127.0.0.1:%d" % broker.port,
                              name="moat-wrong-secret", identity=ident_wrong)

    # -- mapping and no takeover -------------------------------------------
    t.step("B subscribes; A connects as -u admin -P x -i sensor-b")
    with mt.client_case(t, "mapping and no takeover"):
        tag = os.urandom(3).hex()
        since = len(broker.text())
        sub_b = t.sub(moat.port, "devices/sensor-b/#", 2, dev="sensor-b",
                      client_id="sensor-b", broker=broker, name="sub-b")
        sub_b.wait_subscribed(since=since)
        r = t.pub(moat.port, "devices/sensor-b/before", "before " + tag,
                  dev="sensor-b-2")
        t.check(r.returncode == 0, "sensor-b-2 (user sensor-b) publishes "
                "to devices/sensor-b/before", r.stderr)
        t.check(wait_lines(sub_b.out, 1, 5), "B's subscriber got it")

        mark = len(broker.text())
        mmark = moat.mark()
        r = t.pub(moat.port, "devices/sensor-a/hello", "hello " + tag,
                  dev="sensor-a", client_id="sensor-b",
                  extra=["-u", "admin", "-P", "x"])
        t.check(r.returncode == 0, "A's mosquitto_pub -u admin -P x -i "
                "sensor-b exits 0", r.stderr)
        new = broker.text()[mark:]
        conns = CONNECTED.findall(new)
        t.check(conns == [("sensor-a", "2", "sensor-a")],
                "the broker saw A as client sensor-a, user sensor-a "
                "(%s)" % conns, new)
        t.check("admin" not in new, "the broker never saw the username "
                "admin")
        t.check("already connected" not in new and
                "Client sensor-b disconnected" not in new,
                "no session takeover of sensor-b", new)
        line = moat.wait_closed_match('subject="CN=sensor-a"', mmark)
        mt.say("      moat: %s" % line.strip())
        t.check("username=sensor-a" in line and "client_id=sensor-a" in line,
                "moat's conn_closed names username/client_id sensor-a", line)
        t.check(sub_b.p.poll() is None, "B's subscriber is still connected")
        r = t.pub(moat.port, "devices/sensor-b/after", "after " + tag,
                  dev="sensor-b-2")
        t.check(r.returncode == 0, "sensor-b-2 publishes again", r.stderr)
        got = sub_b.result()
        t.check(got == ["before " + tag, "after " + tag],
                "B's subscriber kept receiving after A's attempt", repr(got))

    # -- ACL: positive and negative on the same connections ----------------
    t.step("ACL: A and B as raw MQTT 3.1.1 clients through moat")
    with mt.client_case(t, "ACL"):
        a = raw(t, moat.port, "sensor-a", cid="sensor-b")
        b = raw(t, moat.port, "sensor-b")
        try:
            t.check(a.subscribe("devices/sensor-a/#", pid=1) == 0,
                    "A subscribes to devices/sensor-a/# (granted QoS 0)")
            code = a.subscribe("devices/sensor-b/#", pid=2)
            mt.say("      SUBACK for A's devices/sensor-b/#: 0x%02x" % code)
            t.check(b.subscribe("devices/sensor-b/#", pid=1) == 0,
                    "B subscribes to devices/sensor-b/# (granted QoS 0)")

            a.send(mt.mqtt_publish("devices/sensor-b/evil", b"from A"))
            a.send(mt.mqtt_publish("devices/sensor-a/own", b"own 1"))
            wait_publish(a, "devices/sensor-a/own", b"own 1")
            t.ok("A received its own devices/sensor-a/own: A may publish "
                 "and subscribe in its namespace")
            b.send(mt.mqtt_publish("devices/sensor-b/fromb", b"from B"))
            got_b = wait_publish(b, "devices/sensor-b/fromb", b"from B")
            got_b += publishes(b, QUIET)
            t.check(("devices/sensor-b/evil", b"from A") not in got_b,
                    "B's subscriber got B's own message but not A's "
                    "devices/sensor-b/evil within %.1f s after it" % QUIET,
                    repr(got_b))
            got_a = publishes(a, QUIET)
            a.send(mt.mqtt_publish("devices/sensor-a/own", b"own 2"))
            got_a += wait_publish(a, "devices/sensor-a/own", b"own 2")
            t.check(not [g for g in got_a if g[0].startswith(
                "devices/sensor-b/")], "A's devices/sensor-b/# "
                "subscription received nothing from B (watched %.1f s; "
                "A's own message still arrives after)" % QUIET, repr(got_a))
        finally:
            a.close()
            b.close()
        ack = re.search(r"Denied PUBLISH from sensor-a .*devices/sensor-b/"
                        r"evil", broker.text())
        mt.say("      broker: %s" % (ack.group(0) if ack else
                                     "(no 'Denied PUBLISH' line)"))

    # -- MQTT versions -----------------------------------------------------
    for i, version in enumerate(("mqttv31", "mqttv311", "mqttv5")):
        t.step("mosquitto_sub/pub -V %s through moat" % version)
        with mt.client_case(t, "-V " + version):
            subdev, pubdev = (("sensor-a", "sensor-a-2") if i % 2 == 0
                              else ("sensor-a-2", "sensor-a"))
            topic = "devices/sensor-a/%s" % version
            msgs = ["%s %d %s" % (version, k, os.urandom(3).hex())
                    for k in range(3)]
            since = len(broker.text())
            s = t.sub(moat.port, topic, len(msgs), version=version,
                      dev=subdev, client_id=subdev, broker=broker,
                      name="sub-" + version)
            s.wait_subscribed(since=since)
            mark = len(broker.text())
            r = t.pub(moat.port, topic, lines=msgs, version=version,
                      dev=pubdev, extra=["-u", "admin", "-P", "x"])
            t.check(r.returncode == 0, "mosquitto_pub -V %s (%s) exits 0"
                    % (version, pubdev), r.stderr)
            got = s.result()
            t.check(got == msgs, "mosquitto_sub -V %s (%s) got the 3 "
                    "messages in order" % (version, subdev), repr(got))
            p = {"mqttv31": "1", "mqttv311": "2", "mqttv5": "5"}[version]
            conns = CONNECTED.findall(broker.text()[mark:])
            t.check(conns == [(pubdev, p, "sensor-a")],
                    "the broker saw the publisher as %s, protocol p%s, "
                    "user sensor-a" % (pubdev, p), repr(conns))

    # -- HMAC with the wrong secret ----------------------------------------
    t.step("a moat with a different hmac_secret_file")
    with mt.client_case(t, "wrong HMAC secret"):
        mark = len(broker.text())
        mmark = moat_wrong.mark()
        before = broker.new_connections()
        r = t.pub(moat_wrong.port, "devices/sensor-a/x", "nope",
                  dev="sensor-a", timeout=10)
        t.check(r.returncode != 0 and "not authori" in r.stderr,
                "mosquitto_pub is refused: %s" % r.stderr.strip())
        ports = []
        for version, want in ((4, (0x05,)), (5, (0x86, 0x87))):
            c = mt.RawClient("127.0.0.1", moat_wrong.port,
                             t.device_ctx("sensor-a"), timeout=10)
            ports.append(c.sock.getsockname()[1])
            try:
                c.send(mt.mqtt_connect("x", version=version))
                code, body = c.read_connack()
                rest, how = c.read_rest(5)
            finally:
                c.close()
            t.check(code in want, "MQTT level %d: the broker's CONNACK "
                    "0x%02x reaches the device (want %s)"
                    % (version, code, "/".join("0x%02x" % w for w in want)))
            t.check(how == "eof", "then the connection closes (%s)" % how)
        t.check(broker.new_connections() - before == 3,
                "the broker saw the three attempts (%d)"
                % (broker.new_connections() - before))
        new = broker.text()[mark:]
        t.check(new.count("disconnected, not authorised") == 3,
                "the broker refused all three: 'Client <unknown> "
                "disconnected, not authorised'", new)
        for port in ports:
            ln = moat_wrong.wait_closed_match("peer=127.0.0.1:%d " % port,
                                              mmark)
            mt.say("      moat: %s" % ln.strip())
            t.check("username=sensor-a" in ln and "client_id=sensor-a"
                    in ln and mt.reason_of(ln) == "backend_closed",
                    "moat logged the broker's refusal (username sensor-a, "
                    "reason=backend_closed)", ln)

    # -- unknown and denied identities -------------------------------------
    for dev, what, rx in (("sensor-c", "not in the map (unknown = reject)",
                           r"no entry in the map"),
                          ("sensor-d", "deny = true in the map",
                           r"deny = true")):
        t.step("refused: %s, %s" % (dev, what))
        with mt.client_case(t, "refused " + dev):
            before = broker.new_connections()
            fp = fingerprint(t.pki.device(dev)[0])
            for version, want in ((4, b"\x20\x02\x00\x05"),
                                  (5, b"\x20\x03\x00\x87\x00")):
                mmark = moat.mark()
                c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx(dev),
                                 timeout=10)
                port = c.sock.getsockname()[1]
                try:
                    c.send(mt.mqtt_connect(dev, version=version))
                    got, how = c.read_rest(5)
                finally:
                    c.close()
                t.check(got == want and how == "eof",
                        "MQTT level %d: CONNACK %s, then closed"
                        % (version, want.hex(" ")),
                        "got %r, %s" % (got, how))
                line = moat.wait_closed_match("peer=127.0.0.1:%d " % port,
                                              mmark)
                mt.say("      moat: %s" % line.strip())
                t.check(mt.reason_of(line) == "identity_refused" and
                        "fingerprint=" + fp in line and
                        re.search(rx, line), "conn_closed reason="
                        "identity_refused, the certificate's fingerprint "
                        "and why", line)
            r = t.pub(moat.port, "devices/%s/x" % dev, "m", dev=dev,
                      timeout=10)
            t.check(r.returncode != 0 and "not authori" in r.stderr,
                    "mosquitto_pub is refused: %s" % r.stderr.strip())
            time.sleep(0.2)
            t.check(broker.new_connections() == before,
                    "the broker saw no connection (%d new)"
                    % (broker.new_connections() - before))

    # -- the device's password never reaches the broker --------------------
    t.step("password = none: an anonymous Mosquitto behind a TCP recorder")
    open_broker = t.mosquitto(name="mosquitto-open")
    rec = mt.TcpRecorder(t, open_broker.port)
    moat_nopw = t.start_moat("127.0.0.1:%d" % rec.port, name="moat-nopw",
                             identity={"source": "cn", "password": "none",
                                       "client_id": "identity",
                                       "unknown": "template"},
                             log={"level": "debug"})
    for version in ("mqttv31", "mqttv311", "mqttv5"):
        with mt.client_case(t, "no device password, -V " + version):
            n0 = len(rec.conns)
            mark = len(open_broker.text())
            r = t.pub(moat_nopw.port, "devices/sensor-a/pw", "m " + version,
                      version=version, dev="sensor-a", client_id="own-id",
                      extra=["-u", "admin", "-P", DEVICE_SECRET])
            t.check(r.returncode == 0, "-V %s -u admin -P %s exits 0"
                    % (version, DEVICE_SECRET), r.stderr)
            conns = CONNECTED.findall(open_broker.text()[mark:])
            t.check(len(conns) == 1 and conns[0][0] == "sensor-a" and
                    conns[0][2] == "sensor-a", "the broker saw client "
                    "sensor-a, user sensor-a (%s)" % conns)
            t.check(mt.wait_for(lambda: len(rec.conns) == n0 + 1 and
                                rec.conns[n0]["up"], 5),
                    "the recorder saw the connection")
            up = bytes(rec.conns[n0]["up"])
            pc = mt.mqtt_parse_connect(up)
            mt.say("      forwarded CONNECT: level %d flags 0x%02x client "
                   "id %r username %r password %r" % (
                       pc["level"], pc["flags"], pc["client_id"],
                       pc["username"], pc["password"]))
            t.check(pc["username"] == b"sensor-a" and
                    pc["password"] is None and not pc["flags"] & 0x40 and
                    pc["client_id"] == b"sensor-a",
                    "the forwarded CONNECT carries username sensor-a, no "
                    "password, client id sensor-a")
            t.check(DEVICE_SECRET.encode() not in up and b"admin" not in up
                    and b"own-id" not in up, "none of the device's "
                    "username, password or client id was forwarded "
                    "(%d bytes recorded)" % len(up))
    with mt.client_case(t, "secrets in logs"):
        for m in (moat_nopw, moat, moat_wrong):
            text = m.text()
            t.check(DEVICE_SECRET not in text, "%s's log does not contain "
                    "the device's password" % m.name)
            for user, pw in plain.items():
                t.check(pw not in text, "%s's log does not contain %s's "
                        "HMAC password" % (m.name, user))


if __name__ == "__main__":
    mt.run(main, "t_identity")
