#!/bin/bash
# Flow-sharded fan-out (zmq-out shard = flow) end to end, into real zmq-in
# -> pcap-out receivers. The input is every classic Ethernet capture of the
# corpus merged into one (VLAN and QinQ tags, IPv4 and IPv6, fragments,
# ICMP errors, ARP and friends), plus copies of some packets cut inside
# their ports; the flows are computed by tests/tools/shard-flows.py, a
# parser written from the README's rules, not from flowhash.c.
#   - three receivers: every flow (both directions) in exactly one capture,
#     their union equal to the input (as multisets of packets), packets
#     without IP on the first endpoint, the flow_partial / flow_not_ip
#     counts the parser's;
#   - the second receiver down: the other two get exactly the packets they
#     got with all three up; the down one's share is queued (counted sent);
#     with a small sndhwm it overflows: sent + dropped = share, per endpoint;
#   - failover (a relay: zmq-in -> sharding zmq-out, so the test waits for
#     the endpoint to be declared dead before any packet flows): its share
#     spreads over the two others, which keep their own flows whole; then
#     the receiver comes back and gets exactly its share again;
#   - the legacy wire, sharded (one message per packet), from the same
#     capture as raw IP;
#   - shard = addresses: every address pair in one capture;
#   - frames made upstream (zlib) are refused by a sharding node, counted;
#     failover without shard is refused by --check.
# Ports are picked at run time, every wait is bounded, processes are killed
# on exit.
SUITE=shard
. "$(dirname "$0")/../lib.sh"

FLOWS=("$PY" "$ROOT/tests/tools/shard-flows.py")
SHIFT=100000 # seconds: the second replay of the failover run

need_plugins zmq-out zmq-in pcap-in pcap-out || { finish; exit 1; }

# ------------------------------------------------------------------ #
# Helpers                                                             #

# receivers NAME SPEC...: one pktpipe with a zmq-in -> pcap-out pair per
# SPEC, writing $TMP/NAME-I.pcap: tcp (a free port), ipc (a socket file),
# or - (nobody: the endpoint stays down). EPS gets the endpoints for a
# sender; a down one is ipc://$TMP/NAME-I.ipc, where a receiver may come
# later. RX_WIRE: the receivers' wire (default auto).
receivers() {
	local name=$1 i=0 n=0 spec
	shift
	EPS=()
	: >"$TMP/$name.ini"
	for spec in "$@"; do
		case $spec in
		tcp) ep="tcp://127.0.0.1:*" ;;
		ipc) ep="ipc://$TMP/$name-$i.ipc" ;;
		*) ep= ;;
		esac
		if [ -n "$ep" ]; then
			printf '[in%d]\nplugin = zmq-in\nendpoint = %s\nrcvhwm = 100000\nwire = %s\n\n' \
				$i "$ep" "${RX_WIRE:-auto}"
			printf '[out%d]\nplugin = pcap-out\ninput = in%d\npath = %s\nprecision = ns\n\n' \
				$i $i "$TMP/$name-$i.pcap"
			n=$((n + 1))
		fi
		i=$((i + 1))
	done >"$TMP/$name.ini"
	start "$name" "$TMP/$name.ini"
	if ! wait_bound "$TMP/$name.err" "$n" 60; then
		fail "$name: receivers did not bind: $(tail -n 3 "$TMP/$name.err")"
		return 1
	fi
	i=0
	for spec in "$@"; do
		case $spec in
		tcp) EPS+=("tcp://127.0.0.1:$(bound_port "$TMP/$name.err" "in$i")") ;;
		*) EPS+=("ipc://$TMP/$name-$i.ipc") ;;
		esac
		i=$((i + 1))
	done
}

endpoints() { local IFS=,; echo "${EPS[*]}"; }

# send NAME INPUT KEY=VALUE...: pcap-in INPUT -> zmq-out (node z) to EPS,
# to the end; its exit status.
send() {
	local name=$1 input=$2
	shift 2
	{
		printf '[src]\nplugin = pcap-in\npath = %s\n\n' "$input"
		printf '[z]\nplugin = zmq-out\ninput = src\nendpoint = %s\n' "$(endpoints)"
		printf '%s\n' "$@"
	} >"$TMP/$name.ini"
	run_graph "$name"
}

# json FILE KEY: a field of the JSON flows.py check printed.
json() {
	"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

packets() { # packets PCAP: how many it holds
	"${FLOWS[@]}" count "$1"
}

die() { # the suite cannot go on
	finish
	exit 1
}

# ------------------------------------------------------------------ #
# The input                                                           #

if ! "${FLOWS[@]}" merge "$TMP/in.pcap" "$CORPUS" >"$TMP/merge.json"; then
	fail "cannot build the input from $CORPUS"
	die
fi
N=$(json "$TMP/merge.json" packets)
FLOWCOUNT=$(json "$TMP/merge.json" flows)
if [ "$N" -gt 1000 ] && [ "$FLOWCOUNT" -gt 100 ]; then ok; else
	fail "input too thin: $N packets, $FLOWCOUNT flows"
fi

# ------------------------------------------------------------------ #
# Three receivers                                                     #

receivers full tcp tcp tcp || die
send tx "$TMP/in.pcap" 'shard = flow' 'sndhwm = 100000' 'linger = 30s'
expect_eq "full: sender exit" "$?" 0
expect_balanced "full: sender" "$TMP/tx.json"
expect_eq "full: hwm drops" "$(stat "$TMP/tx.json" z dropped hwm)" 0
expect_eq "full: packets sent" "$(stat "$TMP/tx.json" z packets_sent)" "$N"
wait_total full 60 pcap-out packets_out "$N" || fail "full: receivers got $(total "$TMP/full.json" pcap-out packets_out) of $N"
stop full
expect_eq "full: receivers exit" "$status" 0
expect_balanced "full: receivers" "$TMP/full.json"
for i in 0 1 2; do # each socket has one peer: sequence numbers are tracked
	expect_eq "full: network losses at $i" "$(stat "$TMP/full.json" in$i dropped network)" 0
done
if "${FLOWS[@]}" check flow "$TMP/in.pcap" "$TMP"/full-{0,1,2}.pcap >"$TMP/check.json" 2>"$TMP/check.err"; then
	ok
else
	fail "full: $(cat "$TMP/check.err")"
fi
expect_eq "full: flow_partial" "$(stat "$TMP/tx.json" z flow_partial)" "$(json "$TMP/check.json" partial)"
expect_eq "full: flow_not_ip" "$(stat "$TMP/tx.json" z flow_not_ip)" "$(json "$TMP/check.json" not_ip)"
expect_eq "full: packets without IP on the first endpoint" "$(json "$TMP/check.json" not_ip_receiver)" 0
for i in 0 1 2; do
	cp "$TMP/full-$i.pcap" "$TMP/share$i.pcap"
	SHARE[i]=$(packets "$TMP/share$i.pcap")
	expect_eq "full: ep$i.packets_sent" "$(stat "$TMP/tx.json" z "ep$i.packets_sent")" "${SHARE[i]}"
	# Some spread: a receiver without a fair number of flows means no sharding.
	nflows=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["flows_per_receiver"][int(sys.argv[2])])' "$TMP/check.json" $i)
	if [ "$nflows" -ge $((FLOWCOUNT / 6)) ]; then ok; else
		fail "full: receiver $i got $nflows of $FLOWCOUNT flows"
	fi
done
expect_eq "full: shares add up" "$((SHARE[0] + SHARE[1] + SHARE[2]))" "$N"

# ------------------------------------------------------------------ #
# One receiver down                                                   #

# Its share queues in libzmq (sent, then lost when the linger ends); the
# others get exactly what they got before.
receivers down tcp - tcp || die
send tx "$TMP/in.pcap" 'shard = flow' 'sndhwm = 100000' 'linger = 2s'
expect_eq "down: sender exit" "$?" 0
expect_balanced "down: sender" "$TMP/tx.json"
live=$((SHARE[0] + SHARE[2]))
wait_total down 60 pcap-out packets_out "$live" || fail "down: receivers got $(total "$TMP/down.json" pcap-out packets_out) of $live"
stop down
expect_eq "down: receivers exit" "$status" 0
for i in 0 2; do
	if why=$("${FLOWS[@]}" same "$TMP/share$i.pcap" "$TMP/down-$i.pcap" 2>&1); then ok; else
		fail "down: receiver $i: $why"
	fi
done
expect_eq "down: ep1 share queued" "$(stat "$TMP/tx.json" z ep1.packets_sent)" "${SHARE[1]}"
expect_eq "down: ep1 connections" "$(stat "$TMP/tx.json" z ep1.connections)" 0

# A small sndhwm: the down one's share overflows, dropped and counted
# under its own name; sent + dropped is each endpoint's share exactly (the
# live ones are not asserted drop-free: a burst may outrun their I/O
# thread, and that is counted the same way).
receivers ovf tcp - tcp || die
send tx "$TMP/in.pcap" 'shard = flow' 'sndhwm = 8' 'batch_packets = 4' 'linger = 2s'
expect_eq "overflow: sender exit" "$?" 0
expect_balanced "overflow: sender" "$TMP/tx.json"
sum=0
for i in 0 1 2; do
	sent[i]=$(stat "$TMP/tx.json" z "ep$i.packets_sent")
	dropped[i]=$(stat "$TMP/tx.json" z "ep$i.dropped_hwm")
	expect_eq "overflow: ep$i sent + dropped" "$((sent[i] + dropped[i]))" "${SHARE[i]}"
	sum=$((sum + dropped[i]))
done
expect_eq "overflow: hwm is the endpoints' sum" "$(stat "$TMP/tx.json" z dropped hwm)" "$sum"
if [ "${dropped[1]}" -gt 0 ] && [ "${sent[1]}" -lt "${SHARE[1]}" ]; then ok; else
	fail "overflow: ep1 sent ${sent[1]}, dropped ${dropped[1]} of ${SHARE[1]}"
fi
wait_total ovf 60 pcap-out packets_out $((sent[0] + sent[2])) || fail "overflow: receivers got $(total "$TMP/ovf.json" pcap-out packets_out) of $((sent[0] + sent[2]))"
stop ovf
expect_eq "overflow: receivers exit" "$status" 0
for i in 0 2; do
	expect_eq "overflow: receiver $i got what ep$i sent" "$(stat "$TMP/ovf.json" out$i packets_out)" "${sent[i]}"
	if why=$("${FLOWS[@]}" within "$TMP/ovf-$i.pcap" "$TMP/share$i.pcap" 2>&1); then ok; else
		fail "overflow: receiver $i: $why"
	fi
done

# ------------------------------------------------------------------ #
# Failover                                                            #

# relay: zmq-in (a free port) -> zmq-out sharding to EPS with failover.
receivers fo ipc - ipc || die
printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 100000\n\n[z]\nplugin = zmq-out\ninput = in\nendpoint = %s\nshard = flow\nfailover = yes\ndead_after = 200ms\nsndhwm = 100000\nlinger = 3s\n' \
	"$(endpoints)" >"$TMP/relay.ini"
start relay "$TMP/relay.ini"
wait_bound "$TMP/relay.err" 1 60 || fail "failover: the relay did not bind"
RELAY=$(bound_port "$TMP/relay.err" in)
wait_stat relay 30 z ep1.dead = 1 || fail "failover: ep1 never declared dead"
# Connected first: from then on an endpoint can only come alive (were it
# slower than dead_after to connect, it was dead for a while).
for i in 0 2; do
	wait_stat relay 30 z "ep$i.connections" = 1 || fail "failover: ep$i not connected"
	wait_stat relay 30 z "ep$i.dead" = 0 || fail "failover: ep$i dead"
done
expect_contains "failover: death logged" "$(cat "$TMP/relay.err")" "z: warning: ep1 (ipc://$TMP/fo-1.ipc): no connection for 200 ms: dead; its flows go to the living endpoints"

# feed NAME INPUT: pcap-in -> zmq-out to the relay, to the end.
feed() {
	EPS=("tcp://127.0.0.1:$RELAY")
	send "$1" "$2" 'sndhwm = 100000' 'linger = 30s'
	expect_eq "$1: feeder exit" "$?" 0
}

feed feed1 "$TMP/in.pcap"
wait_total fo 60 pcap-out packets_out "$N" || fail "failover: receivers got $(total "$TMP/fo.json" pcap-out packets_out) of $N"
snapshot relay
if why=$("${FLOWS[@]}" check flow "$TMP/in.pcap" "$TMP/fo-0.pcap" "$TMP/fo-2.pcap" 2>&1 >"$TMP/check.json"); then ok; else
	fail "failover: $why"
fi
expect_eq "failover: ep1 sent nothing" "$(stat "$TMP/relay.json" z ep1.packets_sent)" 0
expect_eq "failover: ep1's share failed over" "$(stat "$TMP/relay.json" z ep1.failed_over)" "${SHARE[1]}"
expect_eq "failover: ep0 kept its flows" "$(stat "$TMP/relay.json" z ep0.failed_over)" 0
for i in 0 2; do
	# The living keep their own flows whole (each flow is in one capture)...
	if why=$("${FLOWS[@]}" within "$TMP/share$i.pcap" "$TMP/fo-$i.pcap" 2>&1); then ok; else
		fail "failover: receiver $i lost flows of its own: $why"
	fi
	# ... and take some of the dead one's.
	mine=$("${FLOWS[@]}" share "$TMP/fo-$i.pcap" "$TMP/share$i.pcap")
	got=$(packets "$TMP/fo-$i.pcap")
	expect_eq "failover: receiver $i has its whole share" "$mine" "${SHARE[i]}"
	if [ "$got" -gt "$mine" ]; then ok; else fail "failover: receiver $i took none of ep1's flows"; fi
done

# The receiver comes back: once it has been connected for dead_after, its
# flows return, and a second replay (timestamps moved on) gives each
# receiver exactly its share again.
printf '[in1]\nplugin = zmq-in\nendpoint = ipc://%s\nrcvhwm = 100000\n\n[out1]\nplugin = pcap-out\ninput = in1\npath = %s\nprecision = ns\n' \
	"$TMP/fo-1.ipc" "$TMP/fo-1.pcap" >"$TMP/back.ini"
start back "$TMP/back.ini"
wait_stat relay 30 z ep1.dead = 0 || fail "failover: ep1 never came back"
expect_contains "failover: return logged" "$(cat "$TMP/relay.err")" "ep1 (ipc://$TMP/fo-1.ipc): connected for 200 ms: alive again; its flows come back"
"${FLOWS[@]}" shift "$TMP/in.pcap" "$TMP/in2.pcap" $SHIFT
feed feed2 "$TMP/in2.pcap"
wait_total fo 60 pcap-out packets_out $((N + SHARE[0] + SHARE[2])) || fail "failover: back: receivers 0 and 2 got too little"
wait_total back 60 pcap-out packets_out "${SHARE[1]}" || fail "failover: back: receiver 1 got $(total "$TMP/back.json" pcap-out packets_out) of ${SHARE[1]}"
since=$("$PY" -c 'import sys; print((1700000000 + int(sys.argv[1])) * 10**9)' $SHIFT)
for i in 0 1 2; do
	"${FLOWS[@]}" shift "$TMP/share$i.pcap" "$TMP/share$i-2.pcap" $SHIFT
	if why=$("${FLOWS[@]}" same "$TMP/share$i-2.pcap" "$TMP/fo-$i.pcap" "$since" 2>&1); then ok; else
		fail "failover: back: receiver $i: $why"
	fi
done
stop relay
expect_eq "failover: relay exit" "$status" 0
expect_balanced "failover: relay" "$TMP/relay.json"
expect_eq "failover: nothing more failed over" "$(stat "$TMP/relay.json" z ep1.failed_over)" "${SHARE[1]}"
stop back
stop fo

# ------------------------------------------------------------------ #
# The legacy wire, sharded                                            #

"${FLOWS[@]}" strip "$TMP/in.pcap" "$TMP/raw.pcap" >"$TMP/raw.count"
RAW=$(cat "$TMP/raw.count")
RX_WIRE=legacy receivers leg tcp tcp tcp || die
send tx "$TMP/raw.pcap" 'shard = flow' 'wire = legacy' 'sndhwm = 100000' 'linger = 30s'
expect_eq "legacy: sender exit" "$?" 0
expect_eq "legacy: one message per packet" "$(stat "$TMP/tx.json" z frames_sent)" "$RAW"
expect_eq "legacy: packets sent" "$(stat "$TMP/tx.json" z packets_sent)" "$RAW"
wait_total leg 60 pcap-out packets_out "$RAW" || fail "legacy: receivers got $(total "$TMP/leg.json" pcap-out packets_out) of $RAW"
stop leg
expect_eq "legacy: receivers exit" "$status" 0
if why=$("${FLOWS[@]}" check flow "$TMP/raw.pcap" "$TMP"/leg-{0,1,2}.pcap --us 2>&1 >/dev/null); then ok; else
	fail "legacy: $why"
fi
for i in 0 1 2; do
	expect_eq "legacy: ep$i" "$(stat "$TMP/tx.json" z "ep$i.packets_sent")" "$(stat "$TMP/leg.json" "out$i" packets_out)"
done

# ------------------------------------------------------------------ #
# shard = addresses                                                   #

receivers addr tcp tcp tcp || die
send tx "$TMP/in.pcap" 'shard = addresses' 'sndhwm = 100000' 'linger = 30s'
expect_eq "addresses: sender exit" "$?" 0
wait_total addr 60 pcap-out packets_out "$N" || fail "addresses: receivers got $(total "$TMP/addr.json" pcap-out packets_out) of $N"
stop addr
if why=$("${FLOWS[@]}" check addresses "$TMP/in.pcap" "$TMP"/addr-{0,1,2}.pcap 2>&1 >/dev/null); then ok; else
	fail "addresses: $why"
fi

# ------------------------------------------------------------------ #
# What a sharding node refuses                                        #

# Frames made upstream hold many flows: dropped, counted, logged.
if [ -f "$BUILD/plugins/zlib.so" ]; then
	printf '[src]\nplugin = pcap-in\npath = %s\n\n[zip]\nplugin = zlib\ninput = src\n\n[z]\nplugin = zmq-out\ninput = zip\nendpoint = ipc://%s/a.ipc, ipc://%s/b.ipc\nshard = flow\nlinger = 0\n' \
		"$TMP/in.pcap" "$TMP" "$TMP" >"$TMP/frames.ini"
	run_graph frames 60
	expect_eq "frames: exit" "$?" 0
	expect_balanced "frames" "$TMP/frames.json"
	expect_eq "frames: dropped" "$(stat "$TMP/frames.json" z dropped frame)" "$N"
	expect_eq "frames: none sent" "$(stat "$TMP/frames.json" z packets_sent)" 0
	expect_contains "frames: logged" "$(cat "$TMP/frames.err")" "frames made upstream cannot be sharded by flow; dropping"
else
	echo "shard: frames not checked: $BUILD/plugins/zlib.so is not built" >&2
fi

printf '[src]\nplugin = pcap-in\npath = %s\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = ipc://%s/a.ipc\nfailover = yes\n' \
	"$TMP/in.pcap" "$TMP" >"$TMP/bad.ini"
err=$("$PKTPIPE" -c "$TMP/bad.ini" --check 2>&1 >/dev/null)
expect_eq "failover without shard: exit" "$?" 2
expect_contains "failover without shard" "$err" "failover moves flows between endpoints: it needs shard = flow or addresses"

finish
