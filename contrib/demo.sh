#!/bin/bash
# make demo: the whole gateway-to-IDS pipeline on this machine, in a network
# namespace it creates and removes: NFLOG rules pick pings and DNS-like UDP,
# a gateway graph (conf/gateway.ini: nflog -> zmq-out) sends them over
# ZeroMQ to an IDS graph (conf/ids.ini: zmq-in -> pcap-out FIFO + ring),
# tcpdump reads the FIFO as an IDS would, the ring is queried, and the
# per-node counters are shown. Needs root. Takes about ten seconds.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS="pktpipe-demo-$$"
work=$(mktemp -d /tmp/pktpipe-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces, NFLOG)" >&2; exit 1; }
nsx() { ip netns exec "$NS" "$@"; }
# bg: start a program in the namespace in the background; its pid (the
# program's own: ip netns exec execs it) in $pid.
bg() {
	ip netns exec "$NS" "$@" &
	pid=$!
	pids+=("$pid")
}
stop() { # stop PID: SIGTERM, at most 15 s, then SIGKILL
	kill -TERM "$1" 2>/dev/null || return 0
	timeout 15 tail --pid="$1" -f /dev/null || kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}
wait_until() { # seconds command...
	local i
	for ((i = 0; i < $1 * 10; i++)); do "${@:2}" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

echo "== namespace $NS, NFLOG rules: pings to group 0 (IPv4) and 1 (IPv6), UDP port 9 (discard) to group 0"
ip netns add "$NS"
nsx ip link set lo up
nsx iptables -A OUTPUT -o lo -p icmp --icmp-type echo-request -j NFLOG --nflog-group 0 --nflog-prefix demo-ping
nsx ip6tables -A OUTPUT -o lo -p ipv6-icmp --icmpv6-type echo-request -j NFLOG --nflog-group 1 --nflog-prefix demo-ping6
nsx iptables -A OUTPUT -o lo -p udp --dport 9 -j NFLOG --nflog-group 0 --nflog-prefix demo-udp

mkfifo "$work/ids.fifo"
chmod 711 "$work"
mkdir -m 1777 "$work/stats" # the gateway drops to nobody (user = in conf/gateway.ini)
sed -e "s|/run/pktpipe/ids.fifo|$work/ids.fifo|" "$ROOT/conf/ids.ini" > "$work/ids.ini"
cp "$ROOT/conf/gateway.ini" "$work/gateway.ini"

echo "== IDS side: tcpdump reads the FIFO; pktpipe -c conf/ids.ini"
bg tcpdump -nn -l -r "$work/ids.fifo" > "$work/decoded.txt" 2>/dev/null
tcpdump_pid=$pid
bg "$BUILD/pktpipe" -q -c "$work/ids.ini" --stats-json "$work/ids.json"
ids=$pid
# ready PID: pktpipe takes SIGUSR1 on its signalfd (before, it would die of it).
ready() {
	local blk
	blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$1/status")
	[ -n "$blk" ] && [ $((0x$blk & 0x200)) -ne 0 ]
}
# stat NODE COUNTER: from a fresh SIGUSR1 snapshot of the IDS graph.
stat() {
	rm -f "$work/ids.json"
	ready "$ids" && kill -USR1 "$ids" && wait_until 5 test -s "$work/ids.json" &&
		python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][sys.argv[2]][sys.argv[3]])' \
			"$work/ids.json" "$1" "$2"
}
reader() { [ "$(stat ids-fifo reader_sessions)" = 1 ]; }
written() { [ "$(stat ids-fifo packets_out)" = 15 ]; }
wait_until 10 reader || { echo "demo: tcpdump did not open the FIFO" >&2; exit 1; }
echo "== gateway side: pktpipe -c conf/gateway.ini"
bg "$BUILD/pktpipe" -q -c "$work/gateway.ini" --stats-json "$work/stats/gateway.json"
gw=$pid
wait_until 10 nsx grep -qE '^ *1 ' /proc/net/netfilter/nfnetlink_log || { echo "demo: gateway did not start" >&2; exit 1; }

echo "== traffic: 5 pings, 5 pings over IPv6, 5 UDP datagrams"
nsx ping -q -c 5 -i 0.2 127.0.0.1 >/dev/null
nsx ping -6 -q -c 5 -i 0.2 ::1 >/dev/null
for i in 1 2 3 4 5; do nsx bash -c "echo query-$i > /dev/udp/127.0.0.1/9" || true; done

wait_until 10 written || echo "demo: the IDS has not seen all 15 packets yet" >&2

echo "== the ring, queried: pktpipe-query tcp://127.0.0.1:7002"
nsx timeout 10 "$BUILD/pktpipe-query" --timeout 5 tcp://127.0.0.1:7002 > "$work/ring.pcap"
echo "   $(tcpdump -nn -r "$work/ring.pcap" 2>/dev/null | wc -l) packets in the ring"

stop "$gw"
stop "$ids"
timeout 10 tail --pid="$tcpdump_pid" -f /dev/null || true
echo "== what tcpdump (the IDS) decoded from the FIFO"
cat "$work/decoded.txt"
echo "== per-node counters"
python3 - "$work/stats/gateway.json" "$work/ids.json" <<'PY'
import json, sys
print(f"{'node':<14}{'plugin':<10}{'in':>6}{'out':>6}{'held':>6}  dropped")
for path in sys.argv[1:]:
    for name, n in json.load(open(path))["nodes"].items():
        drops = ", ".join(f"{k}={v}" for k, v in n["dropped"].items() if v) or "-"
        print(f"{name:<14}{n['plugin']:<10}{n['packets_in']:>6}{n['packets_out']:>6}{n['packets_held']:>6}  {drops}")
PY
