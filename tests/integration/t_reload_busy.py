#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A reload reads its files off the event loops: devices are served while a
large identity map is parsed.

  moat starts without a map; a device connects (keep-alive 0) and a ~60 MiB
  identity map is written (the largest moat accepts is 64 MiB), with
  sensor-a's entry, username = from-the-map, at its end.
  SIGHUP: until moat logs "reloaded", the connected device sends PINGREQ
  every 50 ms and each PINGRESP must come back within 0.5 s, and a new
  device connects and gets CONNACK 0 within 1 s. Parsing the map takes
  moat well over a second (the test says how long, and is skipped when it
  is too fast to tell a stalled loop from a free one), so a reload run on
  the loop that serves devices would hold every PINGRESP for that long.
  After the reload, a new sensor-a connection carries the map's username,
  and the device connected before it (sensor-z, whose credentials the new
  map leaves alone) is still served."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moattest as mt  # noqa: E402

MAP_BYTES = 60 * 1024 * 1024
PINGREQ = b"\xc0\x00"
PING_EVERY = 0.05
PING_MAX = 0.5
CONNECT_MAX = 1.0
MIN_RELOAD = 1.0        # below this the test cannot tell


def write_map(path):
    """Entries for devices that never connect, then sensor-a's."""
    with open(path, "w") as f:
        n = i = 0
        while n < MAP_BYTES:
            s = "[dev-%08d]\nusername = user-%08d\n" % (i, i)
            f.write(s)
            n += len(s)
            i += 1
        f.write("[sensor-a]\nusername = from-the-map\n")
    return i + 1


def ping(c):
    t0 = time.monotonic()
    c.send(PINGREQ)
    first, _ = c.read_packet(10)
    if first >> 4 != 13:
        raise ValueError("expected PINGRESP, got packet type %d"
                         % (first >> 4))
    return time.monotonic() - t0


def during_reload(t, moat, dev, ctx, mark):
    """Ping dev and connect a new device until moat has reloaded. Returns
    (reload seconds, ping latencies, connect seconds, connect result)."""
    result = {}

    def newcomer():
        time.sleep(0.2)
        t0 = time.monotonic()
        result["ok"] = mt.try_tls_mqtt(moat.port, ctx, "busy-new", timeout=10)
        result["secs"] = time.monotonic() - t0

    th = threading.Thread(target=newcomer, daemon=True)
    t0 = time.monotonic()
    moat.p.send_signal(signal.SIGHUP)
    th.start()
    lat = []
    while "reloaded " not in moat.text()[mark:]:
        if time.monotonic() - t0 > 60:
            t.fail("moat did not log 'reloaded' within 60 s:\n%s"
                   % mt.tail(moat.log, 10))
        lat.append(ping(dev))
        time.sleep(PING_EVERY)
    secs = time.monotonic() - t0
    th.join(15)
    return secs, lat, result.get("secs"), result.get("ok")


def main(t):
    mt.need_tool("mosquitto")
    cert, key = t.pki.device("sensor-a")
    broker = t.mosquitto()
    ctx = mt.client_context(ca=t.pki.ca, cert=cert, key=key)
    backend = "127.0.0.1:%d" % broker.port
    ident = {"unknown": "template", "client_id": "keep"}
    # Only SIGHUP reloads here: with the file watch on, writing the map
    # would start a second reload of the same 60 MiB besides the SIGHUP.
    no_watch = {"watch_files": "false"}
    moat = t.start_moat(backend, identity=ident, process=no_watch)

    t.step("a device connects; a %d MiB identity map is written"
           % (MAP_BYTES >> 20))
    # Not sensor-a: the new map gives sensor-a other credentials, which
    # ends a live sensor-a session (t_revoke.py); sensor-z keeps its own.
    dev = mt.RawClient("127.0.0.1", moat.port, t.device_ctx("sensor-z"),
                       "localhost", 10)
    t.check(dev.connect("busy-old") == 0, "the device got CONNACK 0")
    mapfile = t.path("identities.ini")
    n = write_map(mapfile)
    t.ok("%d entries in %s" % (n, mapfile))
    t.write_ini("moat.ini", backend, identity=dict(ident, map=mapfile),
                process=no_watch)

    t.step("SIGHUP: the map is parsed while devices are served")
    mark = moat.mark()
    secs, lat, csecs, cres = during_reload(t, moat, dev, ctx, mark)
    mt.say("      reload took %.2f s; %d PINGRESPs, slowest %.3f s; the "
           "new device took %s s" % (secs, len(lat), max(lat),
                                     "%.3f" % csecs if csecs else "?"))
    if secs < MIN_RELOAD:
        raise mt.Skip("the reload took only %.2f s: too fast to tell a "
                      "stalled loop from a free one" % secs)
    t.check(max(lat) < PING_MAX, "every PINGRESP during the reload came "
            "within %.1f s (slowest %.3f s)" % (PING_MAX, max(lat)))
    t.check(cres is not None and cres[0] and csecs < CONNECT_MAX,
            "a device connecting during the reload got CONNACK 0 within "
            "%.1f s (%s after %s s)" % (CONNECT_MAX, cres and cres[1],
                                        csecs))

    t.step("after the reload")
    mark = moat.mark()
    ok, how = mt.try_tls_mqtt(moat.port, ctx, "busy-after")
    t.check(ok, "a new sensor-a connection gets in (%s)" % how)
    line = moat.wait_closed_match(r"client_id=busy-after ", mark)
    t.check("username=from-the-map " in line, "it carries the map's "
            "username, from-the-map", line)
    t.check(ping(dev) < PING_MAX, "the device connected before the "
            "reload is still served")
    dev.close()
    moat.stop_and_check()


if __name__ == "__main__":
    mt.run(main, "t_reload_busy")
