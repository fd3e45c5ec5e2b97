#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the MQTT CONNECT fuzzer (tests/fuzz/fuzz_connect.c) with clang's
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, and run it for
# SECONDS (default 60) on a copy of the seed corpus tests/fuzz/corpus/connect.
#
# Everything is built and written in OUTDIR: the fuzzer, the working
# corpus, crash artifacts and fuzz.log. Without OUTDIR a fresh directory
# under $TMPDIR (or /tmp) is used and removed after a clean run, kept after
# a finding. Nothing is written into the source tree, so this also works
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

echo "run.sh: building $out/fuzz_connect"
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Wall -Wextra \
    -I "$top/include" -o "$out/fuzz_connect" \
    "$top/src/core/mqtt.c" "$top/src/core/text.c" "$here/fuzz_connect.c"

rm -rf "$out/corpus"
mkdir -p "$out/corpus" "$out/artifacts"
cp "$seeds"/* "$out/corpus/"

echo "run.sh: fuzzing for $secs s ($(ls "$out/corpus" | wc -l) seeds)"
rc=0
(
	cd "$out" &&
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	./fuzz_connect -max_total_time="$secs" -error_exitcode=1 \
	    -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	    -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
	    "$out/corpus"
) >"$out/fuzz.log" 2>&1 || rc=$?

grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|Done)' \
    "$out/fuzz.log" || true
if [ "$rc" -ne 0 ] || [ -n "$(ls "$out/artifacts")" ]; then
	echo "run.sh: FINDING (exit $rc). Log: $out/fuzz.log;" \
	    "inputs: $out/artifacts/" >&2
	tail -n 60 "$out/fuzz.log" >&2
	exit 1
fi
echo "run.sh: $secs s, no findings"
[ "$keep" = 1 ] || rm -rf "$out"
exit 0
