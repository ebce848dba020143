#!/bin/bash
# The host end to end with the test plugins: running, accounting, fan-in
# and fan-out, draining, signals, failures, the loader's refusals and the
# informational commands.
SUITE=lifecycle
. "$(dirname "$0")/../lib.sh"

P=(--plugin-path "$TESTPLUGINS")

run() { # run INI [args...]: status in $status, stderr in $err
	err=$(timeout 30 "$PKTPIPE" "${P[@]}" -c "$@" 2>&1 >/dev/null)
	status=$?
}

# --- a chain: drops counted, accounting balanced, bytes exact ---
cat > "$TMP/chain.ini" <<INI
[src]
plugin = gen
count = 1000
size = 200

[mid]
plugin = pass
input = src
drop_every = 10
hold_last = yes

[sink]
plugin = count
input = mid
INI
run "$TMP/chain.ini" --stats-json "$TMP/chain.json"
expect_eq "chain: exit" "$status" 0
expect_balanced "chain" "$TMP/chain.json"
expect_eq "chain: src out" "$(stat "$TMP/chain.json" src packets_out)" 1000
expect_eq "chain: mid dropped" "$(stat "$TMP/chain.json" mid dropped test)" 100
expect_eq "chain: sink in" "$(stat "$TMP/chain.json" sink packets_in)" 900
expect_eq "chain: sink bytes" "$(stat "$TMP/chain.json" sink bytes_out)" 180000
expect_contains "chain: summary line" "$err" "pktpipe: mid: info: summary (pass): in 1000 out 900 held 0 dropped 100 (test=100)"

# --- fan-out and fan-in ---
cat > "$TMP/fan.ini" <<INI
[a]
plugin = gen
count = 300

[b]
plugin = gen
count = 200
batch = 7

[both]
plugin = count
input = a, b

[only-a]
plugin = count
input = a
INI
run "$TMP/fan.ini" --stats-json "$TMP/fan.json"
expect_eq "fan: exit" "$status" 0
expect_balanced "fan" "$TMP/fan.json"
expect_eq "fan-in" "$(stat "$TMP/fan.json" both packets_out)" 500
expect_eq "fan-out" "$(stat "$TMP/fan.json" only-a packets_out)" 300

# --- worker threads: the same result as without ---
sed -e 's/^plugin = pass$/plugin = pass\nthread = yes/' -e 's/^plugin = count$/plugin = count\nthread = yes/' \
	"$TMP/chain.ini" > "$TMP/threads.ini"
run "$TMP/threads.ini" --stats-json "$TMP/threads.json"
expect_eq "threads: exit" "$status" 0
expect_balanced "threads" "$TMP/threads.json"
for node in src mid sink; do
	for f in packets_in packets_out bytes_out; do
		expect_eq "threads: $node $f" "$(stat "$TMP/threads.json" $node $f)" \
			"$(stat "$TMP/chain.json" $node $f)"
	done
done

# --- a slow threaded consumer: its full queue drops, the producer never stalls ---
cat > "$TMP/slowsink.ini" <<INI
[src]
plugin = gen
count = 3000
batch = 1

[sink]
plugin = count
input = src
thread = yes
queue = 2
delay = 2ms
INI
run "$TMP/slowsink.ini" --stats-json "$TMP/slowsink.json"
expect_eq "queue-full: exit" "$status" 0
expect_balanced "queue-full" "$TMP/slowsink.json"
qf=$(stat "$TMP/slowsink.json" sink dropped queue-full)
if [ "$qf" -gt 0 ]; then ok; else fail "queue-full: no drops counted ($qf)"; fi
expect_eq "queue-full: in = delivered + dropped" \
	$(($(stat "$TMP/slowsink.json" sink packets_out) + qf)) 3000

# --- a slow drain still delivers everything ---
sed -e 's/hold_last = yes/hold_last = yes\nslow_stop = yes/' "$TMP/chain.ini" > "$TMP/slow.ini"
run "$TMP/slow.ini" --stats-json "$TMP/slow.json"
expect_eq "slow drain: exit" "$status" 0
expect_eq "slow drain: sink in" "$(stat "$TMP/slow.json" sink packets_in)" 900
expect_balanced "slow drain" "$TMP/slow.json"

# --- the drain deadline is enforced ---
run "$TMP/slow.ini" --drain-timeout 10ms --stats-json "$TMP/late.json"
expect_eq "drain deadline: exit" "$status" 1
expect_contains "drain deadline: message" "$err" "pktpipe: mid: error: still draining when the deadline passed"

# --- SIGTERM stops an endless source, drains, exits 0 ---
cat > "$TMP/endless.ini" <<INI
[src]
plugin = gen
count = 0
interval = 1ms

[mid]
plugin = pass
input = src
hold_last = yes

[sink]
plugin = count
input = mid
INI
start endless "$TMP/endless.ini" "${P[@]}"
sleep 0.5
kill -USR1 "${PIDS[endless]}"
if wait_for 5 test -s "$TMP/endless.json"; then ok; else fail "SIGUSR1 wrote no stats"; fi
expect_balanced "SIGUSR1 snapshot" "$TMP/endless.json"
stop endless TERM 10
expect_eq "SIGTERM: exit" "$status" 0
expect_balanced "SIGTERM" "$TMP/endless.json"
sent=$(stat "$TMP/endless.json" src packets_out)
expect_eq "SIGTERM: everything drained" "$(stat "$TMP/endless.json" sink packets_in)" "$sent"
if [ "$sent" -gt 0 ]; then ok; else fail "SIGTERM: endless source sent nothing"; fi

# --- a failing sink: exit 1, the rest accounted ---
cat > "$TMP/failing.ini" <<INI
[src]
plugin = gen
count = 1000

[sink]
plugin = count
input = src
fail_after = 100
INI
run "$TMP/failing.ini" --stats-json "$TMP/failing.json"
expect_eq "failing sink: exit" "$status" 1
expect_contains "failing sink: message" "$err" "pktpipe: sink: error: process failed: Input/output error"
expect_balanced "failing sink" "$TMP/failing.json"

# --- open() failure ---
printf '[src]\nplugin = gen\nfail_open = yes\n[sink]\nplugin = count\ninput = src\n' > "$TMP/fo.ini"
run "$TMP/fo.ini"
expect_eq "open failure: exit" "$status" 1
expect_contains "open failure: message" "$err" "pktpipe: src: error: cannot open (plugin gen): Input/output error"

# --- loader refusals, through the CLI ---
describe() { err=$("$PKTPIPE" "${P[@]}" --describe "$1" 2>&1 >/dev/null); status=$?; }
describe badsize
expect_eq "wrong struct size: exit" "$status" 2
expect_contains "wrong struct size" "$err" "badsize.so: plugin descriptor is 16 bytes, ABI version 1 needs at least"
describe badabi
expect_contains "wrong ABI" "$err" "badabi.so: plugin ABI version 99, this host speaks version 1"
describe noprocess
expect_contains "missing callback" "$err" "plugin 'noprocess' lacks the required callback process"
describe misnamed
expect_contains "misnamed" "$err" "misnamed.so: declares plugin 'other', expected 'misnamed'"
describe badopts
expect_contains "bad option table" "$err" "plugin 'badopts': option 'x' lies outside its config_size 8"
describe notaplugin
expect_contains "not a plugin" "$err" "notaplugin.so: not a pktpipe plugin (no symbol pp_plugin)"
describe needs-gone
expect_contains "missing dependency" "$err" "libppgone.so: cannot open shared object file"
describe nosuch
expect_contains "absent plugin" "$err" "plugin 'nosuch' not found (looked for nosuch.so in $TESTPLUGINS"

# --- duplicates across directories; the environment variable ---
mkdir -p "$TMP/d1" "$TMP/d2"
cp "$TESTPLUGINS/gen.so" "$TMP/d1/" && cp "$TESTPLUGINS/gen.so" "$TMP/d2/"
out=$("$PKTPIPE" --plugin-path "$TMP/d1" --plugin-path "$TMP/d2" --list-plugins 2>&1)
expect_contains "duplicate name" "$out" "$TMP/d2/gen.so: duplicate plugin name 'gen', already loaded from $TMP/d1/gen.so"
out=$(PKTPIPE_PLUGIN_PATH="$TMP/d2" "$PKTPIPE" --describe gen 2>&1)
expect_contains "PKTPIPE_PLUGIN_PATH" "$out" "file: $TMP/d2/gen.so"

# --- informational commands ---
out=$("$PKTPIPE" "${P[@]}" --list-plugins 2>/dev/null)
expect_contains "list: gen" "$out" "gen            source                 test source of synthetic packets"
expect_contains "list: pass" "$out" "pass           filter"
out=$("$PKTPIPE" "${P[@]}" --describe gen)
expect_contains "describe: header" "$out" "gen: test source of synthetic packets"
expect_contains "describe: a key" "$out" "count (int, default: 100)"
expect_contains "describe: bounds" "$out" "bounds: 0 .. 1000000000"
expect_contains "describe: enum" "$out" "choices: zero, counter"
"$PKTPIPE" --help | grep -q "^usage: pktpipe -c FILE"
expect_eq "--help" "$?" 0
out=$("$PKTPIPE" --version)
expect_eq "--version" "$out" "pktpipe 0.1.0 (plugin ABI 1)"
"$PKTPIPE" --bogus >/dev/null 2>&1
expect_eq "bad option: exit" "$?" 2
"$PKTPIPE" >/dev/null 2>&1
expect_eq "no arguments: exit" "$?" 2

finish
