#!/bin/bash
# The original five tools, drop-in: same command lines, same bytes on the
# wire, same pcap output, run in a network namespace with real NFLOG rules,
# a FIFO read by tcpdump, python3-zmq as the independent legacy peer.
SUITE=compat
. "$(dirname "$0")/../lib.sh"

new_ns "pp-compat-$$" || { finish; exit; }
NETNS=$NS # free_port: ports free in the namespace, where the tools run
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
nsx iptables -A OUTPUT -o lo -p icmp --icmp-type echo-request -j NFLOG --nflog-group 0
nsx ip6tables -A OUTPUT -o lo -p ipv6-icmp --icmpv6-type echo-request -j NFLOG --nflog-group 1

# A sender that drops to nobody must still write its stats.
chmod 711 "$TMP"
mkdir -m 1777 "$TMP/pub"

# tool NAME ARGS...: start an original tool in the namespace, spawned as
# pub/NAME: stats and stderr in $TMP/pub (snapshot pub/NAME, wait_stat); pid
# in $pid (stop_pid $pid TERM 15).
tool() {
	local name=$1
	shift
	spawn "pub/$name" ip netns exec "$NS" "$BUILD/$name" --stats-json "$TMP/pub/$name.json" "$@" \
		>"$TMP/$name.out"
	pid=${PIDS[pub/$name]}
}
RECV=pub/nflog-pcap-recv

groups_bound() { nflog_bound 0 && nflog_bound 1; }

pings() {
	nsx ping -q -c 5 -i 0.2 127.0.0.1 >/dev/null
	nsx ping -6 -q -c 5 -i 0.2 ::1 >/dev/null
}

# --- every tool's graph is a valid one -------------------------------------
for t in "nflog-zmq-send 0,1 tcp://127.0.0.1:1" "nflog-zmq-send --rate-control -u nobody -m localhost:8125 0 tcp://h:1" \
	"nflog-pcap-recv tcp://0.0.0.0:1 /tmp/f" "nflog-pcap-recv --rate-control --buffer-interface tcp://127.0.0.1:2 --buffer-window 8 tcp://0.0.0.0:1 /tmp/f" \
	"nflog-zmq-compress tcp://0.0.0.0:1 tcp://h:2" "nflog-zmq-decompress -m localhost tcp://0.0.0.0:1 tcp://h:2"; do
	set -- $t
	name=$1
	shift
	"$BUILD/$name" --print-config "$@" > "$TMP/print.ini" 2>/dev/null
	out=$("$PKTPIPE" --check -c "$TMP/print.ini" 2>&1)
	expect_eq "$t: --print-config is a valid graph" "$?" 0
done
"$BUILD/nflog-zmq-send" --print-config --libnflog-nlbufsiz 32 0 tcp://h:1 >"$TMP/nl.ini" 2>"$TMP/nl.err"
expect_contains "nlbufsiz above the kernel cap: a note" "$(cat "$TMP/nl.err")" "above the kernel's 128 KiB limit"
expect_contains "nlbufsiz above the kernel cap: mapped" "$(cat "$TMP/nl.ini")" "nlbufsiz = 131072"
expect_contains "derived qthresh" "$(cat "$TMP/nl.ini")" "qthreshold = 3200"
"$BUILD/nflog-zmq-send" 0 >/dev/null 2>&1
expect_eq "missing argument: exit" "$?" 2
"$BUILD/nflog-pcap-recv" --lwm 2 a b >/dev/null 2>&1
expect_eq "another tool's option: exit" "$?" 2

# --- the README's example: NFLOG -> send -> recv -> FIFO -> tcpdump ------
P1=$(free_port)
mkfifo "$TMP/fifo"
spawn tcpdump ip netns exec "$NS" tcpdump -nn -r "$TMP/fifo" -w "$TMP/seen.pcap"
tool nflog-pcap-recv "tcp://0.0.0.0:$P1" "$TMP/fifo"
recv=$pid
tool nflog-zmq-send -u nobody 0,1 "tcp://127.0.0.1:$P1"
send=$pid
if wait_for 10 groups_bound; then ok; else fail "sender did not bind groups 0 and 1: $(cat "$TMP/pub/nflog-zmq-send.err")"; fi
wait_stat $RECV 20 fifo reader_sessions = 1 ||
	fail "tcpdump never joined the FIFO: $(tail -n 3 "$TMP/pub/nflog-pcap-recv.err")"
expect_eq "sender runs as nobody" "$(awk '/^Uid:/ {print $2}' /proc/$send/status)" "$(id -u nobody)"
expect_eq "sender keeps no capability" "$(awk '/^CapEff:/ {print $2}' /proc/$send/status)" 0000000000000000
pings
wait_stat $RECV 10 fifo packets_out = 10 || fail "receiver wrote $(stat "$TMP/pub/nflog-pcap-recv.json" fifo packets_out) of 10 pings: $(tail -n 3 "$TMP/pub/nflog-pcap-recv.err")"
stop_pid $send TERM 15
expect_eq "send: exit" "$?" 0
stop_pid $recv TERM 15
expect_eq "recv: exit" "$?" 0
reap "${PIDS[tcpdump]}" 10
expect_eq "tcpdump sees the IPv4 pings" "$(tcpdump -nn -r "$TMP/seen.pcap" 'icmp[icmptype] = icmp-echo' 2>/dev/null | wc -l)" 5
expect_eq "tcpdump sees the IPv6 pings" "$(tcpdump -nn -r "$TMP/seen.pcap" 'icmp6 and ip6[40] = 128' 2>/dev/null | wc -l)" 5
expect_eq "nothing else" "$(tcpdump -nn -r "$TMP/seen.pcap" 2>/dev/null | wc -l)" 10
# tcpdump -w rewrites the header, so read what tcpdump said of the FIFO's;
# the exact bytes are checked against the legacy peer's expectation below.
expect_contains "the original's pcap header (raw IP, snaplen 65535)" "$(cat "$TMP/tcpdump.err")" \
	"link-type RAW (Raw IP), snapshot length 65535"
expect_balanced "send" "$TMP/pub/nflog-zmq-send.json"
expect_balanced "recv" "$TMP/pub/nflog-pcap-recv.json"

# --- rate control, the relay chain, and the buffer interface --------------
# send --rate-control -> compress -> decompress -> recv --rate-control? No:
# compress emits legacy-rc, decompress turns it back into plain legacy.
P2=$(free_port); P3=$(free_port); P4=$(free_port); BIF=$(free_port)
tool nflog-pcap-recv --buffer-interface "tcp://127.0.0.1:$BIF" --buffer-window 4 "tcp://0.0.0.0:$P4" "$TMP/chain.pcap"
recv=$pid
tool nflog-zmq-decompress "tcp://0.0.0.0:$P3" "tcp://127.0.0.1:$P4"
dec=$pid
tool nflog-zmq-compress --lwm 0.000001 "tcp://0.0.0.0:$P2" "tcp://127.0.0.1:$P3"
comp=$pid
tool nflog-zmq-send 0,1 "tcp://127.0.0.1:$P2"
send=$pid
wait_for 10 groups_bound || fail "chain: sender did not bind"
pings
wait_stat $RECV 10 fifo packets_out = 10 || fail "chain: receiver wrote $(stat "$TMP/pub/nflog-pcap-recv.json" fifo packets_out) of 10"
nsx timeout 30 "$BUILD/nflog-pcap-query" "tcp://127.0.0.1:$BIF" > "$TMP/query.pcap" 2>"$TMP/query.err"
expect_eq "nflog-pcap-query: exit" "$?" 0
expect_eq "nflog-pcap-query: the buffered pings" "$(tcpdump -nn -r "$TMP/query.pcap" 2>/dev/null | wc -l)" 10
for p in $send $comp $dec $recv; do stop_pid $p TERM 15; done
expect_eq "chain: pings through compress and decompress" "$(tcpdump -nn -r "$TMP/chain.pcap" 2>/dev/null | wc -l)" 10
expect_balanced "compress" "$TMP/pub/nflog-zmq-compress.json"
if [ "$(stat "$TMP/pub/nflog-zmq-compress.json" shaper frames_compressed 2>/dev/null || echo 0)" -gt 0 ]; then ok; else
	fail "compress: nothing was compressed above a tiny lwm"
fi
timeout 10 "$BUILD/nflog-pcap-query" "tcp://127.0.0.1:$BIF" >/dev/null 2>"$TMP/q2.err"
st=$?
if [ $st -ne 0 ] && [ $st -ne 124 ]; then ok; else fail "nflog-pcap-query against nothing: exit $st (must fail within its own timeout)"; fi

# rate-control pair
P5=$(free_port)
tool nflog-pcap-recv --rate-control "tcp://0.0.0.0:$P5" "$TMP/rc.pcap"
recv=$pid
tool nflog-zmq-send --rate-control --lwm 0.000001 0,1 "tcp://127.0.0.1:$P5"
send=$pid
wait_for 10 groups_bound || fail "rc: sender did not bind"
pings
wait_stat $RECV 10 fifo packets_out = 10 || fail "rc: receiver wrote $(stat "$TMP/pub/nflog-pcap-recv.json" fifo packets_out) of 10"
stop_pid $send TERM 15
stop_pid $recv TERM 15
expect_eq "rate-control pair: the pings" "$(tcpdump -nn -r "$TMP/rc.pcap" 2>/dev/null | wc -l)" 10

# --- exact bytes from an independent legacy peer --------------------------
for kind in legacy rc; do
	P6=$(free_port)
	rcopt=()
	[ $kind = rc ] && rcopt=(--rate-control)
	tool nflog-pcap-recv "${rcopt[@]}" "tcp://127.0.0.1:$P6" "$TMP/peer.pcap"
	recv=$pid
	nsx timeout 60 "$PY" "$ROOT/tests/tools/legacy-peer.py" $kind "connect:tcp://127.0.0.1:$P6" \
		"$TMP/expect.pcap" "$TMP/info.json" 16777216 2>"$TMP/peer.err"
	expect_eq "peer ($kind): exit" "$?" 0
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$TMP/info.json")
	wait_stat $RECV 10 fifo packets_out = "$n" || fail "peer ($kind): $(stat "$TMP/pub/nflog-pcap-recv.json" fifo packets_out) of $n"
	stop_pid $recv TERM 15
	expect_eq "peer ($kind): receiver survived malformed input" "$?" 0
	if cmp -s "$TMP/peer.pcap" "$TMP/expect.pcap"; then ok; else
		fail "peer ($kind): pcap differs from the original's: $(cmp "$TMP/peer.pcap" "$TMP/expect.pcap" 2>&1)"
	fi
done

finish
