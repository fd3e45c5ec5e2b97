#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The command line: --version, --help, unknown options, and --check on a
good configuration and on bad ones (each must point at the right line)."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402


def check_rejects(t, what, ini, line):
    """moat --check -c ini must exit 1 and say "ini:line:"."""
    r = t.moat_run(["--check", "-c", ini], timeout=20)
    out = r.stdout + r.stderr
    t.step("--check with %s" % what)
    t.check(r.returncode == 1, "exit status 1 (got %s)" % r.returncode, out)
    lines = line if isinstance(line, (list, tuple)) else [line]
    want = ["%s:%d:" % (ini, n) for n in lines]
    hit = [w for w in want if w in out]
    t.check(hit, "the error points at %s" % " or ".join(want), out)
    first = [ln for ln in out.splitlines() if any(w in ln for w in want)][0]
    mt.say("      moat said: %s" % first.strip())
    return out


def main(t):
    t.step("moat --version")
    r = t.moat_run(["--version"], timeout=10)
    out = r.stdout + r.stderr
    mt.say("    " + out.strip().replace("\n", "\n    "))
    t.check(r.returncode == 0, "--version exits 0 (got %s)" % r.returncode)
    t.check(re.search(r"^moat \d+\.\d+\.\d+", out, re.M),
            "prints 'moat X.Y.Z'", out)
    t.check(re.search(r"wolfSSL.*\d+\.\d+", out), "names the wolfSSL version",
            out)
    t.check(re.search(r"libuv.*\d+\.\d+", out), "names the libuv version", out)

    t.step("moat --help")
    r = t.moat_run(["--help"], timeout=10)
    out = r.stdout + r.stderr
    t.check(r.returncode == 0, "--help exits 0 (got %s)" % r.returncode, out)
    for opt in ("-c", "--check", "--version", "--help"):
        t.check(opt in out, "--help lists %s" % opt, out)
    for ref in ("[listen]", "[tls]", "[backend]", "[limits]", "[log]",
                "handshake_timeout", "connect_timeout", "min_version", "crl"):
        t.check(ref in out, "--help's config reference mentions %s" % ref,
                out)

    t.step("an unknown option")
    r = t.moat_run(["--no-such-option"], timeout=10)
    out = r.stdout + r.stderr
    t.check(r.returncode == 2, "exit status 2 (got %s)" % r.returncode, out)
    t.check(re.search(r"usage", out, re.I), "prints usage", out)

    backend = "127.0.0.1:%d" % mt.free_port()

    t.step("--check on a good configuration (with a CRL)")
    good = t.write_ini("good.ini", backend, tls={"crl": t.pki.crl()})
    r = t.moat_run(["--check", "-c", good], timeout=20)
    t.check(r.returncode == 0, "exit status 0 (got %s)" % r.returncode,
            r.stdout + r.stderr)

    bad_cases = []

    # unknown key: inserted into [limits] right after the known keys
    text, where = t.ini_text(backend)
    lines = text.splitlines()
    at = where["limits.max_connections"]          # 1-based line number
    lines.insert(at, "no_such_key = 1")
    bad_cases.append(("an unknown key in [limits]",
                      t.write("unknown-key.ini", "\n".join(lines) + "\n"),
                      at + 1))

    text, where = t.ini_text(backend, limits={"handshake_timeout": "soon"})
    bad_cases.append(("handshake_timeout = soon",
                      t.write("bad-value.ini", text),
                      where["limits.handshake_timeout"]))

    # the most likely mistake: another key of the same type (P-256)
    _, other_key = t.pki.device("sensor-b")
    text, where = t.ini_text(backend, tls={"key": other_key})
    bad_cases.append(("a key that does not match the certificate "
                      "(another P-256 key)",
                      t.write("key-mismatch.ini", text),
                      [where["tls.key"], where["tls.cert"]]))

    rsa_key = t.path("rsa.key")
    t.pki.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt",
                   "rsa_keygen_bits:2048", "-out", rsa_key])
    text, where = t.ini_text(backend, tls={"key": rsa_key})
    bad_cases.append(("a key that does not match the certificate "
                      "(an RSA key)",
                      t.write("key-mismatch-rsa.ini", text),
                      [where["tls.key"], where["tls.cert"]]))

    text, where = t.ini_text(backend, tls={"cert": t.path("missing.pem")})
    bad_cases.append(("a certificate file that does not exist",
                      t.write("missing-cert.ini", text), where["tls.cert"]))

    text, where = t.ini_text(backend, tls={"crl": t.path("no-such-crl.pem")})
    bad_cases.append(("a CRL file that does not exist",
                      t.write("bad-crl.ini", text), where["tls.crl"]))

    junk = t.write("junk-crl.pem", "this is not a CRL\n")
    text, where = t.ini_text(backend, tls={"crl": junk})
    bad_cases.append(("a CRL file that holds no CRL",
                      t.write("junk-crl.ini", text), where["tls.crl"]))

    text, where = t.ini_text(backend, tls={"ca": t.path("no-such-ca.pem")})
    bad_cases.append(("a CA file that does not exist",
                      t.write("missing-ca.ini", text), where["tls.ca"]))

    for what, ini, line in bad_cases:
        with t.subcase(what):
            check_rejects(t, what, ini, line)

    t.step("a missing config file")
    r = t.moat_run(["--check", "-c", t.path("nope.ini")], timeout=10)
    t.check(r.returncode == 1, "exit status 1 (got %s)" % r.returncode,
            r.stdout + r.stderr)
    t.check(t.path("nope.ini") in r.stdout + r.stderr, "names the file",
            r.stdout + r.stderr)

    t.step("moat -c with a bad file refuses to start")
    r = t.moat_run(["-c", t.path("unknown-key.ini")], timeout=10)
    t.check(r.returncode == 1, "exit status 1 (got %s)" % r.returncode,
            r.stdout + r.stderr)


if __name__ == "__main__":
    mt.run(main, "t_cli")
