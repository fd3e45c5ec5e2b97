#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The CONNECT stage, driven by a raw TLS client with a good certificate.

  split        a CONNECT sent one byte per TLS record (MQTT 3.1.1 and 5,
               and a ~900-byte one with a will)
               still gets the broker's CONNACK 0.
  pipelined    CONNECT + PUBLISH (QoS 1) + PINGREQ in one write: CONNACK,
               PUBACK and PINGRESP come back and a subscriber gets the
               message.
  refusals     protocol level 6 -> CONNACK 20 02 00 01; MQTT 5 with an
               Authentication Method -> 0x8C; a CONNECT over
               max_connect_size (1024) -> 0x95 under MQTT 5, closed without
               CONNACK under 3.1.1; an HTTP request and a PUBLISH as first
               packet -> closed without CONNACK. Each with its conn_closed
               reason; the broker sees none of them.
  streaming    an MQTT 5 device whose identity is denied keeps streaming
               1 MiB after its CONNECT from a background thread; its
               CONNACK 0x87 still arrives (moat drains instead of resetting).
  deadline     connect_timeout = 2s: a device that completes TLS and sends
               nothing (or half a CONNECT) is closed after ~2 s with
               reason=connect_timeout and no CONNACK.
  broker down  CONNACK 0x03 (3.1.1) / 0x88 (5), reason=backend_refused."""

import os
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

MAX_CONNECT = 1024
PINGREQ = b"\xc0\x00"


def refused(t, moat, broker, ctx, data, want, reasons, what):
    """Send data as the first bytes after the handshake; the device must
    get exactly want (b"" = nothing) and then the end of the stream, moat
    must log one of reasons, and the broker must see nothing."""
    before = broker.new_connections()
    mark = moat.mark()
    c = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
    port = c.sock.getsockname()[1]
    try:
        c.send(data)
        got, how = c.read_rest(5)
    finally:
        c.close()
    line = moat.wait_closed_match("peer=127.0.0.1:%d " % port, mark)
    mt.say("      moat: %s" % line.strip())
    t.check(got == want and how == "eof", "%s: %s, then closed"
            % (what, "CONNACK " + want.hex(" ") if want else
               "no CONNACK"), "got %s, then %s"
            % (got.hex(" ") or "nothing", how))
    t.check(mt.reason_of(line) in reasons, "conn_closed reason=%s"
            % mt.reason_of(line), line)
    time.sleep(0.1)
    t.check(broker.new_connections() == before, "the broker saw nothing")


class TlsStream:
    """TLS over a plain socket through ssl.SSLObject, so that one thread
    may write while another reads: the SSL object is used under a lock,
    the socket I/O happens outside it."""

    def __init__(self, port, ctx, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_hostname="localhost")
        self.lock = threading.Lock()
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("closed during the handshake")
                self.inc.write(data)
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def write(self, data):
        with self.lock:
            self.obj.write(data)
            enc = self.out.read()
        self.sock.sendall(enc)

    def read(self, deadline):
        """Plaintext (b"" at the end of the stream); raises socket.timeout
        at deadline."""
        while True:
            with self.lock:
                try:
                    return self.obj.read(65536)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    return b""
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                with self.lock:
                    self.inc.write_eof()
                continue
            with self.lock:
                self.inc.write(data)

    def close(self):
        self.sock.close()


def streaming_refusal(t, moat, broker):
    """A denied MQTT 5 device that keeps sending 1 MiB after its CONNECT."""
    before = broker.new_connections()
    mark = moat.mark()
    s = TlsStream(moat.port, t.device_ctx("sensor-d"))
    port = s.sock.getsockname()[1]
    res = {"sent": 0, "how": "not finished"}
    junk = os.urandom(1 << 20)

    def writer():
        try:
            s.write(mt.mqtt_connect("stream-d", version=5))
            for i in range(0, len(junk), 16384):
                s.write(junk[i:i + 16384])
                res["sent"] += 16384
            res["how"] = "all sent"
        except (OSError, ssl.SSLError) as e:
            res["how"] = "%s: %s" % (type(e).__name__, e)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        time.sleep(0.5)     # the CONNACK waits while the device sends
        deadline = time.monotonic() + 10
        got = b""
        how = "eof"
        while True:
            try:
                chunk = s.read(deadline)
            except socket.timeout:
                how = "timeout"
                break
            except ConnectionResetError:
                how = "reset"
                break
            except (OSError, ssl.SSLError) as e:
                how = "%s: %s" % (type(e).__name__, e)
                break
            if not chunk:
                break
            got += chunk
        th.join(10)
    finally:
        s.close()
    mt.say("      writer: %d of %d bytes after the CONNECT, %s"
           % (res["sent"], len(junk), res["how"]))
    t.check(got[:5] == b"\x20\x03\x00\x87\x00",
            "the denied device read CONNACK 0x87 while streaming (%s)"
            % how, "got %r, then %s" % (got[:16], how))
    t.check(how == "eof", "then an orderly end of the stream (%s)" % how)
    t.check(not th.is_alive(), "the writer finished (%s)" % res["how"])
    line = moat.wait_closed_match("peer=127.0.0.1:%d " % port, mark)
    mt.say("      moat: %s" % line.strip())
    t.check(mt.reason_of(line) == "identity_refused",
            "conn_closed reason=identity_refused", line)
    t.check(broker.new_connections() == before, "the broker saw nothing")


def silent(t, moat, ctx, send, res, key):
    """Connect, send the given bytes, then wait for moat to close."""
    t0 = time.monotonic()
    try:
        c = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
        res[key + " port"] = c.sock.getsockname()[1]
        t0 = time.monotonic()
        if send:
            c.send(send)
        got, how = c.read_rest(8)
        c.close()
        res[key] = (got, how, time.monotonic() - t0)
    except (OSError, ssl.SSLError, EOFError) as e:
        res[key] = (b"", "%s: %s" % (type(e).__name__, e),
                    time.monotonic() - t0)


def main(t):
    mt.need_tool("mosquitto", "mosquitto_sub")
    t.step("certificates; Mosquitto; moat with max_connect_size = %d, "
           "connect_timeout = 2s, [sensor-d] deny = true" % MAX_CONNECT)
    t.pki.device("sensor-a")
    t.pki.device("sensor-b")
    t.pki.device("sensor-d")
    mapfile = t.write("map.ini", "[sensor-d]\ndeny = true\n")
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port,
                        limits={"max_connect_size": str(MAX_CONNECT),
                                "connect_timeout": "2s"},
                        identity={"source": "cn", "map": mapfile,
                                  "unknown": "template",
                                  "client_id": "keep"})
    ctx = t.device_ctx("sensor-a")

    # -- split into one-byte records ---------------------------------------
    # (3.1.1 and 5 small, with a pause after each byte; and a 3.1.1 CONNECT
    # of ~900 bytes with a will, sent back to back)
    for version, will in ((4, None), (5, None), (4, 800)):
        what = "level %d%s" % (version, ", %d-byte will" % will if will
                                else "")
        t.step("MQTT %s CONNECT in 1-byte TLS records" % what)
        with mt.client_case(t, "1-byte records, " + what):
            cid = "split-%d-%s" % (version, os.urandom(3).hex())
            props = b""
            if version == 5:   # session expiry + a user property
                props = (b"\x11\x00\x00\x00\x0a" + b"\x26" +
                         mt.mqtt_str("k") + mt.mqtt_str("v"))
            pkt = mt.mqtt_connect_full(
                cid, version=version, props=props, username="ignored",
                password="pw",
                will=("moat/will", b"w" * will, 0, False) if will else None)
            mark = len(broker.text())
            c = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
            try:
                for b in pkt:
                    c.sock.send(bytes([b]))
                    if not will:
                        time.sleep(0.002)
                code, _ = c.read_connack()
            finally:
                c.close()
            t.check(code == 0, "%d records, one byte each: CONNACK 0"
                    % len(pkt), "got 0x%02x" % code)
            t.check(broker.wait_log(r"New client connected from \S+ as %s "
                                    % cid, 5, mark),
                    "the broker logged client %s" % cid)

    # -- bytes after the CONNECT -------------------------------------------
    t.step("CONNECT + PUBLISH + PINGREQ in one write")
    with mt.client_case(t, "pipelined"):
        topic = "moat/connect/pipelined"
        payload = b"pipelined " + os.urandom(4).hex().encode()
        sub = mt.RawClient("127.0.0.1", moat.port, t.device_ctx("sensor-b"),
                           timeout=10)
        dev = None
        try:
            t.check(sub.connect("pipe-sub") == 0, "subscriber connected")
            t.check(sub.subscribe(topic, qos=1) == 1, "subscribed, QoS 1")
            dev = mt.RawClient("127.0.0.1", moat.port, ctx, timeout=10)
            dev.send(mt.mqtt_connect("pipe-pub") +
                     mt.mqtt_publish(topic, payload, qos=1, pid=7) + PINGREQ)
            seq = []
            for _ in range(3):
                first, body = dev.read_packet(5)
                seq.append((first, body))
            kinds = [f >> 4 for f, _ in seq]
            t.check(kinds == [2, 4, 13] and seq[0][1][1] == 0 and
                    seq[1][1] == b"\x00\x07",
                    "CONNACK 0, PUBACK 7, PINGRESP, in that order",
                    repr(seq))
            first, body = sub.read_packet(5)
            t.check(first >> 4 == 3 and mt.RawClient.parse_publish(
                first, body)[:2] == (topic, payload),
                "the subscriber got the pipelined PUBLISH")
        finally:
            sub.close()
            if dev:
                dev.close()

    # -- refusals ----------------------------------------------------------
    big = "x" * (MAX_CONNECT + 100)
    cases = [
        ("protocol level 6", mt.mqtt_connect_full("lvl6", version=6),
         b"\x20\x02\x00\x01", ("protocol_refused",)),
        ("MQTT 5 with an Authentication Method",
         mt.mqtt_connect_full("auth5", version=5, props=b"\x15" +
                              mt.mqtt_str("SCRAM-SHA-1")),
         b"\x20\x03\x00\x8c\x00", ("auth_method_refused",)),
        ("MQTT 5 CONNECT over max_connect_size",
         mt.mqtt_connect_full(big, version=5),
         b"\x20\x03\x00\x95\x00", ("connect_too_large",)),
        ("MQTT 3.1.1 CONNECT over max_connect_size",
         mt.mqtt_connect_full(big, version=4), b"",
         ("connect_too_large",)),
        ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"",
         ("mqtt_not_connect", "mqtt_malformed")),
        ("a PUBLISH as first packet", mt.mqtt_publish("a/b", b"hi"), b"",
         ("mqtt_not_connect",)),
    ]
    for what, data, want, reasons in cases:
        t.step("refused: %s" % what)
        with mt.client_case(t, what):
            refused(t, moat, broker, ctx, data, want, reasons, what)

    t.step("refused while streaming: denied MQTT 5 device sends 1 MiB "
           "after its CONNECT")
    with mt.client_case(t, "streaming refusal"):
        streaming_refusal(t, moat, broker)

    # -- CONNECT deadline --------------------------------------------------
    t.step("connect_timeout = 2s: silence, and half a CONNECT")
    with mt.client_case(t, "connect deadline"):
        before = broker.new_connections()
        mark = moat.mark()
        res = {}
        half = mt.mqtt_connect("half-connect")[:9]
        ths = [threading.Thread(target=silent, args=(t, moat, ctx, s, res, k),
                                daemon=True)
               for k, s in (("silent", b""), ("half", half))]
        for th in ths:
            th.start()
        for th in ths:
            th.join(15)
        for k in ("silent", "half"):
            got, how, secs = res.get(k, (b"", "no result", 0))
            t.check(got == b"" and how == "eof" and 1.5 <= secs <= 4.5,
                    "%s device: closed after %.2f s (%s), no CONNACK"
                    % (k, secs, how), "got %r" % got)
        lines = [moat.wait_closed_match("peer=127.0.0.1:%d "
                                        % res.get(k + " port", 0), mark)
                 for k in ("silent", "half")]
        for ln in lines:
            mt.say("      moat: %s" % ln.strip())
        t.check(all(mt.reason_of(ln) == "connect_timeout" for ln in lines),
                "both conn_closed with reason=connect_timeout")
        t.check(broker.new_connections() == before, "the broker saw nothing")

    # -- broker unreachable ------------------------------------------------
    t.step("broker unreachable")
    with mt.client_case(t, "broker down"):
        down = mt.free_port()
        moat_down = t.start_moat("127.0.0.1:%d" % down, name="moat-down")
        for version, want in ((4, b"\x20\x02\x00\x03"),
                              (5, b"\x20\x03\x00\x88\x00")):
            refused(t, moat_down, broker, ctx,
                    mt.mqtt_connect("down-%d" % version, version=version),
                    want, ("backend_refused",),
                    "MQTT level %d, nothing on port %d" % (version, down))


if __name__ == "__main__":
    mt.run(main, "t_connect")
