#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The audit line: with [log] format = json, each connection writes one
JSON object when it closes, with its peer, certificate fingerprint and
identity, mapped username and client id, the broker's CONNACK code, bytes
each way, duration and close reason. The broker is a stock Mosquitto with
allow_anonymous false and a password_file (from `moat passwd`) that knows
sensor-a only; moat maps every CN of the map with password = hmac.

  accepted     sensor-a publishes (QoS 1) and disconnects: one line with
               every field, connack 0, bytes both ways.
  broker says  sensor-b is mapped by moat but not in the broker's
  no           password_file: the broker answers CONNACK 5 (3.1.1) and
               0x86/0x87 (5); the line carries the broker's own code.
  moat says    sensor-c is not in the map (unknown = reject): moat refuses
  no           it itself, the broker sees nothing; its line has connack
               null and reason identity_refused, and still names the
               identity and the fingerprint.
  secrets      the passwords moat sent (the test computes them with moat
               passwd) and the HMAC secret appear in no log line; every
               line of the log parses as JSON."""

import hashlib
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

MAP = """\
[sensor-a]
[sensor-b]
"""

FIELDS = ("ts", "level", "event", "id", "worker", "peer", "subject",
          "username", "client_id", "up", "down", "duration_ms", "reason",
          "fingerprint", "identity", "connack")


def fingerprint(cert):
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def audit_lines(moat, start=0):
    """The conn_closed objects after byte offset start."""
    out = []
    for ln in moat.text()[start:].splitlines():
        if "conn_closed" in ln:
            obj = json.loads(ln)
            if obj.get("event") == "conn_closed":
                out.append(obj)
    return out


def wait_audit(t, moat, start, pred, what, timeout=10):
    got = mt.wait_for(lambda: next((o for o in audit_lines(moat, start)
                                    if pred(o)), None), timeout)
    if not got:
        raise mt.Failure("no conn_closed line for %s within %ss:\n%s"
                         % (what, timeout, mt.tail(moat.log)))
    mt.say("      moat: %s" % json.dumps(got, sort_keys=True))
    return got


def check_common(t, o, dev, fp):
    t.check(all(k in o for k in FIELDS), "the line has every field (%s)"
            % ", ".join(k for k in FIELDS if k not in o), repr(o))
    t.check(o.get("level") == "info" and o.get("fingerprint") == fp,
            "level info, the certificate's SHA-256 fingerprint", repr(o))
    t.check(o.get("identity") == dev and o.get("subject") == "CN=" + dev,
            "identity %s (the mapped value) and subject CN=%s"
            % (dev, dev), repr(o))
    t.check(str(o.get("peer", "")).startswith("127.0.0.1:"),
            "peer is the device's loopback address and port", repr(o))
    t.check(int(o.get("duration_ms") or -1) >= 0 and
            int(o.get("up") or -1) >= 0 and int(o.get("down") or -1) >= 0,
            "duration and bytes are counts", repr(o))
    t.check(o.get("ts", "").endswith("Z"), "ts is UTC", repr(o))


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub")
    t.step("certificates: sensor-a, sensor-b (mapped), sensor-c (unknown)")
    fps = {}
    for cn in ("sensor-a", "sensor-b", "sensor-c"):
        fps[cn] = fingerprint(t.pki.device(cn)[0])
    mapfile = t.write("map.ini", MAP)
    secret_hex = os.urandom(24).hex()
    secret = t.write("hmac.secret", secret_hex + "\n")
    os.chmod(secret, 0o600)
    ident = {"source": "cn", "map": mapfile, "unknown": "reject",
             "password": "hmac", "hmac_secret_file": secret,
             "client_id": "identity"}

    t.step("moat passwd: the broker knows sensor-a only")
    ini = t.write_ini("passwd.ini", "127.0.0.1:1883", identity=ident)
    r = t.moat_run(["passwd", "-c", ini, "--mosquitto", "sensor-a"])
    t.check(r.returncode == 0, "moat passwd --mosquitto exits 0", r.stderr)
    pwfile = t.write("passwords", r.stdout)
    r = t.moat_run(["passwd", "-c", ini, "sensor-a", "sensor-b"])
    t.check(r.returncode == 0, "moat passwd (plain) exits 0", r.stderr)
    plain = dict(ln.split(" ", 1) for ln in r.stdout.splitlines())
    t.check(set(plain) == {"sensor-a", "sensor-b"} and
            all(len(p) >= 16 for p in plain.values()),
            "the passwords moat sends for sensor-a and sensor-b", r.stdout)
    broker = t.mosquitto(extra=["allow_anonymous false",
                                "password_file " + pwfile])
    moat = t.start_moat("127.0.0.1:%d" % broker.port, identity=ident,
                        log={"format": "json"})

    with mt.client_case(t, "accepted: connack 0"):
        t.step("sensor-a publishes and disconnects")
        mark = moat.mark()
        r = t.pub(moat.port, "devices/sensor-a/x", "hello", dev="sensor-a")
        t.check(r.returncode == 0, "mosquitto_pub through moat exits 0",
                r.stderr)
        o = wait_audit(t, moat, mark,
                       lambda o: o.get("identity") == "sensor-a", "sensor-a")
        check_common(t, o, "sensor-a", fps["sensor-a"])
        t.check(o.get("connack") == "0", "connack 0: the broker accepted",
                repr(o))
        t.check(o.get("username") == "sensor-a" and
                o.get("client_id") == "sensor-a",
                "mapped username and client id sensor-a", repr(o))
        t.check(int(o["up"]) > 0 and int(o["down"]) >= 4,
                "bytes both ways (up %s, down %s: CONNACK and PUBACK)"
                % (o["up"], o["down"]))
        # After the device's DISCONNECT either side may close first: the
        # device (close_notify, FIN) or the broker, which drops the
        # connection as soon as it reads the DISCONNECT.
        t.check(o.get("reason") in ("device_closed", "device_eof",
                                    "backend_closed"),
                "reason: an orderly end after DISCONNECT (%s)"
                % o.get("reason"))

    with mt.client_case(t, "refused by the broker: its code"):
        for version, want in ((4, ("5",)), (5, ("134", "135"))):
            t.step("sensor-b, MQTT level %d: mapped by moat, unknown to "
                   "the broker" % version)
            mark = moat.mark()
            c = mt.RawClient("127.0.0.1", moat.port,
                             t.device_ctx("sensor-b"), timeout=10)
            port = c.sock.getsockname()[1]
            try:
                c.send(mt.mqtt_connect("x", version=version))
                code, _ = c.read_connack()
                c.read_rest(5)
            finally:
                c.close()
            t.check(str(code) in want, "the device got the broker's "
                    "CONNACK %d" % code)
            o = wait_audit(t, moat, mark, lambda o: o.get("peer") ==
                           "127.0.0.1:%d" % port, "sensor-b")
            check_common(t, o, "sensor-b", fps["sensor-b"])
            t.check(o.get("connack") == str(code),
                    "the line carries the broker's code %d" % code, repr(o))
            t.check(o.get("username") == "sensor-b" and
                    o.get("reason") == "backend_closed",
                    "username sensor-b, reason backend_closed", repr(o))

    with mt.client_case(t, "refused by moat: no broker code"):
        t.step("sensor-c: not in the map")
        mark = moat.mark()
        before = broker.new_connections()
        c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx("sensor-c"),
                         timeout=10)
        try:
            c.send(mt.mqtt_connect("x", version=4))
            code, _ = c.read_connack()
            c.read_rest(5)
        finally:
            c.close()
        t.check(code == 5, "moat answered CONNACK 5 itself (%d)" % code)
        o = wait_audit(t, moat, mark,
                       lambda o: o.get("identity") == "sensor-c", "sensor-c")
        check_common(t, o, "sensor-c", fps["sensor-c"])
        t.check(o.get("connack") is None, "connack is null: the broker "
                "never answered", repr(o))
        t.check(o.get("reason") == "identity_refused" and
                o.get("username") is None,
                "reason identity_refused, no username", repr(o))
        t.check(broker.new_connections() == before,
                "the broker saw nothing")

    t.step("stop moat; read every line it wrote")
    moat.stop_and_check()
    text = moat.text()
    bad = []
    for ln in text.splitlines():
        try:
            json.loads(ln)
        except ValueError:
            bad.append(ln)
    t.check(text.strip() != "" and not bad,
            "every line of the log parses as JSON", "\n".join(bad[:5]))
    t.check(len(audit_lines(moat)) == 4,
            "one conn_closed line per connection (%d)"
            % len(audit_lines(moat)))
    for name, p in sorted(plain.items()):
        t.check(p.strip() not in text, "the password moat sent for %s is "
                "in no log line" % name)
    t.check(secret_hex not in text, "the HMAC secret is in no log line")


if __name__ == "__main__":
    mt.run(main, "t_audit")
