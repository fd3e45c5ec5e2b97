#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""t_limits with [process] workers = 2: the same checks, unchanged, against a
moat whose connections are spread over two worker threads, each with its
own event loop and its own SO_REUSEPORT listening socket. max_connections
and max_handshakes_per_address hold for moat as a whole, so the caps mean
what they meant with one worker.

One thing differs: with two workers there are two accept queues, so "the
fourth connection" is the fourth one moat accepts, which need not be the
fourth one the test opened while the first three still wait in the other
queue. So here every plain TCP connection the test opens waits until moat
has accepted it (the listening sockets' accept queues, as ss or
/proc/net/tcp show them, are empty) before the test goes on."""

import os
import shutil
import socket
import subprocess
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["MOAT_TEST_WORKERS"] = "2"
import moattest as mt  # noqa: E402
import t_limits  # noqa: E402

TCP_LISTEN = "0A"


def accept_backlog(port):
    """Connections waiting in the accept queues of the IPv4 listening
    sockets on port: for a listening socket, Recv-Q is that count. ss asks
    the kernel for the listening sockets of that port only; without ss,
    /proc/net/tcp lists every socket (slow on a busy machine)."""
    if shutil.which("ss"):
        r = subprocess.run(["ss", "-Hltn4", "sport = :%d" % port],
                           stdout=subprocess.PIPE, text=True, timeout=10)
        return sum(int(ln.split()[1]) for ln in r.stdout.splitlines()
                   if ln.strip())
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == TCP_LISTEN and int(local.split(":")[1], 16) == port:
                n += int(queues.split(":")[1], 16)
    return n


def accepted_connection(address, timeout=None, *args, **kw):
    s = socket.create_connection(address, timeout, *args, **kw)
    if not mt.wait_for(lambda: accept_backlog(address[1]) == 0, 5):
        raise mt.Failure("moat did not accept a connection on port %d "
                         "within 5 s" % address[1])
    return s


if __name__ == "__main__":
    paced = dict(vars(socket))
    paced["create_connection"] = accepted_connection
    t_limits.socket = types.SimpleNamespace(**paced)
    mt.run(t_limits.main, "t_limits_w2")
