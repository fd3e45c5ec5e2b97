#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reload under load (issue 9, acceptance 1): with workers = 2, 50 device
connections keep streaming through five reloads, one of which fails on a
broken server certificate.

  streams   50 devices (5 identities, 10 connections each, each from its
            own 127.0.0.x source so that both workers hold some, checked
            on /connections) each subscribe to their own topic and publish
            QoS 1 messages of random bytes to it, a few in flight at a
            time. Every message goes device -> moat -> Mosquitto -> moat ->
            the same device; each stream keeps a SHA-256 of what it sent
            and of what came back, and every message carries a sequence
            number, so a loss, a duplicate, a reordering or a changed byte
            in either direction is found.
  reloads   SIGHUP only ([process] watch_files = false), each waited for
            in the log and in /metrics before the next:
              1 server certificate B                       good
              2 certificate file truncated (key of C)      fails
              3 server certificate C                       good
              4 identity map gains an entry for sensor-new good
              5 server certificate D                       good
            After each good one a new device sees the new certificate
            (DER compared with the file) and publishes (PUBACK); after the
            broken one a new device still sees B, moat_reloads_total
            {result="failed"} went up by exactly 1 and {result="ok"} did
            not, the last-success timestamp stayed, and the log names the
            file. After reload 4 a new sensor-new connection carries the
            map's username (before it: its own CN). After every reload
            every one of the 50 streams makes progress again.
  end       no stream saw an error or an end, no conn_closed line names a
            stream, moat_connections_open is 50; then each stream drains,
            its two SHA-256 match, and it says DISCONNECT: 50 close lines,
            each with the exact byte count that reached the device.
            moat_reloads_total is ok 4, failed 1; the last-success
            timestamp moved past start-up.
  twins     after the reloads a device without a certificate and one with
            a certificate of another CA are refused: the reloaded
            configurations kept client verification."""

import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

STREAMS = 50
IDENTITIES = 5
WINDOW = 4              # QoS 1 messages in flight per stream
MAX_PAYLOAD = 6000      # random bytes after the 4-byte sequence number
STALL_S = 10            # a stream that hears nothing this long fails
STREAM_LIMIT_S = 120    # no stream runs longer than this
PROGRESS_S = 20         # after a reload every stream moves within this
PROGRESS_MSGS = 20      # by at least this many messages
RELOAD_S = 10           # a reload is logged within this
NEW_CERT_S = 2          # the workers take the new snapshot within this
FIRST_SOURCE = 100      # streams connect from 127.0.0.100 and up

PT_CONNACK, PT_PUBLISH, PT_PUBACK, PT_SUBACK = 2, 3, 4, 9
DISCONNECT = b"\xe0\x00"
ADMIN_LIST_LIMIT = 1000


def packet_size(body):
    return 1 + len(mt.mqtt_varint(len(body))) + len(body)


class Stream(threading.Thread):
    """One device connection that publishes to its own topic and reads
    its messages back, until stop is set; then it drains and says
    DISCONNECT. Its outcome is in its attributes; error is None when all
    went well."""

    def __init__(self, port, ctx, i, stop):
        super().__init__(daemon=True)
        self.port, self.ctx, self.i, self.stop = port, ctx, i, stop
        self.cid = "load-%02d" % i
        self.topic = "moat/load/%02d" % i
        self.source = "127.0.0.%d" % (FIRST_SOURCE + i)
        self.rng = random.Random(i)
        self.ready = threading.Event()
        self.sent = self.got = 0
        self.bytes_up = self.bytes_down = 0
        self.h_sent = hashlib.sha256()
        self.h_got = hashlib.sha256()
        self.inflight = set()
        self.error = None
        self.end = None
        self.c = None

    def run(self):
        try:
            self._connect()
            self.ready.set()
            self._stream()
            self._send(DISCONNECT)
            _, self.end = self.c.read_rest(5)
        except (OSError, EOFError, ValueError, ssl.SSLError) as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.ready.set()
            if self.c:
                self.c.close()

    def _send(self, data):
        self.c.send(data)
        self.bytes_up += len(data)

    def _read(self, want=None):
        first, body = self.c.read_packet(STALL_S)
        self.bytes_down += packet_size(body)
        if want is not None and first >> 4 != want:
            raise ValueError("%s: expected packet type %d, got %d"
                             % (self.cid, want, first >> 4))
        return first, body

    def _connect(self):
        self.c = mt.RawClient("127.0.0.1", self.port, self.ctx,
                              timeout=STALL_S, source=self.source)
        self._send(mt.mqtt_connect(self.cid))
        _, body = self._read(PT_CONNACK)
        if body[1] != 0:
            raise ValueError("CONNACK %d" % body[1])
        self._send(mt.mqtt_subscribe(1, self.topic, qos=1))
        _, body = self._read(PT_SUBACK)
        if body[-1] != 1:
            raise ValueError("SUBACK granted %d, expected QoS 1" % body[-1])

    def _publish(self):
        payload = struct.pack("!I", self.sent) + os.urandom(
            self.rng.randint(0, MAX_PAYLOAD))
        pid = self.sent % 65535 + 1
        self._send(mt.mqtt_publish(self.topic, payload, qos=1, pid=pid))
        self.inflight.add(pid)
        self.h_sent.update(payload)
        self.sent += 1

    def _receive(self):
        first, body = self._read()
        kind = first >> 4
        if kind == PT_PUBACK:
            pid = struct.unpack("!H", body[:2])[0]
            if pid not in self.inflight:
                raise ValueError("PUBACK for %d, not in flight" % pid)
            self.inflight.remove(pid)
        elif kind == PT_PUBLISH:
            topic, payload, qos, pid = mt.RawClient.parse_publish(first,
                                                                  body)
            seq = struct.unpack("!I", payload[:4])[0]
            if topic != self.topic or seq != self.got:
                raise ValueError("message %d expected on %s, got %d on %s"
                                 % (self.got, self.topic, seq, topic))
            self.h_got.update(payload)
            self.got += 1
            if qos:
                self._send(mt.mqtt_puback(pid))
        else:
            raise ValueError("unexpected packet type %d" % kind)

    def _stream(self):
        end = time.monotonic() + STREAM_LIMIT_S
        while True:
            if time.monotonic() > end:
                raise ValueError("still streaming after %d s" %
                                 STREAM_LIMIT_S)
            if not self.stop.is_set() and len(self.inflight) < WINDOW:
                self._publish()
            elif (self.stop.is_set() and not self.inflight and
                  self.got == self.sent):
                return
            else:
                self._receive()


# --- the admin endpoint ------------------------------------------------------

def http_get(port, path):
    """GET path; returns the body of a 200 answer or fails."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n"
                   % path).encode())
        data = b""
        for _ in mt.deadline_loop(5, 0):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise mt.Failure("GET %s: %r" % (path, head[:100]))
    return body.decode()


def metrics(port):
    """{'name{labels}': value} of /metrics."""
    out = {}
    for ln in http_get(port, "/metrics").splitlines():
        if ln and not ln.startswith("#"):
            key, _, value = ln.rpartition(" ")
            out[key] = float(value)
    return out


OK = 'moat_reloads_total{result="ok"}'
FAILED = 'moat_reloads_total{result="failed"}'
LAST_OK = "moat_last_reload_success_timestamp_seconds"
OPEN = 'moat_connections_open{state="proxying"}'


# --- files and probes --------------------------------------------------------

def read(path):
    with open(path) as f:
        return f.read()


def put(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def der(pem_path):
    return ssl.PEM_cert_to_DER_cert(read(pem_path))


def probe(t, moat, name, client_id):
    """A new device: (DER of the server certificate it got, CONNACK code,
    PUBACK seen). Closes it again."""
    c = mt.RawClient("127.0.0.1", moat.port, t.device_ctx(name), timeout=5)
    try:
        got = c.sock.getpeercert(binary_form=True)
        code = c.connect(client_id, timeout=5)
        acked = False
        if code == 0:
            c.send(mt.mqtt_publish("moat/probe/" + client_id, b"hello",
                                   qos=1, pid=7))
            first, body = c.read_packet(5)
            acked = first >> 4 == PT_PUBACK and body[:2] == b"\x00\x07"
            c.send(DISCONNECT)
        return got, code, acked
    finally:
        c.close()


def probe_sees(t, moat, want_pem, client_id, settle=0):
    """Probe as sensor-a until it sees want_pem (for up to settle s while
    the workers take the new snapshot); check it connects and publishes."""
    want = der(want_pem)
    tries = 0
    for _ in mt.deadline_loop(settle, 0.1):
        tries += 1
        got, code, acked = probe(t, moat, "sensor-a",
                                 "%s-%d" % (client_id, tries))
        if got == want:
            break
    t.check(got == want, "a new device sees %s (%d connection(s))"
            % (os.path.basename(want_pem), tries))
    t.check(code == 0 and acked, "it gets CONNACK 0 and publishes "
            "(PUBACK)", "CONNACK %r, PUBACK %r" % (code, acked))


def username_of(t, moat, name, client_id):
    """The broker username moat gives a new device of identity name."""
    mark = moat.mark()
    _, code, _ = probe(t, moat, name, client_id)
    t.check(code == 0, "%s gets CONNACK 0" % client_id)
    line = moat.wait_closed_match(r"client_id=%s " % client_id, mark)
    m = re.search(r"username=(\S+)", line)
    return m.group(1) if m else None


# --- the steps ---------------------------------------------------------------

def start_streams(t, moat):
    t.step("%d streams connect, subscribe and start publishing" % STREAMS)
    stop = threading.Event()
    ctxs = [t.device_ctx("load-%d" % k) for k in range(IDENTITIES)]
    streams = [Stream(moat.port, ctxs[i % IDENTITIES], i, stop)
               for i in range(STREAMS)]
    for s in streams:
        s.start()
    for s in streams:
        s.ready.wait(30)
    bad = [(s.cid, s.error) for s in streams
           if not s.ready.is_set() or s.error]
    t.check(not bad, "all %d are connected and subscribed" % STREAMS,
            repr(bad))
    return streams, stop


def check_workers(t, aport, streams):
    lst = json.loads(http_get(aport, "/connections?limit=%d"
                              % ADMIN_LIST_LIMIT))
    by = {}
    for o in lst:
        if (o.get("client_id") or "").startswith("load-"):
            by.setdefault(o["worker"], []).append(o["client_id"])
    t.check(sorted(sum(by.values(), [])) == sorted(s.cid for s in streams),
            "/connections lists all %d streams" % STREAMS)
    t.check(sorted(by) == [0, 1] and min(len(v) for v in by.values()) >= 5,
            "both workers hold streams: %s" % {w: len(v) for w, v in
                                               sorted(by.items())})


def healthy(t, streams):
    bad = [(s.cid, s.error) for s in streams if s.error or not s.is_alive()]
    t.check(not bad, "every stream is still streaming", repr(bad))


def progress(t, streams, what):
    """Every stream gets PROGRESS_MSGS more messages back than it had
    now (so the next reload lands in the middle of streaming)."""
    base = [s.got for s in streams]
    moved = mt.wait_for(lambda: all(s.got >= b + PROGRESS_MSGS or s.error
                                    for s, b in zip(streams, base)),
                        PROGRESS_S)
    healthy(t, streams)
    t.check(moved, "every stream moved on by %d messages %s (slowest now "
            "at %d)" % (PROGRESS_MSGS, what, min(s.got for s in streams)))


def reload(t, moat, aport, good, reason_rx=None):
    """SIGHUP and wait until it is logged; check the counters. Returns
    the metrics after it."""
    before = metrics(aport)
    mark = moat.mark()
    t0 = int(time.time())
    moat.p.send_signal(signal.SIGHUP)
    rx = re.compile(r"reloaded |reload failed")
    t.check(mt.wait_for(lambda: rx.search(moat.text()[mark:]), RELOAD_S),
            "moat logged the end of the reload", mt.tail(moat.log))
    text = moat.text()[mark:]
    after = metrics(aport)
    if good:
        t.check("reload failed" not in text, "the reload succeeded",
                text)
        t.check(after[OK] == before[OK] + 1 and
                after[FAILED] == before[FAILED],
                "reloads ok %d -> %d, failed stays %d"
                % (before[OK], after[OK], after[FAILED]))
        t.check(after[LAST_OK] >= t0, "the last-success timestamp moved "
                "to the reload (%d)" % after[LAST_OK])
    else:
        m = re.search(r"reload failed, still running the previous "
                      r"configuration: .*", text)
        t.check(m and "reloaded " not in text, "the reload failed and "
                "says so", text)
        t.ok(m.group(0))
        t.check(re.search(reason_rx, m.group(0)), "the log names the "
                "reason (%s)" % reason_rx)
        t.check(after[FAILED] == before[FAILED] + 1 and
                after[OK] == before[OK],
                "reloads failed %d -> %d, ok stays %d"
                % (before[FAILED], after[FAILED], after[OK]))
        t.check(after[LAST_OK] == before[LAST_OK],
                "the last-success timestamp stayed")
        t.check(moat.alive(), "moat is still running")
    return after


def rotate(srv, key, pem, keyfile):
    put(srv, read(pem))
    put(key, read(keyfile))


def main(t):
    mt.need_tool("mosquitto")
    certs = {}
    for n in "abcd":
        certs[n] = t.pki._issue("server-" + n, "localhost", "ext_server")
    for k in range(IDENTITIES):
        t.pki.device("load-%d" % k)
    t.pki.device("sensor-a")
    t.pki.device("sensor-new")
    t.pki.other_device()
    srv, key = t.path("srv.pem"), t.path("srv.key")
    rotate(srv, key, *certs["a"])
    mapfile = t.write("map.ini", "[someone-else]\nusername = other\n")

    broker = t.mosquitto()
    aport = mt.free_port()
    moat = t.start_moat(
        "127.0.0.1:%d" % broker.port, workers="2",
        tls={"cert": srv, "key": key},
        identity={"unknown": "template", "client_id": "keep",
                  "map": mapfile},
        process={"watch_files": "false"},
        extra="[admin]\naddress = 127.0.0.1:%d\n" % aport)
    t.check(mt.wait_for(lambda: "admin endpoint on" in moat.text(), 5),
            "the admin endpoint is up")
    m0 = metrics(aport)
    t.check(m0[OK] == 0 and m0[FAILED] == 0, "no reloads yet")
    probe_sees(t, moat, certs["a"][0], "probe-start")
    t.check(username_of(t, moat, "sensor-new", "new-before") ==
            "sensor-new", "sensor-new is not in the map yet: username "
            "sensor-new")

    streams, stop = start_streams(t, moat)
    try:
        check_workers(t, aport, streams)
        progress(t, streams, "before the first reload")

        t.step("reload 1: server certificate B")
        rotate(srv, key, *certs["b"])
        reload(t, moat, aport, True)
        probe_sees(t, moat, certs["b"][0], "probe-1", NEW_CERT_S)
        progress(t, streams, "after reload 1")

        t.step("reload 2: the certificate file truncated")
        text = read(certs["c"][0])
        put(srv, text[:len(text) // 2])
        put(key, read(certs["c"][1]))
        reload(t, moat, aport, False, re.escape(srv))
        probe_sees(t, moat, certs["b"][0], "probe-2")
        progress(t, streams, "after reload 2")

        t.step("reload 3: server certificate C")
        rotate(srv, key, *certs["c"])
        reload(t, moat, aport, True)
        probe_sees(t, moat, certs["c"][0], "probe-3", NEW_CERT_S)
        progress(t, streams, "after reload 3")

        t.step("reload 4: the identity map gains sensor-new")
        put(mapfile, read(mapfile) + "\n[sensor-new]\nusername = "
            "mapped-new\n")
        reload(t, moat, aport, True)
        probe_sees(t, moat, certs["c"][0], "probe-4")
        name = None
        for i, _ in enumerate(mt.deadline_loop(NEW_CERT_S, 0.1)):
            name = username_of(t, moat, "sensor-new", "new-after-%d" % i)
            if name == "mapped-new":
                break
        t.check(name == "mapped-new", "a new sensor-new connection carries "
                "the map's username (got %r)" % name)
        progress(t, streams, "after reload 4")

        t.step("reload 5: server certificate D")
        rotate(srv, key, *certs["d"])
        # a second after start-up at least, so the timestamp can move
        mt.wait_for(lambda: time.time() >= m0[LAST_OK] + 1, 2)
        t5 = int(time.time())
        last = reload(t, moat, aport, True)
        probe_sees(t, moat, certs["d"][0], "probe-5", NEW_CERT_S)
        progress(t, streams, "after reload 5")

        t.step("twins: no certificate, another CA's certificate")
        ok, how = mt.try_tls_mqtt(moat.port, mt.client_context(ca=t.pki.ca),
                                  "no-cert")
        t.check(not ok, "a device without a certificate is refused (%s)"
                % how)
        ok, how = mt.try_tls_mqtt(moat.port, t.device_ctx(
            cert=t.pki.other_device()), "other-ca")
        t.check(not ok, "a device with another CA's certificate is refused "
                "(%s)" % how)
        progress(t, streams, "after the twins")

        t.step("the end: counters, then the streams drain and leave")
        t.check(last[OK] == 4 and last[FAILED] == 1,
                "moat_reloads_total: ok 4, failed 1")
        t.check(last[LAST_OK] >= t5 and last[LAST_OK] > m0[LAST_OK],
                "the last-success timestamp moved from %d (start-up) to %d"
                % (m0[LAST_OK], last[LAST_OK]))
        t.check(len(re.findall(r"reloaded ", moat.text())) == 4 and
                len(re.findall(r"reload failed", moat.text())) == 1,
                "the log has 4 reloads and 1 failure")
        t.check(mt.wait_for(lambda: metrics(aport)[OPEN] == STREAMS, 5),
                "moat_connections_open is %d once the probes have gone"
                % STREAMS, str(metrics(aport)[OPEN]))
        gone = [ln for ln in moat.closed_lines()
                if "client_id=load-" in ln]
        t.check(not gone, "no stream was closed", "\n".join(gone))
        healthy(t, streams)
    finally:
        stop.set()
        for s in streams:
            s.join(STALL_S + 10)
    finish(t, moat, streams)
    moat.stop_and_check()


def finish(t, moat, streams):
    unfinished = [(s.cid, s.error, s.end) for s in streams
                   if s.error or s.is_alive() or s.end != "eof"]
    t.check(not unfinished, "every stream drained, said DISCONNECT and "
            "saw the end", repr(unfinished))
    bad = [s.cid for s in streams if s.h_sent.digest() != s.h_got.digest()
           or s.sent != s.got]
    t.check(not bad, "every stream: SHA-256 of what came back equals "
            "SHA-256 of what it sent", repr(bad))
    msgs = sum(s.got for s in streams)
    t.ok("%d messages, %.1f MiB each way, %d to %d per stream"
         % (msgs, sum(s.bytes_up for s in streams) / 1048576.0,
            min(s.got for s in streams), max(s.got for s in streams)))
    lines = mt.wait_for(lambda: (lambda ls: ls if len(ls) >= STREAMS
                                 else None)(
        [ln for ln in moat.closed_lines() if "client_id=load-" in ln]), 10)
    t.check(lines and len(lines) == STREAMS, "%d close lines for the "
            "streams" % STREAMS)
    down = {}
    for ln in lines:
        cid = re.search(r"client_id=(\S+)", ln).group(1)
        down[cid] = int(re.search(r"\bdown=(\d+)", ln).group(1))
    wrong = [(s.cid, s.bytes_down, down.get(s.cid)) for s in streams
             if down.get(s.cid) != s.bytes_down]
    t.check(not wrong, "each close line counts exactly the bytes that "
            "reached its device", repr(wrong[:5]))


if __name__ == "__main__":
    mt.run(main, "t_reload_load")
