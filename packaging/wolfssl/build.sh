#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds the wolfSSL that moat is fastest with, from Debian's own wolfSSL
# source package (so Debian's patches, and with them its security fixes,
# are in), and installs it into PREFIX for "./configure --with-wolfssl=PREFIX".
#
#   packaging/wolfssl/build.sh PREFIX
#
# It fetches the source with "apt-get source" through a deb-src list in a
# temporary directory (apt's lists and cache for it live there too, so the
# system's apt state is left alone), lets dpkg-source apply Debian's
# patches, and configures wolfSSL with the assembly fast paths of this
# machine (x86_64: SP math in assembly, AES-NI, AVX2; aarch64: the ARMv8
# crypto instructions) and only the features moat uses. Running it again
# with the same source version and options does nothing. Needs dpkg-dev,
# autoconf, automake and libtool (build-essential).
#
# Environment: WOLFSSL_SUITES (default "CODENAME CODENAME-updates", this
# machine's release from /etc/os-release, else bookworm),
# WOLFSSL_SECURITY_SUITE (default "CODENAME-security"), WOLFSSL_MIRROR and
# WOLFSSL_SECURITY_MIRROR (default: the mirrors apt uses here, else
# deb.debian.org), JOBS (default: every core).
set -euo pipefail

say() { echo "wolfssl/build.sh: $*"; }
die() {
	echo "wolfssl/build.sh: error: $*" >&2
	exit 1
}

PREFIX=${1:-}
[ -n "$PREFIX" ] || die "usage: packaging/wolfssl/build.sh PREFIX"
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)

# The release and the mirrors this machine's apt already uses, so that a
# host that reaches only its own mirror can build, and Debian 13 gets
# Debian 13's wolfSSL.
CODENAME=$( (. /etc/os-release && echo "${VERSION_CODENAME:-}") 2>/dev/null || true)
CODENAME=${CODENAME:-bookworm}
# First URI of apt's sources (one-line and deb822 forms) that matches $1
# (a grep -E pattern), or nothing.
system_mirror() {
	{
		grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list \
		    /etc/apt/sources.list.d/*.list |
		    sed -E 's/\[[^]]*\][[:space:]]*//' | awk '{print $2}'
		grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources |
		    awk '{for (i = 2; i <= NF; i++) print $i}'
	} | grep -E "$1" | head -n 1 || true
}
SUITES=${WOLFSSL_SUITES:-"$CODENAME $CODENAME-updates"}
SECURITY_SUITE=${WOLFSSL_SECURITY_SUITE:-$CODENAME-security}
SYS_MIRROR=$(system_mirror '/debian/?$')
SYS_SECURITY=$(system_mirror '/debian-security/?$')
MIRROR=${WOLFSSL_MIRROR:-${SYS_MIRROR:-http://deb.debian.org/debian}}
SECURITY_MIRROR=${WOLFSSL_SECURITY_MIRROR:-${SYS_SECURITY:-http://deb.debian.org/debian-security}}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
JOBS=${JOBS:-$(nproc)}
STAMP="$PREFIX/share/moat-wolfssl.stamp"

for tool in apt-get dpkg-source make cc autoreconf libtoolize; do
	command -v "$tool" >/dev/null ||
		die "$tool not found; install build-essential dpkg-dev autoconf automake libtool"
done
[ -r "$KEYRING" ] || die "$KEYRING not found; install debian-archive-keyring"

# The features moat uses, nothing else:
#  TLS 1.2 and 1.3 only; ECDHE on P-256 and X25519; ECDSA and RSA
#  certificates; AES-GCM and ChaCha20-Poly1305; CRLs; session tickets;
#  SNI; the OpenSSL-compatible X.509 API moat reads names, extensions and
#  keys through (with subject alternative names); PBKDF2 with HMAC-SHA512
#  for Mosquitto password lines; certificate and request generation for
#  moat's small device CA. Renegotiation stays off (moat's configure
#  refuses a wolfSSL that has it). TLS 1.3 key update is always in.
FEATURES=(
	--enable-tls13 --disable-oldtls --enable-tlsv12
	--enable-ecc --enable-curve25519 --enable-rsa
	--enable-aesgcm --enable-chacha --enable-poly1305
	--enable-sha512 --enable-sha384 --enable-hkdf
	--enable-crl --enable-session-ticket --enable-sni
	--enable-supportedcurves --enable-extended-master
	--enable-opensslextra --enable-pwdbased
	--enable-certgen --enable-certreq --enable-certext --enable-keygen
	--disable-secure-renegotiation
	--disable-dh --disable-dsa --disable-md4 --disable-des3 --disable-arc4
	--disable-oldnames --disable-examples --disable-crypttests
	--disable-benchmark --enable-static --enable-shared
	--enable-harden
)
# Subject alternative names through the X.509 API, IP addresses among
# them; and, as in Debian's build, URI names without "//" (urn:uuid:...)
# parse (WOLFSSL_FPKI).
CPPFLAGS_EXTRA="-DWOLFSSL_ALT_NAMES -DWOLFSSL_IP_ALT_NAME -DWOLFSSL_FPKI"

# The fast paths of this machine.
ARCH=$(uname -m)
case $ARCH in
x86_64)
	FAST=(--enable-sp --enable-sp-asm --enable-intelasm --enable-aesni)
	;;
aarch64)
	FAST=(--enable-sp --enable-sp-asm --enable-armasm)
	;;
*)
	say "no assembly fast paths known for $ARCH: building with SP math in C"
	FAST=(--enable-sp)
	;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/moat-wolfssl.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

# A deb-src list of our own; apt's lists, cache and state for it in WORK.
cat >"$WORK/sources.list" <<LIST
deb-src [signed-by=$KEYRING] $MIRROR $SUITES main
deb-src [signed-by=$KEYRING] $SECURITY_MIRROR $SECURITY_SUITE main
LIST
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$WORK/sources.list"
	-o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::State::Lists=$WORK/lists"
	-o "Dir::Cache=$WORK/cache"
	-o "Dir::Cache::pkgcache="
	-o "Dir::Cache::srcpkgcache="
	-o "APT::Sandbox::User=root"
	-o "Debug::NoLocking=1")
APT=(apt-get -q "${APT_OPTS[@]}")

say "reading the deb-src index of $MIRROR ($SUITES) and $SECURITY_MIRROR ($SECURITY_SUITE)"
if ! "${APT[@]}" update >"$WORK/update.log" 2>&1 ||
	grep -qE '^(W|E): (Failed|Some index)' "$WORK/update.log"; then
	cat "$WORK/update.log" >&2
	die "cannot read Debian's deb-src index (network, proxy or mirror?); set WOLFSSL_MIRROR to a reachable Debian mirror"
fi

VERSION=$(apt-cache "${APT_OPTS[@]}" showsrc wolfssl 2>/dev/null |
	awk '/^Version:/{print $2}' | sort -V | tail -n 1)
[ -n "$VERSION" ] || die "no wolfssl source package in the deb-src index"
WANT="wolfssl $VERSION $ARCH ${FAST[*]} ${FEATURES[*]} $CPPFLAGS_EXTRA"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
	[ -f "$PREFIX/include/wolfssl/options.h" ]; then
	say "wolfSSL $VERSION with these options is already in $PREFIX; nothing to do"
	exit 0
fi

say "fetching Debian's wolfssl $VERSION source (dpkg-source applies Debian's patches)"
(cd "$WORK" && "${APT[@]}" source "wolfssl=$VERSION" >"$WORK/source.log" 2>&1) || {
	cat "$WORK/source.log" >&2
	die "apt-get source wolfssl=$VERSION failed"
}
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' | head -n 1)
[ -n "$SRC" ] || die "apt-get source left no wolfssl-* directory"
say "patches applied: $(grep -cv '^#' "$SRC/debian/patches/series" 2>/dev/null || echo 0)"

cd "$SRC"
say "regenerating the build system (autoreconf)"
autoreconf -fi >"$WORK/autoreconf.log" 2>&1 || {
	cat "$WORK/autoreconf.log" >&2
	die "autoreconf failed"
}
say "configure --prefix=$PREFIX ${FAST[*]} ${FEATURES[*]} CPPFLAGS=$CPPFLAGS_EXTRA"
./configure --prefix="$PREFIX" "${FAST[@]}" "${FEATURES[@]}" \
	CPPFLAGS="$CPPFLAGS_EXTRA" >"$WORK/configure.log" 2>&1 || {
	tail -n 40 "$WORK/configure.log" >&2
	die "wolfSSL's configure failed"
}
say "make -j$JOBS"
make -j"$JOBS" >"$WORK/make.log" 2>&1 || {
	tail -n 40 "$WORK/make.log" >&2
	die "building wolfSSL failed"
}
say "installing into $PREFIX"
rm -rf "$PREFIX/include/wolfssl" "$PREFIX"/lib/libwolfssl.*
make install >"$WORK/install.log" 2>&1 || {
	tail -n 40 "$WORK/install.log" >&2
	die "make install failed"
}
mkdir -p "$(dirname "$STAMP")"
echo "$WANT" >"$STAMP"
say "wolfSSL $VERSION for $ARCH installed in $PREFIX"
say "next: ./configure --with-wolfssl=$PREFIX"
