#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""t_teardown with [process] workers = 2: the same checks, unchanged,
against a moat whose connections are spread over two worker threads, each
with its own event loop and its own SO_REUSEPORT listening socket.

One thing differs: t_teardown's quick cycles tell which conn_closed line
belongs to which cycle by the connection id, which follows accept order.
With two workers there are two accept queues, and a connection that a
client opens and closes at once can be accepted by one worker after the
next connection was accepted by the other. So each cycle here waits until
moat has logged its connection closed before the next one starts; what
each cycle does, and every check on the result, stay as they are."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["MOAT_TEST_WORKERS"] = "2"
import moattest as mt  # noqa: E402
import t_teardown  # noqa: E402


def paced(kind):
    def cycle(r, i):
        kind(r, i)
        r.moat.wait_closed(0, r.made, timeout=10)
    cycle.__name__ = kind.__name__
    return cycle


def pace_cycles():
    reasons = {}
    kinds = []
    for kind in t_teardown.CYCLE_KINDS:
        p = paced(kind)
        reasons[p] = t_teardown.CYCLE_REASONS[kind]
        kinds.append(p)
    t_teardown.CYCLE_REASONS = reasons
    t_teardown.CYCLE_KINDS = kinds


if __name__ == "__main__":
    pace_cycles()
    mt.run(t_teardown.main, "t_teardown_w2")
