#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The TLS configuration fails closed and says why.

- [tls] ciphers is an allow-list: an integrity-only suite
  (TLS13-SHA256-SHA256), CBC and SHA-1 suites and unknown names are refused
  by --check with FILE:LINE, and with an allowed list a client negotiates
  only an AEAD suite of that list (a client offering only CBC suites is
  refused).
- [tls] ca holds trust anchors, so every certificate in it must be a CA: a
  CA:FALSE, a v1 and a basicConstraints-less certificate in a bundle are
  refused by --check and by a plain start, naming the certificate and the
  file; a bundle of two real CAs is accepted.
- [tls] crl: an expired CRL is refused at start-up ("expired on DATE") and
  by a reload (the running configuration stays); one that expires within
  7 days draws a --check warning (one with 30 days left does not); one that
  expires while moat runs is logged once and devices are refused after it.
"""

import os
import re
import signal
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

# ---------------------------------------------------------------------------
# certificates this test needs besides the harness's

def self_signed(t, name, subj, addext=(), v1=False):
    """A self-signed certificate name.pem / name.key; with v1, an X.509 v1
    certificate (no extensions at all). Returns (cert, key)."""
    t.pki.ca  # noqa: make sure the test CA exists
    cnf = t.pki._ca.cnf
    key, cert = t.path(name + ".key"), t.path(name + ".pem")
    if v1 and "-x509v1" in t.pki.openssl(["req", "-help"]).stderr:
        # OpenSSL 3.2 and later write v3 certificates (with a subject key
        # identifier) from "x509 -req"; they ask for v1 by name.
        t.pki.openssl(["req", "-x509v1", "-new", "-config", cnf, "-newkey",
                       "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-nodes", "-keyout", key, "-out", cert, "-days",
                       "30", "-subj", subj, "-sha256"])
    elif v1:
        csr = t.path(name + ".csr")
        t.pki.openssl(["req", "-new", "-config", cnf, "-newkey", "ec",
                       "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                       "-keyout", key, "-out", csr, "-subj", subj])
        t.pki.openssl(["x509", "-req", "-in", csr, "-signkey", key,
                       "-days", "30", "-sha256", "-out", cert])
    else:
        argv = ["req", "-x509", "-new", "-config", cnf, "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "30", "-subj", subj,
                "-sha256"]
        for e in addext:
            argv += ["-addext", e]
        t.pki.openssl(argv)
    return cert, key


def leaf_signed_by(t, name, issuer):
    """A clientAuth certificate CN=sensor-a signed by the key of issuer
    (cert, key), whatever issuer is. Returns (cert, key)."""
    ca_cert, ca_key = issuer
    key, cert = t.path(name + ".key"), t.path(name + ".pem")
    csr, ext = t.path(name + ".csr"), t.path(name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = clientAuth\n")
    t.pki.openssl(["req", "-new", "-config", t.pki._ca.cnf, "-newkey", "ec",
                   "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", key, "-out", csr, "-subj", "/CN=sensor-a"])
    t.pki.openssl(["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey",
                   ca_key, "-set_serial", "0x4d6f6174", "-days", "5",
                   "-sha256", "-extfile", ext, "-out", cert])
    return cert, key


def asn1_time(when):
    """An epoch time as openssl ca's YYMMDDHHMMSSZ."""
    return time.strftime("%y%m%d%H%M%SZ", time.gmtime(when))


def crl_until(t, name, next_update, last_update=None):
    """A CRL of the test CA (listing the revoked device) whose nextUpdate
    is the epoch time next_update. Returns its path."""
    t.pki.revoked()  # the CA's database lists a revoked certificate
    out = t.path(name)
    argv = ["ca", "-batch", "-config", t.pki._ca.cnf, "-gencrl",
            "-crl_nextupdate", asn1_time(next_update), "-out", out]
    if last_update is not None:
        argv += ["-crl_lastupdate", asn1_time(last_update)]
    t.pki.openssl(argv)
    return out


# ---------------------------------------------------------------------------
# checks

def check_refused(t, name, ini, key, wants):
    """--check on ini exits 1 with FILE:LINE of [tls] key and every string
    in wants."""
    line = "%s:%d:" % (ini, t.ini_lines["tls." + key])
    r = t.moat_run(["--check", "-c", ini])
    out = r.stdout + r.stderr
    t.check(r.returncode == 1, "%s: --check exits 1 (got %s)"
            % (name, r.returncode), out)
    t.check(line in out, "%s: --check points at %s" % (name, line), out)
    for w in wants:
        t.check(w in out, "%s: --check says %r" % (name, w), out)
    mt.say("      moat said: %s" % out.strip()[:400])


def start_refused(t, name, backend, tls, key, wants, leaf=None):
    """A plain start with [tls] set to tls exits non-zero, logging
    FILE:LINE of [tls] key and wants. Should moat start instead, the
    failure says whether the device certificate leaf got in."""
    moat = t.start_moat(backend, name="moat-" + name, tls=tls,
                        expect_start=False)
    try:
        rc = moat.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        moat._wait_ready(1)
        how = "no device certificate tried"
        if leaf:
            ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(
                ca=t.pki.ca, cert=leaf[0], key=leaf[1]))
            how = ("a device certificate signed by it got in: %s" % how
                   if ok else "(%s)" % how)
        t.fail("%s: moat started; %s" % (name, how))
    moat.stop()
    out = moat.text()
    line = "%s:%d:" % (moat.ini, t.ini_lines["tls." + key])
    t.check(rc != 0, "%s: a plain start exits %s" % (name, rc), out)
    t.check(line in out and all(w in out for w in wants),
            "%s: and logs the reason at %s" % (name, line), out)


def ciphers(t, backend):
    t.step("[tls] ciphers: suites that are not AEAD and forward-secret")
    bad = [("TLS13-SHA256-SHA256", "does not encrypt"),
           ("TLS13-AES128-GCM-SHA256:TLS13-SHA384-SHA384", "integrity-only"),
           ("ECDHE-ECDSA-AES128-SHA256", "CBC mode"),
           ("ECDHE-ECDSA-AES128-CBC-SHA256", "CBC mode"),
           ("ECDHE-ECDSA-AES128-SHA", "SHA-1"),
           ("ECDHE-ECDSA-AES128-GCM-SHA512", "not a suite moat knows")]
    for i, (lst, why) in enumerate(bad):
        with t.subcase("ciphers = %s" % lst):
            ini = t.write_ini("ciphers%d.ini" % i, backend,
                              tls={"ciphers": lst})
            suite = lst.split(":")[-1]
            r = t.moat_run(["--check", "-c", ini])
            out = r.stdout + r.stderr
            line = "%s:%d:" % (ini, t.ini_lines["tls.ciphers"])
            t.check(r.returncode == 1, "%s: --check exits 1 (got %s)"
                    % (lst, r.returncode), out)
            t.check('%s ciphers: "%s" is refused: ' % (line, suite) in out,
                    "%s: the error is at %s and names %s" % (lst, line, suite),
                    out)
            t.check(why in out, "%s: says why (%r)" % (lst, why), out)
            t.check("Allowed (AEAD, forward-secret): TLS13-AES128-GCM-SHA256"
                    in out, "%s: lists what is allowed" % lst, out)

    t.step("an allowed list: clients get one of its AEAD suites, or nothing")
    allowed = "TLS13-CHACHA20-POLY1305-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
    ini = t.write_ini("ciphers-ok.ini", backend, tls={"ciphers": allowed})
    r = t.moat_run(["--check", "-c", ini])
    t.check(r.returncode == 0, "--check accepts %s" % allowed,
            r.stdout + r.stderr)
    moat = t.start_moat(backend, name="moat-ciphers",
                        tls={"ciphers": allowed})
    cert, key = t.pki.device()
    cases = [
        ("TLS 1.3 defaults", dict(), {"TLS_CHACHA20_POLY1305_SHA256"}),
        ("TLS 1.2, CBC and SHA-1 offered first",
         dict(max_version=ssl.TLSVersion.TLSv1_2,
              ciphers="ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256:"
              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"),
         {"ECDHE-ECDSA-AES256-GCM-SHA384"}),
    ]
    for what, kw, want in cases:
        ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key, **kw)
        c = mt.RawClient("127.0.0.1", moat.port, ctx)
        got = c.sock.cipher()[0]
        rc = c.connect("cipher-probe")
        c.close()
        t.check(got in want and rc == 0, "%s: negotiated %s, CONNACK %s"
                % (what, got, rc))
    for what, suites in (("TLS 1.2, CBC and SHA-1 suites only",
                          "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"),
                         ("TLS 1.2, an AEAD suite not in the list",
                          "ECDHE-ECDSA-AES128-GCM-SHA256")):
        ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key,
                                max_version=ssl.TLSVersion.TLSv1_2,
                                ciphers=suites)
        ok, how = mt.try_tls_mqtt(moat.port, ctx)
        t.check(not ok, "%s: refused (%s)" % (what, how))
    moat.stop_and_check()


def anchors(t, backend):
    t.step("[tls] ca: every certificate in it must be a CA")
    bad = [
        ("a CA:FALSE certificate", "notca",
         dict(subj="/CN=not a CA", addext=["basicConstraints=CA:FALSE"]),
         "basicConstraints CA:FALSE", None),
        ("a v1 certificate", "v1", dict(subj="/CN=v1 anchor", v1=True),
         "X.509 v1", None),
        # wolfSSL 5.7 (Debian 13) itself refuses to parse a keyCertSign
        # certificate without CA:TRUE; moat must then say it cannot read
        # it instead of skipping it.
        ("a certificate without basicConstraints", "nobc",
         dict(subj="/CN=no constraints",
              addext=["keyUsage=critical,keyCertSign,cRLSign"]),
         "no basicConstraints", "cannot be read"),
    ]
    with open(t.pki.ca) as f:
        real_ca = f.read()
    for what, name, kw, why, unreadable in bad:
        with t.subcase(what):
            anchor = self_signed(t, name, **kw)
            with open(anchor[0]) as f:
                bundle = t.write(name + "-bundle.pem", real_ca + f.read())
            ini = t.write_ini(name + ".ini", backend, tls={"ca": bundle})
            wants = [bundle, "certificate 2 in this file", kw["subj"],
                     "is not a CA", why]
            r = t.moat_run(["--check", "-c", ini])
            if unreadable and unreadable in r.stdout + r.stderr:
                mt.say("      this wolfSSL cannot parse it: moat says so")
                wants = [bundle, "certificate 2 in this file", unreadable]
            # Before moat checked its anchors, moat started here and a
            # certificate signed by this key got in as any CN it named.
            start_refused(t, name, backend, {"ca": bundle}, "ca", wants,
                          leaf=leaf_signed_by(t, name + "-leaf", anchor))
            check_refused(t, what, ini, "ca", wants)

    t.step("a bundle of two real CAs is accepted")
    t.pki.other_device()  # makes the second CA
    with open(t.pki._other.cert) as f:
        bundle = t.write("two-cas.pem", real_ca + f.read())
    ini = t.write_ini("two-cas.ini", backend, tls={"ca": bundle})
    r = t.moat_run(["--check", "-c", ini])
    t.check(r.returncode == 0, "--check exits 0", r.stdout + r.stderr)
    moat = t.start_moat(backend, name="moat-cas", tls={"ca": bundle})
    cert, key = t.pki.device()
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(
        ca=t.pki.ca, cert=cert, key=key))
    t.check(ok, "a device of the first CA gets in (%s)" % how)
    moat.stop_and_check()


def crl_dates(t, broker):
    backend = "127.0.0.1:%d" % broker.port
    cert, key = t.pki.device()
    device = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    rcert, rkey = t.pki.revoked()
    revoked = mt.client_context(ca=t.pki.ca, cert=rcert, key=rkey)
    old = crl_until(t, "expired.crl", 1580515200, 1577836800)  # 2020-02-01
    later = crl_until(t, "later.crl", time.time() + 30 * 86400)
    with t.subcase("an expired CRL"):
        crl_expired(t, backend, old)
    with t.subcase("a CRL that expires in 2 days"):
        crl_soon(t, backend, later)
    with t.subcase("reload with an expired CRL"):
        crl_reload(t, backend, old, later, device, revoked)
    with t.subcase("a CRL that expires while moat runs"):
        crl_runtime(t, broker, device)


def crl_expired(t, backend, old):
    t.step("[tls] crl: an expired CRL is refused, with its date")
    ini = t.write_ini("crl-expired.ini", backend, tls={"crl": old})
    wants = [old, "expired on 2020-02-01 00:00:00 UTC"]
    check_refused(t, "an expired CRL", ini, "crl", wants)
    start_refused(t, "expired-crl", backend, {"crl": old}, "crl", wants)


def crl_soon(t, backend, later):
    t.step("a CRL that expires in 2 days: --check warns, exit 0")
    now = time.time()
    soon = crl_until(t, "soon.crl", now + 2 * 86400)
    ini = t.write_ini("crl-soon.ini", backend, tls={"crl": soon})
    r = t.moat_run(["--check", "-c", ini])
    out = r.stdout + r.stderr
    line = "%s:%d: warning:" % (ini, t.ini_lines["tls.crl"])
    t.check(r.returncode == 0, "exit 0 (got %s)" % r.returncode, out)
    t.check(line in out and "less than 7 days" in out and soon in out,
            "warns at %s that the CRL expires in less than 7 days" % line,
            out)
    day = time.strftime("%Y-%m-%d", time.gmtime(now + 2 * 86400))
    t.check("expires on %s" % day in out, "the warning gives the date, "
            "%s" % day, out)
    ini = t.write_ini("crl-later.ini", backend, tls={"crl": later})
    r = t.moat_run(["--check", "-c", ini])
    out = r.stdout + r.stderr
    t.check(r.returncode == 0 and "CRL expires" not in out,
            "a CRL with 30 days left: no warning", out)


def crl_reload(t, backend, old, later, device, revoked):
    t.step("reload with an expired CRL keeps the running configuration")
    live = t.path("live.crl")
    with open(later) as f:
        t.write("live.crl", f.read())
    moat = t.start_moat(backend, name="moat-reload", tls={"crl": live})
    ok, how = mt.try_tls_mqtt(moat.port, device)
    t.check(ok, "a device gets in (%s)" % how)
    with open(old) as f:
        t.write("live.crl", f.read())
    mark = moat.mark()
    moat.p.send_signal(signal.SIGHUP)
    t.check(mt.wait_for(lambda: re.search(
        r"reload failed.*expired on 2020-02-01", moat.text()[mark:]), 10),
            "the reload fails, saying the CRL expired", mt.tail(moat.log))
    ok, how = mt.try_tls_mqtt(moat.port, device)
    t.check(ok and moat.alive(), "moat runs on; the device still gets in "
            "(%s)" % how)
    ok, how = mt.try_tls_mqtt(moat.port, revoked)
    t.check(not ok, "the revoked device is still refused (%s)" % how)
    moat.stop_and_check()


def crl_runtime(t, broker, device):
    t.step("a CRL that expires while moat runs: logged once, fail closed")
    backend = "127.0.0.1:%d" % broker.port
    expiry = int(time.time()) + 6
    short = crl_until(t, "short.crl", expiry)
    moat = t.start_moat(backend, name="moat-expiry", tls={"crl": short})
    if time.time() >= expiry - 1:
        t.fail("moat took too long to start to test before the expiry")
    ok, how = mt.try_tls_mqtt(moat.port, device)
    t.check(ok, "before nextUpdate a device gets in (%s)" % how)
    t.check("CRL expired" not in moat.text(), "nothing logged yet")
    time.sleep(max(0, expiry + 1.5 - time.time()))
    before = broker.connections()
    for i in range(3):
        ok, how = mt.try_tls_mqtt(moat.port, device, "after-%d" % i)
        t.check(not ok, "after nextUpdate the device is refused (%s)" % how)
    moat.wait_closed_match("reason=tls_handshake_failed", 0, 10)
    lines = [ln for ln in moat.text().splitlines()
             if "the CRL expired on" in ln]
    t.check(len(lines) == 1 and short in lines[0],
            "one log line says the CRL expired, naming the file",
            moat.text())
    mt.say("      moat said: %s" % lines[0])
    t.check(broker.connections() == before,
            "no connection reached the broker after the expiry")
    moat.stop_and_check()


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    backend = "127.0.0.1:%d" % broker.port
    ciphers(t, backend)
    anchors(t, backend)
    crl_dates(t, broker)


if __name__ == "__main__":
    mt.run(main, "t_tlsconf")
