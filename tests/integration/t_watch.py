#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""moat reloads by itself when the files a reload reads change, with no
signal: a Kubernetes Secret update (kubelet writes a new timestamped
directory, then renames a new ..data symlink over the old one; no file is
written in place) and moat.ini edited in place. A connection opened before
the change keeps working. A broken certificate swapped in the same way is
refused, logged with the reason, and the old one stays in service until a
good one comes. Rejecting twins: files touched, rewritten with the same
bytes, or a busy file next to moat.ini never cause a reload (the contents
are compared, and the quiet period still lets a real change through while
another file keeps changing); with [process] watch_files = false nothing is
reloaded until SIGHUP."""

import os
import re
import shutil
import signal
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

PICKUP_S = 5          # acceptance: picked up within 5 s
BROKEN_PEM = ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
              "-----END CERTIFICATE-----\n")


class SecretVolume:
    """A directory laid out the way kubelet lays out a mounted Secret:
    name -> ..data/name, ..data -> ..<timestamp>, and an update that
    writes a new timestamped directory, points ..data_tmp at it, renames
    ..data_tmp over ..data, then removes the old directory."""

    def __init__(self, root, files):
        self.root = root
        self.n = 0
        os.makedirs(root)
        self.current = self._write(files)
        os.symlink(self.current, os.path.join(root, "..data"))
        for name in files:
            os.symlink(os.path.join("..data", name),
                       os.path.join(root, name))

    def _write(self, files):
        self.n += 1
        name = "..2026_12_03_00_00_%02d.%d" % (self.n, 1000 + self.n)
        d = os.path.join(self.root, name)
        os.makedirs(d)
        for fname, text in files.items():
            with open(os.path.join(d, fname), "w") as f:
                f.write(text)
        return name

    def update(self, files):
        old = self.current
        self.current = self._write(files)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(self.current, tmp)
        os.rename(tmp, os.path.join(self.root, "..data"))
        shutil.rmtree(os.path.join(self.root, old))

    def path(self, name):
        return os.path.join(self.root, name)


def read(path):
    with open(path) as f:
        return f.read()


def der(pem_path):
    return ssl.PEM_cert_to_DER_cert(read(pem_path))


def served(t, port):
    """DER of the certificate moat serves to a new connection."""
    cert, key = t.pki.device("sensor-a")
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as ss:
            return ss.getpeercert(binary_form=True)


def wait_served(t, port, want, timeout):
    """Seconds until a new connection gets the certificate want, or None."""
    t0 = time.monotonic()
    for _ in mt.deadline_loop(timeout, 0.1):
        if served(t, port) == want:
            return time.monotonic() - t0
    return None


def still_served(t, port, want, seconds):
    """True when every new connection for seconds gets want."""
    for _ in mt.deadline_loop(seconds, 0.25):
        if served(t, port) != want:
            return False
    return True


def device(t, port, client_id):
    """A connected sensor-a (CONNACK 0)."""
    cert, key = t.pki.device("sensor-a")
    c = mt.RawClient("127.0.0.1", port,
                     mt.client_context(ca=t.pki.ca, cert=cert, key=key))
    code = c.connect(client_id)
    t.check(code == 0, "%s: CONNACK 0 (got %r)" % (client_id, code))
    return c


def ping(c):
    c.send(b"\xc0\x00")
    first, _ = c.read_packet(5)
    return first == 0xd0


def username(t, moat, client_id):
    """The broker username moat sends for sensor-a now (its log line)."""
    mark = moat.mark()
    c = device(t, moat.port, client_id)
    c.close()
    line = moat.wait_closed_match(r"client_id=%s\b" % client_id, mark)
    m = re.search(r"username=(\S+)", line)
    return m.group(1) if m else None


def logged(moat, pattern, start, timeout):
    rx = re.compile(pattern)
    return mt.wait_for(lambda: rx.search(moat.text()[start:]), timeout)


def count(moat, pattern, start=0):
    return len(re.findall(pattern, moat.text()[start:]))


def server_files(t, name, cn):
    """(tls.crt, tls.key) text of a new server certificate from the CA."""
    t.pki.ca  # noqa: the CA exists
    cert, key = t.pki._ca.issue(name, cn, "ext_server")
    return read(cert), read(key), cert


def busy(t, stop):
    """Keep writing a log file next to moat.ini until stop is set."""
    with open(t.path("busy.txt"), "a") as f:
        while not stop.is_set():
            f.write("%f line\n" % time.time())
            f.flush()
            time.sleep(0.02)


def case_unchanged(t, moat, s1):
    """Events without a change of contents: no reload."""
    t.step("twin: moat.ini rewritten with the same bytes, the Secret "
           "files touched, a busy log next to moat.ini: no reload")
    mark = moat.mark()
    stop = threading.Event()
    th = threading.Thread(target=busy, args=(t, stop), daemon=True)
    th.start()
    try:
        text = read(moat.ini)
        t.write(os.path.basename(moat.ini), text)
        os.utime(t.path("tls/tls.crt"))
        time.sleep(WATCH_QUIET_S)
    finally:
        stop.set()
        th.join()
    t.check(count(moat, r"files changed|reloaded ", mark) == 0,
            "nothing was reloaded", mt.tail(moat.log))
    t.check(served(t, moat.port) == s1, "the first certificate is served")
    time.sleep(WATCH_QUIET_S)
    size = os.path.getsize(moat.log)
    time.sleep(WATCH_QUIET_S)
    t.check(os.path.getsize(moat.log) == size, "idle, moat's log (debug "
            "level, next to moat.ini) stays still: its own lines do not "
            "feed the watch", mt.tail(moat.log))


def case_secret(t, moat, vol, ca, s2):
    """(a) The Secret is updated: picked up within PICKUP_S, no signal,
    while another file in a watched directory keeps changing."""
    t.step("a Kubernetes-style Secret update with a new server "
           "certificate, while a log file next to moat.ini keeps changing")
    old = device(t, moat.port, "before-swap")
    mark = moat.mark()
    stop = threading.Event()
    th = threading.Thread(target=busy, args=(t, stop), daemon=True)
    th.start()
    try:
        time.sleep(0.3)
        vol.update({"tls.crt": s2[0], "tls.key": s2[1], "ca.crt": ca})
        took = wait_served(t, moat.port, der(s2[2]), PICKUP_S)
    finally:
        stop.set()
        th.join()
    t.check(took is not None, "a new connection gets the new server "
            "certificate within %d s" % PICKUP_S, mt.tail(moat.log))
    t.ok("picked up after %.1f s" % took)
    t.check(count(moat, r"files changed: reloading", mark) >= 1,
            "moat logged why it reloaded")
    t.check(ping(old), "the connection opened before the swap still gets "
            "PINGRESP")
    old.close()


def case_ini(t, moat):
    """(b) moat.ini edited in place: a new username template."""
    t.step("moat.ini edited in place: a new [identity] username template")
    t.check(username(t, moat, "u-before") == "sensor-a",
            "before: username sensor-a")
    text = read(moat.ini)
    ino = os.stat(moat.ini).st_ino
    t.write(os.path.basename(moat.ini), text.replace(
        "[identity]\n", "[identity]\nusername = dev-{identity}\n", 1))
    t.check(os.stat(moat.ini).st_ino == ino, "the same file (inode)")
    got = None
    for i, _ in enumerate(mt.deadline_loop(PICKUP_S, 0.2)):
        try:
            got = username(t, moat, "u-after-%d" % i)
        except (EOFError, OSError) as e:
            # A probe still connecting when the reload lands is re-checked
            # and ended (credentials_changed): try again.
            mt.say("      probe %d ended by the reload (%s)" % (i, e))
            continue
        if got == "dev-sensor-a":
            break
    t.check(got == "dev-sensor-a", "a new connection gets username "
            "dev-sensor-a within %d s (got %r)" % (PICKUP_S, got),
            mt.tail(moat.log))


def case_broken(t, moat, vol, ca, s2, s3):
    """(c) A broken certificate: refused, the old one stays; then a good
    one is picked up."""
    t.step("a broken certificate swapped in: the reload fails, the old "
           "certificate stays")
    mark = moat.mark()
    vol.update({"tls.crt": BROKEN_PEM, "tls.key": s3[1], "ca.crt": ca})
    t.check(logged(moat, r"reload failed, still running the previous "
                   r"configuration: .*tls\.crt", mark, PICKUP_S),
            "moat logged the failed reload, naming the file",
            mt.tail(moat.log))
    t.ok(re.search(r"reload failed.*", moat.text()[mark:]).group(0))
    t.check(moat.alive(), "moat is still running")
    t.check(still_served(t, moat.port, der(s2[2]), WATCH_QUIET_S),
            "new connections still get the certificate in force")
    t.check(count(moat, r"reload failed", mark) == 1,
            "the same broken files are not retried again and again",
            mt.tail(moat.log))

    t.step("then a good certificate swapped in: picked up")
    vol.update({"tls.crt": s3[0], "tls.key": s3[1], "ca.crt": ca})
    took = wait_served(t, moat.port, der(s3[2]), PICKUP_S)
    t.check(took is not None, "a new connection gets it within %d s"
            % PICKUP_S, mt.tail(moat.log))


def case_off(t, broker, ca, s1, s2):
    """(d) watch_files = false: only SIGHUP reloads."""
    t.step("[process] watch_files = false: a Secret update and an edit of "
           "moat.ini change nothing until SIGHUP")
    vol = SecretVolume(t.path("tls-off"), {
        "tls.crt": read(s1[2]), "tls.key": s1[1], "ca.crt": ca})
    moat = t.start_moat("127.0.0.1:%d" % broker.port, name="moat-off",
                        tls={"cert": vol.path("tls.crt"),
                             "key": vol.path("tls.key"),
                             "ca": vol.path("ca.crt")},
                        workers="", extra="[process]\nworkers = %s\n"
                        "watch_files = false\n"
                        % os.environ.get("MOAT_TEST_WORKERS", "1"))
    t.check(served(t, moat.port) == der(s1[2]), "the first certificate")
    mark = moat.mark()
    vol.update({"tls.crt": s2[0], "tls.key": s2[1], "ca.crt": ca})
    text = read(moat.ini)
    t.write(os.path.basename(moat.ini), text.replace(
        "[identity]\n", "[identity]\nusername = off-{identity}\n", 1))
    t.check(still_served(t, moat.port, der(s1[2]), PICKUP_S),
            "for %d s new connections still get the first certificate"
            % PICKUP_S)
    t.check(username(t, moat, "off-1") == "sensor-a",
            "and the username template is the old one")
    t.check(count(moat, r"files changed|reloaded ", mark) == 0,
            "nothing was reloaded", mt.tail(moat.log))
    moat.p.send_signal(signal.SIGHUP)
    t.check(wait_served(t, moat.port, der(s2[2]), PICKUP_S) is not None,
            "after SIGHUP the new certificate is served", mt.tail(moat.log))
    t.check(username(t, moat, "off-2") == "off-sensor-a",
            "and the new username template applies")
    moat.stop_and_check()


# Longer than the quiet period and the longest wait under a flood.
WATCH_QUIET_S = 3


def main(t):
    mt.need_tool("mosquitto")
    broker = t.mosquitto()
    ca = read(t.pki.ca)
    srv, key = t.pki.server()
    s1 = (read(srv), read(key), srv)
    s2 = server_files(t, "server2", "localhost-2")
    s3 = server_files(t, "server3", "localhost-3")
    vol = SecretVolume(t.path("tls"), {
        "tls.crt": s1[0], "tls.key": s1[1], "ca.crt": ca})
    moat = t.start_moat("127.0.0.1:%d" % broker.port, tls={
        "cert": vol.path("tls.crt"), "key": vol.path("tls.key"),
        "ca": vol.path("ca.crt")}, log={"level": "debug"})
    t.check(served(t, moat.port) == der(srv), "moat serves the first "
            "server certificate")

    with t.subcase("unchanged contents"):
        case_unchanged(t, moat, der(srv))
    with t.subcase("(a) Secret update"):
        case_secret(t, moat, vol, ca, s2)
    with t.subcase("(b) moat.ini in place"):
        case_ini(t, moat)
    with t.subcase("(c) broken certificate"):
        case_broken(t, moat, vol, ca, s2, s3)
    t.check(moat.alive(), "moat is still running")
    moat.stop_and_check()
    with t.subcase("(d) watch_files = false"):
        case_off(t, broker, ca, s1, s2)


if __name__ == "__main__":
    mt.run(main, "t_watch")
