#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Every build step of moat's container image (packaging/docker/Dockerfile).
# The Dockerfile runs nothing but these commands, and CI runs the same ones
# on a Debian 12 machine (.ci/run, with the wolfSSL built for moat), so
# what CI proves is what the image does.
#
#   build.sh deps [source]             install the build dependencies (apt);
#                                      "source" adds what building wolfSSL
#                                      from its source tarball needs
#   build.sh wolfssl-debian PREFIX     the image's default: Debian's own
#                                      wolfSSL source package, with its
#                                      patches, built for speed with only
#                                      moat's features into PREFIX
#                                      (packaging/wolfssl/build.sh)
#   build.sh wolfssl TARBALL|URL SHA256 PREFIX
#                                      opt-in: build an upstream wolfSSL
#                                      release for speed
#                                      (--enable-sp --enable-sp-asm, and
#                                      --enable-intelasm on x86_64) with the
#                                      features moat needs, into PREFIX. The
#                                      tarball's SHA-256 must be given.
#   build.sh moat SRCDIR DESTDIR [WOLFSSL_PREFIX]
#                                      configure (--prefix=/usr
#                                      --sysconfdir=/etc, and
#                                      --with-wolfssl=PREFIX when given),
#                                      build, run the unit tests when
#                                      Criterion is installed, install into
#                                      DESTDIR, check the installed binary,
#                                      and list the Debian packages it needs
#                                      in DESTDIR.runtime-packages
#   build.sh runtime PACKAGES_FILE     install those packages and make the
#                                      unprivileged user moat (uid/gid 10001)
#   build.sh ci [system]               what CI runs: the image's default
#                                      path on this machine: wolfssl-debian
#                                      into a temporary prefix, then moat
#                                      from this source tree (a clean copy
#                                      of it) against it into a temporary
#                                      DESTDIR (2.5 minutes on 2 cores, 1.5
#                                      of them wolfSSL); "system" links
#                                      Debian's wolfSSL instead
#
# Run as root inside the image (deps, runtime); "moat" and "ci" need no root
# except for "ci"'s "deps" step, which installs nothing that is already
# there.
set -euo pipefail

MOAT_UID=10001
say() { echo "build.sh: $*"; }
die() {
	echo "build.sh: error: $*" >&2
	exit 1
}

apt_install() {
	local missing=() p
	for p in "$@"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		say "already installed: $*"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || die "must be root to install ${missing[*]}"
	say "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

BUILD_PACKAGES=(build-essential autoconf automake pkgconf
	libuv1-dev libinih-dev libwolfssl-dev libcriterion-dev ca-certificates)
# wolfSSL from a git-archive tarball needs its autogen.sh (libtool);
# Debian's source package needs dpkg-source and the archive keyring.
SOURCE_PACKAGES=(libtool curl dpkg-dev debian-archive-keyring)

cmd_deps() {
	local pk=("${BUILD_PACKAGES[@]}")
	if [ "${1:-}" = source ]; then
		pk+=("${SOURCE_PACKAGES[@]}")
	fi
	apt_install "${pk[@]}"
	image_cleanup
}

# In an image build (the Dockerfile sets MOAT_IMAGE_BUILD=1), keep the
# layer small. Never on a host: other tools need apt's lists.
image_cleanup() {
	if [ "${MOAT_IMAGE_BUILD:-0}" = 1 ]; then
		rm -rf /var/lib/apt/lists/*
	fi
}

cmd_wolfssl() {
	local src=${1:-} sha=${2:-} prefix=${3:-}
	[ -n "$src" ] && [ -n "$prefix" ] ||
		die "usage: build.sh wolfssl TARBALL|URL SHA256 PREFIX"
	[ -n "$sha" ] || die "give the SHA-256 of the wolfSSL tarball you trust (Docker: --build-arg WOLFSSL_SHA256=...); it is checked before anything is built"
	local work
	work=$(mktemp -d)
	if [ -f "$src" ]; then
		cp "$src" "$work/wolfssl.tar.gz"
	else
		say "downloading $src"
		curl -fsSL --retry 3 -o "$work/wolfssl.tar.gz" "$src" ||
			die "cannot download $src"
	fi
	echo "$sha  $work/wolfssl.tar.gz" | sha256sum -c --quiet - ||
		die "SHA-256 of $src is $(sha256sum "$work/wolfssl.tar.gz" | cut -d' ' -f1), not $sha"
	tar -xzf "$work/wolfssl.tar.gz" -C "$work"
	local dir
	dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	[ -n "$dir" ] || die "the wolfSSL tarball has no top directory"
	local asm=()
	case $(uname -m) in
	x86_64) asm=(--enable-sp-asm --enable-intelasm) ;;
	aarch64) asm=(--enable-sp-asm --enable-armasm) ;;
	esac
	(
		cd "$dir"
		[ -x configure ] || ./autogen.sh
		# What moat's configure probes for (TLS 1.3, ECC, CRL, the X.509
		# name API, subject alternative names, AES-GCM, no renegotiation),
		# what it uses (session tickets, PBKDF2, HKDF), the fast math, and
		# no old TLS. Secure renegotiation stays off (wolfSSL's default).
		./configure --prefix="$prefix" --disable-static \
			--enable-tls13 --disable-oldtls --enable-ecc --enable-crl \
			--enable-opensslextra --enable-opensslall --enable-aesgcm \
			--enable-chacha --enable-poly1305 --enable-session-ticket \
			--enable-pwdbased --enable-hkdf --enable-sni --enable-alpn \
			--enable-supportedcurves --enable-sp "${asm[@]}" \
			--disable-examples --disable-crypttests --disable-benchmark \
			CPPFLAGS="-DWOLFSSL_ALT_NAMES"
		make -j"$(nproc)"
		make install
	)
	rm -rf "$work"
	say "wolfSSL installed in $prefix"
}

# packaging/wolfssl/build.sh: next to this script in the image
# (/usr/local/bin), in the source tree on a host.
cmd_wolfssl_debian() {
	local prefix=${1:-} here script
	[ -n "$prefix" ] || die "usage: build.sh wolfssl-debian PREFIX"
	here=$(cd "$(dirname "$0")" && pwd)
	script="$here/moat-build-wolfssl"
	[ -x "$script" ] || script="$here/../wolfssl/build.sh"
	[ -x "$script" ] || die "packaging/wolfssl/build.sh not found next to $0"
	"$script" "$prefix"
}

cmd_moat() {
	local src=${1:-} dest=${2:-} wolfssl=${3:-}
	[ -n "$src" ] && [ -n "$dest" ] ||
		die "usage: build.sh moat SRCDIR DESTDIR [WOLFSSL_PREFIX]"
	src=$(cd "$src" && pwd)
	mkdir -p "$dest"
	dest=$(cd "$dest" && pwd)
	[ ! -f "$src/config.status" ] ||
		die "$src is a configured tree; build from a clean copy (git clone, or the release tarball)"
	local conf=(--prefix=/usr --sysconfdir=/etc --localstatedir=/var)
	if [ -n "$wolfssl" ] && [ -f "$wolfssl/include/wolfssl/options.h" ]; then
		conf+=(--with-wolfssl="$wolfssl")
		say "linking the wolfSSL in $wolfssl"
	else
		say "linking Debian's wolfSSL"
	fi
	(
		cd "$src"
		[ -x configure ] || autoreconf -fi
		./configure "${conf[@]}"
		make -j"$(nproc)"
		if pkg-config --exists criterion 2>/dev/null; then
			# shellcheck disable=SC2016 # for make to expand: the unit tests
			make -j"$(nproc)" check TESTS='$(check_PROGRAMS)'
		fi
		make install DESTDIR="$dest"
	)
	# The installed binary runs and links the wolfSSL it was built for.
	local bin="$dest/usr/sbin/moat"
	[ -x "$bin" ] || die "$bin was not installed"
	"$bin" --version
	if [ -n "$wolfssl" ] && [ -f "$wolfssl/include/wolfssl/options.h" ]; then
		ldd "$bin" | grep -q "$wolfssl" || die "$bin does not link the wolfSSL in $wolfssl"
		# The image needs only the shared library (the rpath's target).
		if [ "${MOAT_IMAGE_BUILD:-0}" = 1 ]; then
			rm -rf "${wolfssl:?}/include" "${wolfssl:?}/bin" "${wolfssl:?}/share" \
				"${wolfssl:?}"/lib/pkgconfig "${wolfssl:?}"/lib/*.a "${wolfssl:?}"/lib/*.la
		fi
	fi
	[ -f "$dest/etc/moat/moat.ini" ] || die "$dest/etc/moat/moat.ini was not installed"
	cmd_runtime_deps "$bin" >"$dest.runtime-packages"
	say "runtime packages: $(tr '\n' ' ' <"$dest.runtime-packages")"
}

# The Debian packages that hold the shared libraries BIN loads (libc6
# aside, which every image has); libraries outside any package (a wolfSSL
# built here) are not listed: copy their prefix into the image instead.
cmd_runtime_deps() {
	local bin=${1:-} lib real pkg p
	[ -x "$bin" ] || die "usage: build.sh runtime-deps BINARY"
	ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
		real=$(readlink -f "$lib")
		pkg=
		# usrmerge: dpkg knows a library by one of these names
		for p in "$real" "$lib" "${real#/usr}" "/usr$lib"; do
			pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) || true
			[ -n "$pkg" ] && break
		done
		if [ -n "$pkg" ] && [ "$pkg" != libc6 ]; then
			echo "$pkg"
		fi
	done | sort -u
}

cmd_runtime() {
	local list=${1:-}
	[ -f "$list" ] || die "usage: build.sh runtime PACKAGES_FILE"
	# shellcheck disable=SC2046 # one package per line
	apt_install $(cat "$list")
	image_cleanup
	if ! getent group moat >/dev/null; then
		groupadd --system --gid "$MOAT_UID" moat
	fi
	if ! getent passwd moat >/dev/null; then
		useradd --system --uid "$MOAT_UID" --gid moat --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin moat
	fi
	say "user moat: $(id moat)"
}

# CI: the Dockerfile's build stages (wolfssl-debian and build), on this
# machine.
cmd_ci() {
	local here top work
	here=$(cd "$(dirname "$0")" && pwd)
	top=$(cd "$here/../.." && pwd)
	work=$(mktemp -d "${TMPDIR:-/tmp}/moat-docker-build.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	local wolfssl=
	if [ "${1:-}" = system ]; then
		cmd_deps
	else
		cmd_deps source
		wolfssl="$work/wolfssl"
		cmd_wolfssl_debian "$wolfssl"
	fi
	# The image's build context: the source tree without build outputs
	# (Dockerfile.dockerignore), here a git export or a clean copy.
	if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
		mkdir "$work/src"
		git -C "$top" ls-files -z --cached --others --exclude-standard |
			(cd "$top" && xargs -0 cp --parents -t "$work/src" 2>/dev/null) || true
		[ -f "$work/src/configure.ac" ] || die "cannot copy $top"
		rm -f "$work/src/config.status"
	else
		cp -a "$top" "$work/src"
		(cd "$work/src" && { [ ! -f Makefile ] || make distclean >/dev/null; })
	fi
	cmd_moat "$work/src" "$work/out" "$wolfssl"
	# The runtime stage's package list must be installable by name.
	local p
	while read -r p; do
		apt-cache show "$p" >/dev/null 2>&1 || die "runtime package $p is unknown to apt"
	done <"$work/out.runtime-packages"
	# And the Dockerfile runs only build.sh steps.
	if grep -E '^RUN ' "$here/Dockerfile" | grep -vqE '^RUN (\[?"?)?/usr/local/bin/moat-build '; then
		grep -E '^RUN ' "$here/Dockerfile" | grep -vE '^RUN (\[?"?)?/usr/local/bin/moat-build '
		die "the Dockerfile has RUN steps that are not build.sh commands"
	fi
	# The default wolfSSL stage is the one from Debian's source package.
	grep -qx 'ARG WOLFSSL=debian' "$here/Dockerfile" ||
		die "the Dockerfile's default is not WOLFSSL=debian"
	grep -qx 'RUN /usr/local/bin/moat-build wolfssl-debian /opt/wolfssl' "$here/Dockerfile" ||
		die "the Dockerfile does not build the wolfssl-debian stage"
	[ -x "$here/../wolfssl/build.sh" ] || die "packaging/wolfssl/build.sh is missing"
	if [ -z "$wolfssl" ]; then
		say "ci: the wolfssl-debian stage was not run (\"build.sh ci\" runs it)"
	fi
	say "ci: PASS (moat built, unit-tested and installed as the image's build stage does)"
}

case ${1:-} in
deps) shift; cmd_deps "$@" ;;
wolfssl) shift; cmd_wolfssl "$@" ;;
wolfssl-debian) shift; cmd_wolfssl_debian "$@" ;;
moat) shift; cmd_moat "$@" ;;
runtime-deps) shift; cmd_runtime_deps "$@" ;;
runtime) shift; cmd_runtime "$@" ;;
ci) shift; cmd_ci "$@" ;;
*)
	sed -n '3,46p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
