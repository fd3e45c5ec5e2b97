#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The layers stay what the tree says they are.

Reads the sources under $MOAT_SRCDIR (nothing is built or run) and fails,
naming the file and line, when:

  pure      a file in src/core, or a moat header it includes (followed
            transitively), includes <uv.h>, <wolfssl/ssl.h>,
            <wolfssl/openssl/...> or a socket header (<sys/socket.h>,
            <sys/un.h>, <netdb.h>, <ifaddrs.h>, <poll.h>, <netinet/...>,
            <arpa/...>): src/core is linked by the unit tests and fuzzers
            and must know nothing of sockets, the event loop or TLS sessions
  tls       a file in src/tls, or a moat header it includes, includes <uv.h>
  upward    a file includes the header of a layer above its own, in the
            order core < tls < io < cli; include/moat/X.h belongs to the
            layer of its src/<layer>/X.c
  cycle     modules (X.c with X.h) include each other's headers in a circle,
            following #include "moat/..." lines; the cycle is printed as a
            path with the line of each step
  library   Makefile.am puts a file from outside src/core into the pure
            library libmoatcore.a

The checker is first run on small trees written into the test's temporary
directory, one clean and some with a forbidden include, an upward include
or a cycle, and must report exactly those, so a checker that reports
nothing cannot pass."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

SRCDIR = os.environ.get("MOAT_SRCDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")

LAYERS = ("core", "tls", "io", "cli")

# Cycles present on the main line today, as sorted module tuples.
KNOWN_CYCLES = frozenset([
])

SOCKET_HEADERS = ("sys/socket.h", "sys/un.h", "netdb.h", "ifaddrs.h",
                  "poll.h")
SOCKET_DIRS = ("netinet/", "arpa/")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
MOAT_HDR = "moat/"
MAX_CYCLES = 200


def forbidden_in_core(name):
    """Why name may not be included by the pure layer, or None."""
    if name == "uv.h":
        return "the event loop"
    if name == "wolfssl/ssl.h" or name.startswith("wolfssl/openssl/"):
        return "wolfSSL's TLS layer"
    if name in SOCKET_HEADERS or name.startswith(SOCKET_DIRS):
        return "a socket header"
    return None


def forbidden_in_tls(name):
    return "the event loop" if name == "uv.h" else None


def strip_comments(text):
    """The text with /* */ and // comments blanked, newlines kept, so that
    an include written in a comment is not read and line numbers hold."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text[i] in "'\"":
            # A string or character literal: copied as is ("/*" in it
            # opens no comment).
            q, j = text[i], i + 1
            while j < n and text[j] != q and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Tree:
    """The C sources of one tree: src/<layer>/*.c and include/moat/*.h."""

    def __init__(self, root):
        self.root = root
        self.layer_of = {}       # module name -> layer (from src/L/X.c)
        self.files = {}          # relative path -> [(line, delim, name)]
        self.module_of = {}      # relative path -> module name
        for layer in LAYERS:
            d = os.path.join(root, "src", layer)
            if not os.path.isdir(d):
                continue
            for f in sorted(os.listdir(d)):
                if f.endswith((".c", ".h")):
                    rel = "src/%s/%s" % (layer, f)
                    self._read(rel)
                    if f.endswith(".c"):
                        self.layer_of.setdefault(f[:-2], layer)
        hdir = os.path.join(root, "include", "moat")
        if os.path.isdir(hdir):
            for f in sorted(os.listdir(hdir)):
                if f.endswith(".h"):
                    self._read("include/moat/" + f)

    def _read(self, rel):
        with open(os.path.join(self.root, rel), errors="replace") as f:
            text = strip_comments(f.read())
        incs = []
        for no, line in enumerate(text.split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if m:
                incs.append((no, m.group(1), m.group(2)))
        self.files[rel] = incs
        self.module_of[rel] = os.path.basename(rel)[:-2]

    def layer(self, rel):
        """The layer rel belongs to, or None (a header with no .c)."""
        if rel.startswith("src/"):
            return rel.split("/")[1]
        return self.layer_of.get(self.module_of[rel])

    def moat_header(self, name):
        """include/moat/X.h for "moat/X.h" when the tree has it."""
        if not name.startswith(MOAT_HDR):
            return None
        rel = "include/" + name
        return rel if rel in self.files else None

    def system_includes(self, rel):
        """Every <...> include reached from rel through moat headers:
        (chain of "file:line" steps, name)."""
        found, seen = [], {rel}
        stack = [(rel, [])]
        while stack:
            cur, chain = stack.pop()
            for no, delim, name in self.files[cur]:
                here = chain + ["%s:%d" % (cur, no)]
                if delim == "<":
                    found.append((here, name))
                    continue
                h = self.moat_header(name)
                if h is not None and h not in seen:
                    seen.add(h)
                    stack.append((h, here))
        return found

    def check_forbidden(self, layer, why_fn, what):
        """Each forbidden include reached from a file of layer, reported
        once, with the path from the first source file that reaches it."""
        problems = {}
        roots = sorted((r for r in self.files if self.layer(r) == layer),
                       key=lambda r: (not r.startswith("src/"), r))
        for rel in roots:
            for chain, name in self.system_includes(rel):
                why = why_fn(name)
                if why is None or chain[-1] in problems:
                    continue
                via = (" (via %s)" % " -> ".join(chain[:-1])
                       if len(chain) > 1 else "")
                problems[chain[-1]] = ("%s: includes <%s>, %s, in %s%s"
                                       % (chain[-1], name, why, what, via))
        return [problems[k] for k in sorted(problems)]

    def check_upward(self):
        problems = []
        for rel in sorted(self.files):
            mine = self.layer(rel)
            if mine is None:
                continue
            for no, delim, name in self.files[rel]:
                h = self.moat_header(name)
                if delim != '"' or h is None:
                    continue
                theirs = self.layer(h)
                if theirs is None or \
                        LAYERS.index(theirs) <= LAYERS.index(mine):
                    continue
                problems.append(
                    "%s:%d: includes %s of the %s layer, above %s (order: "
                    "%s)" % (rel, no, name, theirs, mine,
                             " < ".join(LAYERS)))
        return problems

    def module_graph(self):
        """module -> {module: "file:line" of the first include}."""
        g = {}
        for rel in sorted(self.files):
            a = self.module_of[rel]
            g.setdefault(a, {})
            for no, delim, name in self.files[rel]:
                h = self.moat_header(name)
                if delim != '"' or h is None:
                    continue
                b = self.module_of[h]
                if b != a:
                    g[a].setdefault(b, "%s:%d" % (rel, no))
                    g.setdefault(b, {})
        return g

    def cycles(self):
        """Every elementary cycle, each once, starting at its smallest
        module name."""
        g = self.module_graph()
        found = []
        for start in sorted(g):
            stack = [(start, [start])]
            while stack and len(found) < MAX_CYCLES:
                cur, path = stack.pop()
                for nxt in sorted(g[cur], reverse=True):
                    if nxt == start:
                        found.append(path)
                    elif nxt > start and nxt not in path:
                        stack.append((nxt, path + [nxt]))
        return [(p, [g[p[i]][p[(i + 1) % len(p)]] for i in range(len(p))])
                for p in found]


CORE_LIB_RE = re.compile(r"^libmoatcore_a_SOURCES\s*\+?=(.*)$")


def check_core_library(root):
    """Entries of libmoatcore_a_SOURCES outside src/core, with their line
    in Makefile.am (a tree without Makefile.am has nothing to check)."""
    path = os.path.join(root, "Makefile.am")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().split("\n")
    problems, i = [], 0
    while i < len(lines):
        m = CORE_LIB_RE.match(lines[i])
        if not m:
            i += 1
            continue
        text = m.group(1)
        while True:
            for word in text.rstrip("\\").split():
                if not re.match(r"^src/core/[^/]+\.[ch]$", word):
                    problems.append(
                        "Makefile.am:%d: libmoatcore.a lists %s; the pure "
                        "library holds only src/core/*.c" % (i + 1, word))
            if not text.endswith("\\") or i + 1 >= len(lines):
                break
            i += 1
            text = lines[i]
        i += 1
    return problems


def describe_cycle(path, where):
    steps = "; ".join("%s includes moat/%s.h" % (w, path[(i + 1) % len(path)])
                      for i, w in enumerate(where))
    return "include cycle %s -> %s (%s)" % (" -> ".join(path), path[0], steps)


def check_tree(root, known=frozenset()):
    """(problems, known cycles seen) for the tree at root."""
    tree = Tree(root)
    problems = []
    problems += tree.check_forbidden(
        "core", forbidden_in_core, "the pure layer src/core")
    problems += tree.check_forbidden(
        "tls", forbidden_in_tls, "the TLS layer src/tls")
    problems += tree.check_upward()
    problems += check_core_library(root)
    seen = []
    for path, where in tree.cycles():
        key = tuple(sorted(path))
        if key in known:
            seen.append(key)
        else:
            problems.append(describe_cycle(path, where))
    return problems, seen, tree


# --- the checker on trees made to fail -----------------------------------

def write_tree(base, files):
    for rel, text in files.items():
        p = os.path.join(base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    return base


CLEAN = {
    "src/core/a.c": '#include <stdio.h>\n#include "moat/a.h"\n'
                    '#include "moat/b.h"\n'
                    '#include <wolfssl/wolfcrypt/sha256.h>\n'
                    '/* #include <uv.h> only in a comment */\n'
                    '// #include <sys/socket.h>\n'
                    'static const char *s = "/* #include <poll.h>";\n',
    "src/core/b.c": '#include "moat/b.h"\n#include "config.h"\n',
    "include/moat/a.h": '#include <stddef.h>\n#include "moat/b.h"\n',
    "include/moat/b.h": '#include <stddef.h>\n',
    "src/tls/t.c": '#include <wolfssl/ssl.h>\n#include <arpa/inet.h>\n'
                   '#include "moat/a.h"\n#include "moat/t.h"\n',
    "include/moat/t.h": '#include "moat/b.h"\n',
    "src/io/i.c": '#include <uv.h>\n#include <sys/socket.h>\n'
                  '#include "moat/t.h"\n#include "moat/i.h"\n',
    "include/moat/i.h": '#include <uv.h>\n',
    "src/cli/m.c": '#include <uv.h>\n#include "moat/i.h"\n',
}


def self_test_case(t, name, changes, want):
    """The clean tree with changes must give exactly the problems that
    contain each string of want (in any order)."""
    files = dict(CLEAN)
    files.update(changes)
    root = write_tree(t.path("tree-" + name), files)
    problems, _, _ = check_tree(root)
    missing = [w for w in want if not any(w in p for p in problems)]
    extra = [p for p in problems if not any(w in p for w in want)]
    t.check(not missing and not extra and len(problems) == len(want),
            "%s: reported as expected" % name,
            "want %r\ngot:\n  %s" % (want, "\n  ".join(problems) or "(none)"))


def self_tests(t):
    self_test_case(t, "clean", {}, [])
    self_test_case(t, "core-socket", {
        "src/core/b.c": '#include "moat/b.h"\n\n#include <sys/socket.h>\n',
    }, ["src/core/b.c:3: includes <sys/socket.h>, a socket header, in the "
        "pure layer"])
    self_test_case(t, "core-netinet-via-header", {
        "include/moat/b.h": '#include <stddef.h>\n#include <netinet/in.h>\n',
    }, ["include/moat/b.h:2: includes <netinet/in.h>, a socket header, in "
        "the pure layer src/core (via src/core/a.c:3)"])
    self_test_case(t, "core-uv-and-wolfssl", {
        "src/core/b.c": '#include <uv.h>\n#include <wolfssl/ssl.h>\n'
                        '#include <wolfssl/openssl/evp.h>\n'
                        '#include <arpa/inet.h>\n#include <poll.h>\n'
                        '#include <netdb.h>\n#include <ifaddrs.h>\n'
                        '#include <sys/un.h>\n',
    }, ["src/core/b.c:1: includes <uv.h>, the event loop",
        "src/core/b.c:2: includes <wolfssl/ssl.h>, wolfSSL's TLS layer",
        "src/core/b.c:3: includes <wolfssl/openssl/evp.h>, wolfSSL's",
        "src/core/b.c:4: includes <arpa/inet.h>, a socket header",
        "src/core/b.c:5: includes <poll.h>, a socket header",
        "src/core/b.c:6: includes <netdb.h>, a socket header",
        "src/core/b.c:7: includes <ifaddrs.h>, a socket header",
        "src/core/b.c:8: includes <sys/un.h>, a socket header"])
    self_test_case(t, "tls-uv-via-io-header", {
        "src/tls/t.c": '#include <wolfssl/ssl.h>\n#include "moat/t.h"\n'
                       '#include "moat/i.h"\n',
    }, ["include/moat/i.h:1: includes <uv.h>, the event loop, in the TLS "
        "layer src/tls (via src/tls/t.c:3)",
        "src/tls/t.c:3: includes moat/i.h of the io layer, above tls",
        "include cycle i -> t -> i (src/io/i.c:3 includes moat/t.h; "
        "src/tls/t.c:3 includes moat/i.h)"])
    self_test_case(t, "core-includes-tls-header", {
        "src/core/a.c": '#include "moat/a.h"\n#include "moat/u.h"\n',
        "src/tls/u.c": '#include "moat/u.h"\n',
        "include/moat/u.h": '#include <stddef.h>\n',
    }, ["src/core/a.c:2: includes moat/u.h of the tls layer, above core"])
    self_test_case(t, "core-library", {
        "Makefile.am": "# the pure rooms\nlibmoatcore_a_SOURCES = \\\n"
                       "\tsrc/core/a.c \\\n\tsrc/io/i.c \\\n"
                       "\tsrc/core/b.c\nlibmoatcore_a_SOURCES += "
                       "src/tls/t.c\nmoat_SOURCES = src/io/i.c\n",
    }, ["Makefile.am:4: libmoatcore.a lists src/io/i.c; the pure library "
        "holds only src/core/*.c",
        "Makefile.am:6: libmoatcore.a lists src/tls/t.c"])
    self_test_case(t, "cycle", {
        "src/core/c.c": '#include "moat/c.h"\n',
        "include/moat/c.h": '#include <stddef.h>\n#include "moat/a.h"\n',
        "src/core/b.c": '#include "moat/b.h"\n#include "moat/c.h"\n',
    }, ["include cycle a -> b -> c -> a (include/moat/a.h:2 includes "
        "moat/b.h; src/core/b.c:2 includes moat/c.h; include/moat/c.h:2 "
        "includes moat/a.h)"])
    self_test_case(t, "two-cycles", {
        "src/core/c.c": '#include "moat/c.h"\n',
        "include/moat/c.h": '#include "moat/a.h"\n',
        "src/core/b.c": '#include "moat/b.h"\n#include "moat/c.h"\n',
        "include/moat/b.h": '#include "moat/a.h"\n',
    }, ["include cycle a -> b -> c -> a (include/moat/a.h:2 includes "
        "moat/b.h; src/core/b.c:2 includes moat/c.h; include/moat/c.h:1 "
        "includes moat/a.h)",
        "include cycle a -> b -> a (include/moat/a.h:2 includes moat/b.h; "
        "include/moat/b.h:1 includes moat/a.h)"])


# --- the real tree -------------------------------------------------------

def main(t):
    t.step("the checker on trees written to fail")
    self_tests(t)

    t.step("the tree under %s" % os.path.abspath(SRCDIR))
    problems, seen, tree = check_tree(SRCDIR, KNOWN_CYCLES)
    ncore = sum(1 for r in tree.files if r.startswith("src/core/"))
    nhdr = sum(1 for r in tree.files if r.startswith("include/moat/"))
    t.check(ncore >= 5 and nhdr >= 5 and "backend" in tree.layer_of and
            os.path.exists(os.path.join(SRCDIR, "Makefile.am")),
            "read %d files of src/core and %d moat headers" % (ncore, nhdr),
            "is MOAT_SRCDIR the source tree?")
    for key in sorted(seen):
        mt.say("    known cycle, allowed for now (see KNOWN_CYCLES): %s"
               % " <-> ".join(key))
    for key in sorted(KNOWN_CYCLES - set(seen)):
        mt.say("    note: the known cycle %s is gone; delete it from "
               "KNOWN_CYCLES" % " <-> ".join(key))
    t.check(not problems, "src/core is pure, src/tls has no event loop, no "
            "layer includes one above it, no include cycles, libmoatcore.a "
            "holds only src/core",
            "\n".join(problems))


if __name__ == "__main__":
    mt.run(main, "t_layers")
