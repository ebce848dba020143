#!/bin/bash
# Brief libFuzzer runs of the wire decoders (tests/fuzz/fuzz_wire.c), of
# ini parsing with graph validation (tests/fuzz/fuzz_config.c), of
# pcap-in on arbitrary capture files (tests/fuzz/fuzz_pcapin.c) and of the
# ring's query parser (tests/fuzz/fuzz_query.c): each
# target is built with clang into BUILD/fuzz/ and run for FUZZ_SECONDS
# (default 10; 0 runs the seeds and regressions once, no mutation) from the committed seeds (tests/fuzz/seeds/NAME, real
# encoder output) plus what earlier runs found (BUILD/fuzz/corpus/NAME).
# A crash, a sanitizer report or a failed property check fails the target;
# the input that did it is kept in BUILD/fuzz/ and named in the message.
# Inputs that once crashed are kept in tests/fuzz/regressions/NAME/ and
# replayed first, every run. `make fuzz` runs the same for longer.
# Without clang nothing can run: that is said plainly and counted as one
# failure, so that a CI without clang does not pass by accident.
SUITE=fuzz
. "$(dirname "$0")/../lib.sh"

SECONDS_EACH=${FUZZ_SECONDS:-10}
OUT="$BUILD/fuzz"
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "fuzz: clang not found: cannot build the fuzzers (apt-get install clang)" >&2
	fail "clang missing"
	finish
	exit
fi
mkdir -p "$OUT"

# fuzz_build NAME CLANG-ARGS...: BUILD/fuzz/fuzz_NAME with the flags every
# target shares; a failed build is a failure naming the target.
fuzz_build() {
	local name=$1 log="$TMP/build-$1.log"
	shift
	if (cd "$ROOT" && "$CLANG" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -Wall -Wextra -Werror "$@" -o "$OUT/fuzz_$name") >"$log" 2>&1; then
		return 0
	fi
	fail "$name: build failed: $(tail -n 5 "$log")"
	return 1
}

# The core's sources but main.c, relative to $ROOT.
core_sources() { (cd "$ROOT" && ls core/*.c | grep -v core/main.c); }

# A plugin's sources as the Makefile builds them: its folder's .c files and
# those its extra file names, relative to $ROOT.
plugin_sources() { (cd "$ROOT" && echo plugins/"$1"/*.c $(cat plugins/"$1"/extra 2>/dev/null)); }

# build NAME: the wire targets, fuzz_wire.c with -DFUZZ_NAME, and the zlib
# plugin, which brings the wire and framer code with it.
build() {
	fuzz_build "$1" -Iinclude -Iplugins/lib -D"FUZZ_$(echo "$1" | tr a-z- A-Z_)" \
		tests/fuzz/fuzz_wire.c $(plugin_sources zlib) -lz
}

# The config target reads whole core sources and real test plugins (the
# optimised build's: clang's sanitizer runtime cannot host gcc's).
build_config() {
	fuzz_build config -Iinclude -Icore tests/fuzz/fuzz_config.c $(core_sources) \
		-lltdl -linih -lpthread
}

# The pcapin target compiles the pcap-in plugin itself into the fuzzer with
# the core sources and runs it through a real graph (clang's runtime cannot
# host the gcc-built .so); its seeds are captures from ../shared/corpus.
build_pcapin() {
	fuzz_build pcapin -Iinclude -Icore -Iplugins/lib tests/fuzz/fuzz_pcapin.c \
		$(plugin_sources pcap-in) $(core_sources) -lpcap -lltdl -linih -lpthread
}

# The ring's query parser: a pure function over bytes, on its own.
build_query() {
	fuzz_build query -Iplugins/ring tests/fuzz/fuzz_query.c plugins/ring/query.c
}

# replay NAME: every kept regression input once.
replay() {
	local dir="$ROOT/tests/fuzz/regressions/$1" log="$TMP/replay-$1.log"
	[ -d "$dir" ] || return 0
	if (cd "$OUT" && timeout 120 "./fuzz_$1" -runs=0 "$dir") >"$log" 2>&1; then
		ok
	else
		fail "$1: a kept regression input fails again: $(grep -m1 -E 'ERROR|SUMMARY' "$log")"
		report "$log"
	fi
}

# run NAME SEEDS: bounded by the fuzzer's own clock, and by timeout too.
run() {
	local name=$1 seeds=$2 corpus="$OUT/corpus/$1" log="$TMP/run-$1.log"
	local budget=(-max_total_time="$SECONDS_EACH")
	[ "$SECONDS_EACH" -eq 0 ] && budget=(-runs=0)
	mkdir -p "$corpus"
	if (cd "$OUT" && timeout $((SECONDS_EACH + 60)) "./fuzz_$name" \
		"${budget[@]}" -max_len=8192 -rss_limit_mb=1024 \
		-timeout=10 -print_final_stats=1 "$corpus" "$seeds") >"$log" 2>&1; then
		ok
		echo "fuzz: $name: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
			grep -o '[0-9]*$') runs clean"
	else
		fail "$name: $(grep -m1 -E 'ERROR|SUMMARY|deadly|Test unit written' "$log") $(grep -o 'Test unit written to .*' "$log")"
		report "$log"
	fi
}

# report LOG: what a CI log needs to reproduce a finding without the
# machine it ran on: the sanitizer's words, the stack without the
# sanitizer's and libFuzzer's own frames, and the input itself in hex (od:
# nothing beyond coreutils) when it is small.
report() {
	local unit
	grep -E 'runtime error|ERROR:|SUMMARY|^ *#[0-9]+ ' "$1" |
		grep -v -E '__sanitizer|fuzzer::|__asan|__ubsan|libc\.so|_start' |
		head -n 20 | sed 's/^/fuzz:   /' >&2
	unit=$(grep -o 'Test unit written to .*' "$1" | sed 's/^Test unit written to //')
	[ -n "$unit" ] && [ -f "$OUT/$unit" ] && [ "$(wc -c <"$OUT/$unit")" -le 4096 ] &&
		echo "fuzz:   input (hex): $(od -An -tx1 -v "$OUT/$unit" | tr -d ' \n')" >&2
	return 0
}

for t in native legacy legacy_rc; do
	seeds="$ROOT/tests/fuzz/seeds/${t//_/-}"
	if [ ! -d "$seeds" ]; then
		fail "$t: no seeds in $seeds"
		continue
	fi
	build "$t" && replay "$t" && run "$t" "$seeds"
done

export FUZZ_PLUGIN_DIR="$ROOT/build/tests/plugins"
if [ ! -e "$FUZZ_PLUGIN_DIR/gen.so" ]; then
	fail "config: test plugins not built in $FUZZ_PLUGIN_DIR (make test BUILD=build)"
else
	build_config && replay config && run config "$ROOT/tests/fuzz/seeds/config"
fi

build_pcapin && replay pcapin && run pcapin "$ROOT/tests/fuzz/seeds/pcapin"

build_query && replay query && run query "$ROOT/tests/fuzz/seeds/query"

finish
