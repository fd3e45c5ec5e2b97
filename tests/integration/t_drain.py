#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Graceful stop: SIGTERM drains, a second signal stops at once.

  drain    workers = 2, drain_timeout = 2s; an MQTT 5 and an MQTT 3.1.1
           device are proxied (on both workers), a third peer is still in
           its TLS handshake. SIGTERM: a new connection is refused at once
           (the listening sockets are closed), the peer in its handshake
           is closed within 1 s, the live devices still get PINGRESP 1.2 s
           after the signal; then, 1.5 to 3.5 s after it, the MQTT 5
           device receives DISCONNECT 0x8B (server shutting down) and the
           end of the stream, the MQTT 3.1.1 device the end of the stream
           (close lines reason=shutdown), and moat exits 0 within 4 s.
  again    drain_timeout = 30s: after SIGTERM moat is still draining 1 s
           later (the device gets PINGRESP); a second SIGTERM closes the
           device's connection at once (within 1 s) and moat exits 0.
  systemd  with $NOTIFY_SOCKET and $WATCHDOG_USEC = 400 ms, moat sends
           READY=1, then WATCHDOG=1 at least 4 times a second (its workers
           beat within the interval), STOPPING=1 at SIGTERM; with
           $WATCHDOG_PID naming another process it sends no WATCHDOG=1.
"""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402


def ping(c, timeout=5):
    c.send(b"\xc0\x00")
    first, _ = c.read_packet(timeout)
    return first == 0xd0


def device(t, moat, name, version, source):
    c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx(name),
                     timeout=10, source=source)
    code = c.connect("cid-" + name, version=version)
    t.check(code == 0, "%s (MQTT %s, from %s): CONNACK 0"
            % (name, version, source))
    return c


def refused(port):
    """True when a TCP connect to port is refused."""
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        # a listener closing while this connection waited to be accepted
        # resets it: not refused yet, try again
        return False
    finally:
        s.close()


def wait_exit(moat, timeout):
    try:
        return moat.p.wait(timeout=timeout)
    except Exception:
        return None


def drain(t, broker):
    t.step("SIGTERM with live connections, drain_timeout = 2s")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-drain",
                        workers="2", limits={"drain_timeout": "2s"})
    # 127.0.0.10 and 127.0.0.12 land on different workers (t_revoke.py).
    c5 = device(t, moat, "sensor-a", 5, "127.0.0.10")
    c3 = device(t, moat, "sensor-b", 4, "127.0.0.12")
    hs = socket.create_connection(("127.0.0.1", moat.port), timeout=5)
    time.sleep(0.2)
    mark = moat.mark()
    t0 = time.monotonic()
    moat.p.send_signal(signal.SIGTERM)
    t.check(mt.wait_for(lambda: refused(moat.port), 1.0),
            "a new connection is refused at once")
    t.check(mt.wait_eof(hs, 1.0), "the peer in its handshake is closed "
            "within 1 s")
    hs.close()
    time.sleep(max(0.0, t0 + 1.2 - time.monotonic()))
    t.check(ping(c5) and ping(c3), "1.2 s after SIGTERM both devices "
            "still get PINGRESP")
    first, body = c5.read_packet(5)
    t.check(first == 0xe0 and body[:1] == b"\x8b", "sensor-a: DISCONNECT "
            "0x8B (got %02x %s)" % (first, body.hex()))
    for c, name in ((c5, "sensor-a"), (c3, "sensor-b")):
        data, how = c.read_rest(5)
        took = time.monotonic() - t0
        c.close()
        t.check(how == "eof" and 1.5 <= took <= 3.5, "%s: closed %.2f s "
                "after SIGTERM (%s)" % (name, took, how))
    rc = wait_exit(moat, 4.0 - (time.monotonic() - t0))
    t.check(rc == 0, "moat exited %s within 4 s of SIGTERM" % rc)
    lines = [ln for ln in moat.closed_lines(mark) if "cid-sensor" in ln]
    t.check(len(lines) == 2 and all(mt.reason_of(ln) == "shutdown"
                                    for ln in lines),
            "both close lines say reason=shutdown", "\n".join(lines))
    moat.stop()
    t.check_sanitizers(moat.log)


def again(t, broker):
    t.step("a second SIGTERM stops at once")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-again",
                        limits={"drain_timeout": "30s"})
    c = device(t, moat, "sensor-c", 5, "127.0.0.20")
    moat.p.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    t.check(moat.alive() and ping(c), "1 s after SIGTERM moat still "
            "drains and the device gets PINGRESP")
    t0 = time.monotonic()
    moat.p.send_signal(signal.SIGTERM)
    data, how = c.read_rest(1.0)
    t.check(how == "eof", "second SIGTERM: the device is closed at once "
            "(%s after %.2f s)" % (how, time.monotonic() - t0))
    c.close()
    rc = wait_exit(moat, 1.5)
    t.check(rc == 0, "moat exited %s %.2f s after the second SIGTERM"
            % (rc, time.monotonic() - t0))
    moat.stop()
    t.check_sanitizers(moat.log)


def notifications(sock, seconds):
    got = []
    for _ in mt.deadline_loop(seconds, 0):
        sock.settimeout(0.1)
        try:
            got.append(sock.recv(256).decode())
        except socket.timeout:
            pass
    return got


def systemd(t, broker):
    t.step("sd_notify: READY=1, WATCHDOG=1 while the workers beat, "
           "STOPPING=1")
    for name, pid in (("moat-wd", None), ("moat-wd-other", "1")):
        path = t.path(name + ".sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
        if pid:
            env["WATCHDOG_PID"] = pid
        os.environ.update(env)
        try:
            moat = t.start_moat("127.0.0.1:%d" % broker.port, name=name,
                                workers="2")
        finally:
            for k in env:
                del os.environ[k]
        got = notifications(sock, 1.0)
        pings = got.count("WATCHDOG=1")
        if pid:
            t.check(pings == 0, "WATCHDOG_PID of another process: no "
                    "WATCHDOG=1 (%d)" % pings)
        else:
            t.check("READY=1" in got and pings >= 4, "READY=1 and %d "
                    "WATCHDOG=1 in 1 s" % pings, repr(got))
        moat.stop_and_check()
        got = notifications(sock, 0.3)
        if not pid:
            t.check("STOPPING=1" in got, "STOPPING=1 at SIGTERM", repr(got))
        sock.close()


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    drain(t, broker)
    again(t, broker)
    systemd(t, broker)


if __name__ == "__main__":
    mt.run(main, "t_drain")
