#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The classic mistake: the broker's plaintext port left open next to
moat's. moat reads /proc/self/net/tcp and tcp6 (files, so it also works in
the systemd sandbox) for a socket listening on the backend's port on an
address other than loopback.

  exposed   Mosquitto on 0.0.0.0, a socket on [::] or on this host's own
            address: `moat --check` names the address, says how to fix it
            and exits 2; a normal start logs the same warning and serves
  clear     Mosquitto on 127.0.0.1 only, sockets on 127.0.0.2, ::1 or
            ::ffff:127.0.0.1, an exposed socket on another port, a Unix
            socket backend: exit 0 and no warning

Only loopback traffic: sockets are bound to 0.0.0.0, :: or this host's
address, but nothing ever connects to an address other than loopback."""

import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

WARNING = re.compile(r"plaintext port is also reachable at "
                     r"([0-9.]+):(\d+)")
WARNING6 = re.compile(r"plaintext port is also reachable at "
                      r"\[([0-9a-f:.]+)\]:(\d+)")
ANY_WARNING = re.compile(r"plaintext port is also reachable|cannot tell "
                         r"whether the broker's port")


def host_ipv4():
    """This host's non-loopback IPv4 addresses (from `ip -o -4 addr`)."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"],
                             capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    addrs = re.findall(r"inet ([0-9.]+)/", out)
    return [a for a in addrs if not a.startswith("127.")]


def listener(host, port=0, v6only=True):
    """A plain listening socket on host (nothing will connect to it)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                     1 if v6only else 0)
    s.bind((host, port))
    s.listen(1)
    return s


def check_clear(t, what, backend):
    """--check on backend exits 0 without an exposure warning."""
    ini = t.write_ini("clear.ini", backend)
    r = t.moat_run(["--check", "-c", ini])
    t.check(r.returncode == 0, "%s: --check exits 0 (got %d)"
            % (what, r.returncode), r.stderr)
    t.check(ANY_WARNING.search(r.stderr) is None, "%s: no exposure warning"
            % what, r.stderr)


def check_exposed(t, what, backend, rx, host, port):
    """--check on backend exits 2 and names host:port (regex rx)."""
    ini = t.write_ini("exposed.ini", backend)
    r = t.moat_run(["--check", "-c", ini])
    mt.say("      " + r.stderr.strip().replace("\n", "\n      "))
    t.check(r.returncode == 2, "%s: --check exits 2 (got %d)"
            % (what, r.returncode), r.stderr)
    m = rx.search(r.stderr)
    t.check(m is not None and m.group(1) == host and
            int(m.group(2)) == port, "%s: --check names %s"
            % (what, mt.fmt_hostport(host, port)), r.stderr)
    t.check("listener %d 127.0.0.1" % port in r.stderr,
            "%s: and says how to fix it" % what, r.stderr)


def main(t):
    mt.need_tool("mosquitto")

    t.step("Mosquitto on 0.0.0.0 (the mistake): moat --check warns")
    open_broker = t.mosquitto(host="0.0.0.0", name="mosquitto-open")
    backend = "127.0.0.1:%d" % open_broker.port
    ini = t.write_ini("open.ini", backend)
    r = t.moat_run(["--check", "-c", ini])
    mt.say("      " + r.stderr.strip().replace("\n", "\n      "))
    t.check(r.returncode == 2, "--check exits 2: the broker is exposed "
            "(1 stays for errors): exit %d" % r.returncode, r.stderr)
    m = WARNING.search(r.stderr)
    t.check(m is not None, "--check warns that the plaintext port is "
            "reachable off loopback", r.stderr)
    t.check(m.group(1) == "0.0.0.0" and int(m.group(2)) == open_broker.port,
            "the warning names 0.0.0.0:%d, where the broker listens"
            % open_broker.port, r.stderr)
    t.check("listener %d 127.0.0.1" % open_broker.port in r.stderr,
            "and says how to fix it", r.stderr)

    t.step("a normal start next to the exposed broker: a warning, and "
           "moat serves")
    moat = t.start_moat(backend, name="moat-open")
    m = WARNING.search(moat.text())
    t.check(m is not None and m.group(1) == "0.0.0.0" and
            int(m.group(2)) == open_broker.port,
            "the log warns that 0.0.0.0:%d is exposed" % open_broker.port,
            moat.text())
    t.pub_sub_roundtrip(moat.port, open_broker, topic="moat/exposure",
                        tag="exposed")
    moat.stop_and_check()

    t.step("a Unix socket backend is never exposed (0.0.0.0:%d still open)"
           % open_broker.port)
    sock = t.path("mosquitto.sock")
    unix_broker = t.mosquitto(tcp=False, unix=sock, name="mosquitto-unix")
    check_clear(t, "unix backend", "unix:" + sock)
    unix_broker.stop()
    open_broker.stop()

    t.step("a socket on [::] (IPv6 any address): exit 2")
    if mt.ipv6_loopback():
        s6 = listener("::")
        port = s6.getsockname()[1]
        check_exposed(t, "[::]", "[::1]:%d" % port, WARNING6, "::", port)
        s6.close()
    else:
        mt.say("    note: no IPv6 on this host; [::] not tried")

    t.step("a socket on this host's own address: exit 2, naming it")
    addrs = host_ipv4()
    if addrs:
        s4 = listener(addrs[0])
        port = s4.getsockname()[1]
        check_exposed(t, addrs[0], "127.0.0.1:%d" % port, WARNING,
                      addrs[0], port)
        s4.close()
    else:
        mt.say("    note: no non-loopback IPv4 address here; not tried")

    t.step("loopback only, in every spelling, and another port: exit 0")
    lo = [listener("127.0.0.2")]
    port = lo[0].getsockname()[1]
    if mt.ipv6_loopback():
        lo.append(listener("::1", port))
        lo.append(listener("::ffff:127.0.0.1", port, v6only=False))
    other = listener("0.0.0.0")
    check_clear(t, "127.0.0.2, ::1, ::ffff:127.0.0.1 (0.0.0.0:%d is "
                "another port)" % other.getsockname()[1],
                "127.0.0.2:%d" % port)
    for s in lo + [other]:
        s.close()

    t.step("Mosquitto on 127.0.0.1 only: no warning")
    closed = t.mosquitto(host="127.0.0.1", name="mosquitto-loopback")
    ini = t.write_ini("closed.ini", "127.0.0.1:%d" % closed.port)
    r = t.moat_run(["--check", "-c", ini])
    t.check(r.returncode == 0, "--check passes (exit %d)" % r.returncode,
            r.stderr)
    t.check(WARNING.search(r.stderr) is None, "--check does not warn",
            r.stderr)
    moat = t.start_moat("127.0.0.1:%d" % closed.port, name="moat-closed")
    t.check(ANY_WARNING.search(moat.text()) is None,
            "a normal start does not warn either", moat.text())
    t.pub_sub_roundtrip(moat.port, closed, topic="moat/exposure",
                        tag="loopback")


if __name__ == "__main__":
    mt.run(main, "t_exposure")
