#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""At start-up moat says which assembly fast paths its wolfSSL has, next to
the "ready" line, so an operator sees a slow build at once.

The expected line is worked out independently of moat: the test finds the
libwolfssl the moat binary loads (ldd), reads the options.h installed with
it (Debian's in /usr/include, or PREFIX/include for --with-wolfssl=PREFIX)
and lists the fast-path macros defined there.

  none      Debian's libwolfssl (no SP assembly, no AES-NI): a warning
            "wolfSSL 5.x without assembly fast paths ... see README", and
            no info line claiming any
  some      a wolfSSL built by packaging/wolfssl/build.sh: an info line
            naming each fast path (SP math in assembly, AES-NI, ...), and
            no warning
  static    no libwolfssl in ldd (make deb WOLFSSL=PREFIX): exactly one
            of the two lines"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

# options.h macro -> the words moat's line must hold for it.
FAST_PATHS = [
    ("WOLFSSL_SP_X86_64_ASM", "SP math in x86_64 assembly"),
    ("WOLFSSL_SP_ARM64_ASM", "SP math in AArch64 assembly"),
    ("WOLFSSL_AESNI", "AES-NI"),
    ("USE_INTEL_SPEEDUP", "AVX/AVX2"),
    ("WOLFSSL_ARMASM", "ARMv8 crypto"),
]
WITH_RX = re.compile(r"(?m)^.*\bINFO\b.*wolfSSL (\S+) with (.+)$")
WITHOUT_RX = re.compile(r"(?m)^.*\bWARN\b.*wolfSSL (\S+) without assembly "
                        r"fast paths: handshakes cost several times more; "
                        r"see README")


def linked_options_h(binary):
    """The options.h belonging to the libwolfssl binary loads."""
    r = mt.run_cmd(["ldd", binary], timeout=20)
    m = re.search(r"libwolfssl\.so\S* => (\S+)", r.stdout)
    if m is None:
        return None
    lib = os.path.realpath(m.group(1))
    libdir = os.path.dirname(lib)
    if libdir.startswith(("/usr/lib", "/lib")):
        return "/usr/include/wolfssl/options.h"
    return os.path.join(os.path.dirname(libdir), "include", "wolfssl",
                        "options.h")


def expected_paths(options_h):
    """Fast-path words for the macros defined in options_h."""
    with open(options_h) as f:
        defined = set(re.findall(r"(?m)^#define\s+(\w+)", f.read()))
    return [words for macro, words in FAST_PATHS if macro in defined]


def check_static(t, with_m, without_m, text):
    """wolfSSL linked in statically (make deb WOLFSSL=PREFIX): its
    options.h is not known here, so only the form is checked."""
    t.step("wolfSSL linked in statically: one line, either form")
    t.check((with_m is None) != (without_m is None), "exactly one of the "
            "two lines", text)


def check_lines(t, want, with_m, without_m, text):
    """The line matches the fast paths listed in the options.h."""
    if not want:
        t.step("Debian's wolfSSL: a warning, and no claim of fast paths")
        t.check(without_m is not None, "a warning says moat runs without "
                "assembly fast paths and points at the README", text)
        t.check(with_m is None, "no info line claims fast paths", text)
        return
    t.step("a wolfSSL built for moat: its fast paths are named")
    t.check(with_m is not None, "an info line names the fast paths", text)
    for words in want:
        t.check(words in with_m.group(2), "it names %s" % words, text)
    t.check(without_m is None, "no warning about missing fast paths", text)


def main(t):
    mt.need_tool("mosquitto")
    opts = linked_options_h(t.moat)
    want = None
    if opts is not None:
        t.check(os.path.exists(opts),
                "the options.h of moat's libwolfssl is found (%s)" % opts)
        want = expected_paths(opts)
        mt.say("      %s: %s" % (opts, ", ".join(want) or "no fast paths"))

    broker = t.mosquitto()
    moat = t.start_moat("127.0.0.1:%d" % broker.port)
    text = moat.text()
    with_m = WITH_RX.search(text)
    without_m = WITHOUT_RX.search(text)
    if want is None:
        check_static(t, with_m, without_m, text)
    else:
        check_lines(t, want, with_m, without_m, text)
    m = with_m or without_m
    ver = m.group(1)
    t.check(re.match(r"\d+\.\d+\.\d+$", ver) is not None,
            "the line gives the wolfSSL version (%s)" % ver)
    t.check(m.start() < text.find(" ready ("),
            "it comes before the ready line", text)
    moat.stop_and_check()


if __name__ == "__main__":
    mt.run(main, "t_fastpaths")
