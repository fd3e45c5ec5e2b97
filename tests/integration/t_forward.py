#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""1,000 QoS 1 messages from mosquitto_pub through moat and Mosquitto to
mosquitto_sub (also through moat): none lost, none duplicated, in order,
for MQTT 3.1.1 and for MQTT 5."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

N = 1000


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    t.step("certificates, Mosquitto on loopback, moat in front of it")
    t.pki.device("sensor-a")
    t.pki.device("sensor-b")
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)

    for version in ("mqttv311", "mqttv5"):
        t.step("%d QoS 1 messages with -V %s" % (N, version))
        run_id = os.urandom(4).hex()
        msgs = ["%s %s %04d %s" % (version, run_id, i, os.urandom(6).hex())
                for i in range(N)]
        topic = "moat/forward/%s" % version
        s = t.sub(moat.port, topic, N, qos=1, version=version, dev="sensor-a",
                  broker=broker, name="sub-" + version, timeout=60)
        s.wait_subscribed()
        r = t.pub(moat.port, topic, lines=msgs, qos=1, version=version,
                  dev="sensor-b", client_id="pub-%s-%d" % (version,
                                                           os.getpid()),
                  timeout=60)
        t.check(r.returncode == 0, "mosquitto_pub -l exits 0", r.stderr)
        got = s.result()
        t.check(len(got) == N, "the subscriber got %d messages (got %d)"
                % (N, len(got)))
        t.check(len(set(got)) == N, "no duplicates")
        missing = set(msgs) - set(got)
        t.check(not missing, "none lost",
                "missing %d, e.g. %r" % (len(missing), sorted(missing)[:5]))
        t.check(got == msgs, "all in the order they were sent",
                "first difference at %d" % next(
                    (i for i, (a, b) in enumerate(zip(got, msgs)) if a != b),
                    -1))

    t.step("the broker saw exactly the four clients, all through moat")
    log = broker.text()
    peers = [ln for ln in log.splitlines() if "New client connected" in ln]
    t.check(len(peers) == 4, "4 clients connected to Mosquitto (got %d)"
            % len(peers), "\n".join(peers))


if __name__ == "__main__":
    mt.run(main, "t_forward")
