#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connection limits, idle timeout and JSON logs.

  max_connections = 5   five connected devices hold every slot; a silent
                        TCP peer does not take one (it counts against
                        max_handshakes) and stays open; a sixth device is
                        closed right after its handshake (within 2 s), moat
                        warns, naming max_connections, and logs
                        reason=too_many_connections; once the five are gone
                        a real device connects and publishes and moat's
                        descriptors are back where they were.
  max_handshakes_per_address = 3
                        three silent peers from 127.0.0.1 hold its budget;
                        a fourth from 127.0.0.1 makes moat close the oldest
                        of the three at once (not the newcomer) and warn,
                        and a device from 127.0.0.1 gets in meanwhile, as
                        does one from 127.0.0.2; once the silent peers are
                        gone, 127.0.0.1 gets in again.
  idle_timeout = 2s     a device that connected (MQTT keep-alive 0, so the
                        broker never times it out) and then says nothing is
                        closed after ~2 s (not before 1.5 s, by 6 s) with
                        close_notify and reason=idle_timeout; a device that
                        sends PINGREQ every 0.5 s for 4 s stays connected.
  [log] format = json   every line moat writes is a JSON object with "ts"
                        and "level"; conn_closed has peer, subject, up,
                        down, duration_ms and reason, and a certificate
                        subject with '"' and '\\' comes back intact."""

import json
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

MAX = 5
PINGREQ = b"\xc0\x00"
WEIRD_CN = 'we"ird\\cn'


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def tls_device(port, ctx, timeout=10):
    """RawClient whose TLS layer reports a missing close_notify as
    ssl.SSLEOFError instead of b''."""
    c = mt.RawClient("127.0.0.1", port, None, timeout=timeout)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost",
                             suppress_ragged_eofs=False)
    return c


def connect_keepalive0(c, cid):
    c.send(mt.mqtt_connect(cid, keepalive=0))
    first, body = c.read_packet(10)
    if first >> 4 != 2 or body[1] != 0:
        raise ValueError("no CONNACK 0: type %d body %r"
                         % (first >> 4, body))


def pings(c):
    """True when the device's PINGREQ is answered with a PINGRESP."""
    try:
        c.send(PINGREQ)
        first, _ = c.read_packet(2)
        return first >> 4 == 13
    except (OSError, EOFError, ValueError, ssl.SSLError):
        return False


def how_closed(c, timeout):
    """Read until the peer closes: ('close_notify' | 'EOF without
    close_notify' | 'reset' | 'timeout' | error, seconds)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", time.monotonic() - t0
        c.sock.settimeout(left)
        try:
            if not c.sock.recv(65536):
                return "close_notify", time.monotonic() - t0
        except ssl.SSLEOFError:
            return "EOF without close_notify", time.monotonic() - t0
        except ConnectionResetError:
            return "reset", time.monotonic() - t0
        except socket.timeout:
            return "timeout", time.monotonic() - t0
        except (OSError, ssl.SSLError) as e:
            return "%s: %s" % (type(e).__name__, e), time.monotonic() - t0


# --- max_connections ----------------------------------------------------

def max_connections(t, broker, ctx):
    t.step("moat with max_connections = %d" % MAX)
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-max",
                        limits={"max_connections": str(MAX)})
    base = nfds(moat.pid)
    devices = []
    silent = None
    try:
        for n in range(MAX):
            d = tls_device(moat.port, ctx)
            devices.append(d)
            connect_keepalive0(d, "max-%d" % n)
        t.ok("%d devices connected (CONNACK 0)" % MAX)

        silent = socket.create_connection(("127.0.0.1", moat.port), 5)
        t.check(mt.wait_eof(silent, 1) is None, "a silent TCP peer is not "
                "closed: it waits in the handshake, apart from the %d "
                "slots" % MAX)

        mark = moat.mark()
        extra = tls_device(moat.port, ctx)
        how, secs = how_closed(extra, 2)
        extra.close()
        t.check(how not in ("timeout",) and secs <= 2,
                "device %d is closed right after its handshake (%s after "
                "%.3f s)" % (MAX + 1, how, secs))
        warn = [ln for ln in moat.text()[mark:].splitlines()
                if "max_connections" in ln and "WARN" in ln]
        t.check(warn, "moat warned about max_connections",
                mt.tail(moat.log, 10))
        mt.say("      moat: %s" % warn[0].strip())
        line = moat.wait_closed(mark, 1, timeout=5)[0]
        t.check(mt.reason_of(line) == "too_many_connections",
                "moat logged reason=too_many_connections for it", line)
        t.check(all(pings(d) for d in devices),
                "the %d devices are still connected (PINGREQ answered)"
                % MAX)
    finally:
        for d in devices:
            d.close()
        if silent is not None:
            silent.close()

    t.step("the %d devices close; a real device gets through" % MAX)
    moat.wait_closed(0, MAX + 2, timeout=10)
    t.ok("moat logged %d conn_closed" % (MAX + 2))
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/limits/max",
                        tag="max")
    fds = mt.wait_for(lambda: nfds(moat.pid) == base, 5)
    t.check(fds, "moat's descriptors are back to %d (now %d)"
            % (base, nfds(moat.pid)))
    moat.stop_and_check()


# --- max_handshakes_per_address -----------------------------------------

def device_from(t, port, ctx, source, client_id):
    """A TLS device connecting from source (a 127.0.0.0/8 address): CONNACK
    code, or a string saying how it failed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        tls = ctx.wrap_socket(s, server_hostname="localhost")
        tls.sendall(mt.mqtt_connect(client_id))
        data = b""
        while len(data) < 4:
            chunk = tls.recv(4 - len(data))
            if not chunk:
                return "EOF after %r" % data
            data += chunk
        tls.close()
        return data[3] if data[0] == 0x20 else "not a CONNACK: %r" % data
    except (OSError, ssl.SSLError) as e:
        s.close()
        return "%s: %s" % (type(e).__name__, e)


def handshakes_per_address(t, broker, ctx):
    cap = 3
    t.step("moat with max_handshakes_per_address = %d" % cap)
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-hs",
                        limits={"max_handshakes_per_address": str(cap)})
    peers = []
    try:
        for _ in range(cap):
            peers.append(socket.create_connection(("127.0.0.1", moat.port),
                                                  5))
        time.sleep(0.2)   # let moat accept them in this order
        mark = moat.mark()
        peers.append(socket.create_connection(("127.0.0.1", moat.port), 5))
        res = mt.wait_eof(peers[0], 2)
        t.check(res is not None and not res[1].startswith("data"),
                "a fourth unauthenticated connection from 127.0.0.1 closes "
                "the oldest of the three at once (%s)"
                % ("%s after %.3f s" % (res[1], res[0])
                   if res else "still open after 2 s"))
        t.check(all(mt.still_open(p) for p in peers[1:]),
                "the two younger ones and the fourth are still connected")
        t.check(mt.wait_for(lambda: "max_handshakes_per_address" in
                            moat.text()[mark:], 5),
                "moat warned, naming max_handshakes_per_address",
                mt.tail(moat.log, 10))
        code = device_from(t, moat.port, ctx, "127.0.0.1", "hs-same")
        t.check(code == 0, "a device from 127.0.0.1 gets in meanwhile "
                "(CONNACK %r)" % (code,))
        code = device_from(t, moat.port, ctx, "127.0.0.2", "hs-other")
        t.check(code == 0, "a device from 127.0.0.2 still gets in "
                "(CONNACK %r)" % (code,))
        t.check(not mt.still_open(peers[1]) and
                all(mt.still_open(p) for p in peers[2:]),
                "the device closed the next oldest silent peer, no other")
    finally:
        for p in peers:
            p.close()
    t.step("the silent peers close: 127.0.0.1 gets in again")
    ok = mt.wait_for(lambda: device_from(t, moat.port, ctx, "127.0.0.1",
                                         "hs-back") == 0, 10, 0.5)
    t.check(ok, "a device from 127.0.0.1 gets CONNACK 0 again")
    moat.stop_and_check()


# --- idle_timeout -------------------------------------------------------

def idle_timeout(t, broker, ctx):
    t.step("moat with idle_timeout = 2s: one silent device, one that "
           "pings every 0.5 s")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-idle",
                        limits={"idle_timeout": "2s"})
    silent = tls_device(moat.port, ctx)
    pinger = None
    result = {}
    try:
        connect_keepalive0(silent, "idle-silent")
        t.ok("the silent device is connected (keep-alive 0)")
        th = threading.Thread(
            target=lambda: result.update(r=how_closed(silent, 10)),
            daemon=True)
        th.start()
        pinger = tls_device(moat.port, ctx)
        connect_keepalive0(pinger, "idle-pinger")
        t.ok("the pinging device is connected (keep-alive 0)")
        pings = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            time.sleep(0.5)
            pinger.send(PINGREQ)
            first, _ = pinger.read_packet(2)
            if first >> 4 != 13:
                t.fail("expected PINGRESP, got packet type %d"
                       % (first >> 4))
            pings += 1
        t.ok("%d PINGREQ/PINGRESP over %.1f s" % (pings,
                                                  time.monotonic() - t0))
        th.join(10)
    except (OSError, EOFError, ValueError, ssl.SSLError) as e:
        t.fail("idle devices: %s: %s" % (type(e).__name__, e))
    finally:
        silent.close()

    try:
        how, secs = result.get("r", ("no result", 0))
        mt.say("      the silent device was closed after %.2f s (%s)"
               % (secs, how))
        t.check(how == "close_notify",
                "the silent device got close_notify (%s)" % how)
        t.check(1.5 <= secs <= 6.0,
                "closed after %.2f s: not before 1.5 s, by 6 s" % secs)
        closed = moat.closed_lines()
        t.check(len(closed) == 1, "moat closed exactly one connection",
                "\n".join(closed))
        mt.say("      moat: %s" % closed[0].strip())
        t.check(mt.reason_of(closed[0]) == "idle_timeout",
                "moat logged reason=idle_timeout", closed[0])
        t.check(broker.wait_log(r"Client idle-silent (closed its connection"
                                r"|disconnected)", 5),
                "the broker saw idle-silent go")
        pinger.send(PINGREQ)
        first, _ = pinger.read_packet(2)
        t.check(first >> 4 == 13,
                "the pinging device is still connected after %d s" % 4)
    finally:
        pinger.close()
    moat.stop_and_check()


# --- JSON logs ----------------------------------------------------------

def json_logs(t, broker, ctx):
    t.step("moat with [log] format = json, level = debug")
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-json",
                        log={"format": "json", "level": "debug"})
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/limits/json",
                        tag="json")
    # PKI.device() names its files after the CN: issue it under a plain
    # name; -subj takes '\' as an escape, so double it
    wcert, wkey = t.pki._issue("weird", WEIRD_CN.replace("\\", "\\\\"),
                               "ext_client")
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(
        ca=t.pki.ca, cert=wcert, key=wkey), "json-weird")
    t.check(ok, "a device with CN %s connects (%s)" % (WEIRD_CN, how))
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(ca=t.pki.ca))
    t.check(not ok, "a device without a certificate is refused (%s)" % how)
    s = socket.create_connection(("127.0.0.1", moat.port), 5)
    s.sendall(b"\x00\xff garbage\r\n\x1b[2J")
    mt.wait_eof(s, 5)
    s.close()
    moat.wait_closed(0, 5, timeout=10)   # sub, pub, weird, no cert, junk
    moat.stop_and_check()

    lines = moat.text().splitlines()
    bad, events = [], []
    for n, ln in enumerate(lines, 1):
        try:
            obj = json.loads(ln)
        except ValueError as e:
            bad.append("line %d: %s: %r" % (n, e, ln[:200]))
            continue
        if not isinstance(obj, dict) or "ts" not in obj or \
                "level" not in obj:
            bad.append("line %d: no ts/level: %r" % (n, ln[:200]))
            continue
        events.append(obj)
    t.check(lines and not bad, "all %d lines are JSON objects with ts and "
            "level" % len(lines), "\n".join(bad[:10]))
    closed = [e for e in events if e.get("event") == "conn_closed"]
    t.check(len(closed) == 5, "%d conn_closed events (5 expected)"
            % len(closed))
    need = ("peer", "subject", "up", "down", "duration_ms", "reason")
    missing = ["%s lacks %s" % (e, [k for k in need if k not in e])
               for e in closed if any(k not in e for k in need)]
    t.check(not missing, "each conn_closed has %s" % ", ".join(need),
            "\n".join(missing))
    for e in closed:
        for k in ("up", "down", "duration_ms"):
            if not str(e[k]).isdigit():
                t.fail("conn_closed %s=%r is not a count: %s" % (k, e[k], e))
    t.ok("up, down and duration_ms are counts")
    mt.say("      e.g. %s" % json.dumps(closed[0]))
    # the subject as OpenSSL's one-line form or RFC 4514 (which escapes
    # '"' and '\' itself): either way the same string must come back
    subjects = [e["subject"] for e in closed]
    forms = ("/CN=" + WEIRD_CN,
             "CN=" + WEIRD_CN.replace("\\", "\\\\").replace('"', '\\"'))
    t.check(any(f in subjects for f in forms),
            "the subject %s survives JSON escaping" % " or ".join(forms),
            "subjects: %r" % subjects)
    reasons = sorted(e["reason"] for e in closed)
    mt.say("      reasons: %s" % ", ".join(reasons))
    t.check(reasons.count("tls_handshake_failed") == 2,
            "two handshake failures among them")


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    cert, key = t.pki.device("sensor-a")
    t.pki.device("sensor-b")
    broker = t.mosquitto()
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    with t.subcase("max_connections"):
        max_connections(t, broker, ctx)
    with t.subcase("max_handshakes_per_address"):
        handshakes_per_address(t, broker, ctx)
    with t.subcase("idle_timeout"):
        idle_timeout(t, broker, ctx)
    with t.subcase("json_logs"):
        json_logs(t, broker, ctx)


if __name__ == "__main__":
    mt.run(main, "t_limits")
