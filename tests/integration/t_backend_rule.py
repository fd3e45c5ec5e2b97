#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Plaintext stays on the host: --check and start-up refuse a backend that is
not loopback (a private address, the wildcard address, a host name that
resolves off the host), each saying "loopback"; 127.0.0.2, [::1] and a Unix
socket are accepted and each carries a real publish end to end."""

import ipaddress
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

OFFHOST_NAME = "offhost.moat.test"
OFFHOST_ADDR = "192.0.2.10"   # TEST-NET-1, never routed


def resolves_offhost(name):
    """The addresses name resolves to (no DNS: /etc/hosts only here), if
    all are non-loopback; else None."""
    try:
        infos = socket.getaddrinfo(name, 1883, proto=socket.IPPROTO_TCP)
    except OSError:
        return None
    addrs = sorted({i[4][0] for i in infos})
    if addrs and not any(ipaddress.ip_address(a.split("%")[0]).is_loopback
                         for a in addrs):
        return addrs
    return None


def offhost_name(t):
    """A host name resolving only to non-loopback addresses, and the argv
    prefix needed to run moat so that it resolves that way.

    1. A name the machine already has: its host name, ip6-allnodes,
       ip6-allrouters, or any name in /etc/hosts with a non-loopback address.
    2. As root with unshare(1): a private mount namespace in which a copy of
       /etc/hosts that maps offhost.moat.test to 192.0.2.10 is bind-mounted
       over /etc/hosts, for the moat process only.
    Returns (name, addrs, wrap) or None."""
    cands = [socket.gethostname(), "ip6-allnodes", "ip6-allrouters"]
    try:
        with open("/etc/hosts") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                cands += fields[1:]
    except OSError:
        pass
    for name in cands:
        addrs = resolves_offhost(name)
        if addrs:
            return name, addrs, None
    if os.geteuid() == 0 and shutil.which("unshare"):
        hosts = t.write("hosts", "127.0.0.1 localhost\n%s %s\n"
                        % (OFFHOST_ADDR, OFFHOST_NAME))
        wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
        r = mt.run_cmd(wrap + ["getent", "hosts", OFFHOST_NAME], timeout=10)
        if r.returncode == 0 and OFFHOST_ADDR in r.stdout:
            return OFFHOST_NAME, [OFFHOST_ADDR], wrap
        mt.say("    (unshare + bind mount of /etc/hosts did not work: %s)"
               % (r.stderr.strip() or r.stdout.strip()))
    return None


def refuse(t, backend, why, wrap=None):
    t.step("backend %s (%s) is refused" % (backend, why))
    with t.subcase("backend %s" % backend):
        refuse_one(t, backend, wrap)


def refuse_one(t, backend, wrap):
    wrap = list(wrap or [])
    refuse.n = getattr(refuse, "n", 0) + 1
    ini = t.write_ini("refuse-%d.ini" % refuse.n, backend)
    line = t.ini_lines["backend.address"]
    r = t.moat_run(["--check", "-c", ini], timeout=20, wrap=wrap)
    out = r.stdout + r.stderr
    t.check(r.returncode == 1, "moat --check exits 1 (got %s)"
            % r.returncode, out)
    t.check("loopback" in out.lower(), "the error mentions loopback", out)
    t.check("%s:%d:" % (ini, line) in out, "the error points at %s:%d"
            % (os.path.basename(ini), line), out)
    msg = [ln for ln in out.splitlines() if "loopback" in ln.lower()][0]
    mt.say("      moat said: %s" % msg.strip())

    log = t.path("refuse-%d-start.log" % refuse.n)
    p = mt.Proc(t, "moat-refuse", wrap + [t.moat, "-c", ini], log,
                env=t.moat_env())
    try:
        p.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.stop()
        t.fail("moat -c started with backend %s instead of refusing it"
               % backend)
    rc = p.p.returncode
    p.stop()
    out = p.text()
    t.check(rc == 1, "moat -c exits 1 at start-up (got %s)" % rc, out)
    t.check("loopback" in out.lower(), "and says loopback", out)
    t.check("listening on" not in out, "without ever listening", out)
    t.check_sanitizers(log)


def accept(t, what, broker, backend, name):
    t.step("backend %s (%s) carries a publish end to end" % (backend, what))
    ini = t.write_ini(name + "-check.ini", backend)
    r = t.moat_run(["--check", "-c", ini], timeout=20)
    t.check(r.returncode == 0, "moat --check accepts it (exit %s)"
            % r.returncode, r.stdout + r.stderr)
    moat = t.start_moat(backend, name=name)
    before = broker.new_connections()
    t.pub_sub_roundtrip(moat.port, broker, topic="moat/backend/" + name,
                        tag=name)
    t.check(broker.new_connections() >= before + 2,
            "both clients reached the broker behind %s" % backend)
    moat.stop_and_check()
    broker.stop()


def main(t):
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    t.pki.device("sensor-a")
    t.pki.device("sensor-b")

    refuse(t, "192.168.1.10:1883", "a private LAN address")
    refuse(t, "0.0.0.0:1883", "the wildcard address")
    refuse(t, "[2001:db8::1]:1883", "a non-loopback IPv6 address")
    refuse(t, "[::]:1883", "the IPv6 wildcard address")

    found = offhost_name(t)
    if found:
        name, addrs, wrap = found
        mt.say("    %s resolves to %s%s" % (
            name, ", ".join(addrs),
            " (in a private mount namespace)" if wrap else ""))
        refuse(t, "%s:1883" % name, "a host name resolving to %s"
               % ", ".join(addrs), wrap)
    else:
        mt.say("SKIP (sub-case): no host name resolves off the host without "
               "DNS here (no such /etc/hosts entry, and unshare is not "
               "usable), so the host-name case is not checked")

    # accepted: 127.0.0.2, ::1, unix socket
    b = t.mosquitto(host="127.0.0.2", name="mosquitto-127-0-0-2")
    accept(t, "another loopback address", b, "127.0.0.2:%d" % b.port,
           "moat-127-0-0-2")

    if socket.has_ipv6 and mt.ipv6_loopback():
        b = t.mosquitto(host="::1", name="mosquitto-ipv6")
        accept(t, "IPv6 loopback", b, "[::1]:%d" % b.port, "moat-ipv6")
    else:
        mt.say("SKIP (sub-case): this machine has no IPv6 loopback (::1), "
               "so [::1] is not checked")

    sock = t.path("mqtt.sock")
    b = t.mosquitto(unix=sock, tcp=False, name="mosquitto-unix")
    accept(t, "a Unix socket", b, "unix:%s" % sock, "moat-unix")


if __name__ == "__main__":
    mt.run(main, "t_backend_rule")
