#!/usr/bin/env bash
# Round trip of every capture in ../shared/corpus/pcap through
# pcap-in -> pcap-out, checked by tools nobody here wrote where possible.
#
#   tests/e2e/corpus.sh BUILD_DIR      (BUILD_DIR holds pktpipe, plugins/, tools/)
#
# For each file libpcap can open (tcpdump decides):
#   - intact (tcpdump reads it to the end): pktpipe exits 0 and pcapcmp finds
#     the output identical to the input;
#   - damaged (tcpdump stops with an error): pktpipe exits 1, not by a signal
#     or the timeout, says so in a line naming the file, and the output holds
#     exactly the packets before the damage (tcpdump's own copy of them);
#   - either way the stats JSON balances for every node: packets_in =
#     packets_out + dropped + packets_held;
#   - every 20th output is counted again by capinfos, when it is installed.
# Files libpcap cannot open must make pktpipe exit 1 with a message naming
# them. The corpus holds few damaged files, so every 20th intact file is
# also checked cut short by one byte. pcap-in reads every other file
# through its map (mmap = yes) and the others with read() (mmap = no).
#
# Prints "FAIL name: reason" per failure and "corpus: N passed, N failed";
# exit status 1 if any failed.
set -u

build=${1:?usage: corpus.sh BUILD_DIR}
build=$(cd "$build" && pwd) || exit 2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
corpus=$root/../shared/corpus/pcap
pktpipe=$build/pktpipe
pcapcmp=$build/tools/pcapcmp

for need in "$pktpipe" "$pcapcmp"; do
	[ -x "$need" ] || { echo "corpus: $need is missing (run make)" >&2; exit 2; }
done
command -v tcpdump >/dev/null || { echo "corpus: tcpdump is not installed" >&2; exit 2; }
[ -d "$corpus" ] || { echo "corpus: no corpus at $corpus" >&2; exit 2; }
have_capinfos=false
command -v capinfos >/dev/null && have_capinfos=true

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
checked=0 # outputs made, for the capinfos sample
reason=
mmap=yes # pcap-in's reader: every other file through its map, the rest read()

# Packets in a capture, as pcapcmp reads them; empty if it cannot.
count_packets() {
	"$pcapcmp" "$1" "$1" 2>/dev/null | sed -n 's/^\([0-9]*\) packets identical$/\1/p'
}

# Run pcap-in -> pcap-out on $1; sets rc; output in $tmp/out.pcap.
run_pipe() {
	rm -f "$tmp/out.pcap" "$tmp/stats.json"
	cat >"$tmp/pipe.ini" <<-EOF
		[in]
		plugin = pcap-in
		path = $1

		[out]
		plugin = pcap-out
		input = in
		path = $tmp/out.pcap
		precision = ns
	EOF
	timeout 60 "$pktpipe" -c "$tmp/pipe.ini" --stats-json "$tmp/stats.json" \
		>/dev/null 2>"$tmp/err"
	rc=$?
}

# rc must be want, and not a timeout or a signal.
check_status() {
	local want=$1
	if [ "$rc" -eq 124 ]; then
		reason="timed out"
	elif [ "$rc" -ge 128 ]; then
		reason="killed by signal $((rc - 128)): $(tail -n 1 "$tmp/err")"
	elif [ "$rc" -ne "$want" ]; then
		reason="exit status $rc, want $want: $(tail -n 1 "$tmp/err")"
	else
		return 0
	fi
	return 1
}

# Every node balances; pcap-out dropped nothing.
check_stats() {
	reason=$(python3 - "$tmp/stats.json" <<-'EOF'
		import json, sys
		try:
		    nodes = json.load(open(sys.argv[1]))["nodes"]
		except (OSError, ValueError, KeyError) as e:
		    sys.exit("stats JSON: %s" % e)
		for name, n in nodes.items():
		    dropped = sum(n.get("dropped", {}).values())
		    if n["packets_in"] != n["packets_out"] + dropped + n["packets_held"]:
		        sys.exit("%s: packets_in %d != out %d + dropped %d + held %d" % (
		            name, n["packets_in"], n["packets_out"], dropped, n["packets_held"]))
		drops = {k: v for k, v in nodes["out"].get("dropped", {}).items() if v}
		if drops:
		    sys.exit("out dropped %s" % drops)
	EOF
	)
}

# The output holds the same packets as $1; an input without packets may
# leave an empty output (pcap-out writes its header with the first packet).
check_output() {
	local want=$1 n
	if [ "$(count_packets "$want")" = 0 ] && [ ! -s "$tmp/out.pcap" ]; then
		return 0
	fi
	if ! reason=$("$pcapcmp" "$want" "$tmp/out.pcap" 2>&1); then
		reason="pcapcmp: $reason"
		return 1
	fi
	checked=$((checked + 1))
	$have_capinfos && [ $((checked % 20)) -eq 0 ] || return 0
	# Wireshark does not know every linktype libpcap does: then it has
	# nothing to say about either file.
	capinfos "$want" >/dev/null 2>&1 || return 0
	n=$(capinfos -T -r -c -M "$tmp/out.pcap" 2>/dev/null | cut -f 2)
	if [ "$n" != "$(count_packets "$want")" ]; then
		reason="capinfos counts ${n:-nothing}, pcapcmp $(count_packets "$want")"
		return 1
	fi
}

check_intact() {
	run_pipe "$1"
	check_status 0 && check_stats && check_output "$1"
}

check_damaged() {
	run_pipe "$1"
	check_status 1 || return 1
	if ! grep -qF -- "$1" "$tmp/err"; then
		reason="no error naming the file: $(tail -n 1 "$tmp/err")"
		return 1
	fi
	check_stats && check_output "$tmp/ref.pcap"
}

check_unreadable() {
	run_pipe "$1"
	check_status 1 || return 1
	grep -qF -- "$1" "$tmp/err" && return 0
	reason="no error naming the file: $(tail -n 1 "$tmp/err")"
	return 1
}

# tcpdump says whether libpcap reads the file to its end; what it read
# goes to ref.pcap, with nanosecond timestamps.
classify() {
	if ! tcpdump -r "$1" -c 1 -w /dev/null 2>/dev/null; then
		echo unreadable
		return
	fi
	if ! tcpdump --time-stamp-precision=nano -r "$1" -w "$tmp/ref.pcap" 2>"$tmp/tcpdump.err" ||
		grep -v '^reading from file' "$tmp/tcpdump.err" | grep -qiE 'truncated|bogus'; then
		echo damaged
	else
		echo intact
	fi
}

check_file() {
	local file=$1 name=$2 kind
	kind=$(classify "$file")
	reason=
	if [ "$mmap" = yes ]; then mmap=no; else mmap=yes; fi
	if "check_$kind" "$file"; then
		passed=$((passed + 1))
	else
		echo "FAIL $name: $kind (mmap $mmap): $reason"
		failed=$((failed + 1))
	fi
	[ "$kind" = intact ]
}

intact=0
for file in "$corpus"/*; do
	[ -f "$file" ] || continue
	name=$(basename "$file")
	check_file "$file" "$name" || continue
	intact=$((intact + 1))
	[ $((intact % 20)) -eq 0 ] || continue
	# Cut by one byte: the last record is damaged, the others must pass.
	[ "$(count_packets "$file")" != 0 ] || continue
	head -c -1 "$file" >"$tmp/$name"
	check_file "$tmp/$name" "$name (cut short)" || true
	rm -f "$tmp/$name"
done

echo "corpus: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
