#!/bin/bash
# Backpressure: a source whose input can wait where it is (pcap-in's file,
# zmq-in's peers, nflog's socket buffer) pauses while the queue of a node on
# another thread is nearly full (host->downstream_wait), instead of that
# queue dropping (queue-full). The slow consumer is the count test plugin
# with a delay per batch on its own thread with a short queue; gen, a
# source that does not wait, shows that the same consumer overflows. A node
# on its own thread between them leaves its batches in its queue while the
# consumer refuses (the host holds them), so the source waits in turn.
# The nflog part needs root (a network namespace and an NFLOG rule).
SUITE=backpressure
. "$(dirname "$0")/../lib.sh"

P=(--plugin-path "$TESTPLUGINS")
RECORDS=20000

need_plugins pcap-in zmq-in zmq-out nflog || finish_if_failed
[ -f "$TESTPLUGINS/count.so" ] || fail "$TESTPLUGINS/count.so not built"
[ "$(id -u)" = 0 ] || fail "needs root: a network namespace and an NFLOG rule"
finish_if_failed

# FILE COUNT SIZE: COUNT raw IPv4 packets of SIZE bytes.
mkpcap() {
	python3 - "$@" <<-'PY'
	import struct, sys
	size = int(sys.argv[3])
	with open(sys.argv[1], "wb") as f:
	    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))
	    for i in range(int(sys.argv[2])):
	        d = bytes([0x45, 0, size >> 8, size & 255]) + i.to_bytes(4, "big") + bytes(size - 8)
	        f.write(struct.pack("<IIII", i, 0, len(d), len(d)) + d)
	PY
}
mkpcap "$TMP/in.pcap" $RECORDS 200
mkpcap "$TMP/big.pcap" $RECORDS 1400

# A slow consumer section: NAME INPUT [DELAY [QUEUE]].
slow() {
	printf '[%s]\nplugin = count\ninput = %s\nthread = yes\nqueue = %s\ndelay = %s\n\n' \
		"$1" "$2" "${4:-4}" "${3:-1ms}"
}
# A fast node on its own thread: NAME INPUT.
relay() { printf '[%s]\nplugin = pass\ninput = %s\nthread = yes\nqueue = 64\n\n' "$1" "$2"; }
src() { printf '[%s]\nplugin = pcap-in\npath = %s\n%b\n\n' "$1" "$TMP/in.pcap" "${2:-}"; }

# lossless NAME NODE WANT: exit 0, balanced, NODE took WANT, none dropped.
lossless() {
	expect_eq "$1: exit" "$status" 0
	expect_balanced "$1" "$TMP/$1.json"
	expect_eq "$1: $2 in" "$(stat "$TMP/$1.json" "$2" packets_in)" "$3"
	expect_eq "$1: $2 queue-full" "$(stat "$TMP/$1.json" "$2" dropped queue-full)" 0
}

# paused NAME NODE: NODE counted that it paused (the host's 'paused').
paused() {
	local n
	n=$(stat "$TMP/$1.json" "$2" paused 2>/dev/null)
	if [ "${n:-0}" -gt 0 ]; then ok; else fail "$1: $2 never paused ('${n}')"; fi
}

# ---- the consumer overflows a source that does not wait ----
{ printf '[src]\nplugin = gen\ncount = %d\nbatch = 256\n\n' $RECORDS; slow sink src; } >"$TMP/gen.ini"
run_graph gen 60 "${P[@]}"
expect_eq "gen: exit" "$status" 0
expect_balanced "gen" "$TMP/gen.json"
expect_eq "gen: not paused (it does not ask)" "$(stat "$TMP/gen.json" src paused 2>/dev/null)" ""
qf=$(stat "$TMP/gen.json" sink dropped queue-full)
if [ "$qf" -gt 0 ]; then ok; else fail "gen: the slow consumer dropped nothing ($qf): no test"; fi

# ---- pcap-in waits: every record arrives ----
{ src src; slow sink src; } >"$TMP/file.ini"
run_graph file 60 "${P[@]}"
lossless file sink $RECORDS
paused file src
expect_eq "file: src out" "$(stat "$TMP/file.json" src packets_out)" $RECORDS

# ---- through a node on the source's thread ----
{ src src; printf '[mid]\nplugin = pass\ninput = src\n\n'; slow sink mid; } >"$TMP/chain.ini"
run_graph chain 60 "${P[@]}"
lossless chain sink $RECORDS

# ---- two threads away: the slow queue is behind a node on a thread of its
# own, which takes everything at once and passes it on. The consumer is
# slow enough (10 ms a batch) for the source to outrun it under ASan too ----
{ src src; relay mid src
  slow sink mid 10ms 16; } >"$TMP/hops.ini"
run_graph hops 60 "${P[@]}"
lossless hops sink $RECORDS
expect_eq "hops: mid queue-full" "$(stat "$TMP/hops.json" mid dropped queue-full)" 0
paused hops src

# ---- fan-out: a fast consumer beside the slow one gets everything too ----
{ src src; slow sink src; printf '[fast]\nplugin = count\ninput = src\n\n'; } >"$TMP/fan.ini"
run_graph fan 60 "${P[@]}"
lossless fan sink $RECORDS
expect_eq "fan: fast in" "$(stat "$TMP/fan.json" fast packets_in)" $RECORDS

# ---- two sources waiting for one queue: both are woken ----
{ src a; src b; slow sink a,b; } >"$TMP/two.ini"
run_graph two 60 "${P[@]}"
lossless two sink $((2 * RECORDS))
paused two a
paused two b

# ---- SIGTERM while paused: a clean end, nothing unaccounted ----
{ src src "loop = 0"; slow sink src 20ms; } >"$TMP/term.ini"
start term "$TMP/term.ini" "${P[@]}"
running term
sleep 0.5
stop term TERM 15
expect_eq "term: exit" "$status" 0
expect_balanced "term" "$TMP/term.json"
expect_eq "term: queue-full" "$(stat "$TMP/term.json" sink dropped queue-full)" 0
got=$(stat "$TMP/term.json" sink packets_in)
if [ "$got" -gt 0 ]; then ok; else fail "term: the consumer took nothing"; fi

# ---- zmq-in waits: messages stay with libzmq and TCP, none dropped ----
# zmq-in asks between messages, and a native frame of 1024 records makes
# four batches: the queue has room for them above its three quarters.
{ printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\n\n'; slow sink in 1ms 20; } >"$TMP/rx.ini"
start rx "$TMP/rx.ini" "${P[@]}" -v
wait_bound "$TMP/rx.err" || fail "rx: not bound: $(tail -n 3 "$TMP/rx.err")"
port=$(bound_port "$TMP/rx.err" in)
{ src src; printf '[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nlinger = 30s\n' "$port"; } \
	>"$TMP/tx.ini"
run_graph tx 60
expect_eq "tx: exit" "$status" 0
expect_eq "tx: hwm drops" "$(stat "$TMP/tx.json" z dropped hwm)" 0
wait_snapshot rx 30 -ge $RECORDS stat "$TMP/rx.json" sink packets_in ||
	fail "rx: the consumer took $(stat "$TMP/rx.json" sink packets_in) of $RECORDS"
stop rx TERM 15
lossless rx sink $RECORDS
paused rx in

# ---- zmq-out wait = yes: a full libzmq queue holds pcap-in back too ----
# One message in libzmq's queue on each side (sndhwm, rcvhwm = 1), 28 MB
# to send to a slow consumer: without wait, zmq-out drops at sndhwm.
zmq_wait() { # NAME yes|no [zlib]: with zlib, compressing on its own thread in between
	local feed=src
	{ printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 1\n\n'; slow sink in 1ms 20; } \
		>"$TMP/$1-rx.ini"
	start "$1-rx" "$TMP/$1-rx.ini" "${P[@]}" -v
	wait_bound "$TMP/$1-rx.err" || fail "$1: not bound: $(tail -n 3 "$TMP/$1-rx.err")"
	port=$(bound_port "$TMP/$1-rx.err" in)
	[ "${3:-}" = zlib ] && feed=c
	{ printf '[src]\nplugin = pcap-in\npath = %s\n\n' "$TMP/big.pcap"
	  [ "$feed" = c ] && printf '[c]\nplugin = zlib\ninput = src\nlevel = 0\nbatch_packets = 16\nthread = yes\nqueue = 16\n\n'
	  printf '[z]\nplugin = zmq-out\ninput = %s\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 1\n' "$feed" "$port"
	  printf 'batch_packets = 64\nwait = %s\nlinger = 30s\n' "$2"; } >"$TMP/$1-tx.ini"
	run_graph "$1-tx" 120
	expect_eq "$1: sender exit" "$status" 0
	expect_balanced "$1: sender" "$TMP/$1-tx.json"
	sent=$(stat "$TMP/$1-tx.json" z packets_sent)
	wait_snapshot "$1-rx" 30 -ge "$sent" stat "$TMP/$1-rx.json" sink packets_in ||
		fail "$1: the consumer took $(stat "$TMP/$1-rx.json" sink packets_in) of $sent sent"
	stop "$1-rx" TERM 15
	expect_eq "$1: receiver exit" "$status" 0
	expect_balanced "$1: receiver" "$TMP/$1-rx.json"
}
zmq_wait nowait no
hwm=$(stat "$TMP/nowait-tx.json" z dropped hwm)
if [ "$hwm" -gt 0 ]; then ok; else fail "nowait: zmq-out dropped nothing at sndhwm ($hwm): no test"; fi
zmq_wait wait yes
expect_eq "wait: hwm drops" "$(stat "$TMP/wait-tx.json" z dropped hwm)" 0
expect_eq "wait: sent" "$(stat "$TMP/wait-tx.json" z packets_sent)" $RECORDS
expect_eq "wait: received" "$(stat "$TMP/wait-rx.json" sink packets_in)" $RECORDS
paused wait-tx src
paused wait-rx in
# zmq-out is busy two threads from the source: zlib, on its own thread,
# leaves its batches in its queue while zmq-out refuses, so pcap-in sees
# that queue fill and waits in turn.
zmq_wait zwait yes zlib
expect_eq "zwait: hwm drops" "$(stat "$TMP/zwait-tx.json" z dropped hwm)" 0
expect_eq "zwait: zlib queue-full" "$(stat "$TMP/zwait-tx.json" c dropped queue-full)" 0
expect_eq "zwait: received" "$(stat "$TMP/zwait-rx.json" sink packets_in)" $RECORDS
paused zwait-tx c
paused zwait-tx src

# ---- SIGTERM while a threaded node holds batches: they go first ----
{ src src "loop = 0"; relay mid src
  slow sink mid 20ms 8; } >"$TMP/hterm.ini"
start hterm "$TMP/hterm.ini" "${P[@]}"
running hterm
sleep 0.5
stop hterm TERM 15
expect_eq "hterm: exit" "$status" 0
expect_balanced "hterm" "$TMP/hterm.json"
expect_eq "hterm: mid queue-full" "$(stat "$TMP/hterm.json" mid dropped queue-full)" 0
expect_eq "hterm: sink queue-full" "$(stat "$TMP/hterm.json" sink dropped queue-full)" 0
expect_eq "hterm: sink took all mid sent" "$(stat "$TMP/hterm.json" sink packets_in)" \
	"$(stat "$TMP/hterm.json" mid packets_out)"
expect_eq "hterm: none failed at mid" "$(stat "$TMP/hterm.json" mid dropped node-failed)" 0

check() { # check "zmq-out keys": --check's exit status and stderr in $status, $err
	printf '[src]\nplugin = pcap-in\npath = %s\n\n[z]\nplugin = zmq-out\ninput = src\n%b\n' \
		"$TMP/in.pcap" "$1" >"$TMP/check.ini"
	check_ini "$TMP/check.ini"
}
check "endpoint = tcp://127.0.0.1:1\nsocket = pub\nwait = yes"
expect_eq "wait with pub: exit" "$status" 2
expect_contains "wait with pub" "$err" "wait = yes needs socket = push"
check "endpoint = tcp://127.0.0.1:1, tcp://127.0.0.1:2\nshard = flow\nfailover = yes\nwait = yes"
expect_eq "wait with failover: exit" "$status" 2
expect_contains "wait with failover" "$err" "wait = yes would hold the sources back for a dead endpoint"

# ---- nflog waits: the kernel's socket buffer holds the packets ----
new_ns "ppbp-$$"
nsx iptables -A OUTPUT -o lo -p udp --dport 9999 -j NFLOG --nflog-group 31
{ printf '[cap]\nplugin = nflog\ngroups = 31\n\n'; slow sink cap 2ms; } >"$TMP/nf.ini"
spawn nf ip netns exec "$NS" "$PKTPIPE" "${P[@]}" -c "$TMP/nf.ini" --stats-json "$TMP/nf.json"
wait_for 10 nflog_bound 31 || fail "nf: group 31 not bound: $(tail -n 3 "$TMP/nf.err")"
nsx "$BUILD/tools/nflog-udp" -c 5000 -s 200 >/dev/null || fail "nflog-udp"
matched() { [ "$(nflog_matched)" -ge 5000 ]; }
wait_for 30 matched || fail "nf: the rule did not match 5000 packets"
sleep 0.5
stop nf TERM 15
lossless nf sink 5000
paused nf cap
expect_eq "nf: kernel drops" "$(stat "$TMP/nf.json" cap dropped kernel)" 0

finish
