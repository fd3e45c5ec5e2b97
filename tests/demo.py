#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The README's live demo: moat in front of a loopback-only Mosquitto.

    python3 tests/demo.py --moat ./moat        (or: make demo)

Makes a throwaway CA, a server certificate and two device certificates in a
temporary directory, starts Mosquitto on 127.0.0.1 only and moat on port
8883, lets sensor-a subscribe and sensor-b publish through moat with their
certificates, shows a client without a certificate being refused, then stops
everything and removes the directory. Needs openssl, mosquitto and
mosquitto-clients. Takes a few seconds."""

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "integration"))
import moattest as mt  # noqa: E402

TIME_LIMIT = 30
MESSAGES = ["temperature=21.5C", "temperature=21.7C", "door=closed"]


class DemoError(Exception):
    pass


def heading(n, text):
    mt.say("")
    mt.say("== %d. %s" % (n, text))


def show(argv, cwd):
    """Print a command as a human would type it (paths relative to cwd)."""
    def rel(a):
        if os.path.isabs(a) and a.startswith(cwd + os.sep):
            return os.path.relpath(a, cwd)
        return a
    mt.say("   $ " + " ".join(shlex.quote(rel(a)) for a in argv))


def subject(pem):
    r = mt.run_cmd(["openssl", "x509", "-in", pem, "-noout", "-subject",
                    "-issuer", "-enddate"], timeout=10)
    return "; ".join(l.strip() for l in r.stdout.splitlines())


def on_alarm(signum, frame):
    raise DemoError("the demo took longer than %d s" % TIME_LIMIT)


def demo(t):
    d = t.dir
    heading(1, "A throwaway CA, a server certificate, two device certificates")
    mt.say("   in %s" % d)
    server, _ = t.pki.server()
    a_cert, a_key = t.pki.device("sensor-a")
    b_cert, b_key = t.pki.device("sensor-b")
    for name, pem in (("CA", t.pki.ca), ("moat (server)", server),
                      ("sensor-a", a_cert), ("sensor-b", b_cert)):
        mt.say("   %-14s %s  [%s]" % (name, os.path.basename(pem),
                                       subject(pem)))

    heading(2, "Mosquitto, plaintext, bound to 127.0.0.1 only")
    broker = t.mosquitto()
    mt.say("   mosquitto.conf:")
    for line in open(t.path("mosquitto.conf")):
        mt.say("     " + line.rstrip())

    heading(3, "moat on port 8883, forwarding to Mosquitto over loopback")
    backend = "127.0.0.1:%d" % broker.port
    moat = None
    if mt.port_is_free(8883):
        try:
            moat = t.start_moat(backend, listen=("127.0.0.1:8883",))
        except mt.Failure:
            if "in use" not in mt.read_text(t.path("moat.log")):
                raise
            t.stop_all_named("moat")
    if moat is None:
        mt.say("   port 8883 is taken on this machine; moat takes a free "
               "port instead")
        moat = t.start_moat(backend, listen=("127.0.0.1:0",),
                            name="moat-any")
    mt.say("   moat.ini:")
    for line in open(moat.ini):
        if line.strip():
            mt.say("     " + line.rstrip())
    port = moat.port

    heading(4, "sensor-a subscribes through moat with its certificate")
    tls_a = ["--cafile", t.pki.ca, "--cert", a_cert, "--key", a_key]
    tls_b = ["--cafile", t.pki.ca, "--cert", b_cert, "--key", b_key]
    sub_argv = ["mosquitto_sub", "-h", "localhost", "-p", str(port)] + \
        tls_a + ["-i", "sensor-a", "-t", "sensors/#", "-v",
                 "-C", str(len(MESSAGES))]
    mt.say("   (cd %s)" % d)
    show(sub_argv, d)
    out = t.path("sub.out")
    sub = mt.Proc(t, "mosquitto_sub", sub_argv, t.path("sub.err.log"),
                  out=out)
    if not broker.wait_log(r"Sending SUBACK to sensor-a", 10):
        raise DemoError("sensor-a did not get subscribed:\n%s"
                        % mt.read_text(t.path("sub.err.log")))
    mt.say("   sensor-a is subscribed to sensors/#")

    heading(5, "sensor-b publishes through moat with its certificate")
    seen = 0
    for i, msg in enumerate(MESSAGES):
        argv = ["mosquitto_pub", "-h", "localhost", "-p", str(port)] + \
            tls_b + ["-i", "sensor-b", "-q", "1", "-t",
                     "sensors/sensor-b", "-m", msg]
        show(argv, d)
        r = mt.run_cmd(argv, timeout=10, cwd=d)
        if r.returncode != 0:
            raise DemoError("mosquitto_pub failed (%d): %s"
                            % (r.returncode, r.stderr.strip()))
        got = mt.wait_for(lambda: (lambda ls: ls if len(ls) > seen
                                   else None)(
                              mt.read_text(out).splitlines()), 5)
        if not got:
            raise DemoError("message %r did not arrive at sensor-a" % msg)
        for line in got[seen:]:
            mt.say("     sensor-a received: %s" % line)
        seen = len(got)
    try:
        sub.p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise DemoError("mosquitto_sub did not finish")
    sub.stop()
    lines = mt.read_text(out).splitlines()
    want = ["sensors/sensor-b " + m for m in MESSAGES]
    if lines != want:
        raise DemoError("sensor-a got %r, expected %r" % (lines, want))
    mt.say("   all %d messages went sensor-b -> moat -> Mosquitto -> moat "
           "-> sensor-a" % len(MESSAGES))

    heading(6, "a client without a certificate is refused")
    mark = moat.mark()
    before = broker.new_connections()
    argv = ["mosquitto_pub", "-h", "localhost", "-p", str(port),
            "--cafile", t.pki.ca, "-t", "sensors/intruder", "-m", "hello"]
    show(argv, d)
    r = mt.run_cmd(argv, timeout=10, cwd=d)
    mt.say("     exit status %d: %s" % (r.returncode,
                                         (r.stderr or r.stdout).strip()))
    if r.returncode == 0:
        raise DemoError("a client without a certificate got through")
    lines = mt.wait_for(lambda: moat.closed_lines(mark), 5) or []
    for line in lines:
        mt.say("     moat logged: %s" % line.strip())
    if broker.new_connections() != before:
        raise DemoError("the refused client reached Mosquitto")
    mt.say("   Mosquitto never saw it: no new connection in its log")

    heading(7, "stopping moat and Mosquitto")
    moat.stop_and_check()
    broker.stop()
    mt.say("   stopped Mosquitto (pid %d)" % broker.pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moat", default=None,
                    help="path of the moat binary (default: $MOAT_BIN or "
                         "./moat)")
    args = ap.parse_args()
    for tool in ("openssl", "mosquitto", "mosquitto_pub", "mosquitto_sub"):
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

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, mt._on_signal)
    t = mt.Test("demo", moat=moat)
    t0 = time.monotonic()
    ok = False
    try:
        signal.alarm(TIME_LIMIT)
        demo(t)
        ok = True
    except (DemoError, mt.Failure, mt.Skip) as e:
        mt.say("")
        mt.say("DEMO FAILED: %s" % e)
    except KeyboardInterrupt:
        mt.say("")
        mt.say("DEMO INTERRUPTED")
    finally:
        signal.alarm(0)
        problems = t.stop_all()
    for p in problems:
        mt.say("DEMO FAILED: %s" % p)
        ok = False
    if ok:
        shutil.rmtree(t.dir, ignore_errors=True)
        mt.say("   removed %s" % t.dir)
        mt.say("")
        mt.say("Demo finished in %.1f s." % (time.monotonic() - t0))
        return 0
    t.dump_logs()
    mt.say("kept %s for a look" % t.dir)
    return 1


if __name__ == "__main__":
    sys.exit(main())
