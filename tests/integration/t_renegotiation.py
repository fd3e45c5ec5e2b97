#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS 1.2 client-initiated renegotiation is refused.

openssl s_client (-tls1_2, with the device's certificate) connects through
moat and is told "R" on stdin, which makes it start a renegotiation:

  - after an MQTT CONNECT went through (CONNACK seen, the broker has the
    client), and
  - right after the handshake, with -legacy_renegotiation.

The renegotiation must not complete: s_client prints RENEGOTIATING, gets an
alert or a closed connection and exits while its stdin is still open (a
renegotiation that completed would leave it connected; then a PINGREQ is
sent to tell). moat logs the close with a TLS reason, the broker sees the
client go, and moat goes on serving the next device."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
CONNACK_OK = b"\x20\x02\x00\x00"
REASONS = ("tls_error", "tls_handshake_failed")


class SClient:
    """openssl s_client with a pipe on stdin; output to a log file; always
    stopped by PID."""

    def __init__(self, t, name, port, cert, key, extra=()):
        self.log = t.path(name + ".log")
        self._out = open(self.log, "wb")
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                "-tls1_2", "-cert", cert, "-key", key, "-CAfile", t.pki.ca,
                "-verify_return_error"] + list(extra)
        mt.say("  %s" % " ".join(argv))
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=self._out, stderr=subprocess.STDOUT)
        self.pid = self.p.pid

    def output(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def write(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def exited(self, timeout):
        try:
            self.p.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not self.exited(5):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.exited(5)
        try:
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self._out.close()


def attempt(t, moat, broker, cert, key, name, cid, extra, after_connect):
    mark, bmark = moat.mark(), len(broker.text())
    sc = SClient(t, name, moat.port, cert, key, extra)
    try:
        if after_connect:
            sc.write(mt.mqtt_connect(cid, keepalive=0))
            t.check(broker.wait_log(r"New client connected from .* as %s "
                                    % cid, 10, bmark),
                    "the MQTT session is up (the broker has %s)" % cid,
                    sc.output().decode(errors="replace")[-2000:])
            t.check(mt.wait_for(lambda: CONNACK_OK in sc.output(), 5),
                    "s_client got CONNACK 0")
        else:
            ok = mt.wait_for(lambda: b"Verification: OK" in sc.output() and
                             b"SSL-Session:" in sc.output() or
                             sc.p.poll() is not None, 10)
            t.check(ok and sc.p.poll() is None, "TLS 1.2 handshake done",
                    sc.output().decode(errors="replace")[-2000:])
        out = sc.output()
        t.check(b"New, TLSv1.2," in out,
                "the session is TLS 1.2")
        ri = b"Secure Renegotiation IS supported" in out
        mt.say("      s_client: Secure Renegotiation IS%s supported"
               % ("" if ri else " NOT"))

        t.step("%s: ask for a renegotiation (R)" % name)
        t.check(sc.write(b"R\n"), "R written to s_client")
        gone = sc.exited(5)
        if not gone:
            # Still connected: did the renegotiation go through?
            sc.write(PINGREQ)
            time.sleep(1)
            pong = PINGRESP in sc.output()[len(out):]
            t.fail("s_client is still connected 5 s after R: the "
                   "renegotiation was %s (%s)\n%s" % (
                       "ACCEPTED by moat" if after_connect and pong else
                       "not refused", "PINGRESP came back" if pong else
                       "no PINGRESP", sc.output().decode(
                           errors="replace")[-1500:]))
        out = sc.output()[len(out):].decode(errors="replace")
        lines = [ln for ln in out.splitlines() if ln.strip()]
        mt.say("      s_client exited %s:" % sc.p.returncode)
        for ln in lines[-3:]:
            mt.say("        %s" % ln[:200])
        t.check("RENEGOTIATING" in out, "s_client started a renegotiation")
        t.check(sc.p.returncode != 0 or "alert" in out,
                "it ended in an alert or a closed connection")
    finally:
        sc.stop()
    line = moat.wait_closed(mark, 1, timeout=10)[0]
    mt.say("      moat: %s" % line.strip())
    t.check(mt.reason_of(line) in REASONS,
            "moat closed the connection with reason %s (%s)"
            % (mt.reason_of(line), "/".join(REASONS)), line)
    if after_connect:
        t.check(broker.wait_log(r"Client %s (closed its connection|"
                                r"disconnected)" % cid, 5, bmark),
                "the broker saw %s go" % cid)


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    cert, key = t.pki.device("sensor-a")
    t.pki.device("sensor-b")
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)

    t.step("s_client -tls1_2: MQTT CONNECT, then R")
    with t.subcase("after CONNECT"):
        attempt(t, moat, broker, cert, key, "sclient-mqtt", "reneg-mqtt",
                [], after_connect=True)
    t.step("s_client -tls1_2 -legacy_renegotiation: R right after the "
           "handshake")
    with t.subcase("legacy, after the handshake"):
        attempt(t, moat, broker, cert, key, "sclient-legacy", "reneg-legacy",
                ["-legacy_renegotiation"], after_connect=False)

    t.step("moat is still up and serves the next device")
    t.check(moat.alive(), "moat is running")
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/reneg/after",
                        tag="after")


if __name__ == "__main__":
    mt.run(main, "t_renegotiation")
