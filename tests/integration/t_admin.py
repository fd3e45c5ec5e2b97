#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""[admin] address: the HTTP endpoint on the control loop.

  probes       /healthz 200 "ok"; /readyz 200 with the broker up, 503 once
               it is stopped, 200 again once it is back on its port; POST
               is 405, an unknown path 404.
  metrics      workers = 2; N devices from several 127.0.0.x sources
               connect, publish and disconnect, one device whose identity
               is denied in the map, one client without a certificate:
               /metrics parses as Prometheus text (a strict reader: every
               line is # HELP, # TYPE or name{labels} value) and passes
               promtool check metrics when promtool is installed; accepted
               is N + 2, identity_refused 1, a handshake failure 1, the
               closed counters sum to accepted, nothing is open, bytes up
               cover every PUBLISH sent and bytes down every CONNACK.
  connections  4 connected devices on both workers and one past its
               handshake without a CONNECT: /connections is a JSON array
               of exactly these 5, the 4 with identity, mapped username,
               client id, subject, peer, state proxying, since, not_after,
               the fifth await_connect with username null; ?limit=2 gives
               2; a bad ?limit= is 400; [] once they have gone.
  limits       a request head over 4 KiB is refused (431 or closed); a
               client that sends half a request line is cut at the 5 s
               deadline while /healthz answers at once meanwhile; of 12
               idle sockets the 4 over the cap of 8 are closed at once, and
               the rest keep /healthz away only until their deadline.
  reload       a broken server certificate and SIGHUP: the reload fails,
               moat_reloads_total{result="failed"} is 1, ok stays 0.
  --check      127.0.0.1:9883 and off pass quietly; 0.0.0.0:9883 passes
               with a warning that it is reachable from outside; port 0
               and a host name are errors (exit 1).
  draining     after SIGTERM with a live device, /readyz is 503
               "draining" while /healthz stays 200; moat exits 0 once the
               device leaves."""

import os
import re
import shutil
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

DEVICES = 6
PAYLOAD = 300


def http(port, path, method="GET", raw=None, timeout=5):
    """One request; returns (status, body) or (None, why)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(raw if raw is not None else
                  ("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n"
                   % (method, path)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return None, "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()
    if not data:
        return None, "closed without an answer"
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    if not m or b"connection: close" not in head.lower():
        return None, "not an HTTP/1.1 answer with Connection: close: %r" \
            % head[:200]
    return int(m.group(1)), body.decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)?\})?'
                    r' (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$')
COMMENT = re.compile(r'^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$')


def parse_prometheus(t, text):
    """Strict reader; returns {(name, frozenset(labels)): value}."""
    t.check(text.endswith("\n"), "the exposition ends with a newline")
    out = {}
    typed = set()
    for ln in text[:-1].split("\n"):
        m = COMMENT.match(ln)
        if m:
            if m.group(1) == "TYPE":
                if m.group(3) not in ("counter", "gauge", "histogram"):
                    t.fail("unknown TYPE: %r" % ln)
                if m.group(2) in typed:
                    t.fail("TYPE of %s twice" % m.group(2))
                typed.add(m.group(2))
            continue
        m = SAMPLE.match(ln)
        if not m:
            t.fail("not a Prometheus text line: %r" % ln)
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"',
                                      m.group(3) or ""))
        key = (m.group(1), labels)
        if key in out:
            t.fail("sample twice: %r" % ln)
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        if m.group(1) not in typed and base not in typed:
            t.fail("sample before its # TYPE: %r" % ln)
        out[key] = float(m.group(5))
    t.ok("every one of %d lines is # HELP, # TYPE or a sample" %
         len(text.splitlines()))
    return out


# Values of the state label of moat_connections_open.
STATES = ("handshake", "await_connect", "connecting", "proxying", "draining",
          "closed")


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def metrics(t, port):
    status, body = http(port, "/metrics")
    t.check(status == 200, "/metrics answers 200", body)
    return body, parse_prometheus(t, body)


def probes(t, moat, broker, port):
    t.step("/healthz and /readyz")
    status, body = http(port, "/healthz")
    t.check(status == 200 and body == "ok\n", "/healthz: 200 ok",
            "%s %r" % (status, body))
    status, body = http(port, "/readyz")
    t.check(status == 200, "/readyz: 200 with the broker up",
            "%s %r" % (status, body))
    status, _ = http(port, "/metrics", method="POST")
    t.check(status == 405, "POST /metrics: 405")
    status, _ = http(port, "/nothing")
    t.check(status == 404, "GET /nothing: 404")
    bport = broker.port
    broker.stop()
    status, body = http(port, "/readyz")
    t.check(status == 503, "/readyz: 503 with the broker stopped",
            "%s %r" % (status, body))
    broker = t.mosquitto(port=bport)
    status, body = http(port, "/readyz")
    t.check(status == 200, "/readyz: 200 again with the broker back",
            "%s %r" % (status, body))
    return broker


def device(t, moat, ctx, tag, i):
    """Connect from 127.0.0.(10+i), publish PAYLOAD bytes, disconnect.
    Returns the bytes of the PUBLISH and DISCONNECT."""
    c = mt.RawClient("127.0.0.1", moat.port, ctx, source="127.0.0.%d"
                     % (10 + i))
    try:
        rc = c.connect("%s-%d" % (tag, i))
        if rc != 0:
            t.fail("device %d: CONNACK %d" % (i, rc))
        pub = mt.mqtt_publish("moat/admin/%d" % i, b"x" * PAYLOAD)
        c.send(pub + b"\xe0\x00")
        c.read_rest(timeout=5)
    finally:
        c.close()
    return len(pub) + 2


def scripted_run(t, moat, broker, port):
    t.step("%d devices publish, one denied identity, one client without a "
           "certificate" % DEVICES)
    mark = moat.mark()
    ctx = t.device_ctx("sensor-a")
    sent = sum(device(t, moat, ctx, "dev", i) for i in range(DEVICES))
    ok, how = mt.try_tls_mqtt(moat.port, t.device_ctx("sensor-d"), "denied",
                              source="127.0.0.40")
    t.check(not ok, "the denied device is refused (%s)" % how)
    ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(ca=t.pki.ca),
                              "nocert", source="127.0.0.41")
    t.check(not ok, "the client without a certificate is refused (%s)"
            % how)
    lines = moat.wait_closed(mark, DEVICES + 2)
    reasons = {}
    for ln in lines:
        reasons[mt.reason_of(ln)] = reasons.get(mt.reason_of(ln), 0) + 1
    mt.say("      close reasons in the log: %s" % reasons)
    body, s = metrics(t, port)
    mt.say("      " + "\n      ".join(ln for ln in body.splitlines()
                                      if not ln.startswith("#") and
                                      not ln.endswith(" 0")))
    opened = {dict(k[1])["state"]: v for k, v in s.items()
              if k[0] == "moat_connections_open"}
    t.check(set(opened) == set(STATES) and not any(opened.values()),
            "nothing open, in any state", str(opened))
    t.check(val(s, "moat_connections_accepted_total") == DEVICES + 2,
            "accepted = %d" % (DEVICES + 2))
    t.check(val(s, "moat_connections_turned_away_total") == 0,
            "none turned away at accept")
    closed = {dict(k[1])["reason"]: v for k, v in s.items()
              if k[0] == "moat_connections_closed_total"}
    t.check(sum(closed.values()) == DEVICES + 2,
            "closed counters sum to %d" % (DEVICES + 2), str(closed))
    for r, n in reasons.items():
        t.check(closed.get(r) == n, "closed{reason=%s} = %d, as logged"
                % (r, n))
    t.check(val(s, "moat_connect_refused_total",
                reason="identity_refused") == 1,
            "connect_refused{reason=identity_refused} = 1")
    hs = {dict(k[1])["reason"]: v for k, v in s.items()
          if k[0] == "moat_handshakes_failed_total"}
    t.check(sum(hs.values()) == 1 and hs.get("tls_handshake_failed") == 1,
            "handshakes_failed: tls_handshake_failed 1, nothing else",
            str(hs))
    up = val(s, "moat_bytes_total", direction="up")
    down = val(s, "moat_bytes_total", direction="down")
    logged_up = sum(int(re.search(r"\bup=(\d+)", ln).group(1))
                    for ln in lines)
    logged_down = sum(int(re.search(r"\bdown=(\d+)", ln).group(1))
                      for ln in lines)
    t.check(up == logged_up and down == logged_down,
            "bytes up %d and down %d are the sums of the conn_closed lines"
            % (up, down), "logged up=%d down=%d" % (logged_up, logged_down))
    t.check(up >= sent + DEVICES * 12 and up < sent + DEVICES * 200,
            "bytes up cover the %d bytes of PUBLISH and DISCONNECT sent, "
            "plus a CONNECT each" % sent)
    t.check(down == 4 * DEVICES, "bytes down: the broker's %d CONNACKs "
            "of 4 bytes" % DEVICES)
    t.check(val(s, "moat_device_certificate_expiry_seconds_count") == 0 and
            val(s, "moat_device_certificate_expiry_seconds_bucket",
                le="+Inf") == 0, "no certificate counted once all closed")
    t.check(val(s, "moat_server_certificate_expiry_seconds") > 86400,
            "the server certificate expires in more than a day")
    t.check(val(s, "moat_broker_port_exposed") == 0,
            "the broker's port is not exposed")
    t.check(any(k[0] == "moat_build_info" for k in s), "build info")
    promtool(t, body)
    return s


def promtool(t, body):
    if not shutil.which("promtool"):
        mt.say("    promtool is not installed (Debian package prometheus): "
               "promtool check metrics not run")
        return
    r = mt.run_cmd(["promtool", "check", "metrics"], input=body)
    t.check(r.returncode == 0 and not r.stdout.strip() and
            not r.stderr.strip(), "promtool check metrics: clean",
            r.stdout + r.stderr)


def live_histogram(t, moat, port):
    t.step("a live device is in the days-left histogram")
    c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx("sensor-a"),
                     source="127.0.0.50")
    try:
        t.check(c.connect("live") == 0, "the device is connected")
        _, s = metrics(t, port)
        opened = {dict(k[1])["state"]: v for k, v in s.items()
                  if k[0] == "moat_connections_open"}
        t.check(opened.get("proxying") == 1 and sum(opened.values()) == 1,
                "one open, proxying", str(opened))
        up0 = val(s, "moat_bytes_total", direction="up")
        down0 = val(s, "moat_bytes_total", direction="down")
        ping = bytes([0xC0, 0])             # PINGREQ
        c.send(ping)
        first, _ = c.read_packet()
        t.check(first >> 4 == 13, "the broker answers the PINGREQ")
        _, s = metrics(t, port)
        t.check(val(s, "moat_bytes_total", direction="up") == up0 + 2 and
                val(s, "moat_bytes_total", direction="down") == down0 + 2,
                "bytes are counted while the connection is open: the "
                "PINGREQ's 2 bytes up, the PINGRESP's down")
        t.check(val(s, "moat_device_certificate_expiry_seconds_count") == 1 and
                val(s, "moat_device_certificate_expiry_seconds_bucket",
                    le="86400") == 0 and
                val(s, "moat_device_certificate_expiry_seconds_bucket",
                    le="+Inf") == 1, "its certificate counted once, with "
                "more than a day left")
    finally:
        c.close()


def connections(t, moat, port):
    t.step("/connections lists the live devices of both workers")
    import json
    cs = []
    try:
        for i in range(4):
            c = mt.RawClient("127.0.0.1", moat.port,
                             t.device_ctx("sensor-a"),
                             source="127.0.0.%d" % (60 + i))
            cs.append(c)
            t.check(c.connect("listed-%d" % i) == 0,
                    "device listed-%d is connected" % i)
        c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx("sensor-a"),
                         source="127.0.0.70")
        cs.append(c)     # past its handshake, no CONNECT yet
        status, body = http(port, "/connections")
        t.check(status == 200, "/connections: 200", body)
        lst = json.loads(body)
        mt.say("      " + body.strip().replace("\n", "\n      "))
        t.check(len(lst) == 5 and
                sorted(o["client_id"] for o in lst
                       if o["client_id"] is not None) ==
                ["listed-%d" % i for i in range(4)],
                "one object per device past its handshake", body)
        waiting = [o for o in lst if o["client_id"] is None]
        t.check(waiting[0]["state"] == "await_connect" and
                waiting[0]["username"] is None,
                "the one without a CONNECT: await_connect, username null")
        o = [o for o in lst if o["client_id"] is not None][0]
        t.check(o["identity"] == "sensor-a" and o["username"] == "sensor-a"
                and o["subject"] == "CN=sensor-a" and o["up"] >= 0 and
                o["not_after"] > time.time() + 86400 and
                abs(o["since"] - time.time()) < 30 and
                o["state"] == "proxying" and
                o["peer"].startswith("127.0.0.6"),
                "identity, username, subject, peer, state, since, "
                "not_after", str(o))
        t.check(set(x["worker"] for x in lst) <= {0, 1},
                "worker is 0 or 1: %s" % sorted(set(x["worker"]
                                                    for x in lst)))
        status, body = http(port, "/connections?limit=2")
        mt.say("      ?limit=2: %r" % body[:60])
        t.check(status == 200 and len(json.loads(body)) == 2,
                "?limit=2: two objects")
        for q in ("limit=0", "limit=x", "limit=100001", "foo=1"):
            status, _ = http(port, "/connections?" + q)
            t.check(status == 400, "?%s: 400" % q)
    finally:
        for c in cs:
            c.close()
    t.check(mt.wait_for(lambda: http(port, "/connections")[1] == "[]\n",
                        5), "[] once they have gone")


def limits(t, port):
    t.step("request size cap, deadline, client cap")
    status, body = http(port, None, raw=b"GET /metrics HTTP/1.1\r\nX: " +
                        b"a" * 5000 + b"\r\n\r\n")
    t.check(status in (431, None), "a 5 KB request head is refused (%s)"
            % status)
    slow = socket.create_connection(("127.0.0.1", port), 10)
    slow.sendall(b"GET /heal")
    t0 = time.monotonic()
    status, _ = http(port, "/healthz", timeout=2)
    t.check(status == 200 and time.monotonic() - t0 < 1,
            "/healthz answers at once while a client dawdles")
    try:
        got = slow.recv(100)
    except OSError:
        got = b""
    took = time.monotonic() - t0
    slow.close()
    t.check(got == b"" and 4 <= took <= 7,
            "the slow client is cut at the deadline (%.1f s)" % took)
    t0 = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", port), 10)
            for _ in range(12)]
    shut = 0
    for s in idle:
        s.settimeout(0.2)
        try:
            shut += s.recv(1) == b""
        except socket.timeout:
            pass
        except OSError:
            shut += 1
    t.check(shut == 12 - 8, "over the cap of 8 clients, %d of 12 idle "
            "sockets are closed at once" % shut)
    ok = mt.wait_for(lambda: http(port, "/healthz", timeout=2)[0] == 200, 8,
                     interval=0.2)
    took = time.monotonic() - t0
    for s in idle:
        s.close()
    t.check(ok and took < 7, "12 idle sockets keep /healthz away for "
            "%.1f s at most (their deadline)" % took)


def reload_failure(t, moat, port):
    t.step("a broken server certificate, then SIGHUP")
    cert, _ = t.pki.server()
    with open(cert) as f:
        good = f.read()
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    mark = moat.mark()
    os.kill(moat.pid, signal.SIGHUP)
    t.check(mt.wait_for(lambda: "reload failed" in moat.text()[mark:], 10),
            "moat logs that the reload failed")
    with open(cert, "w") as f:
        f.write(good)
    _, s = metrics(t, port)
    t.check(val(s, "moat_reloads_total", result="failed") == 1 and
            val(s, "moat_reloads_total", result="ok") == 0,
            'moat_reloads_total{result="failed"} 1, ok 0')


def check_cases(t, backend):
    t.step("moat --check and [admin] address")
    cases = (("127.0.0.1:9883", 0, None),
             ("off", 0, None),
             ("0.0.0.0:9883", 0, r"reachable from outside"),
             ("127.0.0.1:0", 1, r"needs a fixed port"),
             ("localhost:9883", 1, r"admin"))
    for value, rc, rx in cases:
        text, _ = t.ini_text(backend, extra="[admin]\naddress = %s\n"
                             % value)
        path = t.write("check.ini", text)
        r = t.moat_run(["--check", "-c", path])
        out = r.stdout + r.stderr
        warned = "reachable from outside" in out
        t.check(r.returncode == rc and (re.search(rx, out) if rx else
                                        not warned),
                "address = %s: --check exits %d%s" % (
                    value, rc, ", saying %r" % rx if rx else
                    ", no warning"), out)


def draining(t, moat, port):
    t.step("SIGTERM with a live device: /readyz 503 while draining")
    c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx("sensor-a"),
                     source="127.0.0.51")
    t.check(c.connect("drained") == 0, "the device is connected")
    os.kill(moat.pid, signal.SIGTERM)
    t.check(mt.wait_for(lambda: "draining" in moat.text(), 5),
            "moat drains")
    status, body = http(port, "/readyz")
    t.check(status == 503 and "draining" in body,
            "/readyz: 503 draining", "%s %r" % (status, body))
    status, _ = http(port, "/healthz")
    t.check(status == 200, "/healthz: still 200")
    c.close()
    t.check(mt.wait_for(lambda: not moat.alive(), 10),
            "moat exits once the device has gone")
    t.check(moat.p.returncode == 0, "exit 0")


def main(t):
    mt.need_tool("mosquitto")
    t.pki.device("sensor-a")
    t.pki.device("sensor-d")
    mapfile = t.write("map.ini", "[sensor-d]\ndeny = true\n")
    broker = t.mosquitto()
    port = mt.free_port()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, workers="2",
                        identity={"source": "cn", "map": mapfile,
                                  "unknown": "template",
                                  "client_id": "keep"},
                        process={"watch_files": "false"},
                        extra="[admin]\naddress = 127.0.0.1:%d\n" % port)
    t.check(mt.wait_for(lambda: "admin endpoint on" in moat.text(), 5),
            "moat says where the admin endpoint is")
    broker = probes(t, moat, broker, port)
    scripted_run(t, moat, broker, port)
    live_histogram(t, moat, port)
    connections(t, moat, port)
    limits(t, port)
    reload_failure(t, moat, port)
    moat.stop_and_check()
    check_cases(t, "127.0.0.1:%d" % broker.port)
    port = mt.free_port()
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-drain",
                        limits={"drain_timeout": "20s"},
                        extra="[admin]\naddress = 127.0.0.1:%d\n" % port)
    draining(t, moat, port)
    moat.stop()
    t.check_sanitizers(moat.log)


if __name__ == "__main__":
    mt.run(main, "t_admin")
