#!/bin/bash
# valgrind memcheck over a short run of every plugin that is built: no
# invalid access, no use of uninitialised memory, no definite leak.
#
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
#
# Runs (each plugin in at least one, with real peers):
#   - --list-plugins (loads and unloads every plugin) and --check;
#   - files: pcap-in (pcap and pcapng) -> pcap-out, and -> ratelimit ->
#     zlib decompress -> pcap-out, and -> zlib compress -> zlib decompress,
#     with the zlib codec and with zstd's;
#   - the wire: a sender pcap-in -> zlib compress -> zmq-out, a receiver
#     zmq-in -> pcap-out and ring (queried with pktpipe-query, also under
#     valgrind), a legacy-rc zmq-in fed by tests/tools/legacy-peer.py
#     (valid and malformed messages), and statsd (a dead port, a
#     stats_endpoint queried once);
#   - nflog (user = nobody) and tap-out, in a network namespace.
# A plugin that is not built is said so and skipped (counted neither way).
# valgrind and ASan do not mix: under a BUILD ending in /asan this suite
# prints its closing line with nothing run. Each run is kept short
# (valgrind is some 20-50 times slower); every wait is bounded; processes
# and namespaces go with on_exit.
SUITE=valgrind
. "$(dirname "$0")/../lib.sh"

case "$BUILD" in
*/asan)
	echo "valgrind: skipped: $BUILD is an ASan build (valgrind and ASan do not mix)"
	finish
	exit
	;;
esac
if ! command -v valgrind >/dev/null; then
	fail "valgrind is not installed (apt-get install valgrind)"
	finish
	exit
fi

VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite --track-fds=no --trace-children=no)
INPUT="$CORPUS/babel_rfc6126bis.pcap"
INPUTNG="$CORPUS/hdlc_slarp.pcapng"
SNAPSHOT_WAIT=20 # for a stats file, from a pktpipe some 20-50 times slower

have() { [ -f "$BUILD/plugins/$1.so" ]; }
for p in pcap-in pcap-out zmq-in zmq-out zlib zstd statsd nflog tap-out ring ratelimit; do
	have $p || echo "valgrind: note: plugin $p is not built: its runs are skipped"
done

# vg_check NAME STATUS: a run's verdict from its exit status and its log
# (valgrind -q writes only errors there).
vg_check() {
	local name=$1 st=$2 log="$TMP/$1.vg"
	if [ "$st" = 99 ] || grep -qE '^==[0-9]+== +(Invalid|Conditional|Use of|Syscall param|Mismatched|Source and|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" 2>/dev/null; then
		cp "$log" "$BUILD/valgrind-$name.log"
		fail "$name: memcheck (exit $st): $(grep -m3 -E '^==[0-9]+== +[A-Z0-9]' "$log" | tr '\n' ' ') (log kept in $BUILD/valgrind-$name.log)"
	elif [ "$st" != 0 ]; then
		fail "$name: exit $st: $(tail -n 3 "$TMP/$name.err" 2>/dev/null | tr '\n' ' ')"
	else
		ok
	fi
}

# vg_run NAME ARGS...: a finite run under valgrind, bounded.
vg_run() {
	local name=$1
	shift
	timeout -s KILL 300 "${VG[@]}" --log-file="$TMP/$name.vg" "$PKTPIPE" "$@" \
		>"$TMP/$name.out" 2>"$TMP/$name.err"
	vg_check "$name" $?
}

# vg_start NAME INI: a long-running graph under valgrind, in the background.
vg_start() {
	spawn "$1" "${VG[@]}" --log-file="$TMP/$1.vg" "$PKTPIPE" -c "$2" --stats-json "$TMP/$1.json" \
		--drain-timeout 20s >/dev/null
}

# vg_stop NAME: SIGTERM, a bounded wait for valgrind's leak check.
vg_stop() {
	stop "$1" TERM 120
	vg_check "$1" "$status"
}

# ------------------------------------------------------------------ #
# The host alone, and files                                           #

vg_run list --list-plugins
vg_run check --check -c "$ROOT/conf/gateway.ini"

if have pcap-in && have pcap-out; then
	printf '[a]\nplugin = pcap-in\npath = %s\n\n[b]\nplugin = pcap-in\npath = %s\n\n[out-a]\nplugin = pcap-out\ninput = a\npath = %s\n\n[out-b]\nplugin = pcap-out\ninput = b\npath = %s\nprecision = ns\nthread = yes\n' \
		"$INPUT" "$INPUTNG" "$TMP/a.pcap" "$TMP/b.pcap" >"$TMP/files.ini"
	vg_run files -c "$TMP/files.ini" --stats-json "$TMP/files.json"
	expect_balanced "files" "$TMP/files.json"
	expect_eq "files: copy" "$("$BUILD/tools/pcapcmp" "$INPUT" "$TMP/a.pcap" 2>&1)" \
		"$(stat "$TMP/files.json" a packets_out) packets identical"
fi

# vg_roundtrip NAME [PACK_KEYS]: pcap-in -> zlib compress (batches of 16;
# PACK_KEYS: more lines, \n-separated) -> zlib decompress -> pcap-out, under
# valgrind: balanced, and the capture comes back whole.
vg_roundtrip() {
	{
		printf '[src]\nplugin = pcap-in\npath = %s\n\n' "$INPUT"
		printf '[pack]\nplugin = zlib\ninput = src\nmode = compress\n%bbatch_packets = 16\n\n' "${2:-}"
		printf '[unpack]\nplugin = zlib\ninput = pack\nmode = decompress\n\n'
		printf '[out]\nplugin = pcap-out\ninput = unpack\npath = %s\n' "$TMP/$1.pcap"
	} >"$TMP/$1.ini"
	vg_run "$1" -c "$TMP/$1.ini" --stats-json "$TMP/$1.json"
	expect_balanced "$1" "$TMP/$1.json"
	expect_eq "$1: round trip" "$("$PCAPCMP" "$INPUT" "$TMP/$1.pcap" 2>&1)" \
		"$(stat "$TMP/$1.json" src packets_out) packets identical"
}

if have pcap-in && have pcap-out && have zlib; then
	vg_roundtrip zlib
fi

if have pcap-in && have pcap-out && have zlib && have zstd; then
	# The zstd codec, through the zlib plugin's frame nodes.
	vg_roundtrip zstd 'codec = zstd\n'
fi

if have pcap-in && have pcap-out && have zlib && have ratelimit; then
	# lwm low, hwm high: the compressing band, frames undone downstream.
	{
		printf '[src]\nplugin = pcap-in\npath = %s\nloop = 3\n\n' "$INPUT"
		printf '[rc]\nplugin = ratelimit\ninput = src\nlwm = 1KiB/s\nhwm = 1GiB/s\n\n'
		printf '[unpack]\nplugin = zlib\ninput = rc\nmode = decompress\n\n'
		printf '[out]\nplugin = pcap-out\ninput = unpack\npath = %s\n' "$TMP/rl.pcap"
	} >"$TMP/ratelimit.ini"
	vg_run ratelimit -c "$TMP/ratelimit.ini" --stats-json "$TMP/ratelimit.json"
	expect_balanced "ratelimit" "$TMP/ratelimit.json"
fi

# ------------------------------------------------------------------ #
# The wire, a ring and statsd                                         #

if have zmq-in && have zmq-out && have pcap-in && have pcap-out; then
	rm -f "$TMP/lport"
	legacy=no
	if have zlib && "$PY" -c 'import zmq' 2>/dev/null; then
		spawn lpeer "$PY" "$ROOT/tests/tools/legacy-peer.py" rc "$TMP/lport" "$TMP/lexpect.pcap" \
			"$TMP/linfo.json" 65536
		wait_for 20 test -s "$TMP/lport" && legacy=yes
	fi
	{
		printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nmax_message = 1MiB\n\n'
		printf '[out]\nplugin = pcap-out\ninput = in\npath = %s\n\n' "$TMP/rx.pcap"
		if have ring; then
			printf '[ring]\nplugin = ring\ninput = in\nwindow = 256KiB\nendpoint = tcp://127.0.0.1:*\n\n'
		fi
		if [ $legacy = yes ]; then
			printf '[old]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:%s\nbind = no\nwire = legacy-rc\nmax_message = 64KiB\n\n' "$(cat "$TMP/lport")"
			printf '[old-out]\nplugin = pcap-out\ninput = old\npath = %s\nlinktype = 12\nsnaplen = 65535\n\n' "$TMP/old.pcap"
		fi
		if have statsd; then
			deadport=$(free_port udp)
			printf '[sd]\nplugin = statsd\nhost = 127.0.0.1:%s\ninterval = 100ms\nstats_endpoint = %s\n' \
				"$deadport" "$TMP/stats.sock"
		fi
	} >"$TMP/rx.ini"
	vg_start rx "$TMP/rx.ini"
	if ! wait_for 60 grep -q 'in: info: bound to' "$TMP/rx.err"; then
		fail "wire: the receiver did not bind: $(tail -n 3 "$TMP/rx.err")"
	else
		port=$(bound_port "$TMP/rx.err" in)
		{
			printf '[src]\nplugin = pcap-in\npath = %s\nloop = 2\n\n' "$INPUT"
			if have zlib; then
				printf '[pack]\nplugin = zlib\ninput = src\nmode = compress\nbatch_packets = 32\n\n'
				from=pack
			else
				from=src
			fi
			printf '[z]\nplugin = zmq-out\ninput = %s\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 100000\nlinger = 60s\n' "$from" "$port"
		} >"$TMP/tx.ini"
		vg_run tx -c "$TMP/tx.ini" --stats-json "$TMP/tx.json"
		expect_balanced "wire: sender" "$TMP/tx.json"
		sent=$(stat "$TMP/tx.json" src packets_out)
		wait_stat rx 60 out packets_out -ge "$sent" || fail "wire: the receiver wrote too little"
		if have ring && [ -x "$BUILD/pktpipe-query" ]; then
			rport=$(bound_port "$TMP/rx.err" ring)
			timeout -s KILL 120 "${VG[@]}" --log-file="$TMP/query.vg" "$BUILD/pktpipe-query" \
				--timeout 60s --limit-packets 50 "tcp://127.0.0.1:$rport" >"$TMP/q.pcap" 2>"$TMP/query.err"
			vg_check query $?
			expect_eq "ring: query answer" "$(capinfos -c -M "$TMP/q.pcap" 2>/dev/null | sed -n 's/^Number of packets: *//p')" 50
		fi
		if [ $legacy = yes ]; then
			n=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames"])' "$TMP/linfo.json")
			wait_stat rx 60 old frames_in -ge "$n" || fail "wire: legacy-rc: not every message arrived"
		fi
		if have statsd; then
			timeout 20 "$PY" - "$TMP/stats.sock" <<'PY' && ok || fail "statsd: stats_endpoint gave no JSON"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(sys.argv[1])
b = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    b += d
json.loads(b)
PY
		fi
	fi
	vg_stop rx
	expect_balanced "wire: receiver" "$TMP/rx.json"
	if [ $legacy = yes ]; then
		if cmp -s "$TMP/old.pcap" "$TMP/lexpect.pcap"; then ok; else fail "wire: legacy-rc output differs"; fi
	fi
	have statsd && { [ "$(stat "$TMP/rx.json" sd send_errors)" -ge 1 ] && ok || fail "statsd: no send error counted towards a dead port"; }
fi

# ------------------------------------------------------------------ #
# nflog and tap-out, in a network namespace                           #

if { have nflog || have tap-out; } && new_ns "ppvg-$$"; then
	chmod 711 "$TMP"
	mkdir -m 777 "$TMP/nobody"
	if have nflog && have pcap-out && command -v iptables >/dev/null; then
		ip netns exec "$NS" iptables -A OUTPUT -o lo -p icmp -j NFLOG --nflog-group 7
		printf '[cap]\nplugin = nflog\ngroups = 7\nuser = nobody\nrcvbuf = 1MiB\n\n[out]\nplugin = pcap-out\ninput = cap\npath = %s\n' \
			"$TMP/nobody/nflog.pcap" >"$TMP/nflog.ini"
		spawn nflog ip netns exec "$NS" "${VG[@]}" --log-file="$TMP/nflog.vg" "$PKTPIPE" \
			-c "$TMP/nflog.ini" --stats-json "$TMP/nobody/nflog.json" >/dev/null
		if wait_for 60 ip netns exec "$NS" awk '$1 == 7 { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_log; then
			ip netns exec "$NS" ping -c 10 -i 0.05 -W 1 127.0.0.1 >/dev/null 2>&1
			sleep 1
		else
			fail "nflog: group 7 not bound: $(tail -n 3 "$TMP/nflog.err")"
		fi
		rm -f "$TMP/nobody/nflog.json"
		vg_stop nflog
		expect_balanced "nflog" "$TMP/nobody/nflog.json"
		n=$(stat "$TMP/nobody/nflog.json" out packets_out 2>/dev/null)
		if [ "${n:-0}" -ge 20 ]; then ok; else fail "nflog: ${n:-no} packets written (20 expected: 10 pings and replies)"; fi
	fi
	if have tap-out && have pcap-in; then
		printf '[src]\nplugin = pcap-in\npath = %s\n\n[tap]\nplugin = tap-out\ninput = src\nifname = pptap%d\n' \
			"$INPUT" $$ >"$TMP/tap.ini"
		timeout -s KILL 300 ip netns exec "$NS" "${VG[@]}" --log-file="$TMP/tap.vg" "$PKTPIPE" \
			-c "$TMP/tap.ini" --stats-json "$TMP/tap.json" >/dev/null 2>"$TMP/tap.err"
		vg_check tap $?
		expect_balanced "tap" "$TMP/tap.json"
	fi
fi

finish
