# SPDX-License-Identifier: MIT
"""Shared harness for moat's integration tests.

Each test script calls run(main, name).  main(t) receives a Test: its own
temporary directory, a certificate factory (t.pki), random loopback ports,
Mosquitto and moat processes that are always stopped by PID, MQTT clients
(mosquitto_pub / mosquitto_sub and a raw Python TLS client that frames MQTT
by hand), and check/fail/skip helpers.  Exit codes follow automake: 0 pass,
1 fail, 77 skip.  On failure the temporary directory is kept and the tail of
every log in it is printed.

Python standard library only; needs openssl, mosquitto, mosquitto_pub and
mosquitto_sub on PATH (a missing tool makes the test skip, saying which).
"""

import atexit
import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "LeakSanitizer")


class Failure(Exception):
    """A check failed: the test fails (exit 1)."""


class Skip(Exception):
    """A tool is missing: the test is skipped (exit 77)."""


def say(msg=""):
    print(msg, flush=True)


def deadline_loop(timeout, interval=0.05):
    """Yield until timeout seconds have passed, sleeping between rounds."""
    end = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() >= end:
            return
        time.sleep(interval)


def wait_for(pred, timeout, interval=0.05):
    """Poll pred() until it returns something truthy; return it or None."""
    for _ in deadline_loop(timeout, interval):
        v = pred()
        if v:
            return v
    return None


def wait_eof(s, timeout):
    """Block until the peer closes plain socket s: (seconds, how) with how
    "EOF", "reset" or "data ..." (it sent something instead), or None when
    it is still open after timeout seconds."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        data = s.recv(4096)
        how = "EOF" if not data else "data %r" % data[:32]
    except socket.timeout:
        return None
    except ConnectionResetError:
        how = "reset"
    return time.monotonic() - t0, how


def still_open(s):
    """True when the peer has not closed plain socket s (reads nothing)."""
    s.setblocking(False)
    try:
        return bool(s.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


@contextlib.contextmanager
def client_case(t, name):
    """A sub-case of t in which a client error (timeout, EOF, TLS) is a
    failure of that sub-case, not an error of the test script."""
    with t.subcase(name):
        try:
            yield
        except (OSError, EOFError, ValueError, ssl.SSLError) as e:
            raise Failure("%s: %s" % (type(e).__name__, e))


def need_tool(*names):
    for n in names:
        if shutil.which(n) is None:
            raise Skip("%s not found on PATH (Debian: apt-get install %s)"
                       % (n, {"openssl": "openssl",
                              "mosquitto": "mosquitto"}.get(
                                  n, "mosquitto-clients")))


def moat_bin():
    """Absolute path of the moat binary: $MOAT_BIN, else ./moat, else the
    moat next to the source tree."""
    cands = []
    if os.environ.get("MOAT_BIN"):
        cands.append(os.environ["MOAT_BIN"])
    cands.append(os.path.abspath("moat"))
    here = os.path.dirname(os.path.abspath(__file__))
    cands.append(os.path.abspath(os.path.join(here, "..", "..", "moat")))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise Failure("moat binary not found (tried %s); build it with make or "
                  "set MOAT_BIN" % ", ".join(cands))


def sanitizers():
    return bool(os.environ.get("MOAT_SANITIZERS", "").strip())


def tail(path, n=80):
    try:
        with open(path, "r", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        return "(cannot read %s: %s)\n" % (path, e)
    return "".join(lines[-n:])


def read_text(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def run_cmd(argv, timeout=20, input=None, cwd=None, env=None):
    """Run a command to completion; returns CompletedProcess (text)."""
    try:
        return subprocess.run(argv, input=input, cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Failure("command timed out after %ss: %s\nstdout: %s\n"
                      "stderr: %s" % (timeout, " ".join(map(str, argv)),
                                      e.stdout, e.stderr))


# ---------------------------------------------------------------------------
# ports

def free_port(host="127.0.0.1"):
    """A port that was free on host a moment ago (bind port 0, read, close)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    last = None
    for _ in range(20):
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            return s.getsockname()[1]
        except OSError as e:
            last = e
            time.sleep(0.05)
        finally:
            s.close()
    raise Failure("cannot find a free port on %s: %s" % (host, last))


def ipv6_loopback():
    """True when a socket can be bound to ::1."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def port_is_free(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def fmt_hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


# ---------------------------------------------------------------------------
# certificates

CA_CNF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = {cert}
private_key = {key}
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied
organizationName = optional

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = unused

[ ext_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ ext_server ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ext_client ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class CA:
    """A certificate authority with an `openssl ca` database in its own
    directory, so that it can issue back-dated and future-dated certificates
    and revoke them."""

    def __init__(self, pki, name, cn):
        self.pki = pki
        self.name = name
        self.dir = os.path.join(pki.dir, name)
        os.makedirs(os.path.join(self.dir, "newcerts"))
        with open(os.path.join(self.dir, "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("01\n")
        self.cnf = os.path.join(self.dir, "ca.cnf")
        self.cert = os.path.join(pki.dir, name + ".pem")
        self.key = os.path.join(self.dir, "ca.key")
        with open(self.cnf, "w") as f:
            f.write(CA_CNF.format(dir=self.dir, cert=self.cert, key=self.key))
        pki.openssl(["req", "-x509", "-new", "-config", self.cnf,
                     "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", self.key, "-out", self.cert,
                     "-days", "3650", "-subj", "/CN=" + cn,
                     "-extensions", "ext_ca", "-sha256"])

    def issue(self, name, cn, ext, startdate=None, enddate=None):
        """Make name.key / name.pem in the pki dir; returns (cert, key)."""
        d = self.pki.dir
        key = os.path.join(d, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(d, name + ".pem")
        self.pki.openssl(["req", "-new", "-config", self.cnf,
                          "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", key, "-out", csr, "-subj", "/CN=" + cn])
        argv = ["ca", "-batch", "-config", self.cnf, "-notext",
                "-extensions", ext, "-in", csr, "-out", cert]
        if startdate:
            argv += ["-startdate", startdate]
        if enddate:
            argv += ["-enddate", enddate]
        self.pki.openssl(argv)
        return cert, key

    def revoke(self, cert):
        self.pki.openssl(["ca", "-batch", "-config", self.cnf,
                          "-revoke", cert])

    def gencrl(self, out):
        self.pki.openssl(["ca", "-batch", "-config", self.cnf, "-gencrl",
                          "-out", out])
        return out


class PKI:
    """Certificates for one test, made on first use and cached.

    Files (all in the test dir, cert NAME.pem, key NAME.key):
      ca.pem            the CA moat trusts
      server            CN=localhost, SAN DNS:localhost IP:127.0.0.1
      device(cn)        dev-<cn>: clientAuth, signed by ca
      other_device()    other-dev: CN=sensor-a, signed by an unrelated CA
      expired()         valid 2020-2021
      not_yet_valid()   valid 2040-2041
      revoked()         signed by ca, then revoked; crl() lists it
    """

    def __init__(self, directory):
        self.dir = directory
        self._ca = None
        self._other = None
        self._cache = {}
        self.elapsed = 0.0

    def openssl(self, args):
        t0 = time.monotonic()
        r = run_cmd(["openssl"] + args, timeout=30)
        self.elapsed += time.monotonic() - t0
        if r.returncode != 0:
            raise Failure("openssl %s failed (%d):\n%s%s"
                          % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    @property
    def ca(self):
        """Path of the trusted CA certificate."""
        if self._ca is None:
            self._ca = CA(self, "ca", "moat test CA")
        return self._ca.cert

    def _issue(self, name, cn, ext, startdate=None, enddate=None, ca=None):
        if name not in self._cache:
            self.ca  # noqa: make sure the CA exists
            self._cache[name] = (ca or self._ca).issue(
                name, cn, ext, startdate, enddate)
        return self._cache[name]

    def server(self):
        return self._issue("server", "localhost", "ext_server")

    def device(self, cn="sensor-a"):
        return self._issue("dev-" + cn, cn, "ext_client")

    def other_device(self):
        if self._other is None:
            self._other = CA(self, "otherca", "moat test CA")  # same CN!
        return self._issue("other-dev", "sensor-a", "ext_client",
                           ca=self._other)

    def expired(self):
        return self._issue("expired", "sensor-expired", "ext_client",
                           "200101000000Z", "210101000000Z")

    def not_yet_valid(self):
        return self._issue("future", "sensor-future", "ext_client",
                           "400101000000Z", "410101000000Z")

    def revoked(self):
        if "revoked" not in self._cache:
            cert, key = self._issue("revoked", "sensor-revoked", "ext_client")
            self._ca.revoke(cert)
            self._cache.pop("crl", None)
        return self._cache["revoked"]

    def custom(self, name, subj, san=None, ca=None,
               key_usage="critical, digitalSignature"):
        """A client certificate with any subject, in openssl -subj syntax
        and kept in that order (e.g. '/O=Acme, Inc./CN=dev "1"'), and an
        optional subjectAltName value ('DNS:a.example,URI:spiffe://x/y,
        email:a@b.example,IP:192.0.2.1'), signed by the trusted CA (or
        the CA object ca) with a random serial. Returns (cert, key):
        NAME.pem / NAME.key in the pki dir."""
        if name in self._cache:
            return self._cache[name]
        self.ca  # noqa: make sure the CA exists
        ca = ca or self._ca
        key = os.path.join(self.dir, name + ".key")
        cert = os.path.join(self.dir, name + ".pem")
        csr = os.path.join(ca.dir, name + ".csr")
        ext = os.path.join(ca.dir, name + ".ext")
        lines = ["basicConstraints = CA:FALSE",
                 "keyUsage = " + key_usage,
                 "extendedKeyUsage = clientAuth",
                 "subjectKeyIdentifier = hash",
                 "authorityKeyIdentifier = keyid"]
        if san:
            lines.append("subjectAltName = " + san)
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.openssl(["req", "-new", "-config", ca.cnf, "-newkey", "ec",
                      "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", key, "-out", csr, "-utf8", "-subj", subj])
        serial = "0x" + (bytes([os.urandom(1)[0] & 0x7F | 0x10]) +
                         os.urandom(7)).hex()
        self.openssl(["x509", "-req", "-in", csr, "-CA", ca.cert,
                      "-CAkey", ca.key, "-set_serial", serial, "-days", "30",
                      "-sha256", "-extfile", ext, "-out", cert])
        self._cache[name] = (cert, key)
        return self._cache[name]

    def crl(self):
        """PEM CRL of the trusted CA that lists revoked()."""
        if "crl" not in self._cache:
            self.revoked()
            self._cache["crl"] = self._ca.gencrl(
                os.path.join(self.dir, "crl.pem"))
        return self._cache["crl"]


# ---------------------------------------------------------------------------
# processes

class Proc:
    """A process started by the test, always stopped by its PID. Its stderr
    (and stdout unless out is given) goes to the file log."""

    def __init__(self, test, name, argv, log, env=None, cwd=None, out=None):
        self.test = test
        self.name = name
        self.argv = argv
        self.log = log
        self._files = [open(log, "ab")]
        stdout = self._files[0]
        if out:
            self._files.append(open(out, "wb"))
            stdout = self._files[1]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=stdout, stderr=self._files[0],
                                  env=env, cwd=cwd or test.dir)
        self.pid = self.p.pid
        test._procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Signal by PID, wait up to timeout, then SIGKILL. Returns
        (returncode, killed)."""
        killed = False
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for f in self._files:
            if not f.closed:
                f.close()
        if self in self.test._procs:
            self.test._procs.remove(self)
        return self.p.returncode, killed

    def text(self):
        return read_text(self.log)


class Mosquitto(Proc):
    """Mosquitto on loopback, plain MQTT. host may be 127.0.0.x or ::1;
    unix=path adds (or with port=None, only has) a Unix-socket listener."""

    def __init__(self, test, host="127.0.0.1", port=None, unix=None,
                 tcp=True, extra=(), name="mosquitto"):
        need_tool("mosquitto")
        self.host = host
        self.unix = unix
        self.port = None
        conf = os.path.join(test.dir, name + ".conf")
        log = os.path.join(test.dir, name + ".log")
        # A random port may be taken by a parallel test between free_port()
        # and Mosquitto's bind: then try another one (a given port: no).
        for attempt in range(3):
            if tcp:
                self.port = port or free_port(host)
            self._write_conf(conf, tcp, extra)
            say("  starting %s (%s)" % (name, ", ".join(
                ([fmt_hostport(host, self.port)] if tcp else []) +
                (["unix:" + unix] if unix else []))))
            if os.path.exists(log):
                os.unlink(log)
            super().__init__(test, name, ["mosquitto", "-c", conf], log)
            try:
                self._wait_ready()
                break
            except Failure:
                if (port or not tcp or attempt == 2 or
                        "in use" not in self.text()):
                    raise
                self.stop()
                say("  port %d was taken meanwhile; trying another"
                    % self.port)
        self.baseline = self.connections()

    def _write_conf(self, conf, tcp, extra):
        lines = []
        if tcp:
            lines.append("listener %d %s" % (self.port, self.host))
        if self.unix:
            lines.append("listener 0 %s" % self.unix)
        lines += [
            "allow_anonymous true",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
            "persistence false",
        ]
        # Started as root, Mosquitto drops to the "mosquitto" user unless
        # told to stay; as anyone else it stays who it is.
        try:
            lines.append("user %s" % pwd.getpwuid(os.geteuid()).pw_name)
        except KeyError:
            pass
        lines += list(extra)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _probe(self):
        try:
            if self.port is not None:
                s = socket.create_connection((self.host, self.port), 0.5)
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(0.5)
                s.connect(self.unix)
            s.close()
            return True
        except OSError:
            return False

    def _wait_ready(self):
        # "running" comes after every listener is open; probing before it
        # could reach whoever else holds the port
        for _ in deadline_loop(10, 0.05):
            if not self.alive():
                raise Failure("%s exited (%s) before accepting connections:"
                              "\n%s" % (self.name, self.p.returncode,
                                        tail(self.log)))
            if "running" in self.text() and self._probe():
                # the probe itself is logged as a connection: wait for that
                # line so that it is part of the baseline
                if wait_for(lambda: self.connections() >= 1 or
                            not self.alive(), 5) and self.alive():
                    return
                raise Failure("%s accepted the probe but did not log it:\n%s"
                              % (self.name, tail(self.log)))
        raise Failure("%s did not accept connections within 10 s" % self.name)

    def connections(self):
        """Number of "New connection from" lines so far."""
        return self.text().count("New connection from")

    def new_connections(self):
        """Connections the broker saw since it became ready (not counting
        the harness's own readiness probe)."""
        return self.connections() - self.baseline

    def wait_log(self, pattern, timeout=10, start=0):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.text(), start), timeout)


READY_RX = re.compile(r"moat \S+ ready \(")


class Moat(Proc):
    """moat with a generated moat.ini; waits for its "listening on" lines."""

    def __init__(self, test, backend, name="moat", listen=("127.0.0.1:0",),
                 tls=None, limits=None, log=None, extra="", wrap=None,
                 expect_start=True, identity=None, workers=None,
                 process=None):
        self.ini = test.write_ini(name + ".ini", backend, listen=listen,
                                  tls=tls, limits=limits, log=log, extra=extra,
                                  identity=identity, workers=workers,
                                  process=process)
        self.addrs = []
        logpath = os.path.join(test.dir, name + ".log")
        argv = [test.moat, "-c", self.ini]
        if wrap:
            argv = list(wrap) + argv
        say("  starting %s (backend %s)" % (name, backend))
        super().__init__(test, name, argv, logpath, env=test.moat_env())
        if expect_start:
            self._wait_ready(len(listen))

    def _wait_ready(self, n):
        rx = re.compile(r"listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")
        for _ in deadline_loop(10, 0.05):
            found = rx.findall(self.text())
            if len(found) >= n:
                self.addrs = [(h.strip("[]"), int(p)) for h, p in found]
                self.host, self.port = self.addrs[0]
                say("  %s is listening on %s" % (self.name, ", ".join(
                    fmt_hostport(h, p) for h, p in self.addrs)))
                # Start-up ends with "ready": what moat opens before it (a
                # file watch, say) is in place before a test counts on it.
                if not wait_for(lambda: READY_RX.search(self.text()) or
                                not self.alive(), 10):
                    raise Failure("%s did not log 'ready' within 10 s:\n%s"
                                  % (self.name, tail(self.log)))
                return
            if not self.alive():
                raise Failure("%s exited with %s before listening:\n%s"
                              % (self.name, self.p.returncode, tail(self.log)))
        raise Failure("%s did not log 'listening on' within 10 s:\n%s"
                      % (self.name, tail(self.log)))

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Failure("no VmRSS for pid %d" % self.pid)

    def closed_lines(self, start=0):
        """conn_closed log lines (text format) after byte offset start."""
        return [ln for ln in self.text()[start:].splitlines()
                if "conn_closed" in ln]

    def mark(self):
        return len(self.text())

    def wait_closed(self, start=0, count=1, timeout=10):
        """Wait for count conn_closed lines after offset start; return them."""
        got = wait_for(lambda: (lambda ls: ls if len(ls) >= count else None)(
            self.closed_lines(start)), timeout)
        if not got:
            raise Failure("%s logged %d conn_closed line(s) within %ss, "
                          "expected %d" % (self.name,
                                           len(self.closed_lines(start)),
                                           timeout, count))
        return got

    def wait_closed_match(self, pattern, start=0, timeout=10):
        """Wait for the first conn_closed line after offset start that
        matches the regex pattern (e.g. "peer=127.0.0.1:%d " % port, or
        'subject="CN=sensor-a"'); return it. Other connections closing
        meanwhile do not get in the way."""
        rx = re.compile(pattern)
        got = wait_for(lambda: next((ln for ln in self.closed_lines(start)
                                     if rx.search(ln)), None), timeout)
        if not got:
            raise Failure("%s logged no conn_closed matching %r within %ss"
                          % (self.name, pattern, timeout))
        return got

    def stop_and_check(self):
        """SIGTERM; moat must exit 0 within 5 s with no sanitizer report."""
        if not self.alive():
            self.stop()
            self.test.check_sanitizers(self.log)
            raise Failure("%s (pid %d) had already exited with %s before "
                          "it was stopped" % (self.name, self.pid,
                                              self.p.returncode))
        rc, killed = self.stop()
        say("  stopped %s (pid %d): exit %s" % (self.name, self.pid, rc))
        if killed:
            raise Failure("%s did not exit within 5 s of SIGTERM (killed)"
                          % self.name)
        if rc != 0:
            raise Failure("%s exited with %s after SIGTERM, expected 0"
                          % (self.name, rc))
        self.test.check_sanitizers(self.log)


def reason_of(line):
    m = re.search(r"reason=(\S+)", line)
    return m.group(1).strip('"') if m else None


# ---------------------------------------------------------------------------
# the test object

class Test:
    def __init__(self, name, moat=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="moat-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.pki = PKI(self.dir)
        self._procs = []
        self._moat = os.path.abspath(moat) if moat else None
        self.failures = []
        self.t0 = time.monotonic()

    # -- reporting
    def step(self, msg):
        say("[%5.1fs] %s" % (time.monotonic() - self.t0, msg))

    def ok(self, msg):
        say("    ok: %s" % msg)

    def check(self, cond, msg, detail=None):
        if not cond:
            raise Failure(msg + (("\n" + detail) if detail else ""))
        self.ok(msg)

    def fail(self, msg):
        raise Failure(msg)

    @contextlib.contextmanager
    def subcase(self, name):
        """A failure inside is recorded and the test goes on with the next
        sub-case; the test fails at the end, listing every failed one."""
        try:
            yield
        except Failure as e:
            self.failures.append("%s: %s" % (name, e))
            say("    FAIL (going on with the next case): %s" % e)

    def skip(self, msg):
        raise Skip(msg)

    # -- files
    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    @property
    def moat(self):
        if self._moat is None:
            self._moat = moat_bin()
        return self._moat

    def moat_env(self):
        return dict(os.environ)

    def ini_text(self, backend, listen=("127.0.0.1:0",), tls=None,
                 limits=None, log=None, identity=None, extra="",
                 workers=None, process=None):
        """moat.ini text; returns (text, {"section.key": line}).

        Unless a test says otherwise, [identity] lets any certificate of
        the test CA through with its CN as username and its own client id,
        so tests of the TLS and forwarding layers need no map."""
        s, k = self.pki.server()
        t = {"cert": s, "key": k, "ca": self.pki.ca, "min_version": "1.2"}
        t.update(tls or {})
        # drain_timeout 0: SIGTERM ends live connections at once, as the
        # harness's stop expects (t_drain.py tests the drain itself)
        lim = {"handshake_timeout": "10s", "connect_timeout": "10s",
               "idle_timeout": "0", "max_connections": "10000",
               "drain_timeout": "0"}
        lim.update(limits or {})
        lg = {"level": "info", "format": "text"}
        lg.update(log or {})
        ident = {"unknown": "template", "client_id": "keep"}
        if identity is not None:
            ident = dict(identity)
        out = []
        where = {}

        def sec(name, items):
            out.append("[%s]" % name)
            for key, val in items:
                if val is None:
                    continue
                out.append("%s = %s" % (key, val))
                where["%s.%s" % (name, key)] = len(out)
            out.append("")
        sec("listen", [("address", a) for a in listen])
        sec("tls", list(t.items()))
        sec("backend", [("address", backend)])
        sec("limits", list(lim.items()))
        if ident:
            sec("identity", list(ident.items()))
        sec("log", list(lg.items()))
        # One worker unless the test or MOAT_TEST_WORKERS says otherwise
        # (the default, auto, would follow the machine's CPU count); ""
        # leaves [process] out
        if workers is None:
            workers = os.environ.get("MOAT_TEST_WORKERS", "1")
        proc = [("workers", workers)] if workers != "" else []
        proc += list((process or {}).items())
        if proc:
            sec("process", proc)
        text = "\n".join(out) + "\n" + extra
        return text, where

    def write_ini(self, name, backend, **kw):
        text, where = self.ini_text(backend, **kw)
        self.ini_lines = where
        return self.write(name, text)

    # -- processes
    def mosquitto(self, **kw):
        return Mosquitto(self, **kw)

    def start_moat(self, backend, **kw):
        return Moat(self, backend, **kw)

    def check_sanitizers(self, log):
        """With MOAT_SANITIZERS set, fail if the log file holds an ASan,
        UBSan or LSan report."""
        if not sanitizers():
            return
        self.check_output_sanitizers(read_text(log), log)
        self.ok("no sanitizer report in %s" % os.path.basename(log))

    def check_output_sanitizers(self, text, what):
        """The same for captured output (what names it in the message).
        A leak report exits 1 too, so exit codes alone cannot tell."""
        if not sanitizers():
            return
        for m in SANITIZER_MARKERS:
            if m in text:
                raise Failure("sanitizer report (%r) in the output of %s:\n%s"
                              % (m, what, text[-6000:]))

    def moat_run(self, args, timeout=20, wrap=()):
        """Run moat to completion (--check, --version, ...); its output is
        checked for sanitizer reports. Returns CompletedProcess."""
        argv = list(wrap) + [self.moat] + list(args)
        r = run_cmd(argv, timeout=timeout, env=self.moat_env())
        self.check_output_sanitizers(r.stdout + r.stderr,
                                     "moat " + " ".join(args))
        return r

    def stop_all(self):
        """Stop every process still running, newest first. Returns a list
        of problems (a moat that did not exit 0 on SIGTERM)."""
        problems = []
        for p in list(reversed(self._procs)):
            try:
                if isinstance(p, Moat):
                    p.stop_and_check()
                else:
                    p.stop()
            except Failure as e:
                problems.append(str(e))
            except Exception as e:  # keep stopping the others
                problems.append("stopping %s: %r" % (p.name, e))
        return problems

    def stop_all_named(self, name):
        """Stop (without checks) the processes called name."""
        for p in list(self._procs):
            if p.name == name:
                p.stop()

    def dump_logs(self):
        try:
            names = sorted(os.listdir(self.dir))
        except OSError:
            return
        for n in names:
            if n.endswith(".log"):
                p = self.path(n)
                say("----- last 80 lines of %s -----" % p)
                sys.stdout.write(tail(p, 80))
                say("----- end of %s -----" % n)

    # -- clients
    def client_tls(self, cert=True, dev="sensor-a", ca=None):
        """mosquitto_pub/sub TLS arguments for device dev (or none)."""
        args = ["--cafile", ca or self.pki.ca]
        if cert:
            c, k = cert if isinstance(cert, tuple) else self.pki.device(dev)
            args += ["--cert", c, "--key", k]
        return args

    def pub(self, port, topic, message=None, lines=None, qos=1,
            version="mqttv311", host="localhost", tls=True, dev="sensor-a",
            cert=True, unix=None, client_id=None, timeout=30, extra=()):
        """Run mosquitto_pub to completion; returns CompletedProcess."""
        need_tool("mosquitto_pub")
        argv = ["mosquitto_pub"]
        if unix:
            argv += ["--unix", unix]
        else:
            argv += ["-h", host, "-p", str(port)]
        if tls:
            argv += self.client_tls(cert, dev)
        argv += ["-V", version, "-q", str(qos), "-t", topic]
        if client_id:
            argv += ["-i", client_id]
        argv += list(extra)
        inp = None
        if lines is not None:
            argv.append("-l")
            inp = "".join(l + "\n" for l in lines)
        else:
            argv += ["-m", message if message is not None else ""]
        return run_cmd(argv, timeout=timeout, input=inp)

    def sub(self, port, topic, count, qos=1, version="mqttv311",
            host="localhost", tls=True, dev="sensor-a", cert=True,
            client_id=None, name="sub", broker=None, timeout=30, extra=()):
        """Start mosquitto_sub in the background; returns a Sub. extra:
        more mosquitto_sub arguments (e.g. -u, -P, -v)."""
        need_tool("mosquitto_sub")
        return Sub(self, port, topic, count, qos, version, host, tls, dev,
                   cert, client_id or "%s-%d" % (name, os.getpid()), name,
                   broker, timeout, extra)

    def device_ctx(self, dev="sensor-a", cert=None, **kw):
        """ssl context of a raw client with device dev's certificate (or
        cert=(cert, key)) that trusts the test CA."""
        c, k = cert or self.pki.device(dev)
        return client_context(ca=self.pki.ca, cert=c, key=k, **kw)

    def pub_sub_roundtrip(self, port, broker, topic="moat/test", n=3,
                          version="mqttv311", pub_dev="sensor-b",
                          sub_dev="sensor-a", tag=""):
        """Subscriber and publisher both through moat at port; the messages
        must arrive in order."""
        msgs = ["%s msg %d %s" % (tag, i, os.urandom(4).hex())
                for i in range(n)]
        s = self.sub(port, topic, n, version=version, dev=sub_dev,
                     broker=broker, name="sub-" + (tag or "rt"))
        s.wait_subscribed()
        r = self.pub(port, topic, lines=msgs, version=version, dev=pub_dev)
        self.check(r.returncode == 0, "mosquitto_pub through moat exits 0",
                   r.stderr)
        got = s.result()
        self.check(got == msgs, "%d message(s) arrived through moat in order"
                   % n, "sent %r\ngot  %r" % (msgs, got))


class Sub:
    """mosquitto_sub in the background, stdout captured to a file."""

    def __init__(self, t, port, topic, count, qos, version, host, tls, dev,
                 cert, client_id, name, broker, timeout, extra=()):
        self.t = t
        self.client_id = client_id
        self.broker = broker
        self.count = count
        self.timeout = timeout
        self.out = t.path(name + ".out")
        self.errpath = t.path(name + ".err.log")
        argv = ["mosquitto_sub", "-h", host, "-p", str(port)]
        if tls:
            argv += t.client_tls(cert, dev)
        argv += ["-V", version, "-q", str(qos), "-t", topic,
                 "-C", str(count), "-i", client_id]
        argv += list(extra)
        self.proc = Proc(t, name, argv, self.errpath, out=self.out)
        self.p = self.proc.p
        self.pid = self.proc.pid

    def wait_subscribed(self, timeout=10, since=0):
        """Wait until the broker logs the SUBACK to this client (after
        byte offset since of its log: where client ids repeat, pass the
        log length from before the subscriber started)."""
        needle = "Sending SUBACK to %s" % self.client_id
        ok = wait_for(lambda: needle in self.broker.text()[since:]
                      or self.p.poll() is not None, timeout)
        if not ok or needle not in self.broker.text()[since:]:
            raise Failure("subscriber %s not subscribed within %ss (exit %s):"
                          "\n%s" % (self.client_id, timeout, self.p.poll(),
                                    read_text(self.errpath)))
        self.t.ok("subscriber %s is subscribed" % self.client_id)

    def result(self):
        """Wait for mosquitto_sub to exit (bounded); return the lines."""
        try:
            self.p.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.stop()
            lines = read_text(self.out).splitlines()
            raise Failure("mosquitto_sub got %d of %d messages within %ss"
                          % (len(lines), self.count, self.timeout))
        self.proc.stop()
        lines = read_text(self.out).splitlines()
        if self.p.returncode != 0:
            raise Failure("mosquitto_sub exited %s after %d message(s):\n%s"
                          % (self.p.returncode, len(lines),
                             read_text(self.errpath)))
        return lines


# ---------------------------------------------------------------------------
# a raw MQTT client over (TLS) sockets, for tests that control reading

def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def mqtt_read_varint(buf, pos):
    """The variable byte integer at buf[pos]: (value, position after)."""
    mult, n = 1, 0
    for i in range(4):
        d = buf[pos + i]
        n += (d & 0x7F) * mult
        mult *= 128
        if not d & 0x80:
            return n, pos + i + 1
    raise ValueError("MQTT variable byte integer longer than 4 bytes")


def build_openssl_client(t, name):
    """Compile tests/integration/NAME.c (an OpenSSL client) into the test
    directory; returns its path. Skips without cc or libssl-dev."""
    cc = shutil.which("cc")
    if cc is None:
        t.skip("cc not found on PATH (Debian: apt-get install "
               "build-essential)")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       name + ".c")
    flags = ["-lssl", "-lcrypto"]
    if shutil.which("pkg-config"):
        r = run_cmd(["pkg-config", "--cflags", "--libs", "openssl"])
        if r.returncode == 0:
            flags = r.stdout.split()
    out = t.path(name)
    r = run_cmd([cc, "-O2", "-o", out, src] + flags, timeout=60)
    if r.returncode != 0:
        if re.search(r"openssl/\w+\.h", r.stderr) or "-lssl" in r.stderr:
            t.skip("the OpenSSL development files are missing (Debian: "
                   "apt-get install libssl-dev):\n" + r.stderr.strip())
        t.fail("building %s.c failed:\n%s" % (name, r.stderr))
    return out


def mqtt_varint(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        if n:
            d |= 0x80
        out.append(d)
        if not n:
            return bytes(out)


def mqtt_packet(ptype_flags, body):
    return bytes([ptype_flags]) + mqtt_varint(len(body)) + body


def mqtt_connect(client_id, keepalive=60, version=4):
    """CONNECT, MQTT 3.1.1 (version 4) or 5 (version 5), clean session."""
    vh = mqtt_str("MQTT") + bytes([version, 0x02]) + struct.pack("!H",
                                                                 keepalive)
    if version == 5:
        vh += b"\x00"  # no properties
    return mqtt_packet(0x10, vh + mqtt_str(client_id))


def mqtt_connect_full(client_id, version=4, username=None, password=None,
                      keepalive=60, clean=True, props=b"", will=None,
                      proto_name=None):
    """Any CONNECT. version is the protocol level byte: 3 (MQTT 3.1,
    "MQIsdp"), 4 (3.1.1), 5, or anything else (sent as "MQTT" unless
    proto_name says otherwise). props: raw MQTT 5 CONNECT property bytes
    (their length is added). will: (topic, payload, qos, retain).
    username / password: str or bytes, None leaves the flag clear."""
    name = proto_name or ("MQIsdp" if version == 3 else "MQTT")
    flags = 0x02 if clean else 0x00
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    vh = mqtt_str(name) + bytes([version, flags]) + struct.pack("!H",
                                                                keepalive)
    if version == 5:
        vh += mqtt_varint(len(props)) + props
    pl = mqtt_str(client_id)
    if will:
        if version == 5:
            pl += b"\x00"
        pl += mqtt_str(will[0]) + mqtt_str(will[1])
    if username is not None:
        pl += mqtt_str(username)
    if password is not None:
        pl += mqtt_str(password)
    return mqtt_packet(0x10, vh + pl)


def mqtt_parse_connect(data):
    """Parse the CONNECT at the start of data (as a broker would see it).
    Returns a dict: level, flags, keepalive, client_id, username,
    password (bytes or None), size (bytes used)."""
    if not data or data[0] != 0x10:
        raise ValueError("not a CONNECT: %r" % bytes(data[:8]))
    mult, n, i = 1, 0, 1
    while True:
        d = data[i]
        n += (d & 0x7F) * mult
        mult *= 128
        i += 1
        if not d & 0x80:
            break
    end = i + n
    if len(data) < end:
        raise ValueError("CONNECT incomplete: %d of %d bytes"
                         % (len(data), end))
    pos = i

    def s16():
        nonlocal pos
        ln = struct.unpack("!H", data[pos:pos + 2])[0]
        v = bytes(data[pos + 2:pos + 2 + ln])
        pos += 2 + ln
        return v

    def varint():
        nonlocal pos
        mult, v = 1, 0
        while True:
            d = data[pos]
            pos += 1
            v += (d & 0x7F) * mult
            mult *= 128
            if not d & 0x80:
                return v
    out = {"proto": s16()}
    out["level"] = data[pos]
    out["flags"] = data[pos + 1]
    out["keepalive"] = struct.unpack("!H", data[pos + 2:pos + 4])[0]
    pos += 4
    if out["level"] == 5:
        n = varint()        # moves pos past the length itself
        pos += n
    out["client_id"] = s16()
    if out["flags"] & 0x04:
        if out["level"] == 5:
            n = varint()
            pos += n
        s16()
        s16()
    out["username"] = s16() if out["flags"] & 0x80 else None
    out["password"] = s16() if out["flags"] & 0x40 else None
    out["size"] = end
    return out


def mqtt_subscribe(pid, topic, qos=0, version=4):
    body = struct.pack("!H", pid)
    if version == 5:
        body += b"\x00"
    return mqtt_packet(0x82, body + mqtt_str(topic) + bytes([qos]))


def mqtt_publish(topic, payload, qos=0, pid=1):
    body = mqtt_str(topic)
    if qos:
        body += struct.pack("!H", pid)
    return mqtt_packet(0x30 | (qos << 1), body + payload)


def mqtt_puback(pid):
    return mqtt_packet(0x40, struct.pack("!H", pid))


def mqtt_subscribe_many(pid, filters, version=4):
    """One SUBSCRIBE with several filters: a list of filter strings or
    (filter, options byte) pairs (the options byte is the QoS at 3.1.1)."""
    body = struct.pack("!H", pid)
    if version == 5:
        body += b"\x00"
    for f in filters:
        topic, opts = (f, 0) if isinstance(f, (str, bytes)) else f
        body += mqtt_str(topic) + bytes([opts])
    return mqtt_packet(0x82, body)


def mqtt_publish_v5(topic, payload, qos=0, pid=1, props=b"", retain=False):
    """An MQTT 5 PUBLISH; props: raw property bytes (their length is
    added), e.g. mqtt_prop_topic_alias(1). topic may be "" (alias use)."""
    body = mqtt_str(topic)
    if qos:
        body += struct.pack("!H", pid)
    body += mqtt_varint(len(props)) + props
    return mqtt_packet(0x30 | (qos << 1) | (1 if retain else 0),
                       body + payload)


def mqtt_prop_topic_alias(alias):
    """The MQTT 5 Topic Alias property (0x23)."""
    return b"\x23" + struct.pack("!H", alias)


def mqtt_parse_ack(body):
    """PUBACK / PUBREC / PUBREL / PUBCOMP body: (packet id, reason code);
    the code is 0 when absent (3.1.1, or MQTT 5 success in short form)."""
    pid = struct.unpack("!H", body[:2])[0]
    return pid, (body[2] if len(body) > 2 else 0)


def mqtt_parse_suback(body, version=4):
    """SUBACK body: (packet id, list of return / reason codes)."""
    pid = struct.unpack("!H", body[:2])[0]
    pos = 2
    if version == 5:
        n, pos = mqtt_read_varint(body, pos)
        pos += n
    return pid, list(body[pos:])


def mqtt_split(data):
    """Cut a byte stream into MQTT packets: a list of (first byte, body);
    an incomplete tail is left out."""
    out, pos = [], 0
    while pos + 2 <= len(data):
        mult, n, i = 1, 0, pos + 1
        while i < len(data) and i - pos <= 4:
            d = data[i]
            n += (d & 0x7F) * mult
            mult *= 128
            i += 1
            if not d & 0x80:
                break
        else:
            break
        if i + n > len(data):
            break
        out.append((data[pos], bytes(data[i:i + n])))
        pos = i + n
    return out


def client_context(ca=None, cert=None, key=None, check_hostname=True,
                   min_version=None, max_version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


class RawClient:
    """One MQTT connection over TLS (ctx given) or plain TCP, framing
    packets by hand. Every read has a timeout."""

    def __init__(self, host, port, ctx=None, server_hostname="localhost",
                 timeout=10, rcvbuf=None, source=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname=server_hostname)
        self.sock = s
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out reading MQTT packet")
            self.sock.settimeout(left)
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError("connection closed by peer")
            self.buf += chunk

    def read_packet(self, timeout=10):
        """Returns (first byte, body)."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        mult, n, i = 1, 0, 1
        while True:
            self._fill(i + 1, deadline)
            d = self.buf[i]
            n += (d & 0x7F) * mult
            mult *= 128
            i += 1
            if not d & 0x80:
                break
            if i > 4:
                raise ValueError("bad MQTT remaining length")
        self._fill(i + n, deadline)
        first, body = self.buf[0], bytes(self.buf[i:i + n])
        del self.buf[:i + n]
        return first, body

    def connect(self, client_id, version=4, timeout=10):
        """CONNECT and read CONNACK; returns the CONNACK return code."""
        self.send(mqtt_connect(client_id, version=version))
        first, body = self.read_packet(timeout)
        if first >> 4 != 2:
            raise ValueError("expected CONNACK, got packet type %d"
                             % (first >> 4))
        return body[1]

    def read_connack(self, timeout=10):
        """Read one packet that must be a CONNACK; returns its return /
        reason code (byte 2) and the whole packet body as (code, body).
        Raises EOFError when the peer closes first."""
        first, body = self.read_packet(timeout)
        if first >> 4 != 2:
            raise ValueError("expected CONNACK, got packet type %d"
                             % (first >> 4))
        return body[1], body

    def read_rest(self, timeout=5):
        """Read until the peer closes or timeout. Returns (bytes, how):
        how is "eof" (EOF or TLS close_notify), "reset", "timeout" or
        the error. Bytes already framed into self.buf come first."""
        got = bytearray(self.buf)
        self.buf = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(got), "timeout"
            try:
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return bytes(got), "timeout"
            except ConnectionResetError:
                return bytes(got), "reset"
            except (ssl.SSLError, OSError) as e:
                return bytes(got), "%s: %s" % (type(e).__name__, e)
            if not chunk:
                return bytes(got), "eof"
            got += chunk

    def subscribe(self, topic, qos=0, pid=1, version=4, timeout=10):
        self.send(mqtt_subscribe(pid, topic, qos, version))
        first, body = self.read_packet(timeout)
        if first >> 4 != 9:
            raise ValueError("expected SUBACK, got packet type %d"
                             % (first >> 4))
        return body[-1]

    @staticmethod
    def parse_publish(first, body, version=4):
        """Returns (topic, payload, qos, pid)."""
        qos = (first >> 1) & 3
        tl = struct.unpack("!H", body[:2])[0]
        topic = body[2:2 + tl].decode()
        pos = 2 + tl
        pid = None
        if qos:
            pid = struct.unpack("!H", body[pos:pos + 2])[0]
            pos += 2
        if version == 5:
            n, pos = mqtt_read_varint(body, pos)   # skip properties
            pos += n
        return topic, body[pos:], qos, pid

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def try_tls_mqtt(port, ctx, client_id="probe", timeout=5,
                 server_hostname="localhost", source=None):
    """Handshake, CONNECT, read CONNACK. Returns (ok, what happened).
    With TLS 1.3 a refused client certificate shows up only when reading
    after the handshake, so a refusal is any error before a CONNACK 0."""
    c = None
    try:
        c = RawClient("127.0.0.1", port, ctx, server_hostname, timeout,
                      source=source)
        rc = c.connect(client_id, timeout=timeout)
        if rc == 0:
            return True, "CONNACK accepted (%s)" % c.sock.version()
        return False, "CONNACK return code %d" % rc
    except (ssl.SSLError, OSError, EOFError, ValueError) as e:
        return False, "%s: %s" % (type(e).__name__, e)
    finally:
        if c:
            c.close()


class TcpRecorder:
    """A loopback TCP relay to (host, port) that records what passes: put
    it between moat and the broker (moat's backend = its port) to see the
    exact bytes moat sends. Each accepted connection gets an entry in
    .conns: {"up": bytes the client sent, "down": bytes it received}.
    Registered with the test, so stop_all() stops it."""

    def __init__(self, test, port, host="127.0.0.1", name="recorder"):
        import threading
        self.test = test
        self.name = name
        self.target = (host, port)
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self._socks = []
        self._lock = threading.Lock()
        self._stopping = False
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()
        test._procs.append(self)

    def _accept(self):
        import threading
        while not self._stopping:
            try:
                a, _ = self.ls.accept()
            except OSError:
                continue
            try:
                b = socket.create_connection(self.target, 5)
            except OSError:
                a.close()
                continue
            a.settimeout(None)
            b.settimeout(None)
            rec = {"up": bytearray(), "down": bytearray()}
            with self._lock:
                self.conns.append(rec)
                self._socks += [a, b]
            for src, dst, key in ((a, b, "up"), (b, a, "down")):
                th = threading.Thread(target=self._pump,
                                      args=(src, dst, rec, key), daemon=True)
                th.start()
                self._threads.append(th)

    def _pump(self, src, dst, rec, key):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                with self._lock:
                    rec[key] += data
                dst.sendall(data)
        except OSError:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def up(self):
        """Everything clients sent through the relay so far."""
        with self._lock:
            return b"".join(bytes(c["up"]) for c in self.conns)

    def alive(self):
        return not self._stopping

    def stop(self, *args, **kw):
        self._stopping = True
        for s in [self.ls] + self._socks:
            try:
                s.close()
            except OSError:
                pass
        for th in self._threads:
            th.join(1)
        if self in self.test._procs:
            self.test._procs.remove(self)
        return 0, False


def sha256(chunks):
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# running a test

_current = None


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _atexit():
    if _current is not None:
        _current.stop_all()


def run(main, name):
    """Run main(t) in a fresh Test; exit 0 / 1 / 77."""
    global _current
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(_atexit)
    t = Test(name)
    _current = t
    say("%s: temporary directory %s" % (name, t.dir))
    status = 1
    try:
        need_tool("openssl")
        main(t)
        status = 0
    except Skip as e:
        say("SKIP: %s" % e)
        status = SKIP
    except Failure as e:
        say("FAIL: %s" % e)
    except KeyboardInterrupt as e:
        say("FAIL: interrupted (%s)" % e)
    except Exception:
        say("FAIL: unexpected error in the test:")
        traceback.print_exc(file=sys.stdout)
    if t.failures and status != 1:
        status = 1
    for f in t.failures:
        say("FAILED SUB-CASE: %s" % f.split("\n", 1)[0])
    try:
        problems = t.stop_all()
    except KeyboardInterrupt:
        problems = ["interrupted while stopping processes"]
    for p in problems:
        say("FAIL: %s" % p)
        status = 1
    _current = None
    took = time.monotonic() - t.t0
    if status == 1:
        t.dump_logs()
        say("%s: FAILED after %.1fs; kept %s" % (name, took, t.dir))
    else:
        shutil.rmtree(t.dir, ignore_errors=True)
        say("%s: %s in %.1fs (certificates: %.2fs)"
            % (name, "PASS" if status == 0 else "SKIP", took, t.pki.elapsed))
    sys.stdout.flush()
    sys.exit(status)
