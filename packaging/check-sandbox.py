#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check a strace log of moat against the sandbox of moat.service.

    check-sandbox.py UNIT STRACE_LOG [EXECUTABLE]

CI machines do not run systemd as PID 1, so packaging/test-deb.sh cannot
start moat.service itself. Instead it runs the unit's ExecStart line under
"strace -f" and this script checks that everything moat did there would
also be allowed inside the unit:

  SystemCallFilter=          every system call moat made is in the allow
                             list and not in a ~deny list (groups expanded
                             with "systemd-analyze syscall-filter")
  RestrictAddressFamilies=   every socket() family is listed
  MemoryDenyWriteExecute=    no mapping is both writable and executable

Only calls made after EXECUTABLE (default /usr/sbin/moat) was executed
count; what setpriv did before dropping to the moat user does not.
Exit 0 when all is well, 1 with the offending calls listed.
"""

import re
import subprocess
import sys


def unit_values(path, key):
    """All values of KEY= in the [Service] section, in order."""
    vals, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and line.startswith(key + "="):
                vals.append(line[len(key) + 1:].strip())
    return vals


def syscall_groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif line.startswith("    ") and cur is not None:
            item = line.strip()
            if item and not item.startswith("#"):
                groups[cur].append(item)
        elif not line.strip():
            cur = None
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            if n not in groups:
                raise SystemExit("check-sandbox: unknown syscall group %s" % n)
            out |= expand(groups[n], groups, seen)
        else:
            out.add(n)
    return out


def allowed_syscalls(unit, groups):
    allow, deny = None, set()
    for v in unit_values(unit, "SystemCallFilter"):
        if not v:
            allow, deny = None, set()
            continue
        if v.startswith("~"):
            deny |= expand(v[1:].split(), groups)
        else:
            names = expand(v.split(), groups)
            allow = names if allow is None else allow | names
    if allow is None:
        return None, deny
    return allow - deny, deny


LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()")


def traced_calls(log, exe):
    """(name, line) of each system call after EXECUTABLE was executed."""
    calls, started = [], False
    with open(log, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            name = m.group(3) or m.group(2)
            if not started:
                if (name == "execve" and ('execve("%s",' % exe) in line
                        and re.search(r"\)\s+=\s+0\s*$", line)):
                    started = True
                    calls.append((name, line.rstrip()))
                continue
            if m.group(2):          # the "resumed" half was counted
                continue
            calls.append((name, line.rstrip()))
    return started, calls


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    unit, log = sys.argv[1], sys.argv[2]
    exe = sys.argv[3] if len(sys.argv) == 4 else "/usr/sbin/moat"
    started, calls = traced_calls(log, exe)
    if not started:
        print("check-sandbox: no successful execve of %s in %s" % (exe, log))
        return 1
    problems = []

    groups = syscall_groups()
    allow, deny = allowed_syscalls(unit, groups)
    used = sorted({n for n, _ in calls})
    print("check-sandbox: %d system calls made by %s: %s"
          % (len(used), exe, " ".join(used)))
    for name in used:
        if (allow is not None and name not in allow) or name in deny:
            first = next(l for n, l in calls if n == name)
            problems.append("SystemCallFilter= refuses %s, e.g. %s"
                            % (name, first))

    fams = set()
    for v in unit_values(unit, "RestrictAddressFamilies"):
        fams = set(v.split()) if v else set()
    if fams:
        for name, line in calls:
            if name in ("socket", "socketpair"):
                m = re.search(r"\((AF_[A-Z0-9]+|PF_[A-Z0-9]+)", line)
                fam = m.group(1).replace("PF_", "AF_") if m else "?"
                if fam not in fams:
                    problems.append("RestrictAddressFamilies= refuses %s: %s"
                                    % (fam, line))

    mdwe = unit_values(unit, "MemoryDenyWriteExecute")
    if mdwe and mdwe[-1] in ("yes", "true", "1", "on"):
        for name, line in calls:
            if name in ("mmap", "mprotect", "pkey_mprotect") and \
                    "PROT_WRITE" in line and "PROT_EXEC" in line:
                problems.append("MemoryDenyWriteExecute= refuses %s" % line)

    for p in problems:
        print("check-sandbox: " + p)
    if problems:
        return 1
    print("check-sandbox: SystemCallFilter, RestrictAddressFamilies and "
          "MemoryDenyWriteExecute of %s allow all of it" % unit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
