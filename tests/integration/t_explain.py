#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""moat explain and moat passwd, on certificates made for the purpose.

  SANs         a certificate with DNS, URI, email and IP SANs: explain lists
               them all; source = san-uri with a pattern takes the SPIFFE
               service-account segment (sensor-42), skipping a URI that does
               not match; a pattern nothing matches refuses, saying so;
               with several SANs of a type, the first in certificate order
               is the identity (san-dns, san-email).
  DN           subject /O=Acme, Inc./CN=dev "1": explain prints the RFC 4514
               DN CN=dev \\"1\\",O=Acme\\, Inc. and source = dn uses it.
  bad names    a CN with '#' or '+' is refused (exit 1) with a reason that
               names the character.
  map          an entry with username, password and client_id is applied
               (rule "map entry [sensor-42]"); an identity not in the map
               with unknown = reject and a deny = true entry are refused.
  client id    --client-id with require-equal, --mqtt 3 with a client id
               longer than 23 bytes.
  policy       [policy] rules and [limits] are shown with the placeholders
               filled for the device; a map entry's own publish list and
               limits replace them; without [policy], "topic rules: off".
  verification a certificate of another CA: "verification: FAILS" and a
               nonzero exit (the handshake would refuse that device).
  passwd       plain: "username password" with password = base64url
               (no padding) of HMAC-SHA256(secret, username), checked here
               independently; --mosquitto: user:$7$101$salt$hash with
               hash = PBKDF2-SHA512(password, salt, 101), checked here;
               unknown, denied and password = none identities exit 1 naming
               the identity, while known ones in the same call are printed.
  secrets      explain never prints a password (HMAC, file:, map entry)."""

import base64
import hashlib
import hmac
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

SPIFFE = r"^spiffe://example\.org/ns/[^/]+/sa/([^/]+)$"
MAP_SECRET = "map-secret-9f3e"
FILE_SECRET = "file-secret-71ac"


def field(out, name):
    """Values of an explain line, "  name   value" or "name: value"."""
    vals = []
    for ln in out.splitlines():
        m = re.match(r"^\s+%s\s{2,}(.*)$" % re.escape(name), ln) or \
            re.match(r"^%s: (.*)$" % re.escape(name), ln)
        if m:
            vals.append(m.group(1))
    return vals


def one(out, name):
    v = field(out, name)
    return v[0] if len(v) == 1 else v


def hmac_pw(secret, username):
    mac = hmac.new(secret, username.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def main(t):
    p = t.pki
    t.step("certificates")
    multi = p.custom("multi-san", "/CN=multi-san", san=",".join([
        "DNS:dev1.example.com", "DNS:dev1.alt.example",
        "URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "URI:spiffe://example.org/ns/prod/sa/sensor-42",
        "email:dev1@example.com", "IP:192.0.2.7", "IP:2001:db8::7"]))
    order = p.custom("order", "/CN=order", san=",".join([
        "DNS:b.example", "DNS:c.example", "DNS:a.example",
        "email:first@example.com", "email:second@example.com"]))
    dn = p.custom("dn", '/O=Acme, Inc./CN=dev "1"')
    hashcn = p.custom("hash", "/CN=sensor#1")
    pluscn = p.custom("plus", "/CN=sensor\\+1")
    s42 = p.device("sensor-42")
    sa = p.device("sensor-a")
    sd = p.device("sensor-d")
    other = p.other_device()
    secret = os.urandom(20).hex().encode()
    secret_file = t.write("hmac.secret", secret.decode() + "\n\n")
    os.chmod(secret_file, 0o600)
    pw_file = t.write("broker.password", FILE_SECRET + "\n")
    os.chmod(pw_file, 0o600)
    mapfile = t.write("map.ini", "[sensor-42]\nusername = dev-42-user\n"
                      "password = %s\nclient_id = dev-42-cid\n\n"
                      "[sensor-d]\ndeny = true\n" % MAP_SECRET)

    def ini(name, **ident):
        return t.write_ini("moat-%s.ini" % name, "127.0.0.1:1883",
                           identity=ident)

    def explain(conf, cert, *extra):
        r = t.moat_run(["explain", "-c", conf] + list(extra) + [cert])
        mt.say("      $ moat explain %s%s -> exit %d"
               % (" ".join(extra) + " " if extra else "",
                  os.path.basename(cert), r.returncode))
        for ln in (r.stdout + r.stderr).splitlines():
            mt.say("        | " + ln)
        return r

    def explain_case(name, conf, cert, want_rc, checks, extra=()):
        with t.subcase(name):
            r = explain(conf, cert, *extra)
            t.check(r.returncode == want_rc, "exit %d" % want_rc,
                    "got %d" % r.returncode)
            for what, ok in checks(r.stdout):
                t.check(ok, what)

    # -- SANs --------------------------------------------------------------
    t.step("several SANs, source = san-uri with a SPIFFE pattern")
    conf = ini("san-uri", source="san-uri", pattern=SPIFFE,
               unknown="template")
    explain_case("san-uri", conf, multi[0], 0, lambda o: [
        ("san-dns lists both DNS names", sorted(field(o, "san-dns")) ==
         ["dev1.alt.example", "dev1.example.com"]),
        ("san-uri lists both URIs", sorted(field(o, "san-uri")) == sorted([
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "spiffe://example.org/ns/prod/sa/sensor-42"])),
        ("san-email lists dev1@example.com",
         field(o, "san-email") == ["dev1@example.com"]),
        ("san-ip lists 192.0.2.7 and 2001:db8::7",
         sorted(field(o, "san-ip")) == ["192.0.2.7", "2001:db8::7"]),
        ("verification passes", one(o, "verification").startswith(
            "passes")),
        ("identity: sensor-42 (the pattern's group)",
         one(o, "identity") == "sensor-42"),
        ("rule: template", one(o, "rule") == "template"),
        ("result: accepted", one(o, "result") == "accepted"),
        ("username sensor-42", one(o, "username") == "sensor-42"),
        ("client id sensor-42 (policy identity)",
         one(o, "client id") == "sensor-42"),
        ("password (none)", one(o, "password") == "(none)")])

    conf_nomatch = ini("san-uri-nomatch", source="san-uri",
                       pattern=r"^spiffe://elsewhere\.example/(.+)$",
                       unknown="template")
    explain_case("san-uri, no match", conf_nomatch, multi[0], 1,
                 lambda o: [
                     ("result: refused: unknown identity",
                      one(o, "result") == "refused: unknown identity"),
                     ("why says no URI SAN matches the pattern",
                      re.search(r"URI.*pattern", one(o, "why") or ""))])

    t.step("several SANs of a type: the first in certificate order")
    for src, want in (("san-dns", "b.example"),
                      ("san-email", "first@example.com")):
        conf_o = ini("order-" + src, source=src, unknown="template")
        explain_case("%s picks the first SAN" % src, conf_o, order[0], 0,
                     lambda o, want=want: [
                         ("identity %s (first in the certificate; got %s)"
                          % (want, one(o, "identity")),
                          one(o, "identity") == want)])

    # -- DN ----------------------------------------------------------------
    t.step("subject /O=Acme, Inc./CN=dev \"1\", source = dn")
    rfc4514 = 'CN=dev \\"1\\",O=Acme\\, Inc.'
    conf = ini("dn", source="dn", unknown="template")
    explain_case("dn", conf, dn[0], 0, lambda o: [
        ("subject printed as %s" % rfc4514, one(o, "subject") == rfc4514),
        ("cn printed as dev \"1\"", one(o, "cn") == 'dev "1"'),
        ("identity is the DN", one(o, "identity") == rfc4514),
        ("username is the DN", one(o, "username") == rfc4514)])

    # -- forbidden characters ----------------------------------------------
    conf = ini("cn", source="cn", unknown="template")
    for cert, ch in ((hashcn, "#"), (pluscn, "+")):
        t.step("CN with '%s'" % ch)
        explain_case("CN with " + ch, conf, cert[0], 1, lambda o, ch=ch: [
            ("result: refused: forbidden name",
             one(o, "result") == "refused: forbidden name"),
            ("why names the character '%s' and the CN" % ch,
             "'%s'" % ch in (one(o, "why") or "") and
             "CN" in (one(o, "why") or ""))])

    # -- map ---------------------------------------------------------------
    t.step("map entries, unknown = reject")
    conf_map = ini("map", source="cn", map=mapfile, unknown="reject",
                   password="hmac", hmac_secret_file=secret_file)
    explain_case("map entry", conf_map, s42[0], 0, lambda o: [
        ("rule: map entry [sensor-42]",
         one(o, "rule") == "map entry [sensor-42]"),
        ("username dev-42-user", one(o, "username") == "dev-42-user"),
        ("client id dev-42-cid", one(o, "client id") == "dev-42-cid"),
        ("password (set, not shown)",
         one(o, "password") == "(set, not shown)"),
        ("the map's password is not printed", MAP_SECRET not in o)])
    explain_case("not in the map", conf_map, sa[0], 1, lambda o: [
        ("result: refused: unknown identity",
         one(o, "result") == "refused: unknown identity"),
        ("why: no entry in the map", "no entry in the map" in
         (one(o, "why") or ""))])
    explain_case("deny = true", conf_map, sd[0], 1, lambda o: [
        ("result: refused: denied by the map",
         one(o, "result") == "refused: denied by the map"),
        ("why: deny = true", "deny = true" in (one(o, "why") or ""))])

    # -- client id options -------------------------------------------------
    t.step("--client-id and --mqtt")
    conf = ini("require-equal", source="cn", unknown="template",
               client_id="require-equal")
    explain_case("require-equal, wrong id", conf, sa[0], 1, lambda o: [
        ("result: refused: client id",
         one(o, "result") == "refused: client id"),
        ("why names both ids", "sensor-b" in (one(o, "why") or "") and
         "sensor-a" in (one(o, "why") or ""))],
        extra=("--client-id", "sensor-b"))
    explain_case("require-equal, right id", conf, sa[0], 0, lambda o: [
        ("client id sensor-a", one(o, "client id") == "sensor-a")],
        extra=("--client-id", "sensor-a"))
    conf = ini("keep", source="cn", unknown="template", client_id="keep")
    explain_case("MQTT 3.1, 24-byte client id", conf, sa[0], 1, lambda o: [
        ("why names the 23-byte limit", "23" in (one(o, "why") or ""))],
        extra=("--client-id", "x" * 24, "--mqtt", "3"))

    t.step("topic rules and limits, filled for the device")
    pmap = t.write("pmap.ini", "[sensor-42]\npublish = fleet/{cn}/#\n"
                   "publish_rate = 20\nmax_connections_per_identity = 2\n"
                   "on_duplicate = refuse\n\n[sensor-a]\n")
    pol = ("[policy]\npublish = devices/{identity}/#\n"
           "subscribe = devices/{identity}/#, broadcast/#\n"
           "[limits]\npublish_rate = 100\npublish_burst = 10\n")
    conf = t.write("moat-policy.ini", t.ini_text(
        "127.0.0.1:1883", identity={"source": "cn", "map": pmap,
                                    "unknown": "reject"})[0] + pol)
    explain_case("[policy] and [limits]", conf, sa[0], 0, lambda o: [
        ("publish rule filled: devices/sensor-a/#",
         field(o, "publish") == ["devices/sensor-a/#"]),
        ("both subscribe rules, filled",
         field(o, "subscribe") == ["devices/sensor-a/#", "broadcast/#"]),
        ("publish rate 100 messages/s, burst 10",
         one(o, "rate") == "100 messages/s" and
         one(o, "burst") == "10 messages"),
        ("connections: no limit", one(o, "connections") == "no limit")])
    explain_case("the map's own rules and limits", conf, s42[0], 0,
                 lambda o: [
        ("the map's publish list, {cn} filled",
         field(o, "publish") == ["fleet/sensor-42/#"]),
        ("[policy]'s subscribe list",
         field(o, "subscribe") == ["devices/sensor-42/#", "broadcast/#"]),
        ("the map's rate", one(o, "rate") == "20 messages/s"),
        ("2 connections, refuse",
         one(o, "connections") == "2 at once, a newer one is refused")])
    conf = ini("nopolicy", source="cn", unknown="template")
    explain_case("no [policy]", conf, sa[0], 0, lambda o: [
        ("topic rules: off", (one(o, "topic rules") or "").startswith(
            "off (topic policy off: the broker's ACL is the only guard")),
        ("no publish rule lines", field(o, "publish") == [])])

    t.step("a certificate of another CA")
    conf = ini("other", source="cn", unknown="template")
    with t.subcase("other CA"):
        r = explain(conf, other[0])
        t.check(one(r.stdout, "verification").startswith("FAILS"),
                "verification: FAILS")
        # moat would refuse this device in the handshake, so "accepted"
        # with exit 0 would tell a script the opposite of what happens
        t.check(r.returncode != 0, "explain exits nonzero for a "
                "certificate that fails verification (exit %d)"
                % r.returncode)

    # -- passwords never printed by explain --------------------------------
    t.step("explain never prints a password")
    conf_hmac = ini("hmac", source="cn", unknown="template",
                    username="dev-{identity}", password="hmac",
                    hmac_secret_file=secret_file)
    conf_file = ini("file", source="cn", unknown="template",
                    password="file:" + pw_file)
    for name, conf, pw in (("hmac", conf_hmac,
                            hmac_pw(secret, "dev-sensor-a")),
                           ("file:", conf_file, FILE_SECRET)):
        with t.subcase("explain hides the %s password" % name):
            r = explain(conf, sa[0])
            t.check(r.returncode == 0 and one(r.stdout, "password") ==
                    "(set, not shown)", "password = %s: (set, not shown)"
                    % name)
            t.check(pw not in r.stdout + r.stderr,
                    "the password itself is not printed")
            t.check(secret.decode() not in r.stdout + r.stderr,
                    "nor the HMAC secret")

    # -- passwd ------------------------------------------------------------
    t.step("moat passwd (hmac, username = dev-{identity})")
    with t.subcase("passwd plain"):
        r = t.moat_run(["passwd", "-c", conf_hmac, "sensor-a", "sensor-b"])
        mt.say("      | " + r.stdout.replace("\n", "\n      | "))
        t.check(r.returncode == 0, "exit 0", r.stderr)
        want = ["dev-%s %s" % (i, hmac_pw(secret, "dev-" + i))
                for i in ("sensor-a", "sensor-b")]
        t.check(r.stdout.splitlines() == want, "one 'username password' "
                "line per identity; password = base64url(HMAC-SHA256("
                "secret without trailing newlines, username)), no padding",
                "want %r\ngot  %r" % (want, r.stdout.splitlines()))
    with t.subcase("passwd --mosquitto"):
        r = t.moat_run(["passwd", "-c", conf_hmac, "--mosquitto",
                        "sensor-a", "sensor-b"])
        mt.say("      | " + r.stdout.replace("\n", "\n      | "))
        t.check(r.returncode == 0, "exit 0", r.stderr)
        lines = r.stdout.splitlines()
        t.check(len(lines) == 2, "two lines")
        for ln, ident in zip(lines, ("sensor-a", "sensor-b")):
            m = re.fullmatch(r"([^:]+):\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$"
                             r"([A-Za-z0-9+/=]+)", ln)
            t.check(m and m.group(1) == "dev-" + ident,
                    "dev-%s:$7$ITER$SALT$HASH" % ident, ln)
            it = int(m.group(2))
            salt = base64.b64decode(m.group(3))
            got = base64.b64decode(m.group(4))
            calc = hashlib.pbkdf2_hmac("sha512", hmac_pw(
                secret, "dev-" + ident).encode(), salt, it, len(got))
            t.check(calc == got and len(got) == 64, "hash = PBKDF2-SHA512("
                    "the HMAC password, %d-byte salt, %d iterations)"
                    % (len(salt), it))
        r2 = t.moat_run(["passwd", "-c", conf_hmac, "--mosquitto",
                         "sensor-a"])
        t.check(r2.stdout.split("$")[3] != lines[0].split("$")[3],
                "a fresh random salt on each run")
    with t.subcase("passwd refusals"):
        r = t.moat_run(["passwd", "-c", conf_map, "sensor-42", "nobody-x",
                        "sensor-d"])
        mt.say("      | " + (r.stdout + r.stderr).replace(
            "\n", "\n      | "))
        t.check(r.returncode != 0, "unknown and denied identities: exit %d"
                % r.returncode)
        t.check("nobody-x" in r.stderr and "sensor-d" in r.stderr,
                "stderr names nobody-x and sensor-d")
        t.check(r.stdout.splitlines() == ["dev-42-user " + MAP_SECRET],
                "the known identity is still printed, with its map "
                "username and password", r.stdout)
        r = t.moat_run(["passwd", "-c", ini("nopw", source="cn",
                                            unknown="template"),
                        "sensor-a"])
        t.check(r.returncode != 0 and "password" in r.stderr and
                not r.stdout, "password = none: exit %d, says so: %s"
                % (r.returncode, r.stderr.strip()))


if __name__ == "__main__":
    mt.run(main, "t_explain")
