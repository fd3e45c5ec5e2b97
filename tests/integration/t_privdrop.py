#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""[process] user and group: started as root, moat binds and reads its keys,
then runs as the named account for good. Needs root and the account
"nobody" (skips otherwise).

The certificates and moat.ini live in the test's directory (mode 755,
files 644), so nobody can read them; the server key is made readable by
nobody (0644) only for this test, where it is a throwaway.

  drop          moat started as root with user = nobody and workers = 2
                logs "running as nobody:GROUP"; a device publishes to
                another through it; /proc/PID/status shows nobody's uid and
                gid as real, effective, saved and file-system IDs, no
                supplementary groups and no capabilities, NoNewPrivs, and
                /proc/PID/status owned by root (not dumpable); every thread in
                /proc/PID/task is nobody. After SIGHUP (which starts libuv's
                thread pool) the reload succeeds as nobody, every thread,
                the pool's too, is still nobody, and devices still get
                through. SIGTERM: exit 0.
  no such user  user = no-such-user: --check and start-up exit 1 pointing
                at the user line; group = no-such-group likewise at the
                group line; user = root is refused.
  unreadable    the key mode 0600 root and user = nobody: --check exits 0
                and warns naming the key's line and path; with the key
                readable, no warning.
  not root      moat started as nobody with user = daemon exits 1 at the
                user line, saying it is not root; started as nobody with
                user = nobody it runs (as itself)."""

import glob
import os
import pwd
import grp
import re
import signal
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402


def proc_ids(path):
    """{"Uid": [r, e, s, fs], "Gid": [...], "Groups": [...], "CapPrm": int,
    "CapEff": int, "NoNewPrivs": int} from a /proc status file."""
    out = {}
    with open(path) as f:
        for line in f:
            key, _, val = line.partition(":")
            val = val.split()
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(v) for v in val]
            elif key in ("CapPrm", "CapEff"):
                out[key] = int(val[0], 16)
            elif key == "NoNewPrivs":
                out[key] = int(val[0])
    return out


def threads_of(pid):
    """{tid: ids} of every thread of pid."""
    got = {}
    for st in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            got[int(st.split("/")[4])] = proc_ids(st)
        except (FileNotFoundError, ProcessLookupError):
            pass    # a thread that just ended
    return got


def check_threads(t, moat, uid, gid, least):
    th = threads_of(moat.pid)
    t.check(len(th) >= least, "moat has %d threads (at least %d)"
            % (len(th), least))
    bad = {tid: (ids["Uid"], ids["Gid"]) for tid, ids in th.items()
           if ids["Uid"] != [uid] * 4 or ids["Gid"] != [gid] * 4 or
           ids["Groups"]}
    t.check(not bad, "every thread runs as %d:%d, no extra groups" % (uid,
            gid), "threads not dropped: %r" % bad)
    return len(th)


def readable_by_all(t, paths):
    for p in paths:
        os.chmod(p, 0o644)
    mode = stat.S_IMODE(os.stat(t.dir).st_mode)
    t.check(mode == 0o755, "the test directory is mode 755 (got %o)" % mode)


def process_ini(t, backend, extra, name):
    """moat.ini with [process] workers = 2 and the lines of extra."""
    text, where = t.ini_text(backend, workers="2")
    lines = text.rstrip("\n").split("\n")
    first = len(lines) + 1
    path = t.write(name, text.rstrip("\n") + "\n" + extra)
    os.chmod(path, 0o644)
    return path, first, where


def check_refused(t, argv, ini, line, words, wrap=()):
    r = t.moat_run(argv + ["-c", ini], timeout=20, wrap=wrap)
    out = r.stdout + r.stderr
    t.check(r.returncode == 1, "exit 1 (got %s)" % r.returncode, out)
    want = "%s:%d:" % (ini, line)
    t.check(want in out, "the error points at %s" % want, out)
    for w in words:
        t.check(w in out, "it says %r" % w, out)
    mt.say("      moat said: %s" % out.strip().splitlines()[-1])


def case_drop(t, nobody, group):
    uid, gid = nobody.pw_uid, nobody.pw_gid
    broker = t.mosquitto()
    backend = "127.0.0.1:%d" % broker.port
    # [process] comes last, so extra lands in it
    moat = t.start_moat(backend, workers="2", extra="user = nobody\n")
    os.chmod(moat.ini, 0o644)       # a reload reads it as nobody

    t.pub_sub_roundtrip(moat.port, broker, tag="as-nobody")

    ids = proc_ids("/proc/%d/status" % moat.pid)
    mt.say("    /proc/%d/status: Uid %s Gid %s Groups %s" % (
        moat.pid, ids["Uid"], ids["Gid"], ids["Groups"]))
    t.check(ids["Uid"] == [uid] * 4, "real, effective, saved and fs uid "
            "are nobody's (%d)" % uid, repr(ids["Uid"]))
    t.check(ids["Gid"] == [gid] * 4, "real, effective, saved and fs gid "
            "are %s's (%d)" % (group, gid), repr(ids["Gid"]))
    t.check(ids["Groups"] == [], "no supplementary groups",
            repr(ids["Groups"]))
    t.check(ids["CapPrm"] == 0 and ids["CapEff"] == 0,
            "no capabilities left", repr(ids))
    t.check(ids.get("NoNewPrivs") == 1, "NoNewPrivs is set", repr(ids))
    t.check(os.stat("/proc/%d/status" % moat.pid).st_uid == 0,
            "/proc/PID/status is owned by root: moat is not dumpable")
    before = check_threads(t, moat, uid, gid, 3)
    t.check(re.search(r"running as nobody:%s\b" % re.escape(group),
                      moat.text()),
            "moat logs 'running as nobody:%s'" % group, moat.text())

    t.step("SIGHUP: the reload reads the files as nobody")
    mark = moat.mark()
    os.kill(moat.pid, signal.SIGHUP)
    t.check(mt.wait_for(lambda: re.search(r"reloaded |reload failed",
                                          moat.text()[mark:]), 10),
            "moat logged the reload's outcome", moat.text()[mark:])
    t.check("reloaded " in moat.text()[mark:], "the reload succeeded",
            moat.text()[mark:])
    # The reload runs in libuv's thread pool (4 threads), which exists
    # from then on if it did not already (the file watch may have started
    # it): main + 2 workers + 4.
    after = check_threads(t, moat, uid, gid, max(before, 3 + 4))
    mt.say("    threads: %d before the reload, %d after (libuv's pool)"
           % (before, after))
    t.pub_sub_roundtrip(moat.port, broker, tag="after-reload")
    moat.stop_and_check()
    broker.stop()


def case_no_such(t, backend):
    ini, line, _ = process_ini(t, backend, "user = no-such-user\n",
                               "nouser.ini")
    t.step("user = no-such-user: --check")
    check_refused(t, ["--check"], ini, line, ["no-such-user",
                                              "no such user"])
    t.step("user = no-such-user: start-up")
    check_refused(t, [], ini, line, ["no such user"])
    ini, line, _ = process_ini(t, backend, "user = nobody\n"
                               "group = no-such-group\n", "nogroup.ini")
    t.step("group = no-such-group: --check")
    check_refused(t, ["--check"], ini, line + 1, ["no such group"])
    ini, line, _ = process_ini(t, backend, "user = root\n", "root.ini")
    t.step("user = root: --check")
    check_refused(t, ["--check"], ini, line, ["root"])


def case_unreadable(t, backend, key):
    ini, _, where = process_ini(t, backend, "user = nobody\n", "key.ini")
    want = "%s:%d:" % (ini, where["tls.key"])
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    try:
        t.step("the key is 0600 root: --check warns")
        r = t.moat_run(["--check", "-c", ini], timeout=20)
        out = r.stdout + r.stderr
        t.check(r.returncode == 0, "exit 0 (got %s)" % r.returncode, out)
        hits = [ln for ln in out.splitlines()
                if want in ln and "warning" in ln and key in ln]
        t.check(hits, "a warning at %s names %s" % (want, key), out)
        t.check("nobody cannot read" in hits[0], "it says nobody cannot "
                "read it", out)
        mt.say("      moat said: %s" % hits[0])
    finally:
        os.chmod(key, 0o644)
    t.step("the key is readable by nobody: no warning")
    r = t.moat_run(["--check", "-c", ini], timeout=20)
    out = r.stdout + r.stderr
    t.check(r.returncode == 0, "exit 0 (got %s)" % r.returncode, out)
    t.check("cannot read" not in out, "no warning about a file", out)


def case_not_root(t, backend, group):
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=%s" % group,
                 "--clear-groups", "--"]
    if not mt.shutil.which("setpriv"):
        t.ok("setpriv not found: the not-root cases are skipped")
        return
    try:
        pwd.getpwnam("daemon")
    except KeyError:
        t.ok("no user daemon: the not-root refusal is skipped")
    else:
        ini, line, _ = process_ini(t, backend, "user = daemon\n",
                                   "other.ini")
        t.step("started as nobody with user = daemon")
        check_refused(t, [], ini, line, ["not as root", "daemon"],
                      wrap=as_nobody)
    ini, _, _ = process_ini(t, backend, "user = nobody\n", "self.ini")
    t.step("started as nobody with user = nobody: --check passes")
    r = t.moat_run(["--check", "-c", ini], timeout=20, wrap=as_nobody)
    out = r.stdout + r.stderr
    t.check(r.returncode == 0, "exit 0 (got %s)" % r.returncode, out)


def main(t):
    if os.geteuid() != 0:
        t.skip("needs root: moat must be started as root to drop to nobody")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        t.skip("there is no user nobody")
    try:
        group = grp.getgrgid(nobody.pw_gid).gr_name
    except KeyError:
        group = str(nobody.pw_gid)
    mt.need_tool("mosquitto", "mosquitto_pub", "mosquitto_sub")
    cert, key = t.pki.server()
    readable_by_all(t, [cert, key, t.pki.ca])

    with t.subcase("drop"):
        t.step("moat as root with user = nobody, workers = 2")
        case_drop(t, nobody, group)
    backend = "127.0.0.1:%d" % mt.free_port()
    with t.subcase("no such user"):
        case_no_such(t, backend)
    with t.subcase("unreadable"):
        case_unreadable(t, backend, key)
    with t.subcase("not root"):
        case_not_root(t, backend, group)


if __name__ == "__main__":
    mt.run(main, "t_privdrop")
