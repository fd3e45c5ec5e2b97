#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Test moat's Debian package the way an admin uses it, on this machine.
#
#   packaging/test-deb.sh [DEB]      (as root; DEB defaults to build/deb/moat_*.deb)
#
#  1. lintian: no errors, no warnings; the files the package must contain.
#  2. dpkg -i: the moat system user and group, conffiles, the permissions
#     of the identity map and of the HMAC secret the postinst makes;
#     "systemd-analyze verify" accepts moat.service and "systemd-analyze
#     security" rates it (the exposure must stay at or below
#     MOAT_MAX_EXPOSURE, default 1.5).
#  3. moat --version, and moat --check on the installed /etc/moat/moat.ini
#     once test certificates are in place (as root and as the moat user).
#  4. End to end: the examples' Mosquitto configuration (loopback only,
#     allow_anonymous false, password_file from "moat passwd --mosquitto",
#     the devices/%u/# ACL) and the unit's ExecStart line and --check
#     run as the moat user (setpriv, as systemd would: CI machines do not
#     boot systemd) under strace with a $NOTIFY_SOCKET. A device's publish
#     through moat arrives at a subscriber on the broker; a device missing
#     from the identity map and a client without a certificate are refused;
#     ExecReload (SIGHUP) after adding the device to the map lets it in;
#     SIGTERM stops moat. sd_notify must say READY=1, RELOADING=1 and
#     STOPPING=1 (and WATCHDOG=1, with WATCHDOG_USEC from WatchdogSec=),
#     and every system call, socket family and mapping moat
#     used must be allowed by the unit's sandbox (packaging/check-sandbox.py).
#  5. dpkg --purge removes the user, the group, the secret, the
#     statoverride and /etc/moat.
#
# The package is installed on this machine and purged at the end (also on
# failure). Refuses to run when moat is already installed or a moat user
# exists that the package did not make. Exit 0 pass, 1 fail, 77 skip (not
# root, or not Debian). Temporary files are kept on failure and their logs
# printed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
MAX_EXPOSURE=${MOAT_MAX_EXPOSURE:-1.5}

say() { echo "test-deb: $*"; }
fail() {
	say "FAIL: $*"
	failed=1
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	say "SKIP: must run as root (it installs and purges the package)"
	exit 77
fi
for t in dpkg dpkg-deb; do
	command -v "$t" >/dev/null || { say "SKIP: $t not found (not Debian?)"; exit 77; }
done
for t in lintian systemd-analyze openssl mosquitto mosquitto_pub mosquitto_sub \
	setpriv strace python3 ss; do
	command -v "$t" >/dev/null || { say "FAIL: $t not found (run .ci/deps)"; exit 1; }
done

deb=${1:-}
if [ -z "$deb" ]; then
	deb=$(ls -t "$srcdir"/build/deb/moat_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || { say "FAIL: no .deb given and none in $srcdir/build/deb (run make deb)"; exit 1; }
fi
[ -f "$deb" ] || { say "FAIL: $deb: no such file"; exit 1; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

if [ "$(dpkg-query -W -f='${Status}' moat 2>/dev/null)" != "" ] &&
	[ "$(dpkg-query -W -f='${Status}' moat 2>/dev/null)" != "unknown ok not-installed" ]; then
	say "FAIL: the moat package is already on this machine ($(dpkg-query -W -f='${Status}' moat)); purge it first: dpkg --purge moat"
	exit 1
fi
if getent passwd moat >/dev/null || getent group moat >/dev/null; then
	say "FAIL: a moat user or group exists that the package did not make; this test would delete it on purge"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moat-test-deb.XXXXXX") || exit 1
chmod 0755 "$tmp"   # mosquitto drops to its own user and must read it
failed=1
installed=0
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "$installed" = 1 ]; then
		rm -f /etc/moat/ca.crt /etc/moat/server.crt /etc/moat/server.key
		dpkg --purge moat >"$tmp/purge-cleanup.log" 2>&1 ||
			{ say "cleanup: dpkg --purge moat failed:"; cat "$tmp/purge-cleanup.log"; }
	fi
	if [ "$failed" = 0 ]; then
		rm -rf "$tmp"
	else
		local f
		for f in "$tmp"/*.log; do
			[ -f "$f" ] || continue
			echo "test-deb: ---- $f (last 60 lines) ----"
			tail -n 60 "$f"
		done
		say "kept $tmp"
	fi
}
trap cleanup EXIT

# Wait up to $2 seconds for the command in $1 to succeed.
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		bash -c "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
listening() { ss -Hltn "sport = :$1" | grep -q .; }

# --- 1. lintian and contents ------------------------------------------------
say "package $deb"
say "lintian $(lintian --version | awk '{print $2}')"
lintian --display-info --fail-on error,warning "$deb" 2>&1 |
	grep -v 'running with root privileges is not recommended' | tee "$tmp/lintian.txt"
lintian_rc=${PIPESTATUS[0]}
[ "$lintian_rc" -eq 0 ] || fail "lintian reports errors or warnings (exit $lintian_rc)"
if grep -qE '^[EW]: ' "$tmp/lintian.txt"; then
	fail "lintian reports errors or warnings"
fi
say "lintian: no errors, no warnings"

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents.txt"
# debhelper puts units in /lib/systemd/system on Debian 12 and in
# /usr/lib/systemd/system on Debian 13.
unit=/lib/systemd/system/moat.service
grep -qx /usr$unit "$tmp/contents.txt" && unit=/usr$unit
for f in /usr/sbin/moat /etc/moat/moat.ini /etc/moat/identities.ini \
	"$unit" \
	/usr/share/man/man8/moat.8.gz /usr/share/man/man5/moat.ini.5.gz \
	/usr/share/doc/moat/copyright \
	/usr/share/doc/moat/examples/mosquitto-moat.conf \
	/usr/share/doc/moat/examples/moat.acl; do
	grep -qx "$f" "$tmp/contents.txt" || fail "the package lacks $f"
done
say "the package has the daemon, configuration, identity map, unit, man pages and examples"

# --- 2. install ---------------------------------------------------------------
installed=1
if ! dpkg -i "$deb" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	fail "dpkg -i $deb"
fi
say "installed: $(dpkg-query -W -f='${Package} ${Version} ${Status}' moat)"

conffiles=$(dpkg-query -W -f='${Conffiles}\n' moat)
for f in /etc/moat/moat.ini /etc/moat/identities.ini; do
	grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
uid=$(id -u moat 2>/dev/null) || fail "no moat user after installation"
gid=$(getent group moat | cut -d: -f3) || fail "no moat group after installation"
[ "$uid" -lt 1000 ] || fail "moat is not a system user (uid $uid)"
[ "$(id -gn moat)" = moat ] || fail "moat's primary group is $(id -gn moat)"
shell=$(getent passwd moat | cut -d: -f7)
case $shell in */nologin|*/false) ;; *) fail "moat has a login shell: $shell" ;; esac
[ "$(stat -c '%U:%G %a' /etc/moat/identities.ini)" = "root:moat 640" ] ||
	fail "/etc/moat/identities.ini is $(stat -c '%U:%G %a' /etc/moat/identities.ini), not root:moat 640"
[ "$(stat -c '%U:%G %a' /etc/moat/hmac.secret)" = "root:moat 640" ] ||
	fail "/etc/moat/hmac.secret is $(stat -c '%U:%G %a' /etc/moat/hmac.secret 2>&1), not root:moat 640"
[ "$(wc -c </etc/moat/hmac.secret)" -ge 32 ] || fail "/etc/moat/hmac.secret is too short"
say "user moat ($uid:$gid, $shell); identities.ini and hmac.secret root:moat 0640; conffiles: moat.ini, identities.ini"

systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1 || { cat "$tmp/verify.log"; fail "systemd-analyze verify $unit"; }
[ -s "$tmp/verify.log" ] && cat "$tmp/verify.log"
say "systemd-analyze verify accepts $unit"
systemd-analyze security --offline=yes "$unit" >"$tmp/security.txt" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for moat.service: \([0-9.]*\).*/\1/p' "$tmp/security.txt")
[ -n "$exposure" ] || { cat "$tmp/security.txt"; fail "no exposure level from systemd-analyze security"; }
grep -E '^✗' "$tmp/security.txt" | sed 's/  */ /g; s/^/test-deb:   /'
say "systemd-analyze security: exposure $exposure (at most $MAX_EXPOSURE)"
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
	fail "exposure $exposure is above $MAX_EXPOSURE"

# --- 3. moat --version and --check on the installed configuration ------------
/usr/sbin/moat --version | sed 's/^/test-deb:   /' || fail "moat --version"
/usr/sbin/moat --version | grep -qx "moat $(dpkg-query -W -f='${Version}' moat | sed 's/-[^-]*$//')" ||
	fail "moat --version does not match the package version"

# A throwaway CA, moat's server certificate, and device certificates, made
# as the admin would (README, "Install").
pki=$tmp/pki
mkdir -p "$pki"
(
	set -e
	cd "$pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.crt -days 2 -subj "/CN=moat test device CA"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >server.ext
	printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >device.ext
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout server.key -out server.csr -subj "/CN=localhost"
	openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
		-days 2 -out server.crt -extfile server.ext
	for d in sensor-1 sensor-2; do
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d.key" -out "$d.csr" -subj "/CN=$d"
		openssl x509 -req -in "$d.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 2 -out "$d.crt" -extfile device.ext
	done
) >"$tmp/pki.log" 2>&1 || fail "making test certificates"
install -m 0644 "$pki/ca.crt" /etc/moat/ca.crt
install -m 0644 "$pki/server.crt" /etc/moat/server.crt
install -m 0640 -g moat "$pki/server.key" /etc/moat/server.key

# Ports: the installed configuration's 8883 and 1883 when they are free,
# otherwise the admin's edit of [listen] and [backend] to free ones.
dev_port=8883
broker_port=1883
if ! port_free "$dev_port" || ! port_free "$broker_port"; then
	read -r dev_port broker_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
	say "8883 or 1883 is taken here: using $dev_port and $broker_port instead"
	sed -i -e "s|^;address = 0.0.0.0:8883\$|address = 0.0.0.0:$dev_port|" \
		-e "s|^;address = 127.0.0.1:1883\$|address = 127.0.0.1:$broker_port|" /etc/moat/moat.ini
	grep -qx "address = 0.0.0.0:$dev_port" /etc/moat/moat.ini &&
		grep -qx "address = 127.0.0.1:$broker_port" /etc/moat/moat.ini ||
		fail "cannot set the ports in /etc/moat/moat.ini"
fi

/usr/sbin/moat --check >"$tmp/check-root.log" 2>&1 ||
	{ cat "$tmp/check-root.log"; fail "moat --check (default configuration file, as root)"; }
say "$(cat "$tmp/check-root.log")"

as_moat=(setpriv --reuid=moat --regid=moat --init-groups --no-new-privs
	--inh-caps=-all --bounding-set=-all --)
# ExecStart, exactly as the unit has it, and --check on the same file.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_reload=$(sed -n 's/^ExecReload=//p' "$unit")
[ -n "$exec_start" ] && [ -n "$exec_reload" ] ||
	fail "$unit lacks ExecStart or ExecReload"
# WatchdogSec= as systemd hands it over: $WATCHDOG_USEC.
watchdog_sec=$(sed -n 's/^WatchdogSec=//p' "$unit")
[ -n "$watchdog_sec" ] || fail "$unit lacks WatchdogSec"
[[ $watchdog_sec =~ ^[0-9]+s?$ ]] || fail "WatchdogSec=$watchdog_sec: this test reads whole seconds only"
watchdog_usec=$((${watchdog_sec%s} * 1000000))
case "$exec_start" in
*[\$\`\"\'\;\|\&]*) fail "ExecStart uses shell syntax this test does not expand" ;;
esac
say "moat --check as moat: /usr/sbin/moat --check -c /etc/moat/moat.ini"
# 0: all is well; 2: well, but the broker's port is also open off loopback.
check_rc=0
"${as_moat[@]}" /usr/sbin/moat --check -c /etc/moat/moat.ini >"$tmp/check-moat.log" 2>&1 || check_rc=$?
[ "$check_rc" -eq 0 ] || [ "$check_rc" -eq 2 ] ||
	{ cat "$tmp/check-moat.log"; fail "moat --check as the moat user (can it read the key, the secret and the map?)"; }
say "$(cat "$tmp/check-moat.log")"

# --- 4. end to end --------------------------------------------------------------
# The broker: the packaged example with its files in $tmp instead of
# /etc/mosquitto, and the password file "moat passwd --mosquitto" writes.
ex=/usr/share/doc/moat/examples
sed -e "s|/etc/mosquitto/|$tmp/|g" -e "s|^listener 1883 127.0.0.1\$|listener $broker_port 127.0.0.1|" \
	"$ex/mosquitto-moat.conf" >"$tmp/mosquitto.conf"
cp "$ex/moat.acl" "$tmp/moat.acl"
grep -qx "listener $broker_port 127.0.0.1" "$tmp/mosquitto.conf" || fail "no loopback listener in $ex/mosquitto-moat.conf"
[ "$(grep -c '^listener' "$tmp/mosquitto.conf")" -eq 1 ] || fail "$ex/mosquitto-moat.conf has more than one listener"

# The admin adds sensor-1 to the identity map; sensor-2 stays unknown.
printf '\n[sensor-1]\n' >>/etc/moat/identities.ini
/usr/sbin/moat passwd --mosquitto sensor-1 >"$tmp/moat.passwd" 2>"$tmp/passwd.log" ||
	{ cat "$tmp/passwd.log"; fail "moat passwd --mosquitto"; }
chmod 0644 "$tmp/moat.passwd" "$tmp/moat.acl" "$tmp/mosquitto.conf"
read -r s1_user s1_pass < <(/usr/sbin/moat passwd sensor-1)
[ "$s1_user" = sensor-1 ] && [ -n "$s1_pass" ] || fail "moat passwd sensor-1 printed no credentials"

mosquitto -c "$tmp/mosquitto.conf" -v >"$tmp/mosquitto.log" 2>&1 &
pids+=($!)
wait_for "ss -Hltn 'sport = :$broker_port' | grep -q ." 10 || fail "mosquitto does not listen on $broker_port"
ss -Hltn "sport = :$broker_port" | awk '{print $4}' | grep -vqE "^127\.0\.0\.1:$broker_port\$" &&
	fail "mosquitto listens beyond 127.0.0.1: $(ss -Hltn "sport = :$broker_port" | awk '{print $4}' | tr '\n' ' ')"
say "mosquitto listens on 127.0.0.1:$broker_port only"

# sd_notify: a datagram socket that the moat user may write to.
notify_sock=$tmp/notify.sock
python3 -u - "$notify_sock" >"$tmp/notify.log" 2>&1 <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
while True:
    print(s.recv(4096).decode(errors="replace").replace("\n", " "), flush=True)
EOF
pids+=($!)
wait_for "test -S '$notify_sock'" 5 || fail "no notify socket"

say "ExecStart as moat: $exec_start (NOTIFY_SOCKET=$notify_sock, WATCHDOG_USEC=$watchdog_usec, under strace)"
# shellcheck disable=SC2086
NOTIFY_SOCKET=$notify_sock WATCHDOG_USEC=$watchdog_usec strace -f -qq -o "$tmp/strace.txt" \
	"${as_moat[@]}" $exec_start >"$tmp/moat.log" 2>&1 &
moat_pid=$!
pids+=("$moat_pid")
wait_for "grep -q READY=1 '$tmp/notify.log'" 15 || fail "moat sent no READY=1"
listening "$dev_port" || fail "moat says READY=1 but does not listen on $dev_port"
say "moat is ready (sd_notify: $(head -n 1 "$tmp/notify.log")) and listens on $dev_port"
wait_for "grep -q WATCHDOG=1 '$tmp/notify.log'" 10 || fail "moat sent no WATCHDOG=1 with WATCHDOG_USEC set"
grep -q "has not run its loop" "$tmp/moat.log" && fail "moat says a worker is stuck: $(grep 'has not run its loop' "$tmp/moat.log")"
say "the watchdog: WATCHDOG=1 (WatchdogSec=$watchdog_sec)"
main_pid=$(pgrep -P "$moat_pid" -x moat || pgrep -P "$moat_pid")
[ -n "$main_pid" ] || fail "cannot find moat's process under strace"
[ "$(ps -o user= -p "$main_pid")" = moat ] || fail "moat runs as $(ps -o user= -p "$main_pid"), not moat"

# A subscriber directly on the broker, with sensor-1's broker credentials.
mosquitto_sub -h 127.0.0.1 -p "$broker_port" -u "$s1_user" -P "$s1_pass" -i watcher \
	-t 'devices/sensor-1/#' -v -C 2 -W 30 >"$tmp/sub.txt" 2>"$tmp/sub.log" &
sub_pid=$!
pids+=("$sub_pid")
wait_for "grep -q 'Received SUBSCRIBE from watcher' '$tmp/mosquitto.log'" 10 || fail "the subscriber did not subscribe"

pub() { # DEVICE TOPIC MESSAGE [extra mosquitto_pub arguments]
	local d=$1 t=$2 m=$3
	shift 3
	mosquitto_pub -h localhost -p "$dev_port" --cafile "$pki/ca.crt" \
		-t "$t" -m "$m" -q 1 "$@" >>"$tmp/pub.log" 2>&1
}
pub sensor-1 devices/sensor-1/temp "through the moat" \
	--cert "$pki/sensor-1.crt" --key "$pki/sensor-1.key" -i ignored -u admin -P guess ||
	fail "sensor-1 cannot publish through moat"
wait_for "grep -qx 'devices/sensor-1/temp through the moat' '$tmp/sub.txt'" 10 ||
	fail "sensor-1's publish did not arrive at the broker's subscriber"
grep -qE "as sensor-1 \(p[0-9], c[01], k[0-9]+, u'sensor-1'\)" "$tmp/mosquitto.log" ||
	fail "the broker did not see client sensor-1 / user sensor-1"
say "sensor-1's publish through moat arrived at Mosquitto (client id and user sensor-1, not the device's own)"

# Refusals: a device missing from the map, and no certificate at all.
if pub sensor-2 devices/sensor-2/temp x --cert "$pki/sensor-2.crt" --key "$pki/sensor-2.key"; then
	fail "sensor-2 (not in the identity map) got in"
fi
if pub none devices/x/y x; then
	fail "a client without a certificate got in"
fi
grep -q "u'sensor-2'" "$tmp/mosquitto.log" && fail "the broker saw sensor-2"
say "sensor-2 (not in the map) and a client without a certificate are refused"

# The admin adds sensor-2 to the map, gives the broker its password (and
# reloads Mosquitto), then reloads moat with the unit's ExecReload.
printf '\n[sensor-2]\n' >>/etc/moat/identities.ini
/usr/sbin/moat passwd --mosquitto sensor-1 sensor-2 >"$tmp/moat.passwd" 2>"$tmp/passwd.log" ||
	{ cat "$tmp/passwd.log"; fail "moat passwd --mosquitto sensor-1 sensor-2"; }
kill -HUP "${pids[0]}"
wait_for "grep -q 'Reloading config' '$tmp/mosquitto.log'" 10 || fail "mosquitto did not reload"
reload_cmd=${exec_reload//\$MAINPID/$main_pid}
say "ExecReload: $reload_cmd"
# shellcheck disable=SC2086
$reload_cmd || fail "$reload_cmd"
wait_for "grep -q RELOADING=1 '$tmp/notify.log' && test \$(grep -c READY=1 '$tmp/notify.log') -ge 2" 10 ||
	fail "no RELOADING=1 then READY=1 after SIGHUP"
pub sensor-2 devices/sensor-2/temp "after reload" --cert "$pki/sensor-2.crt" --key "$pki/sensor-2.key" ||
	fail "sensor-2 is still refused after the reload"
grep -q "u'sensor-2'" "$tmp/mosquitto.log" || fail "the broker did not see sensor-2 after the reload"
say "after ExecReload sensor-2 gets in (sd_notify: RELOADING=1, READY=1)"

# A second sensor-1 message, so that the subscriber exits by itself (-C 2).
pub sensor-1 devices/sensor-1/temp "second" --cert "$pki/sensor-1.crt" --key "$pki/sensor-1.key" ||
	fail "sensor-1 cannot publish a second time"
wait "$sub_pid" || fail "the subscriber did not get both messages"

# systemd stops the unit with SIGTERM to the main process.
kill -TERM "$main_pid"
for ((i = 0; i < 100; i++)); do
	kill -0 "$moat_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$moat_pid" 2>/dev/null && fail "moat did not exit within 10 s of SIGTERM"
wait "$moat_pid"
rc=$?
[ "$rc" -eq 0 ] || fail "moat exited with $rc after SIGTERM"
grep -q STOPPING=1 "$tmp/notify.log" || fail "no STOPPING=1 on SIGTERM"
say "SIGTERM: STOPPING=1, exit 0"

python3 "$here/check-sandbox.py" "$unit" "$tmp/strace.txt" /usr/sbin/moat >"$tmp/sandbox.log" 2>&1 ||
	{ cat "$tmp/sandbox.log"; fail "moat did something the unit's sandbox forbids"; }
sed 's/^/test-deb: /' "$tmp/sandbox.log"

# --- 5. purge ---------------------------------------------------------------
rm -f /etc/moat/ca.crt /etc/moat/server.crt /etc/moat/server.key
dpkg --purge moat >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg --purge moat"; }
installed=0
getent passwd moat >/dev/null && fail "the moat user is still there after purge"
getent group moat >/dev/null && fail "the moat group is still there after purge"
[ -e /etc/moat ] && fail "/etc/moat is still there after purge: $(ls -A /etc/moat)"
dpkg-statoverride --list /etc/moat/identities.ini >/dev/null 2>&1 && fail "the statoverride is still there after purge"
say "purge removed the moat user and group, the statoverride and /etc/moat"

failed=0
say "PASS"
