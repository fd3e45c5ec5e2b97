#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An idle connection is trimmed once its identity is read (what only the
handshake needed is let go, and no read buffer is kept): it must still
carry TLS 1.3 KeyUpdates both ways and large messages. A device
(keyupdate_echo.c, OpenSSL) subscribes to its own topic through moat,
then 5 times sends a KeyUpdate asking moat to update too and a 200 KB
PUBLISH, and must get each message back intact, decrypted with moat's new
keys. Twins: the same device with a certificate from another CA, and
with an expired one, is refused in the handshake.

Built here with cc against OpenSSL; without cc or the OpenSSL headers
(Debian: libssl-dev) the test is skipped."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

ROUNDS = 5
SIZE = 200000


def build_client(t):
    return mt.build_openssl_client(t, "keyupdate_echo")


def echo(t, client, port, cert, key):
    return mt.run_cmd([client, str(port), t.pki.ca, cert, key, str(ROUNDS),
                       str(SIZE)], timeout=60)


def main(t):
    mt.need_tool("mosquitto")
    client = build_client(t)
    cert, key = t.pki.device("sensor-a")
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)

    t.step("a trimmed TLS 1.3 connection: %d KeyUpdates (update "
           "requested) and %d-byte messages there and back" % (ROUNDS, SIZE))
    mark = moat.mark()
    r = echo(t, client, moat.port, cert, key)
    t.check(r.returncode == 0, "the device got every message back intact "
            "after each KeyUpdate", r.stdout + r.stderr)
    line = moat.wait_closed(mark)[0]
    t.check(mt.reason_of(line) in ("device_closed", "device_eof"),
            "moat logs the device's own close (got %s)" % mt.reason_of(line),
            line)
    up = int(re.search(r" up=(\d+)", line).group(1))
    t.check(up >= ROUNDS * SIZE, "moat carried all %d bytes up (up=%d)"
            % (ROUNDS * SIZE, up))

    t.step("twin: a certificate from another CA is refused in the handshake")
    ocert, okey = t.pki.other_device()
    mark = moat.mark()
    r = echo(t, client, moat.port, ocert, okey)
    t.check(r.returncode == 1, "the device is refused (exit %d)"
            % r.returncode, r.stderr)
    line = moat.wait_closed(mark)[0]
    t.check(mt.reason_of(line) == "tls_handshake_failed",
            "moat logs tls_handshake_failed (got %s)" % mt.reason_of(line),
            line)

    t.step("twin: an expired certificate is refused in the handshake")
    ecert, ekey = t.pki.expired()
    mark = moat.mark()
    r = echo(t, client, moat.port, ecert, ekey)
    t.check(r.returncode == 1, "the device is refused (exit %d)"
            % r.returncode, r.stderr)
    line = moat.wait_closed(mark)[0]
    t.check(mt.reason_of(line) == "tls_handshake_failed",
            "moat logs tls_handshake_failed (got %s)" % mt.reason_of(line),
            line)


if __name__ == "__main__":
    mt.run(main, "t_keyupdate_data")
