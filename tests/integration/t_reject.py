#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every refused device stays out: no certificate, another CA's certificate,
expired, not yet valid, revoked by the CRL, TLS 1.0 and 1.1, only anonymous
ciphers, only NULL ciphers. Each is refused by moat (the client sees an
error, moat logs conn_closed with a TLS reason) and the broker sees no
connection at all. The accepting twin (a good certificate) gets through.

Each refused client is first tried against a permissive TLS server in this
process (the control), to prove that the client really offers what it
claims and that the refusal is moat's doing."""

import os
import re
import socket
import ssl
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

V = ssl.TLSVersion
OLD = "DEFAULT:@SECLEVEL=0"

# reasons that say "the TLS handshake / certificate check failed"
TLS_REASON = re.compile(r"tls|handshake|cert|verif|crl|revok|expir|protocol"
                        r"|cipher|alert")


class ControlServer:
    """A permissive TLS server (TLS 1.0+, anon and NULL ciphers, client
    certificate optional) that completes handshakes and closes."""

    def __init__(self, t):
        cert, key = t.pki.server()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.minimum_version = V.MINIMUM_SUPPORTED
        self.ctx.set_ciphers("ALL:aNULL:eNULL:@SECLEVEL=0")
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.ls.settimeout(0.5)
        self.port = self.ls.getsockname()[1]
        self.stopping = False
        self.th = threading.Thread(target=self._serve, daemon=True)
        self.th.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.ls.accept()
            except OSError:
                continue
            conn.settimeout(5)
            try:
                s = self.ctx.wrap_socket(conn, server_side=True)
                s.close()
            except (OSError, ssl.SSLError):
                conn.close()

    def handshake(self, ctx):
        """Returns (version, cipher) the client negotiated, or raises."""
        s = socket.create_connection(("127.0.0.1", self.port), 5)
        try:
            s = ctx.wrap_socket(s, server_hostname="localhost")
            return s.version(), s.cipher()[0]
        finally:
            s.close()

    def stop(self):
        self.stopping = True
        self.ls.close()
        self.th.join(2)


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    p = t.pki
    t.step("certificates: good, other CA, expired, not yet valid, revoked")
    good = p.device("sensor-a")
    p.device("sensor-b")
    other = p.other_device()
    expired = p.expired()
    future = p.not_yet_valid()
    revoked = p.revoked()
    crl = p.crl()

    ca = p.ca
    cases = [
        ("no client certificate", dict(ca=ca)),
        ("no client certificate, TLS 1.2", dict(ca=ca, max_version=V.TLSv1_2)),
        ("a certificate from another CA", dict(ca=ca, cert=other[0],
                                               key=other[1])),
        ("an expired certificate", dict(ca=ca, cert=expired[0],
                                        key=expired[1])),
        ("a not-yet-valid certificate", dict(ca=ca, cert=future[0],
                                             key=future[1])),
        ("a certificate revoked by the CRL", dict(ca=ca, cert=revoked[0],
                                                  key=revoked[1])),
        ("a TLS 1.0 client", dict(ca=ca, cert=good[0], key=good[1],
                                  min_version=V.TLSv1, max_version=V.TLSv1,
                                  ciphers=OLD)),
        ("a TLS 1.1 client", dict(ca=ca, cert=good[0], key=good[1],
                                  min_version=V.TLSv1_1,
                                  max_version=V.TLSv1_1, ciphers=OLD)),
        ("a client offering only anonymous (aNULL) ciphers",
         dict(ca=None, cert=good[0], key=good[1], max_version=V.TLSv1_2,
              ciphers="aNULL:@SECLEVEL=0")),
        ("a client offering only NULL-encryption (eNULL) ciphers",
         dict(ca=ca, cert=good[0], key=good[1], max_version=V.TLSv1_2,
              ciphers="eNULL:!aNULL:@SECLEVEL=0")),
        ("a client offering only anonymous NULL ciphers",
         dict(ca=None, cert=good[0], key=good[1], max_version=V.TLSv1_2,
              ciphers="aNULL+eNULL:@SECLEVEL=0")),
    ]

    t.step("controls: each refused client handshakes with a permissive "
           "TLS server")
    ctl = ControlServer(t)
    try:
        for what, kw in cases:
            ctx = mt.client_context(**kw)
            try:
                ver, cipher = ctl.handshake(ctx)
            except (OSError, ssl.SSLError) as e:
                t.fail("control: %s cannot even handshake with a permissive "
                       "server (%s); the test client is broken" % (what, e))
            t.ok("control: %s negotiates %s %s" % (what, ver, cipher))
    finally:
        ctl.stop()

    t.step("Mosquitto on loopback; moat in front of it with the CRL")
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, tls={"crl": crl})

    for what, kw in cases:
        t.step("refused: %s" % what)
        with t.subcase(what):
            mark = moat.mark()
            before = broker.new_connections()
            ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(**kw))
            t.check(not ok, "the client sees a failure (%s)" % how)
            lines = moat.wait_closed(mark, 1, timeout=5)
            line = lines[0]
            reason = mt.reason_of(line) or ""
            mt.say("      moat: %s" % line.strip())
            t.check(TLS_REASON.search(reason) and "timeout" not in reason,
                    "moat logged conn_closed with a TLS reason (%s)" % reason,
                    line)
            t.check(broker.new_connections() == before,
                    "the broker saw no connection")

    t.step("the same refusals with mosquitto_pub (no certificate, "
           "other CA, revoked)")
    for what, cert in (("no certificate", False), ("other CA", other),
                       ("revoked", revoked)):
        with t.subcase("mosquitto_pub with " + what):
            mark = moat.mark()
            r = t.pub(moat.port, "moat/reject", "should not arrive",
                      cert=cert, timeout=20)
            t.check(r.returncode != 0, "mosquitto_pub with %s fails "
                    "(exit %d)" % (what, r.returncode))
            moat.wait_closed(mark, 1, timeout=5)
    t.check(broker.new_connections() == 0,
            "after %d refusals the broker has still seen no connection"
            % (len(cases) + 3))

    t.step("refused after the handshake: a certificate whose keyUsage "
           "does not allow signing")
    # keyAgreement alone is a well-formed keyUsage for an EC key, and no
    # wolfSSL refuses it in the handshake: moat checks keyUsage itself.
    agree = t.pki.custom("ku-agree", "/CN=sensor-ku-agree",
                         key_usage="critical, keyAgreement")
    mark = moat.mark()
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(
        ca=ca, cert=agree[0], key=agree[1]), client_id="ku-agree")
    t.check(not ok, "the client does not get in (%s)" % how)
    line = moat.wait_closed(mark, 1, timeout=5)[0]
    mt.say("      moat: %s" % line.strip())
    t.check(mt.reason_of(line) == "identity_refused" and
            "keyUsage" in line, "moat refused it naming keyUsage", line)
    t.check(broker.new_connections() == 0, "the broker saw no connection")

    t.step("refused: a certificate that is not a CA but whose keyUsage "
           "allows only certificate signing")
    # wolfSSL 5.5 (Debian 12) accepts it in the handshake and moat's
    # keyUsage check refuses it; newer wolfSSL (5.7, Debian 13) refuses it
    # in the handshake itself (keyCertSign without CA:TRUE, RFC 5280
    # 4.2.1.9), in its own words. Either way it stays out: the reason must
    # be moat's keyUsage refusal or a TLS one, never anything else.
    certsign = t.pki.custom("ku-certsign", "/CN=sensor-ku",
                            key_usage="critical, keyCertSign")
    mark = moat.mark()
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(
        ca=ca, cert=certsign[0], key=certsign[1]), client_id="ku")
    t.check(not ok, "the client does not get in (%s)" % how)
    line = moat.wait_closed(mark, 1, timeout=5)[0]
    reason = mt.reason_of(line) or ""
    mt.say("      moat: %s" % line.strip())
    if reason == "identity_refused":
        t.check("keyUsage" in line, "moat refused it naming keyUsage", line)
    else:
        t.check(TLS_REASON.search(reason) and "timeout" not in reason,
                "the TLS handshake refused it: conn_closed with a TLS "
                "reason (%s)" % reason, line)
    t.check(broker.new_connections() == 0, "the broker saw no connection")

    t.step("accepting twin: the good certificate gets through")
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(
        ca=ca, cert=good[0], key=good[1]), client_id="twin-raw")
    t.check(ok, "raw TLS client with a good certificate: %s" % how)
    t.check(broker.new_connections() >= 1,
            "the broker saw it (%d connection(s)), so the counting works"
            % broker.new_connections())
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/reject/twin",
                        tag="twin")


if __name__ == "__main__":
    mt.run(main, "t_reject")
