#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A peer that opens TCP and says nothing is closed after handshake_timeout
(2 s here: not before 1.5 s, by 6 s at most) with reason=handshake_timeout;
and while 200 such silent peers hang on, a real device still connects and
publishes."""

import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

SILENT = 200


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    t.pki.device("sensor-a")
    t.pki.device("sensor-b")
    broker = t.mosquitto()
    backend = "127.0.0.1:%d" % broker.port

    t.step("moat with handshake_timeout = 2s")
    moat = t.start_moat(backend, name="moat-2s",
                        limits={"handshake_timeout": "2s"})

    t.step("a peer opens TCP and sends nothing")
    mark = moat.mark()
    s = socket.create_connection(("127.0.0.1", moat.port), 5)
    got = mt.wait_eof(s, 10)
    s.close()
    t.check(got is not None, "moat closed the silent peer within 10 s")
    secs, how = got
    mt.say("      closed after %.2f s (%s)" % (secs, how))
    t.check(secs >= 1.5, "not before 1.5 s (%.2f s)" % secs)
    t.check(secs <= 6.0, "by 6 s at most (%.2f s)" % secs)
    line = moat.wait_closed(mark, 1, timeout=5)[0]
    mt.say("      moat: %s" % line.strip())
    t.check(mt.reason_of(line) == "handshake_timeout",
            "moat logged reason=handshake_timeout", line)

    t.step("a peer that sends half a ClientHello and stops is closed too")
    mark = moat.mark()
    s = socket.create_connection(("127.0.0.1", moat.port), 5)
    s.sendall(bytes.fromhex("16030100c8010000c40303") + os.urandom(16))
    got = mt.wait_eof(s, 10)
    s.close()
    t.check(got is not None and 1.5 <= got[0] <= 6.0,
            "closed after %s s" % ("%.2f" % got[0] if got else "> 10"))
    line = moat.wait_closed(mark, 1, timeout=5)[0]
    t.check(mt.reason_of(line) == "handshake_timeout",
            "moat logged reason=handshake_timeout", line)
    t.check(broker.new_connections() == 0, "the broker saw neither peer")
    moat.stop_and_check()

    t.step("moat with handshake_timeout = 30s and %d silent peers" % SILENT)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * SILENT + 256
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        mt.say("      raised RLIMIT_NOFILE from %d to %d" % (soft, new))
    # All peers here come from 127.0.0.1, standing in for 200 hosts: lift
    # the per-address handshake budget (t_limits tests that budget).
    moat = t.start_moat(backend, name="moat-30s",
                        limits={"handshake_timeout": "30s",
                                "max_handshakes_per_address": "1000"})
    peers = []
    try:
        for _ in range(SILENT):
            peers.append(socket.create_connection(("127.0.0.1", moat.port),
                                                  5))
        t.ok("%d peers connected and silent" % len(peers))
        time.sleep(0.5)   # let moat accept them all

        t.step("a real device connects and publishes meanwhile")
        t0 = time.monotonic()
        t.pub_sub_roundtrip(moat.port, broker, topic="moat/hs/busy",
                            tag="busy")
        mt.say("      round trip took %.2f s" % (time.monotonic() - t0))
        n_open = sum(1 for p in peers if mt.still_open(p))
        t.check(n_open == SILENT,
                "all %d silent peers are still connected (%d)"
                % (SILENT, n_open))
        closed = moat.closed_lines()
        timeouts = [c for c in closed if "handshake_timeout" in c]
        t.check(not timeouts, "no handshake timed out early (30 s)",
                "\n".join(timeouts[:5]))
        t.step("SIGTERM while the silent peers are still connected")
        moat.stop_and_check()
        shut = [c for c in moat.closed_lines() if "reason=shutdown" in c]
        mt.say("      moat logged %d conn_closed reason=shutdown" % len(shut))
    finally:
        for p in peers:
            p.close()


if __name__ == "__main__":
    mt.run(main, "t_handshake_timeout")
