#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every teardown direction is clean, named, and leaks no file descriptor.

  device close_notify + close   reason=device_closed, moat answers with
                                close_notify, the broker sees the client go
  device FIN, no close_notify   reason=device_eof
  device RST (SO_LINGER 0)      reason=device_reset
  broker kicks the client       (a second client takes its client id) the
                                device first gets the PUBLISH the broker sent
                                just before, then close_notify (not a bare
                                EOF); reason=backend_closed
  broker sends, then FIN        (a scripted broker) fills the way to a
                                device that does not read until moat itself
                                holds >= 64 KiB, then FIN: every byte still
                                reaches the device, then close_notify;
                                up/down counted exactly
  broker stopped                reason=backend_closed, close_notify
  50 quick cycles of mixed kinds (handshake failures, resets, garbage, ...)

Afterwards moat's open descriptors (/proc/PID/fd) are back to the count it
had before the first connection, and it logged exactly one conn_closed per
connection made."""

import collections
import os
import re
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

CYCLES = 50
BURST_SIZE = 64 * 1024        # messages from the scripted broker
BURST_MAX = 256               # at most 16 MiB of them
DISCONNECT = b"\xe0\x00"
CONNACK_OK = b"\x20\x02\x00\x00"


def fd_table(pid):
    """{fd: target} of the process, or {} once it is gone."""
    d = "/proc/%d/fd" % pid
    out = {}
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def wrap(ctx, sock):
    """TLS over sock that tells close_notify (recv returns b'') from a bare
    EOF (ssl.SSLEOFError)."""
    return ctx.wrap_socket(sock, server_hostname="localhost",
                           suppress_ragged_eofs=False)


class Device(mt.RawClient):
    """RawClient whose TLS layer reports a missing close_notify."""

    def __init__(self, port, ctx, timeout=10, rcvbuf=None):
        super().__init__("127.0.0.1", port, None, timeout=timeout,
                         rcvbuf=rcvbuf)
        if ctx is not None:
            self.sock = wrap(ctx, self.sock)

    def how_closed(self, timeout=10):
        """Read until the peer closes; returns (what ended it, bytes read
        before). What: 'close_notify', 'EOF without close_notify', 'reset',
        'timeout', or the exception."""
        data = bytearray(self.buf)
        self.buf.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", bytes(data)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ssl.SSLEOFError:
                return "EOF without close_notify", bytes(data)
            except ConnectionResetError:
                return "reset", bytes(data)
            except socket.timeout:
                return "timeout", bytes(data)
            except (OSError, ssl.SSLError) as e:
                return "%s: %s" % (type(e).__name__, e), bytes(data)
            if not chunk:
                return "close_notify", bytes(data)
            data += chunk


def split_packets(data):
    """Whole MQTT packets in data, as (first byte, body)."""
    out, pos = [], 0
    while pos + 2 <= len(data):
        mult, n, i = 1, 0, pos + 1
        while i < len(data) and i < pos + 5:
            n += (data[i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not data[i - 1] & 0x80:
                break
        else:
            break
        if i + n > len(data):
            break
        out.append((data[pos], bytes(data[i:i + n])))
        pos = i + n
    return out


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def read_eof(sock, timeout=5):
    """Plain socket: read until EOF/reset; returns what ended it."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return "EOF"
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            return "reset"
        except OSError as e:
            return str(e)


class Run:
    """The main moat plus bookkeeping: connections made to it."""

    def __init__(self, t, moat, broker, cert, key):
        self.t = t
        self.moat = moat
        self.broker = broker
        self.ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
        self.made = 0

    def device(self, cid, ctx=None):
        """A device through moat with CONNACK 0 (keep-alive 60)."""
        self.made += 1
        c = Device(self.moat.port, ctx or self.ctx)
        try:
            rc = c.connect(cid)
        except (OSError, EOFError, ValueError) as e:
            c.close()
            self.t.fail("device %s: no CONNACK through moat: %s: %s"
                        % (cid, type(e).__name__, e))
        if rc != 0:
            c.close()
            self.t.fail("device %s: CONNACK %d through moat" % (cid, rc))
        return c

    def one_close(self, mark, reason, cid=None, bmark=None):
        """Wait for the conn_closed line after mark: check its reason and
        that the broker saw client cid go."""
        line = self.moat.wait_closed(mark, 1, timeout=10)[0]
        mt.say("      moat: %s" % line.strip())
        self.t.check(mt.reason_of(line) == reason,
                     "moat logged reason=%s" % reason, line)
        if cid is not None:
            rx = r"Client %s (closed its connection|disconnected)" % cid
            self.t.check(self.broker.wait_log(rx, 10, bmark or 0),
                         "the broker saw client %s disconnect" % cid,
                         mt.tail(self.broker.log, 10))
        return line


def case_close_notify(r):
    t = r.t
    t.step("the device sends close_notify, then closes")
    mark, bmark = r.moat.mark(), len(r.broker.text())
    c = r.device("td-notify")
    try:
        # unwrap() sends close_notify and waits for the peer's
        raw = c.sock.unwrap()
    except (OSError, ssl.SSLError) as e:
        c.close()
        t.fail("unwrap (close_notify both ways) failed: %s: %s"
               % (type(e).__name__, e))
    t.ok("close_notify sent, and moat's close_notify came back")
    how = read_eof(raw)
    raw.close()
    t.check(how == "EOF", "then moat closed TCP (%s)" % how)
    r.one_close(mark, "device_closed", "td-notify", bmark)


def case_fin(r):
    t = r.t
    t.step("the device sends FIN without close_notify")
    mark, bmark = r.moat.mark(), len(r.broker.text())
    c = r.device("td-fin")
    # SSLSocket.shutdown drops the TLS layer and shuts the TCP socket
    c.sock.shutdown(socket.SHUT_WR)
    how = read_eof(c.sock)
    c.close()
    t.check(how == "EOF", "moat closed its side too (%s)" % how)
    r.one_close(mark, "device_eof", "td-fin", bmark)


def case_rst(r):
    t = r.t
    t.step("the device resets the connection (SO_LINGER 0)")
    mark, bmark = r.moat.mark(), len(r.broker.text())
    c = r.device("td-rst")
    rst_close(c.sock)
    r.one_close(mark, "device_reset", "td-rst", bmark)


def case_kick(r):
    t = r.t
    t.step("the broker kicks the device (same client id connects) right "
           "after publishing to it")
    mark = r.moat.mark()
    topic = "td/kick"
    payload = os.urandom(32).hex().encode()
    c = r.device("td-kick")
    try:
        t.check(c.subscribe(topic, qos=1) == 1, "subscribed (QoS 1)")
        p = mt.RawClient("127.0.0.1", r.broker.port, None, timeout=10)
        try:
            t.check(p.connect("td-publisher") == 0, "publisher connected")
            p.send(mt.mqtt_publish(topic, payload, qos=1, pid=7))
            first, _ = p.read_packet(10)
            t.check(first >> 4 == 4, "publisher got PUBACK")
        finally:
            p.close()
        k = mt.RawClient("127.0.0.1", r.broker.port, None, timeout=10)
        try:
            t.check(k.connect("td-kick") == 0,
                    "a second client took client id td-kick at the broker")
        finally:
            k.close()
        how, data = c.how_closed(10)
    finally:
        c.close()
    got = split_packets(data)
    pubs = [mt.RawClient.parse_publish(f, b) for f, b in got
            if f >> 4 == 3]
    t.check(len(pubs) == 1 and pubs[0][0] == topic and
            pubs[0][1] == payload,
            "the device got the PUBLISH sent just before the kick",
            "got %r" % (got,))
    t.check(how == "close_notify", "then close_notify (%s)" % how)
    t.check(r.broker.wait_log("Client td-kick already connected", 5),
            "the broker kicked the old td-kick")
    r.one_close(mark, "backend_closed")


def tcp_queues(pairs):
    """{(local port, remote port): (tx_queue, rx_queue)} from /proc/net/tcp
    for the given IPv4 loopback pairs (missing ones: (0, 0))."""
    want = {("0100007F:%04X" % lp, "0100007F:%04X" % rp): (lp, rp)
            for lp, rp in pairs}
    out = {pr: (0, 0) for pr in pairs}
    try:
        with open("/proc/net/tcp") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return out
    for row in rows:
        col = row.split()
        key = want.get((col[1], col[2]))
        if key:
            tx, rx = col[4].split(":")
            out[key] = (int(tx, 16), int(rx, 16))
    return out


def settled_hold(pairs, plain):
    """(bytes moat holds itself, queues) once the kernel queues have stopped
    moving (two equal samples 20 ms apart, at most 0.5 s)."""
    dev, devr, be, ber = pairs
    prev = None
    for _ in mt.deadline_loop(0.5, 0.02):
        q = tcp_queues(pairs)
        if q == prev:
            break
        prev = q
    kernel = q[dev][1] + q[devr][0] + q[be][0] + q[ber][1]
    return plain - kernel, q


def case_burst_then_fin(t, cert, key):
    """The scripted broker fills moat's kernel buffer towards a device that
    does not read, so that the last messages wait in moat's own write queue
    (below the backpressure mark, so moat keeps reading the broker); then
    it sends FIN. Everything must still reach the device, then
    close_notify."""
    t.step("a scripted broker fills the way to a stalled device, then FIN")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.settimeout(10)
    moat = t.start_moat("127.0.0.1:%d" % ls.getsockname()[1],
                        name="moat-scripted")
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    connect = mt.mqtt_connect("td-burst")
    c = Device(moat.port, ctx, rcvbuf=BURST_SIZE)
    b = None
    sent, got, down = [], [], len(CONNACK_OK)
    try:
        c.send(connect)     # moat may wait for it before it dials
        b = mt.RawClient.__new__(mt.RawClient)
        b.sock, b.buf = ls.accept()[0], bytearray()
        b.sock.settimeout(10)
        first, _ = b.read_packet(10)
        t.check(first >> 4 == 1, "the scripted broker got the CONNECT")
        b.send(CONNACK_OK)
        t.check(c.read_packet(10)[0] >> 4 == 2, "the device got CONNACK")

        # The device reads nothing now. What moat holds in its own
        # write queue = what the broker sent minus what sits in the four
        # kernel queues on the way (ciphertext counted as plaintext: an
        # underestimate). Send until that is at least one message, well
        # below the 256 KiB at which moat would stop reading the broker.
        dev = (c.sock.getsockname()[1], moat.port)
        be = (b.sock.getsockname()[1], b.sock.getpeername()[1])
        pairs = [dev, dev[::-1], be, be[::-1]]
        held, plain = 0, 0
        while held < BURST_SIZE and len(sent) < BURST_MAX:
            # three at a time while the kernel takes everything (held <= 0,
            # TLS overhead makes it negative), then one by one: three more
            # could cross the backpressure mark
            for _ in range(3 if held <= 0 else 1):
                payload = os.urandom(BURST_SIZE)
                msg = mt.mqtt_publish("td/burst", payload)
                b.send(msg)
                sent.append(payload)
                down += len(msg)
                plain += len(msg)
            held, q = settled_hold(pairs, plain)
        mt.say("      %d KiB sent; kernel queues: moat->device %d KiB, "
               "device rx %d KiB; moat holds >= %d KiB itself"
               % (plain >> 10, q[dev[::-1]][0] >> 10, q[dev][1] >> 10,
                  held >> 10))
        t.check(held >= BURST_SIZE, "moat holds at least %d KiB in its own "
                "write queue" % (BURST_SIZE >> 10))
        b.sock.shutdown(socket.SHUT_WR)
        t.ok("the scripted broker sent FIN")
        time.sleep(0.2)    # moat reads the FIN while the device stalls

        while len(got) < len(sent):
            first, body = c.read_packet(10)
            got.append(mt.RawClient.parse_publish(first, body)[1])
        how, rest = c.how_closed(10)
        t.check(not b.sock.recv(1), "the scripted broker got moat's FIN")
    except (OSError, EOFError, ValueError, ssl.SSLError) as e:
        t.fail("%s: %s (the device got %d of %d messages)"
               % (type(e).__name__, e, len(got), len(sent)))
    finally:
        c.close()
        if b is not None:
            b.close()
        ls.close()
    t.check(got == sent and not rest,
            "all %d messages arrived intact, nothing after them"
            % len(sent))
    t.check(how == "close_notify", "then close_notify (%s)" % how)
    line = moat.wait_closed(0, 1, timeout=10)[0]
    mt.say("      moat: %s" % line.strip())
    t.check(mt.reason_of(line) == "backend_closed",
            "moat logged reason=backend_closed", line)
    want = "up=%d down=%d" % (len(connect), down)
    t.check(want in line, "moat counted the bytes exactly (%s)" % want, line)
    moat.stop_and_check()


def case_broker_stopped(r):
    t = r.t
    t.step("the broker is stopped under a connected device")
    mark = r.moat.mark()
    try:
        c = r.device("td-stop")
        try:
            rc, _ = r.broker.stop()
            mt.say("      mosquitto exited %s" % rc)
            how, data = c.how_closed(10)
        finally:
            c.close()
        t.check(how == "close_notify", "the device got close_notify (%s; "
                "%d byte(s) before)" % (how, len(data)))
        r.one_close(mark, "backend_closed")
    finally:
        t.step("restart the broker on the same port")
        r.broker.stop()
        r.broker = t.mosquitto(port=r.broker.port, name="mosquitto-2")


# --- quick cycles -------------------------------------------------------

def cyc_notify(r, i):
    c = r.device("cyc-%d" % i)
    try:
        c.sock.unwrap().close()
    except (OSError, ssl.SSLError):
        c.close()


def cyc_tls12(r, i):
    c = r.device("cyc-%d" % i, ctx=r.ctx12)
    c.close()


def cyc_fin(r, i):
    c = r.device("cyc-%d" % i)
    c.sock.shutdown(socket.SHUT_WR)
    c.close()


def cyc_rst(r, i):
    rst_close(r.device("cyc-%d" % i).sock)


def cyc_disconnect(r, i):
    c = r.device("cyc-%d" % i)
    c.send(DISCONNECT)
    c.how_closed(5)
    c.close()


def cyc_tls_only(r, i):
    r.made += 1
    Device(r.moat.port, r.ctx).close()


def cyc_no_cert(r, i):
    r.made += 1
    ok, _ = mt.try_tls_mqtt(r.moat.port, r.ctx_nocert, "cyc-%d" % i)
    if ok:
        r.t.fail("a device without a certificate got through")


def cyc_wrong_ca(r, i):
    r.made += 1
    ok, _ = mt.try_tls_mqtt(r.moat.port, r.ctx_other, "cyc-%d" % i)
    if ok:
        r.t.fail("a device from another CA got through")


def cyc_garbage(r, i):
    s = socket.create_connection(("127.0.0.1", r.moat.port), 5)
    r.made += 1
    try:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        read_eof(s, 5)
    except OSError:
        pass
    s.close()


def cyc_tcp_close(r, i):
    r.made += 1
    socket.create_connection(("127.0.0.1", r.moat.port), 5).close()


def cyc_tcp_rst(r, i):
    r.made += 1
    rst_close(socket.create_connection(("127.0.0.1", r.moat.port), 5))


def cyc_half_hello(r, i):
    s = socket.create_connection(("127.0.0.1", r.moat.port), 5)
    r.made += 1
    s.sendall(bytes.fromhex("16030100c8010000c40303") + os.urandom(16))
    if i % 2:
        rst_close(s)
    else:
        s.close()


CYCLE_REASONS = {
    cyc_notify: ("device_closed",),
    cyc_tls12: ("device_eof",),
    cyc_fin: ("device_eof",),
    cyc_rst: ("device_reset",),
    cyc_disconnect: ("backend_closed",),
    cyc_tls_only: ("device_eof",),
    cyc_no_cert: ("tls_handshake_failed",),
    cyc_wrong_ca: ("tls_handshake_failed",),
    cyc_garbage: ("tls_handshake_failed",),
    cyc_tcp_close: ("device_eof",),
    cyc_tcp_rst: ("device_reset",),
    cyc_half_hello: ("device_eof", "device_reset"),
}

CYCLE_KINDS = [cyc_notify, cyc_no_cert, cyc_fin, cyc_tcp_close, cyc_rst,
               cyc_wrong_ca, cyc_disconnect, cyc_garbage, cyc_tls12,
               cyc_tcp_rst, cyc_tls_only, cyc_half_hello]


def main(t):
    mt.need_tool("mosquitto")
    cert, key = t.pki.device("sensor-a")
    ocert, okey = t.pki.other_device()
    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)
    base = fd_table(moat.pid)
    mt.say("      moat has %d open descriptors before any connection"
           % len(base))
    r = Run(t, moat, broker, cert, key)
    r.ctx12 = mt.client_context(ca=t.pki.ca, cert=cert, key=key,
                                max_version=ssl.TLSVersion.TLSv1_2)
    r.ctx_nocert = mt.client_context(ca=t.pki.ca)
    r.ctx_other = mt.client_context(ca=t.pki.ca, cert=ocert, key=okey)

    for case in (case_close_notify, case_fin, case_rst, case_kick,
                 case_broker_stopped):
        with t.subcase(case.__name__):
            case(r)
    with t.subcase("case_burst_then_fin"):
        case_burst_then_fin(t, cert, key)

    t.step("%d quick connect/close cycles of %d kinds" %
           (CYCLES, len(CYCLE_KINDS)))
    t0 = time.monotonic()
    expect = {}        # connection id (ids follow accept order) -> kind
    for i in range(CYCLES):
        kind = CYCLE_KINDS[i % len(CYCLE_KINDS)]
        expect[r.made + 1] = kind
        try:
            kind(r, i)
        except (OSError, EOFError, ValueError, ssl.SSLError) as e:
            t.fail("cycle %d (%s): %s: %s" % (i, kind.__name__,
                                               type(e).__name__, e))
    mt.say("      %d cycles in %.2f s" % (CYCLES, time.monotonic() - t0))

    t.step("every connection is closed, logged once, and its descriptors "
           "are gone")
    closed = wait_closed_count(moat, r.made, 10)
    reasons = collections.Counter(mt.reason_of(ln) for ln in closed)
    mt.say("      %d connections made, %d conn_closed: %s" % (
        r.made, len(closed), ", ".join("%s=%d" % kv for kv in
                                       sorted(reasons.items()))))
    t.check(len(closed) == r.made,
            "one conn_closed per connection made (%d, %d)"
            % (len(closed), r.made))
    ids = sorted(int(m.group(1)) for m in
                 (re.search(r"\bid=(\d+)", ln) for ln in closed) if m)
    t.check(ids == list(range(1, r.made + 1)),
            "ids 1..%d each closed exactly once" % r.made,
            "ids: %r" % ids)
    t.check(None not in reasons and "none" not in reasons,
            "every close has a reason")
    by_id = {int(m.group(1)): mt.reason_of(ln) for m, ln in
             ((re.search(r"\bid=(\d+)", ln), ln) for ln in closed) if m}
    wrong = ["id %d (%s): %s, expected %s" % (
        cid, k.__name__, by_id.get(cid), "/".join(CYCLE_REASONS[k]))
        for cid, k in sorted(expect.items())
        if by_id.get(cid) not in CYCLE_REASONS[k]]
    t.check(not wrong, "each cycle closed with the reason of its kind",
            "\n".join(wrong))
    now = wait_for_fds(moat.pid, len(base), 5)
    t.check(len(now) == len(base),
            "moat's descriptors are back to %d (now %d)"
            % (len(base), len(now)),
            "before: %r\nnow:    %r" % (base, now))
    t.check(moat.alive(), "moat is still running")
    moat.stop_and_check()


def wait_closed_count(moat, n, timeout):
    got = mt.wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(
        moat.closed_lines()), timeout)
    return got or moat.closed_lines()


def wait_for_fds(pid, n, timeout):
    got = mt.wait_for(lambda: (lambda fds: fds if len(fds) == n else None)(
        fd_table(pid)), timeout)
    return got or fd_table(pid)


if __name__ == "__main__":
    mt.run(main, "t_teardown")
