#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The classic mistake: the broker's plaintext port left open next to
moat's. With Mosquitto listening on 0.0.0.0, `moat --check` warns, naming
a non-loopback address of this host where the port answers; with Mosquitto
on 127.0.0.1 only it stays quiet. (The daemon itself does not probe: that
needs a netlink socket, which its systemd sandbox refuses.) Needs a
non-loopback IPv4 address on this host (skipped without one)."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

WARNING = re.compile(r"plaintext port is also reachable at "
                     r"([0-9.]+):(\d+)")


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


def main(t):
    mt.need_tool("mosquitto", "ip")
    addrs = host_ipv4()
    if not addrs:
        t.skip("this host has no non-loopback IPv4 address to probe")

    t.step("Mosquitto on 0.0.0.0 (the mistake): moat --check warns")
    open_broker = t.mosquitto(host="0.0.0.0", name="mosquitto-open")
    backend = "127.0.0.1:%d" % open_broker.port
    ini = t.write_ini("open.ini", backend)
    r = t.moat_run(["--check", "-c", ini])
    mt.say("      " + r.stderr.strip().replace("\n", "\n      "))
    t.check(r.returncode == 0, "--check still passes (a warning, not an "
            "error): exit %d" % r.returncode, r.stderr)
    m = WARNING.search(r.stderr)
    t.check(m is not None, "--check warns that the plaintext port is "
            "reachable off loopback", r.stderr)
    t.check(m.group(1) in addrs and int(m.group(2)) == open_broker.port,
            "the warning names %s:%d, a non-loopback address of this host"
            % (m.group(1), open_broker.port), r.stderr)
    t.check("listener %d 127.0.0.1" % open_broker.port in r.stderr,
            "and says how to fix it", r.stderr)

    open_broker.stop()

    t.step("Mosquitto on 127.0.0.1 only: no warning")
    closed = t.mosquitto(host="127.0.0.1", name="mosquitto-loopback")
    ini = t.write_ini("closed.ini", "127.0.0.1:%d" % closed.port)
    r = t.moat_run(["--check", "-c", ini])
    t.check(r.returncode == 0, "--check passes (exit %d)" % r.returncode,
            r.stderr)
    t.check(WARNING.search(r.stderr) is None, "--check does not warn",
            r.stderr)
    moat = t.start_moat("127.0.0.1:%d" % closed.port, name="moat-closed")
    t.pub_sub_roundtrip(moat.port, closed, topic="moat/exposure",
                        tag="loopback")


if __name__ == "__main__":
    mt.run(main, "t_exposure")
