#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build moat's Debian binary package from the release tarball ("make deb").
#
#   packaging/build-deb.sh TARBALL DEBIAN_DIR BUILD_DIR
#
# Unpacks TARBALL (moat-VERSION.tar.gz from "make dist") into BUILD_DIR,
# copies DEBIAN_DIR (packaging/debian) into the unpacked tree as debian/ and
# runs "dpkg-buildpackage -us -uc -b" there; nothing is written into the
# source tree. The .deb lands in BUILD_DIR and its path is the last line
# printed. The Debian changelog's upstream version must be the tarball's
# (AC_INIT in configure.ac).
#
# The package build skips the test suite (DEB_BUILD_OPTIONS=nocheck): "make
# check" and .ci/run run it on the same sources. MOAT_DEB_CHECK=1 runs it
# inside the package build too (then libcriterion-dev, mosquitto,
# mosquitto-clients, openssl and python3 are build dependencies).
#
# MOAT_WOLFSSL=PREFIX ("make deb WOLFSSL=PREFIX") links moat statically
# against the libwolfssl.a that packaging/wolfssl/build.sh installed in
# PREFIX instead of Debian's shared libwolfssl: faster handshakes, but
# wolfSSL's security updates then come only with a rebuilt moat package
# (README, "A wolfSSL built for moat").
#
# Needs dpkg-dev and debhelper (and no fakeroot: Rules-Requires-Root: no).
set -eu

die() {
	echo "build-deb: error: $*" >&2
	exit 1
}

[ $# -eq 3 ] || die "usage: $0 TARBALL DEBIAN_DIR BUILD_DIR"
tarball=$1
debian_dir=$2
build_dir=$3

[ -f "$tarball" ] || die "$tarball: no such file (run \"make dist\" first)"
[ -f "$debian_dir/control" ] || die "$debian_dir: not a debian/ directory (no control file)"
for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found; install the build tools: apt-get install dpkg-dev debhelper"
done

# moat-0.1.0.tar.gz -> moat, 0.1.0
base=$(basename "$tarball" .tar.gz)
name=${base%-*}
version=${base##*-}
[ "$name" != "$base" ] && [ -n "$version" ] ||
	die "$tarball: expected a name like moat-VERSION.tar.gz"

deb_version=$(dpkg-parsechangelog -l "$debian_dir/changelog" -S Version)
deb_source=$(dpkg-parsechangelog -l "$debian_dir/changelog" -S Source)
[ "$deb_source" = "$name" ] ||
	die "$debian_dir/changelog is for source \"$deb_source\", the tarball for \"$name\""
upstream=${deb_version#*:}
upstream=${upstream%-*}
[ "$upstream" = "$version" ] ||
	die "$debian_dir/changelog is at $deb_version but the tarball is $version: add a changelog entry ($version-1) with dch -v $version-1, or edit packaging/debian/changelog"

mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
debian_dir=$(cd "$debian_dir" && pwd)
src="$build_dir/$base"

# Start clean: a previous build's tree and outputs of this version.
if [ -d "$src" ]; then
	chmod -R u+w "$src"
	rm -rf "$src"
fi
rm -f "$build_dir/${name}_${upstream}"-*.deb "$build_dir/${name}-dbgsym_${upstream}"-*.deb \
	"$build_dir/${name}_${upstream}"-*.buildinfo "$build_dir/${name}_${upstream}"-*.changes

echo "build-deb: unpacking $tarball into $build_dir"
tar -xzf "$tarball" -C "$build_dir"
[ -d "$src" ] || die "$tarball did not unpack into $base/"
# The orig tarball lets "dpkg-buildpackage -S" make a source package from
# the same tree later; -b does not need it.
cp -f "$tarball" "$build_dir/${name}_${upstream}.orig.tar.gz"
cp -R "$debian_dir" "$src/debian"
# dh_autoreconf runs aclocal -I m4; the tarball has no empty m4/.
mkdir -p "$src/m4"

# What debian/ takes from the tarball: missing ones mean Makefile.am lacks
# them in dist_man_MANS or EXTRA_DIST.
for f in README doc/moat.8 doc/moat.ini.5 etc/moat.ini \
	$(cat "$src/debian/moat.examples"); do
	[ -f "$src/$f" ] ||
		die "$f is not in $(basename "$tarball"): add it to dist_man_MANS or EXTRA_DIST in Makefile.am"
done

# The fast variant: a prefix holding only the headers and libwolfssl.a,
# so that configure links it in (no rpath to a directory the package does
# not ship).
unset MOAT_WOLFSSL_STATIC
if [ -n "${MOAT_WOLFSSL:-}" ]; then
	wolf=$(cd "$MOAT_WOLFSSL" 2>/dev/null && pwd) ||
		die "WOLFSSL=$MOAT_WOLFSSL: no such directory"
	[ -f "$wolf/include/wolfssl/options.h" ] && [ -f "$wolf/lib/libwolfssl.a" ] ||
		die "WOLFSSL=$wolf: no include/wolfssl/options.h or lib/libwolfssl.a (build it with packaging/wolfssl/build.sh $wolf)"
	rm -rf "$build_dir/wolfssl-static"
	mkdir -p "$build_dir/wolfssl-static/lib"
	cp -R "$wolf/include" "$build_dir/wolfssl-static/include"
	cp "$wolf/lib/libwolfssl.a" "$build_dir/wolfssl-static/lib/"
	MOAT_WOLFSSL_STATIC="$build_dir/wolfssl-static"
	export MOAT_WOLFSSL_STATIC
	echo "build-deb: linking the wolfSSL of $wolf statically"
fi

# Run by make: its jobserver and flags are not for dpkg-buildpackage.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES || true
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
if [ "${MOAT_DEB_CHECK:-0}" = 1 ]; then
	DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}"
	export DEB_BUILD_OPTIONS
else
	DEB_BUILD_OPTIONS="nocheck parallel=$jobs ${DEB_BUILD_OPTIONS:-}"
	DEB_BUILD_PROFILES="nocheck ${DEB_BUILD_PROFILES:-}"
	export DEB_BUILD_OPTIONS DEB_BUILD_PROFILES
fi

echo "build-deb: dpkg-buildpackage -us -uc -b in $src (DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)"
(cd "$src" && dpkg-buildpackage -us -uc -b) ||
	die "dpkg-buildpackage failed (missing build dependencies? run .ci/deps, or: apt-get build-dep $src)"

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$build_dir/${name}_${deb_version#*:}_${arch}.deb"
[ -f "$deb" ] || die "dpkg-buildpackage succeeded but $deb is missing"
if [ -n "${MOAT_WOLFSSL_STATIC:-}" ]; then
	if dpkg-deb -f "$deb" Depends | grep -q libwolfssl; then
		die "$deb still depends on Debian's libwolfssl"
	fi
	echo "build-deb: $deb has wolfSSL linked in (no libwolfssl dependency)"
fi
echo "build-deb: built $deb"
echo "$deb"
