#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the fuzz targets with clang's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, and run them one after the other, SECONDS
# (default 60) in all, shared between them:
#
#   fuzz_connect  the MQTT CONNECT parser and encoder (fuzz_connect.c),
#                 seeds in tests/fuzz/corpus/connect
#   fuzz_frame    the framer for every packet type (fuzz_frame.c), seeds
#                 in tests/fuzz/corpus/frame and corpus/connect
#   fuzz_http     the admin endpoint's HTTP request head reader
#                 (fuzz_http.c)
#   fuzz_gate     the CONNECT decision with real identity rules
#                 (fuzz_gate.c), seeds in tests/fuzz/corpus/gate; links
#                 the pure library's sources with wolfSSL and inih
#   fuzz_policy   the topic rules and subscription coverage, checked
#                 against brute force (fuzz_policy.c), seeds in
#                 tests/fuzz/corpus/policy
#   fuzz_guard    the topic guard on a device's stream after CONNECT
#                 (fuzz_guard.c), seeds in tests/fuzz/corpus/guard
#
# Everything is built and written in OUTDIR: the fuzzers, their working
# corpora, crash artifacts and one log per target (TARGET.log). Without
# OUTDIR a fresh directory under $TMPDIR (or /tmp) is used and removed
# after a clean run, kept after a finding. Nothing is written into the source tree, so this also works
# from a read-only `make distcheck` tree.
#
# Exit status: 0 clean run, 1 a finding (or a build failure), 77 (the
# automake "skipped" code) when clang or libFuzzer is not installed.
#
# usage: tests/fuzz/run.sh [SECONDS [OUTDIR]]
#   CLANG=clang-14 tests/fuzz/run.sh 600 /tmp/fuzz
set -eu

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
	echo "run.sh: SECONDS must be a number, not \"$secs\"" >&2
	exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seeds=$here/corpus/connect
cc=${CLANG:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "run.sh: $cc not found; the fuzzer needs clang with libFuzzer" \
	    "(Debian: apt-get install clang libclang-rt-14-dev). Skipped." >&2
	exit 77
fi

if [ $# -ge 2 ]; then
	out=$2
	mkdir -p "$out"
	keep=1
else
	out=$(mktemp -d "${TMPDIR:-/tmp}/moat-fuzz.XXXXXX")
	keep=0
fi
out=$(cd "$out" && pwd)

# Can this clang link a libFuzzer target with the sanitizers at all?
cat >"$out/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$out/probe" \
    "$out/probe.c" >"$out/probe.log" 2>&1; then
	echo "run.sh: $cc cannot build a libFuzzer target with ASan and" \
	    "UBSan (Debian: apt-get install libclang-rt-14-dev). Skipped:" >&2
	sed 's/^/  /' "$out/probe.log" >&2
	[ "$keep" = 1 ] || rm -rf "$out"
	exit 77
fi

targets="fuzz_connect fuzz_frame fuzz_gate fuzz_netstat fuzz_http fuzz_policy fuzz_guard"
ntargets=7
# Each target gets its share, at least one second.
share=$((secs / ntargets))
[ "$share" -ge 1 ] || share=1

# What each target links besides its own file: the MQTT codec and the text
# rules, or for the gate every pure source (src/core is self-contained),
# with wolfSSL and inih. A file that moves between
# these folders is updated here.
srcs_codec="$top/src/core/mqtt.c $top/src/core/text.c"
srcs_gate="$top/src/core/*.c"
libs_gate=$(pkg-config --libs wolfssl inih 2>/dev/null ||
    echo "-lwolfssl -linih")
cflags_gate=$(pkg-config --cflags wolfssl inih 2>/dev/null || true)
# The sources include the build's config.h; these need none of it.
: >"$out/config.h"

# build TARGET: the fuzzer from tests/fuzz/TARGET.c and what it links.
build() {
	echo "run.sh: building $out/$1"
	case $1 in
	fuzz_gate) srcs=$srcs_gate libs=$libs_gate cflags=$cflags_gate ;;
	fuzz_netstat) srcs="$top/src/core/netstat.c $top/src/core/addr.c $top/src/core/text.c" libs='' cflags='' ;;
	fuzz_http) srcs="$top/src/core/http.c" libs='' cflags='' ;;
	fuzz_policy) srcs="$top/src/core/policy.c $srcs_codec" libs='' cflags='' ;;
	fuzz_guard) srcs="$srcs_codec $top/src/core/guard.c $top/src/core/reason.c" libs='' cflags='' ;;
	*) srcs=$srcs_codec libs='' cflags='' ;;
	esac
	# shellcheck disable=SC2086 # srcs, cflags and libs are lists
	"$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -Wall -Wextra \
	    -I "$out" -I "$top/include" $cflags -o "$out/$1" \
	    $srcs "$here/$1.c" $libs
}

# seed TARGET: copy its seed corpora into OUTDIR/corpus-TARGET.
seed() {
	rm -rf "$out/corpus-$1"
	mkdir -p "$out/corpus-$1"
	case $1 in
	fuzz_connect) cp "$seeds"/* "$out/corpus-$1/" ;;
	fuzz_frame) cp "$seeds"/* "$here/corpus/frame"/* "$out/corpus-$1/" ;;
	fuzz_gate) cp "$here/corpus/gate"/* "$out/corpus-$1/" ;;
	fuzz_policy) cp "$here/corpus/policy"/* "$out/corpus-$1/" ;;
	fuzz_guard) cp "$here/corpus/guard"/* "$out/corpus-$1/" ;;
	esac
}

asan_options=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
ubsan_options=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary='^(#[0-9]+.*DONE|stat::number_of_executed_units|'
summary=$summary'stat::average_exec_per_sec|Done)'

# fuzz TARGET: run it for its share; 0 clean, else a finding.
fuzz() {
	echo "run.sh: $1 for $share s ($(ls "$out/corpus-$1" | wc -l) seeds)"
	rc=0
	(
		cd "$out" &&
		ASAN_OPTIONS=$asan_options UBSAN_OPTIONS=$ubsan_options \
		"./$1" -max_total_time="$share" -error_exitcode=1 \
		    -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
		    -print_final_stats=1 -artifact_prefix="$out/artifacts/$1-" \
		    "$out/corpus-$1"
	) >"$out/$1.log" 2>&1 || rc=$?
	grep -E "$summary" "$out/$1.log" || true
	found_inputs=0
	for a in "$out/artifacts/$1-"*; do
		if [ -e "$a" ]; then found_inputs=1; fi
	done
	if [ "$rc" -ne 0 ] || [ "$found_inputs" = 1 ]; then
		echo "run.sh: FINDING in $1 (exit $rc). Log: $out/$1.log;" \
		    "inputs: $out/artifacts/" >&2
		tail -n 60 "$out/$1.log" >&2
		return 1
	fi
	return 0
}

rm -rf "$out/artifacts"
mkdir -p "$out/artifacts"
for t in $targets; do
	build "$t"
	seed "$t"
done
found=0
for t in $targets; do
	fuzz "$t" || found=1
done
if [ "$found" -ne 0 ]; then
	exit 1
fi
echo "run.sh: $secs s over $ntargets targets, no findings"
[ "$keep" = 1 ] || rm -rf "$out"
exit 0
