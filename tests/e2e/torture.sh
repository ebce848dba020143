#!/bin/bash
# Config torture: hundreds of hostile ini files through `pktpipe --check`.
#
# Base files: conf/*.ini, tests/graph/*.ini, and one graph per built plugin
# with every key of its option table set (from `pktpipe --describe NAME
# --format ini`, required keys given a plausible value), so that every
# key's parser gets hostile input. tests/tools/torture-mutate.py makes
# TORTURE_N files (default 400) from them: lines dropped, duplicated,
# swapped; values replaced by huge and negative numbers, unit garbage,
# very long values, NUL and binary bytes, unicode, /dev/zero and other
# device paths, a FIFO nobody writes to, unreachable endpoints; keys,
# section headers, plugin names and inputs mangled; bytes flipped; CRLF;
# truncation; chains of thousands of nodes and wide fan-ins.
#
# Each one, checked with the test plugins on the plugin path as well: the
# answer is 0, 1 or 2, never a signal (>= 128) or a hang (timeout 10 s);
# a non-zero answer comes with a message on stderr, and a 2 (a
# configuration error) names the file; no sanitizer report (under
# build/asan every run is an ASan+UBSan run). Every failure names the file
# and what was done to it; the file is kept in BUILD/torture-failed/.
# --check opens nothing, so hostile paths and endpoints are safe here;
# they point nowhere that matters anyway, and the runs happen in $TMP.
SUITE=torture
. "$(dirname "$0")/../lib.sh"

N=${TORTURE_N:-400}
SEED=${TORTURE_SEED:-11}
KEEP="$BUILD/torture-failed"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=99"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=99:print_stacktrace=1"

if [ ! -x "$PKTPIPE" ]; then
	fail "$PKTPIPE not built"
	finish
	exit 1
fi

# ------------------------------------------------------------------ #
# Base files                                                          #

mkdir -p "$TMP/base" "$TMP/mut" "$TMP/run"
cp "$ROOT"/tests/graph/*.ini "$TMP/base/"
for f in "$ROOT"/conf/*.ini; do
	cp "$f" "$TMP/base/conf-$(basename "$f")"
done
mkfifo "$TMP/fifo"

# full NAME: a graph around plugin NAME, every key set.
full() {
	local name=$1 roles
	roles=$("$PKTPIPE" --describe "$name" | sed -n 's/^roles: //p')
	"$PKTPIPE" --describe "$name" --format ini | python3 -c '
import re, sys
name, roles, tmp = sys.argv[1:4]
keys, required = [], set()
for line in sys.stdin.read().splitlines():
    m = re.match(r"^; (\w+) \((.*)\): ", line)
    if m and m.group(2).endswith("required"):
        required.add((m.group(1), m.group(2)))
    m = re.match(r"^;(\w+) = (.*)$", line)
    if m:
        keys.append((m.group(1), m.group(2)))
def filler(key):
    t = next((t for k, t in required if k == key), None)
    if t is None:
        return None
    if "endpoint" in t:
        return "tcp://127.0.0.1:*"
    if "path" in t:
        return tmp + "/nowhere/" + key
    if "int" in t:
        return "1"
    return "tap%d" if key == "ifname" else "x"
body = ["[n]", "plugin = " + name]
for k, v in keys:
    v = v or filler(k)
    if v:
        body.append(f"{k} = {v}")
src = ["[src]", "plugin = pcap-in", "path = " + tmp + "/nowhere.pcap", ""]
sink = ["", "[sink]", "plugin = pcap-out", "input = n", "path = /dev/null"]
if "source" in roles:
    out = body + sink
elif "filter" in roles:
    out = src + body[:2] + ["input = src"] + body[2:] + sink
elif "sink" in roles:
    out = src + body[:2] + ["input = src"] + body[2:]
elif "service" in roles:
    out = body
else:
    sys.exit(0)
print("\n".join(out))
' "$name" "$roles" "$TMP/run" >"$TMP/base/full-$name.ini"
	[ -s "$TMP/base/full-$name.ini" ] || rm -f "$TMP/base/full-$name.ini"
}
for p in $("$PKTPIPE" --list-plugins | awk '{print $1}'); do
	full "$p"
done
nfull=$(ls "$TMP"/base/full-*.ini 2>/dev/null | wc -l)
if [ "$nfull" -ge 5 ]; then ok; else fail "only $nfull plugin graphs made from --describe"; fi

# The unmutated full graphs are valid, or refused only for what --check
# cannot know (a plugin that needs something absent): they must check.
for f in "$TMP"/base/full-*.ini; do
	err=$(cd "$TMP/run" && timeout 10 "$PKTPIPE" --check -c "$f" 2>&1 >/dev/null)
	st=$?
	if [ $st -eq 0 ]; then ok; else
		fail "$(basename "$f") (every key at its default) does not check: exit $st: $(printf '%s' "$err" | head -c 300)"
	fi
done

python3 "$ROOT/tests/tools/torture-mutate.py" "$TMP/mut" "$N" "$SEED" "$TMP/fifo" "$TMP"/base/*.ini ||
	fail "torture-mutate.py failed"
nmut=$(ls "$TMP"/mut/*.ini 2>/dev/null | wc -l)
expect_eq "mutated files" "$nmut" "$N"

# ------------------------------------------------------------------ #
# The torture                                                         #

# keep FILE WHY: a failing input stays for whoever debugs it.
keep() {
	mkdir -p "$KEEP"
	cp "$1" "$KEEP/"
	cp "${1%.ini}.why" "$KEEP/" 2>/dev/null
}

declare -A STATUS
bad=0
for f in "$TMP"/mut/*.ini; do
	why=$(cat "${f%.ini}.why")
	(cd "$TMP/run" && exec timeout -s KILL 10 "$PKTPIPE" --check -c "$f" \
		--plugin-path "$BUILD/tests/plugins") >/dev/null 2>"$TMP/err"
	st=$?
	STATUS[$st]=$((${STATUS[$st]:-0} + 1))
	problem=""
	if [ $st -eq 137 ]; then
		problem="hung (killed after 10 s)"
	elif [ $st -ge 128 ]; then
		problem="killed by signal $((st - 128))"
	elif [ $st -gt 2 ]; then
		problem="exit $st"
	elif grep -qE 'Sanitizer|runtime error:' "$TMP/err"; then
		problem="sanitizer: $(grep -m1 -E 'Sanitizer|runtime error:' "$TMP/err")"
	elif [ $st -ne 0 ] && [ ! -s "$TMP/err" ]; then
		problem="exit $st without a message"
	elif [ $st -eq 2 ] && ! grep -qF "$f" "$TMP/err"; then
		problem="exit 2 without naming the file: $(head -c 200 "$TMP/err")"
	fi
	if [ -n "$problem" ]; then
		bad=$((bad + 1))
		keep "$f"
		fail "$(basename "$f") ($why): $problem"
	fi
	rm -f "$TMP/run/"* 2>/dev/null
done
[ $bad -eq 0 ] && ok
summary=""
for st in "${!STATUS[@]}"; do
	summary="$summary exit $st: ${STATUS[$st]};"
done
echo "torture: $N files:$summary"

# Both kinds of answer were seen: the mutations are not all trivially
# refused, nor all harmless.
if [ "${STATUS[0]:-0}" -gt 0 ] && [ "${STATUS[2]:-0}" -gt 0 ]; then ok; else
	fail "answers:$summary (expected some 0 and some 2)"
fi

# The FIFO nobody writes to was offered as a path: still nobody opened it
# for reading (a reader would have blocked: timeout above), and it is there.
if [ -p "$TMP/fifo" ]; then ok; else fail "the FIFO was replaced"; fi

finish
