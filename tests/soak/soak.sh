#!/bin/bash
# Soak: steady load through a sender and a receiver for MINUTES (default
# 10), watching for slow leaks. `make soak`; not part of make check.
#
#   bash tests/soak/soak.sh BUILD [MINUTES]
#
# Sender: pcap-in (a corpus capture, loop = 0, paced at SOAK_RATE, default
# 1MiB/s) -> zmq-out. Receiver: zmq-in -> pcap-out (a rotating file when
# pcap-out has rotate_size, else /dev/null), plus a ring queried every
# sample when the ring plugin and build/pktpipe-query exist, plus statsd
# towards a port nobody listens on with a stats_endpoint read every sample
# (so that failing sends and short-lived connections run all along).
#
# Every SAMPLE seconds (default 30) it prints each process's RSS and open
# fds (from /proc) and the packets written so far. The first sample is
# taken after a warm-up (a tenth of the run, at least 20 s: buffers, the
# ring and the packet pool reach their working size), the last at the end.
# Checks: both processes stay up; fds at the end equal those at the start
# (a little slack for libzmq's reconnection sockets); RSS at the end within
# SOAK_RSS_SLACK (default 10%) plus 4 MiB of the start; then the sender is
# stopped, the receiver gets every packet it sent, both exit 0 and balance,
# no hwm, network or malformed loss. Under ASan, its quarantine is bounded
# (quarantine_size_mb=16) so that it does not pass for a leak.
SUITE=soak
. "$(dirname "$0")/../lib.sh"

MINUTES=${2:-10}
RATE=${SOAK_RATE:-1MiB/s}
SAMPLE=${SOAK_SAMPLE:-30}
SLACK=${SOAK_RSS_SLACK:-10}
INPUT="$CORPUS/babel_rfc6126bis.pcap"
TOTAL=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * 60))' "$MINUTES")
WARMUP=$((TOTAL / 10 > 20 ? TOTAL / 10 : 20))
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
START_READY=20 # start waits until pktpipe can take a SIGUSR1

need_plugins pcap-in pcap-out zmq-in zmq-out
[ -f "$INPUT" ] || fail "no $INPUT"
finish_if_failed

# ------------------------------------------------------------------ #
# Helpers                                                             #

rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# ------------------------------------------------------------------ #
# The graphs                                                          #

have_key() { "$PKTPIPE" --describe "$1" 2>/dev/null | grep -q "^$2 "; }
RING=no
[ -f "$BUILD/plugins/ring.so" ] && [ -x "$BUILD/pktpipe-query" ] && RING=yes
STATSD=no
[ -f "$BUILD/plugins/statsd.so" ] && STATSD=yes
deadport=$(free_port udp)
{
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 10000\n\n'
	if have_key pcap-out rotate_size; then
		printf '[out]\nplugin = pcap-out\ninput = in\npath = %s\nrotate_size = 4MiB\nrotate_count = 2\n\n' "$TMP/soak.pcap"
	else
		printf '[out]\nplugin = pcap-out\ninput = in\npath = /dev/null\n\n'
	fi
	[ $RING = yes ] && printf '[ring]\nplugin = ring\ninput = in\nwindow = 8MiB\nendpoint = tcp://127.0.0.1:*\n\n'
	[ $STATSD = yes ] && printf '[sd]\nplugin = statsd\nhost = 127.0.0.1:%s\ninterval = 1s\nstats_endpoint = %s\n' \
		"$deadport" "$TMP/stats.sock"
} >"$TMP/rx.ini"
start rx "$TMP/rx.ini"
wait_for 20 grep -q 'in: info: bound to' "$TMP/rx.err" || fail "receiver: no bind: $(tail -n 3 "$TMP/rx.err")"
port=$(bound_port "$TMP/rx.err" in)
rport=$(bound_port "$TMP/rx.err" ring)
printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = %s\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 10000\nlinger = 30s\n' \
	"$INPUT" "$RATE" "$port" >"$TMP/tx.ini"
start tx "$TMP/tx.ini"
echo "soak: $MINUTES min at $RATE; receiver: zmq-in -> pcap-out$([ $RING = yes ] && echo ", ring (queried)")$([ $STATSD = yes ] && echo ", statsd (dead port, stats_endpoint read)")"

# ------------------------------------------------------------------ #
# The run                                                             #

# poke: what runs all along besides the load (a query, a stats read).
poke() {
	if [ $RING = yes ] && [ -n "$rport" ]; then
		timeout 20 "$BUILD/pktpipe-query" --timeout 10s --limit-packets 1000 \
			"tcp://127.0.0.1:$rport" >/dev/null 2>>"$TMP/query.err" ||
			QUERY_FAILS=$((QUERY_FAILS + 1))
	fi
	if [ $STATSD = yes ]; then
		timeout 10 python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
while s.recv(65536): pass' "$TMP/stats.sock" 2>/dev/null || STATS_FAILS=$((STATS_FAILS + 1))
	fi
}

# sample LABEL: one line of RSS and fds; sets RX_RSS RX_FDS TX_RSS TX_FDS.
sample() {
	RX_RSS=$(rss "${PIDS[rx]}") RX_FDS=$(fds "${PIDS[rx]}")
	TX_RSS=$(rss "${PIDS[tx]}") TX_FDS=$(fds "${PIDS[tx]}")
	local written=?
	snapshot rx && written=$(stat "$TMP/rx.json" out packets_in)
	printf 'soak: %-6s receiver rss %6s KiB fds %3s | sender rss %6s KiB fds %3s | packets received %s\n' \
		"$1" "${RX_RSS:-gone}" "$RX_FDS" "${TX_RSS:-gone}" "$TX_FDS" "$written"
}

QUERY_FAILS=0
STATS_FAILS=0
elapsed=0
while [ $elapsed -lt $WARMUP ]; do
	sleep 5
	elapsed=$((elapsed + 5))
	poke
done
sample "${elapsed}s"
S_RX_RSS=$RX_RSS S_RX_FDS=$RX_FDS S_TX_RSS=$TX_RSS S_TX_FDS=$TX_FDS
next=$((elapsed + SAMPLE))
while [ $elapsed -lt $TOTAL ]; do
	sleep 5
	elapsed=$((elapsed + 5))
	poke
	if ! kill -0 "${PIDS[rx]}" 2>/dev/null || ! kill -0 "${PIDS[tx]}" 2>/dev/null; then
		fail "a process died after ${elapsed}s: $(tail -n 3 "$TMP/rx.err" "$TMP/tx.err")"
		break
	fi
	if [ $elapsed -ge $next ] && [ $elapsed -lt $TOTAL ]; then
		sample "${elapsed}s"
		next=$((elapsed + SAMPLE))
	fi
done
sample "end"

# flat_rss PROCESS START END, flat_fds PROCESS START END: within tolerance.
flat_rss() {
	if [ -z "$2" ] || [ -z "$3" ]; then
		fail "$1: no RSS reading"
	elif [ "$3" -le $(($2 + $2 * SLACK / 100 + 4096)) ]; then
		ok
	else
		fail "$1: RSS grew from $2 KiB to $3 KiB (more than ${SLACK}% + 4 MiB)"
	fi
}
flat_fds() {
	if [ -n "$3" ] && [ "$3" -le $(($2 + 2)) ]; then ok; else fail "$1: open fds went from $2 to ${3:-?}"; fi
}
flat_rss receiver "$S_RX_RSS" "$RX_RSS"
flat_rss sender "$S_TX_RSS" "$TX_RSS"
flat_fds receiver "$S_RX_FDS" "$RX_FDS"
flat_fds sender "$S_TX_FDS" "$TX_FDS"
expect_eq "ring queries that failed" "$QUERY_FAILS" 0
expect_eq "stats_endpoint reads that failed" "$STATS_FAILS" 0

# ------------------------------------------------------------------ #
# The end: every packet accounted for                                 #

stop tx TERM 60
expect_eq "sender exit" "$status" 0
expect_balanced "sender" "$TMP/tx.json"
sent=$(stat "$TMP/tx.json" z packets_sent)
expect_eq "sender: hwm drops" "$(stat "$TMP/tx.json" z dropped hwm)" 0
wait_stat rx 60 in packets_out -ge "$sent"
stop rx TERM 60
expect_eq "receiver exit" "$status" 0
expect_balanced "receiver" "$TMP/rx.json"
expect_eq "receiver: every packet sent" "$(stat "$TMP/rx.json" in packets_out)" "$sent"
expect_eq "receiver: network losses" "$(stat "$TMP/rx.json" in dropped network)" 0
expect_eq "receiver: bad frames" "$(stat "$TMP/rx.json" in frames_bad)" 0
expect_eq "receiver: written" "$(stat "$TMP/rx.json" out packets_out)" "$sent"
sanitizer_clean "receiver and sender" "$TMP/rx.err" "$TMP/tx.err"
echo "soak: $sent packets through in $MINUTES min"

finish
