#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""t_reload with [process] workers = 2: the same checks, unchanged, against a
moat whose connections are spread over two worker threads, each with its
own event loop and its own SO_REUSEPORT listening socket."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["MOAT_TEST_WORKERS"] = "2"
import moattest as mt  # noqa: E402
import t_reload  # noqa: E402

if __name__ == "__main__":
    mt.run(t_reload.main, "t_reload_w2")
