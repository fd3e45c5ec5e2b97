#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The README's live demo: moat maps device certificates to broker
credentials in front of a locked-down, loopback-only Mosquitto.

    python3 tests/demo.py --moat ./moat        (or: make demo)

In a temporary directory: makes a throwaway CA and certificates for moat
and three devices (sensor-a, sensor-b, and sensor-c, which is not in moat's
map); configures moat with [identity] (HMAC passwords, client id = the
identity, unknown identities rejected); makes Mosquitto's password_file
with `moat passwd --mosquitto` and an ACL that confines each user to
devices/<username>/#; starts Mosquitto on 127.0.0.1 only with
allow_anonymous false, and moat on port 8883 (another free port if 8883 is
taken). Then it shows `moat explain` and six cases: a device reads its own
topic; it cannot read another device's topic (nor can that device write
its topic); a device claiming to be "admin" still arrives as itself; a
certificate that is not in the map is refused with CONNACK "not
authorised"; a client without a certificate is refused during the TLS
handshake. Every command is printed as you would type it. Exits 1 with the
reason and the daemons' logs if anything does not happen as shown, else
stops everything it started (by PID) and removes the directory. Needs
openssl, mosquitto and mosquitto-clients; takes a few seconds."""

import argparse
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "integration"))
import moattest as mt  # noqa: E402

TIME_LIMIT = 30
PORT = 8883
WATCH = 3          # seconds a subscriber watches for messages it must not get

MAP = """\
; one section per identity: here the certificate's CN
[sensor-a]
[sensor-b]
"""

ACL = "pattern readwrite devices/%u/#\n"

# Mosquitto 2.0's connection line: client id, protocol, username.
CONNECTED = re.compile(r"New client connected from \S+ as (\S+) "
                       r"\(p\d, c\d, k\d+, u'([^']*)'\)\.?")


class DemoError(Exception):
    pass


def say(msg=""):
    mt.say(msg)


def heading(text):
    say("")
    say("== " + text)


def port_is_free(port, host="127.0.0.1"):
    """Can a listener bind host:port? SO_REUSEADDR, as moat sets it, so
    that connections in TIME_WAIT do not count; no SO_REUSEPORT, so that
    any listener does (moat sets it too, and would share the port with
    another moat instead of failing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def on_alarm(signum, frame):
    raise DemoError("the demo took longer than %d s" % TIME_LIMIT)


class Demo:
    def __init__(self, t, moat):
        self.t = t
        self.d = t.dir
        self.moat = moat
        self.broker = None
        self.moatp = None
        self.port = None

    # -- small helpers -----------------------------------------------------

    def path(self, name):
        return os.path.join(self.d, name)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def show(self, argv, redirect=""):
        """Print a command as you would type it in the demo directory."""
        def rel(a):
            if os.path.isabs(a) and a.startswith(self.d + os.sep):
                return os.path.relpath(a, self.d)
            return a
        say("   $ " + " ".join(shlex.quote(rel(a)) for a in argv) +
            redirect)

    def run(self, argv, redirect="", timeout=10, show=True):
        """Show and run a command in the demo directory."""
        if show:
            self.show(argv, redirect)
        r = mt.run_cmd(argv, timeout=timeout, cwd=self.d)
        if argv[0] == self.moat:
            self.t.check_output_sanitizers(r.stdout + r.stderr,
                                           " ".join(argv))
        return r

    def status(self, r):
        """Print a client's exit status and what it said."""
        lines = (r.stderr or r.stdout).strip().splitlines() or ["-"]
        say("     exit status %d: %s" % (r.returncode, lines[0]))
        for line in lines[1:]:
            say("                    %s" % line)

    def openssl(self, args):
        r = mt.run_cmd(["openssl"] + args, timeout=30, cwd=self.d)
        if r.returncode != 0:
            raise DemoError("openssl %s failed (%d):\n%s%s"
                            % (" ".join(args), r.returncode, r.stdout,
                               r.stderr))
        return r

    def tls(self, dev=None):
        args = ["--cafile", "ca.crt"]
        if dev:
            args += ["--cert", dev + ".crt", "--key", dev + ".key"]
        return args

    def client(self, tool, dev=None):
        return [tool, "-h", "localhost", "-p", str(self.port)] + \
            self.tls(dev)

    def broker_log(self, start=0):
        return mt.read_text(self.path("mosquitto.log"))[start:]

    def moat_log(self, start=0):
        return mt.read_text(self.path("moat.log"))[start:]

    def moat_closed(self, start, timeout=5):
        """moat's conn_closed lines logged after offset start."""
        return mt.wait_for(lambda: [ln for ln in
                                    self.moat_log(start).splitlines()
                                    if "conn_closed" in ln], timeout) or []

    def connections(self):
        return self.broker_log().count("New connection from")

    # -- certificates (the README's openssl commands) ----------------------

    def certificates(self):
        heading("Certificates: a throwaway CA, moat's server certificate, "
                "three devices")
        say("   in %s, where every command below runs," % self.d)
        say("   made with the openssl commands of the README")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-noenc"]
        self.openssl(["req", "-x509"] + ec + [
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=moat demo CA"])
        exts = {"server": "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                          "extendedKeyUsage=serverAuth\n"
                          "keyUsage=critical,digitalSignature\n",
                "device": "extendedKeyUsage=clientAuth\n"
                          "keyUsage=critical,digitalSignature\n"}
        for kind, text in exts.items():
            self.write(kind + ".ext", text)
        for name, cn, kind in (("server", "localhost", "server"),
                               ("sensor-a", "sensor-a", "device"),
                               ("sensor-b", "sensor-b", "device"),
                               ("sensor-c", "sensor-c", "device")):
            self.openssl(["req", "-new"] + ec + [
                "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + cn])
            self.openssl(["x509", "-req", "-in", name + ".csr",
                          "-CA", "ca.crt", "-CAkey", "ca.key",
                          "-CAcreateserial", "-days", "30",
                          "-out", name + ".crt", "-extfile", kind + ".ext"])
        for name, what in (("ca", "the device CA (moat trusts it)"),
                           ("server", "moat's server certificate"),
                           ("sensor-a", "device, in moat's map"),
                           ("sensor-b", "device, in moat's map"),
                           ("sensor-c", "device of the same CA, NOT in "
                                        "the map")):
            r = self.openssl(["x509", "-in", name + ".crt", "-noout",
                              "-subject"])
            say("   %-13s %-27s %s" % (name + ".crt", r.stdout.strip(),
                                       what))

    # -- configuration ------------------------------------------------------

    def configure(self):
        heading("moat's configuration")
        secret = self.write("hmac.secret", "", mode=0o600)
        with open(secret, "wb") as f:
            f.write(os.urandom(32))
        self.write("map.ini", MAP)
        self.broker_port = mt.free_port()
        self.port = PORT
        if not port_is_free(PORT):
            self.port = mt.free_port()
            say("   port %d is taken on this machine; moat listens on "
                "port %d instead" % (PORT, self.port))
        self.write_ini()
        say("   hmac.secret: 32 random bytes (mode 0600), the key of the "
            "broker passwords")
        for name in ("map.ini", "moat.ini"):
            say("   %s:" % name)
            for line in open(self.path(name)):
                say("     " + line.rstrip())

    def write_ini(self):
        self.write("moat.ini", """\
[listen]
address = 127.0.0.1:{port}

[tls]
cert = server.crt
key = server.key
ca = ca.crt

[backend]
address = 127.0.0.1:{broker}

[limits]
max_connections_per_identity = 1

[identity]
source = cn
username = {{identity}}
password = hmac
hmac_secret_file = hmac.secret
client_id = identity
unknown = reject
map = map.ini
""".format(port=self.port, broker=self.broker_port))

    def explain(self):
        heading("moat explain: what moat makes of sensor-a's certificate")
        r = self.run([self.moat, "explain", "-c", "moat.ini",
                      "sensor-a.crt"])
        for line in r.stdout.splitlines():
            say("     " + line)
        if r.returncode != 0 or not re.search(r"username +sensor-a\n",
                                              r.stdout) or \
                not re.search(r"client id +sensor-a\n", r.stdout):
            raise DemoError("moat explain did not accept sensor-a as "
                            "username and client id sensor-a (exit %d):\n"
                            "%s%s" % (r.returncode, r.stdout, r.stderr))

    # -- Mosquitto ---------------------------------------------------------

    def mosquitto(self):
        heading("Mosquitto: loopback only, passwords from moat, an ACL")
        r = self.run([self.moat, "passwd", "--mosquitto", "-c", "moat.ini",
                      "sensor-a", "sensor-b"], redirect=" > passwords")
        lines = r.stdout.splitlines()
        if r.returncode != 0 or len(lines) != 2 or not all(
                re.match(r"sensor-[ab]:\$7\$", ln) for ln in lines):
            raise DemoError("moat passwd --mosquitto failed (exit %d):\n"
                            "%s%s" % (r.returncode, r.stdout, r.stderr))
        self.write("passwords", r.stdout, mode=0o600)
        for ln in lines:
            say("     %s...  (hash of HMAC-SHA256(hmac.secret, \"%s\"))"
                % (ln[:24], ln.split(":", 1)[0]))
        self.write("acl", ACL)
        say("   acl: %s" % ACL.strip())
        conf = ["listener %d 127.0.0.1" % self.broker_port,
                "allow_anonymous false",
                "password_file passwords",
                "acl_file acl",
                "log_dest stderr",
                "log_type all",
                "connection_messages true",
                "persistence false"]
        try:
            # Started as root, Mosquitto would switch to the user
            # "mosquitto", which cannot read the demo's files.
            user = pwd.getpwuid(os.geteuid()).pw_name
            conf += ["# run as %s (the demo's files are %s's)" % (user, user),
                     "user %s" % user]
        except KeyError:
            pass
        self.write("mosquitto.conf", "\n".join(conf) + "\n")
        say("   mosquitto.conf:")
        for line in conf:
            say("     " + line)
        argv = ["mosquitto", "-c", "mosquitto.conf"]
        self.show(argv, " &")
        self.broker = mt.Proc(self.t, "mosquitto", argv,
                              self.path("mosquitto.log"), cwd=self.d)
        for _ in mt.deadline_loop(10):
            if not self.broker.alive():
                raise DemoError("Mosquitto exited (%s):\n%s"
                                % (self.broker.p.returncode,
                                   mt.tail(self.broker.log)))
            if "running" in self.broker_log() and self.probe():
                break
        else:
            raise DemoError("Mosquitto did not start within 10 s")
        # the probe's own connection is logged too
        mt.wait_for(lambda: self.connections() >= 1, 5)

    def probe(self):
        try:
            socket.create_connection(("127.0.0.1", self.broker_port),
                                     0.5).close()
            return True
        except OSError:
            return False

    # -- moat --------------------------------------------------------------

    def start_moat(self):
        heading("moat on port %d, in front of Mosquitto" % self.port)
        for attempt in range(3):
            argv = [self.moat, "-c", "moat.ini"]
            self.show(argv, " &")
            if os.path.exists(self.path("moat.log")):
                os.unlink(self.path("moat.log"))
            p = mt.Proc(self.t, "moat", argv, self.path("moat.log"),
                        cwd=self.d)
            rx = re.compile(r"listening on \S+:(\d+)")
            for _ in mt.deadline_loop(10):
                if rx.search(self.moat_log()) or not p.alive():
                    break
            if rx.search(self.moat_log()):
                self.moatp = p
                for line in self.moat_log().splitlines():
                    say("     " + line)
                return
            p.stop()
            log = self.moat_log()
            if "in use" not in log or attempt == 2:
                raise DemoError("moat did not start:\n%s" % log)
            self.port = mt.free_port()
            say("   port taken; moat listens on port %d instead"
                % self.port)
            self.write_ini()

    # -- the five cases ----------------------------------------------------

    def own_topic(self):
        heading("1. sensor-a publishes to its own topic and receives it")
        say("   client_id = identity makes each certificate one MQTT "
            "client (a second")
        say("   connection with it would take over the first), so one "
            "connection does")
        say("   both: mosquitto_rr subscribes to -e, publishes to -t and "
            "prints what arrives")
        topic = "devices/sensor-a/temperature"
        argv = self.client("mosquitto_rr", "sensor-a") + [
            "-t", topic, "-e", topic, "-m", "21.5C", "-W", "5"]
        r = self.run(argv)
        say("     sensor-a received: %s" % (r.stdout.strip() or
                                            "(nothing)"))
        if r.returncode != 0 or r.stdout.strip() != "21.5C":
            raise DemoError("sensor-a did not receive its own message on "
                            "%s (exit %d): %s" % (topic, r.returncode,
                                                  r.stderr.strip()))

    def other_topics(self):
        heading("2. sensor-a cannot read sensor-b's topics; sensor-b "
                "cannot write sensor-a's")
        mark = len(self.broker_log())
        out = self.path("sub-a.out")
        argv = self.client("mosquitto_sub", "sensor-a") + [
            "-t", "devices/sensor-b/#", "-t", "devices/sensor-a/#", "-v",
            "-W", str(WATCH)]
        self.show(argv, " &")
        sub = mt.Proc(self.t, "mosquitto_sub", argv,
                      self.path("sub-a.err.log"), cwd=self.d, out=out)
        if not mt.wait_for(lambda: "Sending SUBACK to sensor-a" in
                           self.broker_log(mark), 5):
            raise DemoError("sensor-a's subscriber was not subscribed:\n%s"
                            % mt.read_text(self.path("sub-a.err.log")))
        for topic, msg in (("devices/sensor-b/temperature", "19.0C"),
                           ("devices/sensor-a/temperature", "-40.0C")):
            r = self.run(self.client("mosquitto_pub", "sensor-b") + [
                "-t", topic, "-m", msg])
            if r.returncode != 0:
                raise DemoError("sensor-b's mosquitto_pub failed (exit "
                                "%d): %s" % (r.returncode, r.stderr.strip()))
        try:
            sub.p.wait(timeout=WATCH + 5)
        except subprocess.TimeoutExpired:
            raise DemoError("mosquitto_sub -W %d did not end" % WATCH)
        sub.stop()
        got = mt.read_text(out).strip()
        err = mt.read_text(self.path("sub-a.err.log")).strip()
        say("     sensor-a received: %s (mosquitto_sub exit %d: %s)"
            % (got or "nothing in %d s" % WATCH, sub.p.returncode,
               err or "-"))
        log = self.broker_log(mark)
        received = re.search(r"Received PUBLISH from sensor-b [^\n]*"
                             r"'devices/sensor-b/temperature'[^\n]*", log)
        denied = re.search(r"Denied PUBLISH from sensor-b [^\n]*"
                           r"'devices/sensor-a/temperature'[^\n]*", log)
        for m in (received, denied):
            if m:
                say("     Mosquitto: %s" % m.group(0).split(": ", 1)[-1])
        if got:
            raise DemoError("sensor-a received messages it must not: %r"
                            % got)
        if not received:
            raise DemoError("Mosquitto never logged sensor-b's PUBLISH to "
                            "devices/sensor-b/temperature:\n%s" % log)
        if not denied:
            raise DemoError("Mosquitto did not deny sensor-b's PUBLISH to "
                            "devices/sensor-a/temperature:\n%s" % log)
        if "Sending PUBLISH to sensor-a" in log:
            raise DemoError("Mosquitto sent a PUBLISH to sensor-a:\n%s"
                            % log)
        say("   Mosquitto never sent sensor-a either message: "
            "the ACL works because moat set the usernames")

    def impostor(self):
        heading("3. sensor-a claims to be \"admin\" (password \"guess\"): "
                "it still arrives as sensor-a")
        mark = len(self.broker_log())
        r = self.run(self.client("mosquitto_pub", "sensor-a") + [
            "-u", "admin", "-P", "guess", "-i", "admin",
            "-t", "devices/sensor-a/status", "-m", "online"])
        log = self.broker_log(mark)
        m = CONNECTED.search(log)
        if m:
            say("     Mosquitto: %s" % m.group(0))
        if r.returncode != 0:
            raise DemoError("mosquitto_pub -u admin failed (exit %d): %s"
                            % (r.returncode, r.stderr.strip()))
        if not m or m.groups() != ("sensor-a", "sensor-a"):
            raise DemoError("Mosquitto did not see client sensor-a, user "
                            "sensor-a:\n%s" % log)
        if "admin" in log or "guess" in log:
            raise DemoError("\"admin\" or \"guess\" reached Mosquitto:\n%s"
                            % log)
        say("   username, password and client id came from the "
            "certificate; \"admin\" never reached Mosquitto")

    def unknown(self):
        heading("4. sensor-c: a valid certificate of the same CA, but not "
                "in the map")
        before = self.connections()
        mark = len(self.moat_log())
        r = self.run(self.client("mosquitto_pub", "sensor-c") + [
            "-t", "devices/sensor-c/status", "-m", "online"])
        self.status(r)
        lines = self.moat_closed(mark)
        for line in lines:
            say("     moat logged: %s" % line.split(": ", 1)[-1])
        if r.returncode == 0 or "not authori" not in r.stderr:
            raise DemoError("sensor-c was not refused with \"not "
                            "authorised\"")
        if not any("reason=identity_refused" in ln for ln in lines):
            raise DemoError("moat did not log reason=identity_refused for "
                            "sensor-c:\n%s" % self.moat_log(mark))
        time.sleep(0.2)
        if self.connections() != before:
            raise DemoError("sensor-c's connection reached Mosquitto")
        say("   moat answered CONNACK \"not authorised\" itself; Mosquitto "
            "never saw it")

    def no_certificate(self):
        heading("5. a client without a certificate is refused during the "
                "TLS handshake")
        before = self.connections()
        mark = len(self.moat_log())
        r = self.run(self.client("mosquitto_pub") + [
            "-t", "devices/intruder", "-m", "hello"])
        self.status(r)
        lines = self.moat_closed(mark)
        for line in lines:
            say("     moat logged: %s" % line.split(": ", 1)[-1])
        if r.returncode == 0:
            raise DemoError("a client without a certificate got through")
        if not any("reason=tls_handshake_failed" in ln for ln in lines):
            raise DemoError("moat did not log reason=tls_handshake_failed:"
                            "\n%s" % self.moat_log(mark))
        time.sleep(0.2)
        if self.connections() != before:
            raise DemoError("the client without a certificate reached "
                            "Mosquitto")
        say("   Mosquitto never saw it")

    def topic_policy(self):
        heading("6. moat's own topic rules: [policy] is added and moat "
                "reloads by itself;")
        say("   sensor-a's subscription to '#' is then refused by moat, "
            "before the broker")
        text = ("\n[policy]\npublish = devices/{identity}/#\n"
                "subscribe = devices/{identity}/#\n")
        say("   $ cat >> moat.ini <<EOF")
        for line in text.strip("\n").splitlines():
            say("   " + line)
        say("   EOF")
        mark = len(self.moat_log())
        with open(self.path("moat.ini"), "a") as f:
            f.write(text)
        if not mt.wait_for(lambda: re.search(r"reloaded |reload failed",
                                             self.moat_log(mark)), 10):
            raise DemoError("moat did not reload after moat.ini changed:\n"
                            "%s" % self.moat_log(mark))
        for line in self.moat_log(mark).splitlines():
            if "reload" in line or "files changed" in line:
                say("     moat logged: %s" % line.split(": ", 1)[-1])
        if "reloaded " not in self.moat_log(mark):
            raise DemoError("moat refused the [policy] section:\n%s"
                            % self.moat_log(mark))
        bmark = len(self.broker_log())
        r = self.run(self.client("mosquitto_sub", "sensor-a") + [
            "-t", "#", "-C", "1", "-W", "3"])
        self.status(r)
        # mosquitto_sub says so and exits (its status is 0 either way)
        if "denied" not in r.stderr:
            raise DemoError("sensor-a's subscription to '#' was not "
                            "refused (exit %d): %s" % (r.returncode,
                                                       r.stderr.strip()))
        if re.search(r"Received SUBSCRIBE from sensor-a", self.broker_log(
                bmark)):
            raise DemoError("Mosquitto received sensor-a's SUBSCRIBE to "
                            "'#':\n%s" % self.broker_log(bmark))
        say("   moat answered the SUBSCRIBE itself (SUBACK 0x80); Mosquitto "
            "never saw it")

    def stop(self):
        heading("Stopping moat and Mosquitto")
        rc, killed = self.moatp.stop()
        say("   stopped moat (pid %d): exit %s" % (self.moatp.pid, rc))
        if killed or rc != 0:
            raise DemoError("moat did not exit 0 after SIGTERM (exit %s%s)"
                            % (rc, ", killed" if killed else ""))
        self.t.check_sanitizers(self.moatp.log)
        self.broker.stop()
        say("   stopped Mosquitto (pid %d)" % self.broker.pid)

    def run_all(self):
        self.certificates()
        self.configure()
        self.explain()
        self.mosquitto()
        self.start_moat()
        self.own_topic()
        self.other_topics()
        self.impostor()
        self.unknown()
        self.no_certificate()
        self.topic_policy()
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moat", default=None,
                    help="path of the moat binary (default: $MOAT_BIN or "
                         "./moat)")
    args = ap.parse_args()
    for tool in ("openssl", "mosquitto", "mosquitto_pub", "mosquitto_sub",
                 "mosquitto_rr"):
        if shutil.which(tool) is None:
            print("demo: %s is not installed (Debian: apt-get install "
                  "openssl mosquitto mosquitto-clients)" % tool,
                  file=sys.stderr)
            return 1
    try:
        moat = args.moat or mt.moat_bin()
    except mt.Failure as e:
        print("demo: %s" % e, file=sys.stderr)
        return 1
    if not (os.path.isfile(moat) and os.access(moat, os.X_OK)):
        print("demo: %s is not an executable moat binary (run make first)"
              % moat, file=sys.stderr)
        return 1
    moat = os.path.abspath(moat)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, mt._on_signal)
    t = mt.Test("demo", moat=moat)
    t0 = time.monotonic()
    ok = False
    try:
        signal.alarm(TIME_LIMIT)
        Demo(t, moat).run_all()
        ok = True
    except (DemoError, mt.Failure, mt.Skip) as e:
        say("")
        say("DEMO FAILED: %s" % e)
    except KeyboardInterrupt:
        say("")
        say("DEMO INTERRUPTED")
    finally:
        signal.alarm(0)
        problems = t.stop_all()
    for p in problems:
        say("DEMO FAILED: %s" % p)
        ok = False
    if ok:
        shutil.rmtree(t.dir, ignore_errors=True)
        say("   removed %s" % t.dir)
        say("")
        say("Demo finished in %.1f s." % (time.monotonic() - t0))
        return 0
    t.dump_logs()
    say("kept %s for a look" % t.dir)
    return 1


if __name__ == "__main__":
    sys.exit(main())
