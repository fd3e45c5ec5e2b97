#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS 1.3 KeyUpdate flood: a device sends KeyUpdate requests
(update_requested, each asks moat for a KeyUpdate answer) and never reads.
moat must not queue an answer per request without bound: it stops reading
the device while its own queue towards it is full, so its RSS grows by less
than 32 MiB (it used to grow by ~190 bytes a request, ~90 MiB for the
requests sent here). Afterwards moat still serves another device and stops
cleanly.

The flooding device is keyupdate_client.c, built here with cc against
OpenSSL (Python's ssl module cannot send a KeyUpdate); without cc or the
OpenSSL headers (Debian: libssl-dev) the test is skipped."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

COUNT = 500000            # KeyUpdate requests to send
HOLD = 3                  # seconds the client keeps the connection after
LIMIT_KIB = 32 * 1024     # allowed RSS growth
CLIENT_TIMEOUT = 60       # the client must be done by then


def build_client(t):
    return mt.build_openssl_client(t, "keyupdate_client")


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    client = build_client(t)
    cert, key = t.pki.device("sensor-a")
    if mt.sanitizers():
        # ASan holds freed memory back (256 MiB by default) to catch use
        # after free, and moat frees a little for every request it reads:
        # keep that small so that the limit below still means something.
        os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [
            os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=1"]))
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)
    mark = moat.mark()

    time.sleep(0.3)
    base = moat.rss_kib()
    mt.say("      moat RSS before: %.1f MiB" % (base / 1024))

    t.step("a device sends CONNECT, then %d KeyUpdate requests without "
           "reading, then holds the connection for %d s" % (COUNT, HOLD))
    env = dict(os.environ, HOLD=str(HOLD))
    dev = mt.Proc(t, "keyupdate_client",
                  [client, str(moat.port), t.pki.ca, cert, key, str(COUNT)],
                  t.path("keyupdate_client.log"), env=env,
                  out=t.path("keyupdate_client.out"))
    peak = base
    for _ in mt.deadline_loop(CLIENT_TIMEOUT, 0.1):
        peak = max(peak, moat.rss_kib())
        if not dev.alive():
            break
    t.check(not dev.alive(), "the client finished within %d s"
            % CLIENT_TIMEOUT)
    rc, _ = dev.stop()
    said = mt.read_text(t.path("keyupdate_client.out")).strip()
    mt.say("      client: %s" % said)
    t.check(rc == 0, "the client exits 0 (got %s)" % rc,
            mt.tail(dev.log, 20))
    m = re.search(r"sent (\d+) of", said)
    t.check(m is not None and int(m.group(1)) > 0,
            "the client sent KeyUpdate requests", mt.tail(dev.log, 20))

    growth = peak - base
    mt.say("      moat RSS peak %.1f MiB, growth %.1f MiB (limit %d MiB)"
           % (peak / 1024, growth / 1024, LIMIT_KIB >> 10))
    t.check(growth < LIMIT_KIB, "RSS growth below %d MiB during the flood"
            % (LIMIT_KIB >> 10))

    t.step("moat closes the flooding connection once the device is gone")
    line = moat.wait_closed_match(r"client_id=ku-flood ", start=mark)
    mt.say("      %s" % line)

    t.step("moat is still up and serves the next device")
    t.check(moat.alive(), "moat is running")
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/keyupdate/after",
                        tag="after")
    moat.stop_and_check()


if __name__ == "__main__":
    mt.run(main, "t_keyupdate")
