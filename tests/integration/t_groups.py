#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""[tls] groups: the key exchange groups moat offers, most preferred first.

- By default (X25519:P-256) a TLS 1.3 client offering X25519 and P-256
  gets X25519, one offering only P-256 gets P-256 (TLS 1.2 alike), and
  one offering only P-384 or only X448 is refused in the handshake, with a
  tls_handshake_failed close line; no connection reaches the broker.
- With groups = P-384:X25519 the same P-384 client gets in with P-384,
  and a P-256-only client is now refused.
- --check refuses, with FILE:LINE of the groups line: a group below 256
  bits (P-224), an unknown name, a group named twice, an empty entry, and
  a group this wolfSSL build lacks (ffdhe8192 in Debian's build; skipped
  when the build has it).

The negotiated group is read from openssl s_client's "Server Temp Key"
("Peer Temp Key" in OpenSSL 3.5).
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402


def s_client(t, port, groups, version="-tls1_3"):
    """A full handshake offering only groups; (exit code, temp key text)."""
    cert, key = t.pki.device()
    r = mt.run_cmd(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                    "-servername", "localhost", "-groups", groups, version,
                    "-brief", "-CAfile", t.pki.ca, "-cert", cert, "-key",
                    key], input="")
    out = r.stdout + r.stderr
    # OpenSSL 3.0 (Debian 12) says "Server Temp Key", 3.5 (Debian 13)
    # "Peer Temp Key" (and "Negotiated TLS1.3 group").
    m = re.search(r"(?:Server|Peer) Temp Key: ([^\n]*)", out)
    return r.returncode, (m.group(1) if m else ""), out


def gets(t, moat, groups, want, version="-tls1_3"):
    mark = moat.mark()
    rc, key, out = s_client(t, moat.port, groups, version)
    t.check(rc == 0 and want in key, "%s offering %s: handshake with %s"
            % (version, groups, key or "nothing"), out)
    moat.wait_closed(mark, 1, 10)


def refused(t, moat, broker, groups, version="-tls1_3"):
    mark = moat.mark()
    before = broker.connections()
    rc, key, out = s_client(t, moat.port, groups, version)
    t.check(rc != 0 and key == "", "%s offering only %s: refused"
            % (version, groups), out)
    line = moat.wait_closed(mark, 1, 10)[0]
    t.check("reason=tls_handshake_failed" in line,
            "moat closes it: %s" % line.strip())
    t.check(broker.connections() == before, "nothing reached the broker")


def default_groups(t, broker, backend):
    t.step("default groups X25519:P-256")
    moat = t.start_moat(backend, name="moat-default")
    gets(t, moat, "X25519:P-256", "X25519")
    gets(t, moat, "P-256", "prime256v1")
    gets(t, moat, "X25519:P-256", "X25519", "-tls1_2")
    gets(t, moat, "P-256", "prime256v1", "-tls1_2")
    refused(t, moat, broker, "P-384")
    refused(t, moat, broker, "X448")
    ok, how = mt.try_tls_mqtt(moat.port, t.device_ctx())
    t.check(ok, "a device gets in end to end (%s)" % how)
    moat.stop_and_check()


def configured_groups(t, broker, backend):
    t.step("groups = P-384:X25519")
    moat = t.start_moat(backend, name="moat-p384",
                        tls={"groups": "P-384:X25519"})
    gets(t, moat, "P-384", "secp384r1")
    gets(t, moat, "X25519", "X25519")
    refused(t, moat, broker, "P-256")
    moat.stop_and_check()


def check_refused(t, backend):
    t.step("--check refuses groups moat does not allow, with FILE:LINE")
    cases = [
        ("P-224", '"P-224" is refused'),
        ("X25519:brainpoolP256r1", '"brainpoolP256r1" is refused'),
        ("X25519:x25519", "named twice"),
        ("X25519::P-256", "empty group name"),
        ("ALL", '"ALL" is refused'),
    ]
    for groups, want in cases:
        ini = t.write_ini("bad.ini", backend, tls={"groups": groups})
        line = "%s:%d:" % (ini, t.ini_lines["tls.groups"])
        r = t.moat_run(["--check", "-c", ini])
        out = r.stdout + r.stderr
        t.check(r.returncode == 1 and line in out and want in out and
                ("Allowed: X25519" in out or "refused" not in want), "groups = %s: refused at %s (%s)"
                % (groups, line, want), out)
    ini = t.write_ini("good.ini", backend,
                      tls={"groups": "x25519:secp256r1:ffdhe2048"})
    r = t.moat_run(["--check", "-c", ini])
    t.check(r.returncode == 0, "x25519:secp256r1:ffdhe2048 is accepted",
            r.stdout + r.stderr)
    ini = t.write_ini("nobuild.ini", backend, tls={"groups": "ffdhe8192"})
    r = t.moat_run(["--check", "-c", ini])
    out = r.stdout + r.stderr
    if r.returncode == 0:
        mt.say("      this wolfSSL has ffdhe8192; that case is skipped")
        return
    line = "%s:%d:" % (ini, t.ini_lines["tls.groups"])
    t.check(line in out and "this wolfSSL build has no ffdhe8192" in out,
            "a group the build lacks: refused at %s" % line, out)


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    backend = "127.0.0.1:%d" % broker.port
    check_refused(t, backend)
    default_groups(t, broker, backend)
    configured_groups(t, broker, backend)


if __name__ == "__main__":
    mt.run(main, "t_groups")
