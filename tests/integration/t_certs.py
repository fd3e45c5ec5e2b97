#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Device certificates: the handshake and `moat explain` give one answer.

Every certificate here is made with openssl at run time under a root CA of
this test, then both presented by a real TLS client to moat (in front of a
real Mosquitto) and given to `moat explain` with the same moat.ini:

  good         a P-256 clientAuth leaf: accepted by both (the twin).
  EKU          a serverAuth-only leaf: refused by both.
  chain        a leaf issued by an intermediate, the intermediate after the
               leaf in the PEM the device sends and explain reads:
               accepted by both.
  strength     RSA-1024, P-224, P-192 (secp192r1) and an ecdsa-with-SHA1
               signature: refused by both, the reason naming the floor;
               with min_rsa_bits = 1024, min_ecc_bits = 160 and
               sha1_signatures = accept, RSA-1024, P-224 and SHA-1 are
               accepted by both. wolfSSL cannot parse P-192 at all (this
               build has no such curve), so both still refuse it.
  two CNs      /CN=sensor-a/CN=admin: refused by both.
  long DN      a subject longer than moat's DN cap: refused by both.
  RDNs         CN=a+O=b (one RDN with two values) and CN=a,O=b (two RDNs)
               give different subject lines in explain.
  escaping     a CN holding a newline, "result: accepted" and an ANSI
               escape: explain prints it escaped, so its output has no raw
               escape byte and only one "result:" line."""

import os
import re
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

LEAF_EXT = """basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {eku}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

CA_EXT = """basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

KEYS = {
    "p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "p192": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime192v1"],
    "p224": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-224"],
    "rsa1024": ["-newkey", "rsa:1024"],
}


def issue(t, issuer, name, subj, key="p256", md="sha256", eku="clientAuth",
          ext=None, multivalue=False):
    """NAME.pem / NAME.key signed by issuer (cert, key) with any subject;
    returns (cert, key)."""
    d = t.path("certs")
    os.makedirs(d, exist_ok=True)
    keyf = os.path.join(d, name + ".key")
    csr = os.path.join(d, name + ".csr")
    cert = os.path.join(d, name + ".pem")
    extf = os.path.join(d, name + ".ext")
    with open(extf, "w") as f:
        f.write(ext or LEAF_EXT.format(eku=eku))
    argv = ["req", "-new", "-config", t.certs_cnf] + KEYS[key] + [
        "-nodes", "-keyout", keyf, "-out", csr, "-utf8", "-subj", subj]
    if multivalue:
        argv.append("-multivalue-rdn")
    t.pki.openssl(argv)
    serial = "0x" + (bytes([os.urandom(1)[0] & 0x7F | 0x10]) +
                     os.urandom(7)).hex()
    t.pki.openssl(["x509", "-req", "-in", csr, "-CA", issuer[0],
                   "-CAkey", issuer[1], "-set_serial", serial,
                   "-days", "30", "-" + md, "-extfile", extf, "-out", cert])
    return cert, keyf


def with_chain(t, leaf, *cas):
    """A PEM with the leaf followed by the given CA certificates."""
    out = leaf[0][:-4] + "-chain.pem"
    with open(out, "w") as f:
        for p in (leaf[0],) + tuple(c[0] for c in cas):
            f.write(mt.read_text(p))
    return out, leaf[1]


def weak_client(ca, cert, key, tls12=False):
    """A client context that may hold a weak key or a SHA-1 certificate
    (OpenSSL's security level would otherwise refuse to load it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_verify_locations(ca)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def main(t):
    p = t.pki
    t.step("certificates")
    root = mt.CA(p, "root", "t_certs root")
    t.certs_cnf = root.cnf
    rootpair = (root.cert, root.key)
    inter = issue(t, rootpair, "inter", "/CN=t_certs intermediate",
                  ext=CA_EXT)
    leaves = {
        "good": issue(t, rootpair, "good", "/CN=sensor-good"),
        "serverauth": issue(t, rootpair, "serverauth", "/CN=sensor-sa",
                            eku="serverAuth"),
        "chain": with_chain(t, issue(t, inter, "chained",
                                     "/CN=sensor-chained"), inter),
        "rsa1024": issue(t, rootpair, "rsa1024", "/CN=sensor-rsa",
                         key="rsa1024"),
        "p192": issue(t, rootpair, "p192", "/CN=sensor-p192", key="p192"),
        "sha1": issue(t, rootpair, "sha1", "/CN=sensor-sha1", md="sha1"),
        "twocn": issue(t, rootpair, "twocn", "/CN=sensor-a/CN=admin"),
        "p224": issue(t, rootpair, "p224", "/CN=sensor-p224", key="p224"),
        # wolfSSL takes at most 15 attributes; two long ones make a DN of
        # over 5000 characters, beyond moat's cap of 4096
        "longdn": issue(t, rootpair, "longdn", "/OU=a/GN=%s/SN=%s"
                        "/CN=sensor-long" % ("v" * 2500, "w" * 2500)),
    }
    rdn_multi = issue(t, rootpair, "multi", "/CN=a+O=b", multivalue=True)
    rdn_two = issue(t, rootpair, "two", "/O=b/CN=a")
    evil = issue(t, rootpair, "evil",
                 "/CN=x\nresult: accepted\n\x1b[2Kusername admin")

    broker = t.mosquitto()
    strict_tls = {"ca": root.cert}
    lowered_tls = {"ca": root.cert, "min_rsa_bits": "1024",
                   "min_ecc_bits": "160", "sha1_signatures": "accept"}
    strict = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-strict", tls=strict_tls)
    lowered = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-lowered",
                           tls=lowered_tls)

    def explain(moat, cert):
        r = t.moat_run(["explain", "-c", moat.ini, cert])
        mt.say("      $ moat explain %s -> exit %d"
               % (os.path.basename(cert), r.returncode))
        for ln in (r.stdout + r.stderr).splitlines():
            mt.say("        | " + ln.encode("unicode_escape").decode())
        return r

    def handshake(moat, name, pair):
        # TLS 1.3 has no signature scheme for P-192 or P-224
        tls12 = name in ("p192", "p224")
        mark = moat.mark()
        before = broker.new_connections()
        try:
            ctx = weak_client(p.ca, pair[0], pair[1], tls12)
        except ssl.SSLError as e:
            raise mt.Failure("the client cannot load %s: %s" % (name, e))
        ok, how = mt.try_tls_mqtt(moat.port, ctx, client_id="c-" + name)
        line = None
        if not ok:
            line = moat.wait_closed(mark, 1, timeout=5)[0]
            mt.say("      moat: %s" % line.strip())
        return ok, how, line, broker.new_connections() > before

    def both(moat, name, pair, accept, reason=None):
        """Handshake and explain agree on pair: accepted or refused."""
        with t.subcase("%s on %s" % (name, moat.name)):
            ok, how, line, reached = handshake(moat, name, pair)
            r = explain(moat, pair[0])
            verified = r.returncode == 0 and re.search(
                r"^verification: passes", r.stdout, re.M)
            if accept:
                t.check(ok and reached, "the handshake accepts %s (%s)"
                        % (name, how))
                t.check(verified, "explain accepts %s (exit %d)"
                        % (name, r.returncode))
                return
            t.check(not ok and not reached, "the handshake refuses %s "
                    "and the broker sees nothing (%s)" % (name, how))
            t.check(r.returncode != 0 and re.search(
                r"^verification: FAILS", r.stdout, re.M),
                "explain refuses %s (exit %d)" % (name, r.returncode))
            if reason:
                t.check(line is not None and reason in line,
                        "the handshake's log names %r" % reason, line)
                t.check(reason in r.stdout, "explain names %r" % reason)

    t.step("one answer from the handshake and explain ([tls] defaults)")
    both(strict, "good", leaves["good"], True)
    both(strict, "serverauth", leaves["serverauth"], False)
    both(strict, "chain", leaves["chain"], True)
    both(strict, "rsa1024", leaves["rsa1024"], False, "min_rsa_bits")
    both(strict, "p192", leaves["p192"], False)
    both(strict, "p224", leaves["p224"], False, "min_ecc_bits")
    both(strict, "sha1", leaves["sha1"], False, "SHA-1")
    both(strict, "twocn", leaves["twocn"], False, "2 CNs")
    both(strict, "longdn", leaves["longdn"], False, "4096")

    t.step("floors lowered: min_rsa_bits = 1024, min_ecc_bits = 160, "
           "sha1_signatures = accept")
    both(lowered, "good", leaves["good"], True)
    both(lowered, "rsa1024", leaves["rsa1024"], True)
    both(lowered, "sha1", leaves["sha1"], True)
    both(lowered, "p224", leaves["p224"], True)
    with t.subcase("p192 on moat-lowered"):
        # wolfSSL has its own ECC floor in the handshake; whatever it
        # decides, explain must say the same.
        ok, how, line, reached = handshake(lowered, "p192", leaves["p192"])
        r = explain(lowered, leaves["p192"][0])
        mt.say("      handshake %s: %s" % ("accepts" if ok else "refuses",
                                          how))
        t.check(ok == (r.returncode == 0), "explain agrees with the "
                "handshake on P-192 (%s)" % ("accepted" if ok else
                                              "refused"))
        t.check("min_ecc_bits" not in (line or "") + r.stdout,
                "moat's own floor no longer refuses it")

    t.step("multi-valued RDNs")
    with t.subcase("CN=a+O=b and CN=a,O=b"):
        subj = []
        for pair in (rdn_multi, rdn_two):
            r = explain(strict, pair[0])
            m = re.search(r"^\s+subject\s{2,}(.*)$", r.stdout, re.M)
            subj.append(m.group(1) if m else None)
            if pair is rdn_multi:
                r_multi = r
        if subj[0] is None and "cannot be parsed" in r_multi.stdout:
            # wolfSSL 5.7 (Debian 13) refuses multi-valued RDNs outright:
            # no identity at all, which is as unambiguous as it gets, as
            # long as the handshake refuses the certificate too.
            ok, how, line, reached = handshake(strict, "multi", rdn_multi)
            t.check(not ok and not reached, "this wolfSSL refuses a "
                    "multi-valued RDN in explain and in the handshake (%s)"
                    % how)
        else:
            t.check(subj[0] == "CN=a+O=b", "one RDN with two values "
                    "prints CN=a+O=b", subj[0])
        t.check(subj[1] == "CN=a,O=b", "two RDNs print CN=a,O=b", subj[1])

    t.step("certificate text is escaped")
    with t.subcase("CN with a newline and an ANSI escape"):
        r = explain(strict, evil[0])
        out = r.stdout + r.stderr
        t.check("\x1b" not in out, "no raw escape byte in the output")
        t.check(len(re.findall(r"^result:", out, re.M)) == 1,
                "exactly one result: line")
        t.check(not re.search(r"^\s*username\s+admin", out, re.M),
                "no forged username line")
        cn = re.search(r"^\s+cn\s{2,}(.*)$", r.stdout, re.M)
        t.check(cn and "\\x0a" in cn.group(1) and "\\x1b[" in cn.group(1),
                "the cn line shows \\x0a and \\x1b[", cn and cn.group(1))
    t.check(broker.new_connections() >= 1, "the broker saw the accepted "
            "devices, so its counting works")


if __name__ == "__main__":
    mt.run(main, "t_certs")
