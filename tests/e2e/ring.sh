#!/bin/bash
# The ring sink and pktpipe-query, end to end with real sockets and tools:
#   - a receiver (zmq-in -> ring) fed by a sender (pcap-in -> zmq-out) with a
#     raw-IP capture made from the corpus's Ethernet ones: the ring holds
#     exactly the newest packets that fit its window, computed on their own
#     by tests/tools/ring-pcap.py; accounting balances;
#   - --filter equals tcpdump's own filtering of the full dump (pcapcmp);
#     --after/--before (epoch and RFC 3339)/--last exact; limits; pcapng
#     read by tshark; errors for bad filters and values;
#   - the legacy reply, asked by an independent python3-zmq REQ client as
#     the original nflog-pcap-query did: the original's frames, a capture
#     tcpdump reads;
#   - a thousand garbage requests, abandoned requests and an oversized one
#     leave the endpoint answering;
#   - snapshots taken while traffic flows are whole runs of the stream;
#   - pktpipe-query against nothing exits 1 within its timeout, saying so;
#   - non-loopback endpoints refused without allow_remote or CURVE; CURVE
#     end to end; thread = yes; SIGTERM releases everything, balanced.
# Ports are picked at run time (tcp://127.0.0.1:*); every wait is bounded;
# processes are killed on exit.
SUITE=ring
. "$(dirname "$0")/../lib.sh"

QUERY="$BUILD/pktpipe-query"
RP="$ROOT/tests/tools/ring-pcap.py"

need_pyzmq || { finish; exit; }
for tool in "$QUERY" "$PCAPCMP" "$BUILD/plugins/ring.so"; do
	[ -e "$tool" ] || { fail "$tool is not built"; finish; exit; }
done

# ------------------------------------------------------------------ #
# Helpers                                                             #

# receiver NAME WINDOW [extra ring lines]: zmq-in -> ring, both on free
# ports; sets IN_PORT and Q (the query endpoint).
receiver() {
	local name=$1 window=$2
	shift 2
	{
		printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 100000\n\n'
		printf '[ring]\nplugin = ring\ninput = in\nwindow = %s\nendpoint = tcp://127.0.0.1:*\n' "$window"
		printf '%s\n' "$@"
	} >"$TMP/$name.ini"
	start "$name" "$TMP/$name.ini"
	if ! wait_bound "$TMP/$name.err" 2; then
		fail "$name: did not bind: $(tail -n 3 "$TMP/$name.err")"
		return 1
	fi
	IN_PORT=$(bound_port "$TMP/$name.err" in)
	Q="tcp://127.0.0.1:$(bound_port "$TMP/$name.err" ring)"
}

# send NAME PORT FILE [pcap-in lines]: replay FILE to the receiver, to the end.
send() {
	local name=$1 port=$2 file=$3
	shift 3
	{
		printf '[src]\nplugin = pcap-in\npath = %s\n' "$file"
		printf '%s\n' "$@"
		printf '\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\n' "$port"
		printf 'sndhwm = 100000\nlinger = 30s\n'
	} >"$TMP/$name.ini"
	run_graph "$name"
}

# query WHAT OUT [pktpipe-query args...]: a query that must succeed.
query() {
	local what=$1 out=$2
	shift 2
	if timeout 60 "$QUERY" "$@" >"$out" 2>"$TMP/query.err"; then
		ok
	else
		fail "$what: pktpipe-query failed: $(cat "$TMP/query.err")"
	fi
}

# ------------------------------------------------------------------ #
# The ring holds the newest packets that fit                          #

N=$("$PY" "$RP" mkinput "$CORPUS" "$TMP/input.pcap" 3000)
COST=$("$PY" "$RP" info "$TMP/input.pcap" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["cost"])')
if [ "$N" -ge 1000 ]; then ok; else fail "only $N raw IP packets from the corpus"; fi
WINDOW=$((COST * 6 / 10))

receiver rx "$WINDOW" || { finish; exit; }
send tx "$IN_PORT" "$TMP/input.pcap"
expect_eq "sender exit" "$?" 0
wait_stat rx 60 ring packets_in -ge "$N" || fail "the ring took $(stat "$TMP/rx.json" ring packets_in) of $N packets"

read -r HELD HELD_COST < <("$PY" "$RP" window "$TMP/input.pcap" "$TMP/expected.pcap" "$WINDOW")
query "full dump" "$TMP/full.pcap" "$Q"
same "ring content = the newest packets within the window" "$TMP/expected.pcap" "$TMP/full.pcap"
snapshot rx
expect_balanced "while running" "$TMP/rx.json"
expect_eq "packets_held" "$(stat "$TMP/rx.json" ring packets_held)" "$HELD"
expect_eq "ring_packets" "$(stat "$TMP/rx.json" ring ring_packets)" "$HELD"
expect_eq "ring_bytes" "$(stat "$TMP/rx.json" ring ring_bytes)" "$HELD_COST"
expect_eq "evicted = delivered" "$(stat "$TMP/rx.json" ring packets_out)" $((N - HELD))
expect_eq "no drops" "$(stat "$TMP/rx.json" ring dropped too-large)" 0
if [ "$HELD" -gt 100 ] && [ "$HELD" -lt "$N" ]; then ok; else fail "window holds $HELD of $N"; fi
INFO=$("$PY" "$RP" info "$TMP/full.pcap")
# jq_ EXPR: a python expression over d, the full dump's info.
jq_() { "$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print($1)" "$INFO"; }
expect_eq "ring_span_ns" "$(stat "$TMP/rx.json" ring ring_span_ns)" "$(jq_ 'd["ts"][-1] - d["ts"][0]')"

# ------------------------------------------------------------------ #
# Filters: what tcpdump selects from the full dump                    #

filtered=0
for f in 'tcp' 'udp' 'ip6' 'icmp or icmp6' 'tcp[tcpflags] & tcp-syn != 0' 'not ip' \
	'udp port 53 or udp port 123' 'ip[8] < 64' 'greater 500' 'host 203.0.113.77'; do
	query "filter '$f'" "$TMP/f.pcap" --filter "$f" "$Q"
	tcpdump --time-stamp-precision=nano -r "$TMP/full.pcap" -w "$TMP/tf.pcap" "$f" 2>/dev/null
	same "filter '$f' = tcpdump's" "$TMP/tf.pcap" "$TMP/f.pcap"
	[ "$(wc -c <"$TMP/f.pcap")" -gt 24 ] && filtered=$((filtered + 1))
done
if [ "$filtered" -ge 5 ]; then ok; else fail "only $filtered filters matched anything"; fi

"$QUERY" --filter 'tcp port' "$Q" >/dev/null 2>"$TMP/err"
expect_eq "bad filter: exit" "$?" 1
expect_contains "bad filter: libpcap's reason" "$(cat "$TMP/err")" "the ring refused the query: filter: "
"$QUERY" --filter 'ether host 00:11:22:33:44:55' "$Q" >/dev/null 2>"$TMP/err"
expect_eq "filter for another link layer: exit" "$?" 1
expect_contains "filter for another link layer" "$(cat "$TMP/err")" "(for linktype 101, RAW)"

# ------------------------------------------------------------------ #
# Time bounds and limits                                              #

mapfile -t TS < <(jq_ '"\n".join(map(str, d["ts"]))')
K1=$((HELD / 4))
K2=$((HELD * 3 / 4))
K3=$((HELD - HELD / 5))
A=${TS[K1]}
B=${TS[K2]}
epoch() { printf '%d.%09d' $(($1 / 1000000000)) $(($1 % 1000000000)); }

"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --after "$A" --before "$B" >/dev/null
query "after/before" "$TMP/got.pcap" --after "$(epoch "$A")" --before "$(epoch "$B")" "$Q"
same "after/before, epoch seconds" "$TMP/want.pcap" "$TMP/got.pcap"
query "after/before rfc3339" "$TMP/got.pcap" --after "$("$PY" "$RP" rfc3339 "$A" 120)" \
	--before "$("$PY" "$RP" rfc3339 "$B" -330)" "$Q"
same "after/before, RFC 3339 with offsets" "$TMP/want.pcap" "$TMP/got.pcap"
"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --after $((A + 1)) >/dev/null
query "after, 1 ns later" "$TMP/got.pcap" --after "$(epoch $((A + 1)))" "$Q"
same "after is inclusive to the ns" "$TMP/want.pcap" "$TMP/got.pcap"
"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --before $((B + 1)) >/dev/null
query "before, 1 ns later" "$TMP/got.pcap" --before "$(epoch $((B + 1)))" "$Q"
same "before is exclusive to the ns" "$TMP/want.pcap" "$TMP/got.pcap"

LAST=$((TS[HELD - 1] - TS[K3]))
"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --last "$LAST" >/dev/null
query "last" "$TMP/got.pcap" --last "${LAST}ns" "$Q"
same "last, in ns" "$TMP/want.pcap" "$TMP/got.pcap"
query "last, seconds" "$TMP/got.pcap" --last "$(epoch "$LAST")" "$Q"
same "last, in seconds" "$TMP/want.pcap" "$TMP/got.pcap"
"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --last "$LAST" --before "$B" >/dev/null
query "last and before" "$TMP/got.pcap" --last "${LAST}ns" --before "$(epoch "$B")" "$Q"
same "last and before" "$TMP/want.pcap" "$TMP/got.pcap"

"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --limit-packets 10 >/dev/null
query "limit packets" "$TMP/got.pcap" --limit-packets 10 "$Q"
same "limit-packets keeps the newest" "$TMP/want.pcap" "$TMP/got.pcap"
"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --limit-bytes 5000 >/dev/null
query "limit bytes" "$TMP/got.pcap" --limit-bytes 5000 "$Q"
same "limit-bytes keeps the newest" "$TMP/want.pcap" "$TMP/got.pcap"
"$PY" "$RP" slice "$TMP/full.pcap" "$TMP/want.pcap" --limit-bytes 2048 --limit-packets 9 \
	--after "$A" --before "$B" >/dev/null
query "limits and times" "$TMP/got.pcap" --limit-bytes 2KiB --limit-packets 9 \
	--after "$(epoch "$A")" --before "$(epoch "$B")" "$Q"
same "limits within times" "$TMP/want.pcap" "$TMP/got.pcap"
tcpdump --time-stamp-precision=nano -r "$TMP/full.pcap" -w "$TMP/tf.pcap" udp 2>/dev/null
"$PY" "$RP" slice "$TMP/tf.pcap" "$TMP/want.pcap" --limit-packets 7 >/dev/null
query "filter and limit" "$TMP/got.pcap" --filter udp --limit-packets 7 "$Q"
same "limit applies to what the filter matched" "$TMP/want.pcap" "$TMP/got.pcap"

# Bad values are refused before anything is sent.
for bad in "--after 2024-02-30T00:00:00Z" "--after yesterday" "--last 5 minutes" \
	"--limit-packets 0" "--limit-bytes 3XB" "--format pcapx" "--after 5 --before 4" \
	"--legacy --last 5s" "--timeout 0"; do
	# shellcheck disable=SC2086
	"$QUERY" $bad "$Q" >/dev/null 2>"$TMP/err"
	expect_eq "bad arguments '$bad': usage exit" "$?" 2
done
expect_contains "bad timeout message" "$(cat "$TMP/err")" "--timeout: must be more than 0"
"$QUERY" --after 2024-02-30T00:00:00Z "$Q" >/dev/null 2>"$TMP/err"
expect_contains "bad date message" "$(cat "$TMP/err")" "--after: bad time '2024-02-30T00:00:00Z'"

# ------------------------------------------------------------------ #
# pcapng                                                              #

query "pcapng" "$TMP/full.pcapng" --format pcapng "$Q"
expect_contains "pcapng: file type" "$(capinfos -t "$TMP/full.pcapng" 2>&1)" "pcapng"
expect_eq "pcapng: tshark reads every packet" "$(tshark -r "$TMP/full.pcapng" 2>/dev/null | wc -l)" "$HELD"
same "pcapng holds the same packets" "$TMP/full.pcap" "$TMP/full.pcapng"
query "pcapng filtered" "$TMP/f.pcapng" --format pcapng --filter tcp "$Q"
tcpdump --time-stamp-precision=nano -r "$TMP/full.pcap" -w "$TMP/tf.pcap" tcp 2>/dev/null
same "pcapng filtered" "$TMP/tf.pcap" "$TMP/f.pcapng"
query "pcapng, nothing selected" "$TMP/none.pcapng" --format pcapng --filter 'host 203.0.113.77' "$Q"
expect_eq "pcapng, nothing selected: still a capture" "$("$PCAPCMP" "$TMP/none.pcapng" "$TMP/none.pcapng" 2>&1)" \
	"0 packets identical"
if tcpdump -r "$TMP/none.pcapng" >/dev/null 2>&1; then ok; else fail "tcpdump cannot read an empty pcapng reply"; fi
expect_eq "pcapng: tshark dissects it as the pcap" "$(tshark -r "$TMP/full.pcapng" -Y tcp 2>/dev/null | wc -l)" \
	"$(tshark -r "$TMP/full.pcap" -Y tcp 2>/dev/null | wc -l)"

# ------------------------------------------------------------------ #
# The legacy reply, to a client written as the original's             #

cat >"$TMP/legacy.py" <<'PY'
# nflog-pcap-query, as the original did it: REQ, any request, the reply's
# frames concatenated; plus a check of the frames' shape.
import struct, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 20000)
s.connect(sys.argv[1])
s.send(b"q")
parts = s.recv_multipart()
head = struct.unpack("=IHHiIII", parts[0])
assert head == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 12), head
assert parts[-1] == b"", "no empty frame at the end"
body = parts[1:-1]
assert len(body) % 2 == 0, len(body)
for h, d in zip(body[::2], body[1::2]):
    assert len(h) == 16, len(h)
    assert struct.unpack("=IIII", h)[2] == len(d)
open(sys.argv[2], "wb").write(b"".join(parts))
print(len(body) // 2)
PY
got=$(timeout 60 "$PY" "$TMP/legacy.py" "$Q" "$TMP/legacy.pcap" 2>&1)
expect_eq "legacy reply: its frames, one pair per packet" "$got" "$HELD"
tcpdump -r "$TMP/legacy.pcap" -w "$TMP/legacy-tcpdump.pcap" 2>/dev/null
expect_eq "legacy reply: tcpdump reads it" "$("$PCAPCMP" "$TMP/legacy.pcap" "$TMP/legacy-tcpdump.pcap" 2>&1)" \
	"$HELD packets identical"
got=$("$PY" "$RP" legacy-same "$TMP/legacy.pcap" "$TMP/full.pcap" 2>&1)
expect_eq "legacy reply: same packets, us timestamps" "$got" "$HELD packets the same"
query "pktpipe-query --legacy" "$TMP/legacy2.pcap" --legacy "$Q"
if cmp -s "$TMP/legacy.pcap" "$TMP/legacy2.pcap"; then ok; else fail "--legacy writes the same bytes"; fi

# ------------------------------------------------------------------ #
# Garbage does not wedge the endpoint                                 #

cat >"$TMP/garbage.py" <<'PY'
import os, random, sys, zmq
ep = sys.argv[1]
random.seed(6)
ctx = zmq.Context()

def sock(timeout=20000):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout)
    s.connect(ep)
    return s

def junk(n):
    return bytes(random.getrandbits(8) for _ in range(n))

s = sock()
kinds = {"error": 0, "legacy": 0}
for i in range(1000):
    r = random.random()
    if r < 0.80:
        req = [b"pktpipe-query " + junk(random.randint(0, 300))]
    elif r < 0.85:
        keys = [b"filter", b"after", b"before", b"last", b"limit_packets", b"format", b"x"]
        req = [b"pktpipe-query 1\n" + b"\n".join(random.choice(keys) + b"=" + junk(random.randint(0, 20))
                                             for _ in range(random.randint(1, 4)))]
    elif r < 0.95:
        req = [b"pktpipe-query 1\n"] + [junk(random.randint(0, 50)) for _ in range(random.randint(1, 3))]
    else:
        req = [junk(random.randint(0, 200)) for _ in range(random.randint(1, 3))]
        if req[0].startswith(b"pktpipe-query "):
            req[0] = b"x" + req[0]
    s.send_multipart(req)
    parts = s.recv_multipart()
    if parts[0].startswith(b"ERR "):
        assert len(parts) == 1, parts
        kinds["error"] += 1
    elif len(parts[0]) == 24:
        assert parts[-1] == b"", "legacy reply without its empty frame"
        kinds["legacy"] += 1
    else:
        assert parts[0].startswith(b"OK") and len(parts) == 2, parts[:2]

# A well-formed query with a mistake gets a precise answer.
s.send(b"pktpipe-query 1\nfitler=tcp\n")
print(s.recv_multipart()[0].decode())

# Requests whose clients leave before the reply.
for i in range(20):
    a = sock()
    a.send(b"pktpipe-query 1\nformat=pcapng" if i % 2 else b"q")
    a.close()

# Larger than a request may be: libzmq drops that connection, no reply.
big = sock(2000)
big.send(b"q" * (65536 + 1))
try:
    big.recv()
    print("an oversized request was answered")
except zmq.Again:
    pass
big.close()
print(kinds["error"], kinds["legacy"])
PY
out=$(timeout 300 "$PY" "$TMP/garbage.py" "$Q" 2>&1)
expect_eq "garbage: client exit" "$?" 0
expect_contains "garbage: a precise error" "$out" \
	"ERR line 2: unknown key 'fitler' (keys: filter, after, before, last, limit_packets, limit_bytes, format)"
read -r errors legacy < <(printf '%s\n' "$out" | tail -n 1)
if [ "${errors:-0}" -ge 800 ] && [ "${legacy:-0}" -ge 10 ]; then ok; else fail "garbage: $out"; fi
query "answering after garbage" "$TMP/after.pcap" "$Q"
same "answering after garbage: the same content" "$TMP/full.pcap" "$TMP/after.pcap"
snapshot rx
if [ "$(stat "$TMP/rx.json" ring queries)" -ge 1021 ]; then ok; else fail "queries counted: $(stat "$TMP/rx.json" ring queries)"; fi
if [ "$(stat "$TMP/rx.json" ring query_errors)" -ge "$errors" ]; then ok; else fail "query_errors counted"; fi

# ------------------------------------------------------------------ #
# Snapshots while traffic flows                                       #

send tx2 "$IN_PORT" "$TMP/input.pcap" 'rate = 512KiB/s' 'loop = 2' &
TX2=$!
on_exit "kill -9 $TX2"
torn=0
for ((i = 0; i < 12; i++)); do
	sleep 0.2
	timeout 30 "$QUERY" "$Q" >"$TMP/snap$i.pcap" 2>"$TMP/err" || { torn=$((torn + 1)); continue; }
	"$PY" "$RP" contiguous "$TMP/snap$i.pcap" "$TMP/input.pcap" >/dev/null 2>"$TMP/err" ||
		{ torn=$((torn + 1)); fail "snapshot $i: $(cat "$TMP/err")"; }
done
expect_eq "snapshots while traffic flows are whole" "$torn" 0
distinct=$(md5sum "$TMP"/snap*.pcap | cut -d' ' -f1 | sort -u | wc -l)
if [ "$distinct" -ge 3 ]; then ok; else fail "only $distinct distinct snapshots: did traffic flow?"; fi
reap "$TX2" 130
expect_eq "second sender exit" "$?" 0
wait_stat rx 60 ring packets_in -ge $((N * 3)) || fail "the ring took $(stat "$TMP/rx.json" ring packets_in) of $((N * 3))"
expect_balanced "after the stream" "$TMP/rx.json"

# ------------------------------------------------------------------ #
# Stopping releases everything                                        #

stop rx
expect_eq "receiver exit" "$status" 0
expect_balanced "at exit" "$TMP/rx.json"
expect_eq "at exit: nothing held" "$(stat "$TMP/rx.json" ring packets_held)" 0
expect_eq "at exit: every packet delivered" "$(stat "$TMP/rx.json" ring packets_out)" $((N * 3))

# ------------------------------------------------------------------ #
# Nothing answering                                                   #

FREE=$(free_port)
timeout 30 "$QUERY" --timeout 1 "tcp://127.0.0.1:$FREE" >/dev/null 2>"$TMP/err"
expect_eq "nothing answering: exit" "$?" 1
expect_contains "nothing answering: said" "$(cat "$TMP/err")" "no answer from tcp://127.0.0.1:$FREE within 1s"
timeout 30 "$QUERY" "ipc://$TMP/nobody" >/dev/null 2>"$TMP/err"
expect_eq "nothing answering, default timeout: exit" "$?" 1
expect_contains "nothing answering, default timeout" "$(cat "$TMP/err")" "within 5s"
got=$("$PY" - "$QUERY" "$Q" <<'PY'
import pty, subprocess, sys
master, slave = pty.openpty()
r = subprocess.run(sys.argv[1:], stdout=slave, stderr=subprocess.PIPE, timeout=30)
print(r.returncode, r.stderr.decode().strip())
PY
)
expect_eq "a terminal on stdout" "$got" "2 pktpipe-query: stdout is a terminal: send the capture to a file or a pipe (> out.pcap)"

# ------------------------------------------------------------------ #
# Who may ask                                                         #

"$PKTPIPE" --gen-curve-key "$TMP/server.key" >/dev/null 2>&1
"$PKTPIPE" --gen-curve-key "$TMP/client.key" >/dev/null 2>&1
"$PKTPIPE" --gen-curve-key "$TMP/other.key" >/dev/null 2>&1
check_ep() { # check_ep WANT_STATUS ENDPOINT [ring lines]
	local want=$1 ep=$2
	shift 2
	{
		printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\n\n'
		printf '[ring]\nplugin = ring\ninput = in\nendpoint = %s\n' "$ep"
		printf '%s\n' "$@"
	} >"$TMP/check.ini"
	"$PKTPIPE" --check -c "$TMP/check.ini" >/dev/null 2>"$TMP/check.err"
	expect_eq "--check endpoint $ep $*" "$?" "$want"
}
for ep in 'tcp://0.0.0.0:*' 'tcp://*:5555' 'tcp://[::]:5555' 'tcp://192.0.2.1:5555' 'tcp://eth0:5555'; do
	check_ep 2 "$ep"
	expect_contains "refused $ep" "$(cat "$TMP/check.err")" \
		"endpoint $ep is not loopback: anyone who reaches it could read the traffic; set allow_remote = yes, or CurveZMQ keys (curve_secret_key, curve_allow)"
done
for ep in 'tcp://127.0.0.1:*' 'tcp://127.3.2.1:5555' 'tcp://[::1]:5555' "ipc://$TMP/q" 'inproc://q'; do
	check_ep 0 "$ep"
done
check_ep 0 'tcp://0.0.0.0:*' 'allow_remote = yes'
check_ep 0 'tcp://0.0.0.0:*' "curve_secret_key = $TMP/server.key" "curve_allow = $(cat "$TMP/client.key.pub")"
check_ep 2 'tcp://0.0.0.0:*' "curve_secret_key = $TMP/server.key"
expect_contains "CURVE without allow-list" "$(cat "$TMP/check.err")" "curve_allow"

# Really running with a remote endpoint is refused the same way.
printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\n\n[ring]\nplugin = ring\ninput = in\nendpoint = tcp://0.0.0.0:*\n' >"$TMP/remote.ini"
timeout 30 "$PKTPIPE" -c "$TMP/remote.ini" >/dev/null 2>"$TMP/remote.err"
expect_eq "remote endpoint: run refused" "$?" 2
expect_contains "remote endpoint: run refused, said" "$(cat "$TMP/remote.err")" "is not loopback"

# CURVE end to end (on loopback; keys are what matters).
receiver crx 1MiB "curve_secret_key = $TMP/server.key" "curve_allow = $(cat "$TMP/client.key.pub")"
send ctx "$IN_PORT" "$TMP/input.pcap"
wait_stat crx 60 ring packets_in -ge "$N" || fail "curve: the ring took too little"
SERVER_PUB=$(cat "$TMP/server.key.pub")
query "curve: allowed key" "$TMP/curve.pcap" --curve-server-key "$SERVER_PUB" \
	--curve-secret-key "$TMP/client.key" "$Q"
"$PY" "$RP" window "$TMP/input.pcap" "$TMP/want.pcap" $((1 << 20)) >/dev/null
same "curve: the ring's content" "$TMP/want.pcap" "$TMP/curve.pcap"
timeout 30 "$QUERY" --timeout 1 --curve-server-key "$SERVER_PUB" --curve-secret-key "$TMP/other.key" \
	"$Q" >/dev/null 2>"$TMP/err"
expect_eq "curve: unknown key gets nothing" "$?" 1
timeout 30 "$QUERY" --timeout 1 "$Q" >/dev/null 2>"$TMP/err"
expect_eq "curve: no key gets nothing" "$?" 1
"$QUERY" --curve-server-key "$SERVER_PUB" "$Q" >/dev/null 2>"$TMP/err"
expect_eq "curve: half the keys is a usage error" "$?" 2
stop crx
expect_eq "curve: receiver exit" "$status" 0
expect_balanced "curve" "$TMP/crx.json"
expect_contains "curve: refused key logged" "$(cat "$TMP/crx.err")" "$(cat "$TMP/other.key.pub")"

# ------------------------------------------------------------------ #
# On a worker thread; packets larger than the window                  #

receiver trx 256KiB 'thread = yes' || { finish; exit; }
send ttx "$IN_PORT" "$TMP/input.pcap"
wait_stat trx 60 ring packets_in -ge "$N" || fail "thread: the ring took too little"
query "thread: full dump" "$TMP/thread.pcap" "$Q"
"$PY" "$RP" window "$TMP/input.pcap" "$TMP/want.pcap" $((256 << 10)) >/dev/null
same "thread: the newest packets within the window" "$TMP/want.pcap" "$TMP/thread.pcap"
query "thread: pcapng" "$TMP/thread.pcapng" --format pcapng --last 1s "$Q"
stop trx
expect_eq "thread: exit" "$status" 0
expect_balanced "thread" "$TMP/trx.json"

# ------------------------------------------------------------------ #
# A client that asks and does not read: max_pending                   #

receiver prx 1MiB 'max_pending = 1MiB' || { finish; exit; }
send ptx "$IN_PORT" "$TMP/input.pcap"
wait_stat prx 60 ring packets_in -ge "$N" || fail "max_pending: the ring took too little"
cat >"$TMP/pending.py" <<'PY'
# DEALER: 40 full-dump queries at once, then nothing read for a while
# (RCVHWM 1: libzmq stops taking replies off the connection), then all.
import sys, time, zmq
ctx = zmq.Context()
d = ctx.socket(zmq.DEALER)
d.setsockopt(zmq.RCVHWM, 1)
d.setsockopt(zmq.RCVBUF, 65536)
d.setsockopt(zmq.LINGER, 0)
d.connect(sys.argv[1])
for _ in range(40):
    d.send_multipart([b"", b"pktpipe-query 1\n"])
time.sleep(2)
ok = busy = 0
d.setsockopt(zmq.RCVTIMEO, 30000)
for _ in range(40):
    parts = d.recv_multipart()
    if parts[1].startswith(b"OK"):
        ok += 1
    elif parts[1].startswith(b"ERR busy"):
        busy += 1
print(ok, busy)
PY
read -r pok pbusy < <(timeout 120 "$PY" "$TMP/pending.py" "$Q" 2>&1)
if [ "${pok:-0}" -ge 1 ] && [ "${pbusy:-0}" -ge 1 ] && [ $((pok + pbusy)) -eq 40 ]; then
	ok
else
	fail "max_pending: $pok answered, $pbusy busy, of 40"
fi
query "max_pending: answering once the replies went" "$TMP/pending.pcap" "$Q"
"$PY" "$RP" window "$TMP/input.pcap" "$TMP/want.pcap" $((1 << 20)) >/dev/null
same "max_pending: the ring's content" "$TMP/want.pcap" "$TMP/pending.pcap"
stop prx
expect_eq "max_pending: exit" "$status" 0
expect_balanced "max_pending" "$TMP/prx.json"

# ------------------------------------------------------------------ #
# Metadata: kept with the packets, shown as pcapng comments           #

receiver mrx 1MiB || { finish; exit; }
cat >"$TMP/meta.py" <<'PY'
# Native frames per plugins/zmq-out/WIRE.md, with nflog metadata TLVs.
import struct, sys, zmq
def tlv(t, v):
    return struct.pack(">BB", t, len(v)) + v
def record(ts, data, meta):
    return struct.pack(">QIIIH", ts, len(data), len(data), 101, len(meta)) + meta + data
ip = bytes.fromhex("450000140001000040ff0000c0000201c0000202")
metas = [tlv(1, struct.pack(">H", 5)) + tlv(3, struct.pack(">I", 2)) + tlv(7, struct.pack(">I", 16))
         + tlv(8, struct.pack(">I", 1000)) + tlv(2, b'DROP "in"\xff'),
         b"",
         tlv(4, struct.pack(">I", 7)) + tlv(10, struct.pack(">H", 0x800))]
recs = b"".join(record(1700000000 * 10**9 + i, ip, m) for i, m in enumerate(metas))
frame = struct.pack(">IBBHQQII", 0x504B5450, 1, 0, 0, 42, 0, len(metas), len(recs)) + recs
s = zmq.Context().socket(zmq.PUSH)
s.setsockopt(zmq.LINGER, 10000)
s.connect(sys.argv[1])
s.send(frame)
s.close()
PY
timeout 60 "$PY" "$TMP/meta.py" "tcp://127.0.0.1:$IN_PORT"
wait_stat mrx 60 ring packets_in -ge 3 || fail "metadata: the frame did not arrive"
query "metadata: pcapng" "$TMP/meta.pcapng" --format pcapng "$Q"
got=$(tshark -r "$TMP/meta.pcapng" -T fields -e frame.comment 2>/dev/null)
expect_eq "metadata as pcapng comments" "$got" "$(printf '%s\n%s\n%s' \
	'group=5 prefix="DROP ?in??" in=2 mark=0x10 uid=1000' '' 'out=7 hw_protocol=0x0800')"
stop mrx
expect_balanced "metadata" "$TMP/mrx.json"

BIG=$(ls "$CORPUS"/bigtcp-ipv4-vxlan-ipv4.pcap 2>/dev/null)
if [ -n "$BIG" ]; then
	receiver brx 64KiB || { finish; exit; }
	send btx "$IN_PORT" "$BIG"
	wait_stat brx 60 ring packets_in -ge 1 || fail "too large: nothing arrived"
	stop brx
	expect_eq "too large: dropped" "$(stat "$TMP/brx.json" ring dropped too-large)" 1
	expect_balanced "too large" "$TMP/brx.json"
fi

finish
