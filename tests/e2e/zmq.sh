#!/bin/bash
# The ZeroMQ transport end to end: zmq-out -> zmq-in with real sockets.
#   - every corpus capture libpcap reads, pcap-in -> zmq-out -> zmq-in ->
#     pcap-out (ns), over tcp loopback and ipc (the writers on worker
#     threads: zero-copy packets released there), identical per pcapcmp (one
#     receiver graph and one sender graph per batch of files, a node pair
#     per file, to keep the run short);
#   - two senders into one receiver;
#   - the receiver killed and restarted mid-stream: the sender keeps going,
#     counts hwm drops, and the new receiver gets packets again;
#   - pub/sub;
#   - an independent peer (/usr/bin/python3 with python3-zmq) encoding the
#     legacy formats itself, valid messages mixed with malformed ones: the
#     receiver writes exactly the bytes the original receiver would have;
#     and native frames encoded from WIRE.md: gaps, damaged frames, codecs;
#   - the legacy encoder checked byte for byte by the same peer;
#   - CurveZMQ: an allowed key delivers, an unknown key or none delivers
#     nothing; key files others may read, FIFOs and directories are
#     refused at start, naming them.
# Ports are picked at run time (tcp://127.0.0.1:* on our side, port 0 on
# python's); every wait is bounded; processes are killed on exit.
SUITE=zmq
. "$(dirname "$0")/../lib.sh"

BATCH=${ZMQ_BATCH:-100}

need_pyzmq || { finish; exit; }

# ------------------------------------------------------------------ #
# The corpus, through the wire                                        #

# Every capture libpcap reads to the end (damaged ones are corpus.sh's
# business), with its packet count and linktype, asked of libpcap itself in
# one process.
"$PY" - "$CORPUS" >"$TMP/corpus.list" <<'PY'
import ctypes, os, sys
pcap = ctypes.CDLL("libpcap.so.0.8")
pcap.pcap_open_offline_with_tstamp_precision.restype = ctypes.c_void_p
pcap.pcap_open_offline_with_tstamp_precision.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p]
pcap.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
pcap.pcap_datalink.argtypes = [ctypes.c_void_p]
pcap.pcap_close.argtypes = [ctypes.c_void_p]
hdr, data = ctypes.c_void_p(), ctypes.c_void_p()
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    err = ctypes.create_string_buffer(512)
    p = pcap.pcap_open_offline_with_tstamp_precision(path.encode(), 1, err)
    if not p:
        continue
    n = 0
    while True:
        rc = pcap.pcap_next_ex(p, ctypes.byref(hdr), ctypes.byref(data))
        if rc != 1:
            break
        n += 1
    if rc == -2:
        print(f"{n}\t{pcap.pcap_datalink(p)}\t{path}")
    pcap.pcap_close(p)
PY
mapfile -t CFILES < <(cut -f 3 "$TMP/corpus.list")
mapfile -t CCOUNT < <(cut -f 1 "$TMP/corpus.list")
if [ "${#CFILES[@]}" -gt 0 ]; then ok; else fail "no readable capture in $CORPUS"; fi

# Receiver and sender graphs for files [from, to) over transport $1.
corpus_graphs() {
	local t=$1 from=$2 to=$3 i ep
	for ((i = from; i < to; i++)); do
		[ "$t" = tcp ] && ep="tcp://127.0.0.1:*" || ep="ipc://$TMP/s$i"
		printf '[in%d]\nplugin = zmq-in\nendpoint = %s\nrcvhwm = 100000\n\n' $i "$ep"
		# Over ipc the writers run on worker threads: packets zmq-in
		# made over a received message's bytes are released there.
		printf '[out%d]\nplugin = pcap-out\ninput = in%d\npath = %s\nprecision = ns\n%s\n' \
			$i $i "$TMP/out/$t-$i.pcap" "$([ "$t" = ipc ] && echo "thread = yes")"
	done >"$TMP/rx.ini"
}

corpus_senders() {
	local t=$1 from=$2 to=$3 i ep
	for ((i = from; i < to; i++)); do
		if [ "$t" = tcp ]; then
			ep="tcp://127.0.0.1:$(bound_port "$TMP/rx.err" "in$i")"
		else
			ep="ipc://$TMP/s$i"
		fi
		printf '[src%d]\nplugin = pcap-in\npath = %s\n\n' $i "${CFILES[i]}"
		printf '[z%d]\nplugin = zmq-out\ninput = src%d\nendpoint = %s\nsndhwm = 100000\nlinger = 60s\n\n' \
			$i $i "$ep"
	done >"$TMP/tx.ini"
}

# Each output against its input; empty inputs may leave no output.
corpus_compare() {
	local t=$1 from=$2 to=$3 i out bad=0 why
	for ((i = from; i < to; i++)); do
		out="$TMP/out/$t-$i.pcap"
		[ "${CCOUNT[i]}" = 0 ] && [ ! -s "$out" ] && continue
		if ! why=$("$PCAPCMP" "${CFILES[i]}" "$out" 2>&1); then
			fail "corpus $t: $(basename "${CFILES[i]}"): $why"
			bad=$((bad + 1))
		fi
	done
	[ $bad -eq 0 ] && ok
}

corpus_batch() {
	local t=$1 from=$2 to=$3 n=$(($3 - $2)) sent what="corpus $1 [$2, $3)"
	mkdir -p "$TMP/out"
	corpus_graphs "$t" "$from" "$to"
	start rx "$TMP/rx.ini"
	if ! wait_bound "$TMP/rx.err" $n 60; then
		fail "$what: receiver did not bind: $(tail -n 3 "$TMP/rx.err")"
		stop rx KILL
		return
	fi
	corpus_senders "$t" "$from" "$to"
	run_graph tx
	expect_eq "$what: sender exit" "$?" 0
	expect_balanced "$what: sender" "$TMP/tx.json"
	expect_eq "$what: hwm drops" "$(total "$TMP/tx.json" zmq-out dropped hwm)" 0
	sent=$(total "$TMP/tx.json" zmq-out packets_sent)
	wait_total rx 60 pcap-out packets_out "$sent" || fail "$what: receiver got $(total "$TMP/rx.json" pcap-out packets_out) of $sent"
	stop rx
	expect_eq "$what: receiver exit" "$status" 0
	expect_balanced "$what: receiver" "$TMP/rx.json"
	expect_eq "$what: packets" "$(total "$TMP/rx.json" pcap-out packets_out)" "$sent"
	expect_eq "$what: bad frames" "$(total "$TMP/rx.json" zmq-in frames_bad)" 0
	expect_eq "$what: network losses" "$(total "$TMP/rx.json" zmq-in dropped network)" 0
	corpus_compare "$t" "$from" "$to"
	rm -rf "$TMP/out"
}

for t in tcp ipc; do
	for ((from = 0; from < ${#CFILES[@]}; from += BATCH)); do
		to=$((from + BATCH))
		[ $to -gt ${#CFILES[@]} ] && to=${#CFILES[@]}
		corpus_batch $t $from $to
	done
done

# ------------------------------------------------------------------ #
# Two senders, one receiver                                           #

# The two Ethernet captures with the most packets under 3000.
mapfile -t ETH < <(awk -F'\t' '$2 == 1 && $1 < 3000' "$TMP/corpus.list" | sort -n -r | head -n 2 | cut -f 3)
ETH_N=($(awk -F'\t' '$2 == 1 && $1 < 3000' "$TMP/corpus.list" | sort -n -r | head -n 2 | cut -f 1))

printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 100000\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nprecision = ns\n' \
	"$TMP/two.pcap" >"$TMP/two-rx.ini"
start two-rx "$TMP/two-rx.ini"
if wait_bound "$TMP/two-rx.err" 1 60; then ok; else fail "two senders: no bind"; fi
port=$(bound_port "$TMP/two-rx.err" in)
for k in 0 1; do
	printf '[src]\nplugin = pcap-in\npath = %s\nloop = 5\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 100000\nbatch_packets = 64\nlinger = 60s\n' \
		"${ETH[k]}" "$port" >"$TMP/two-tx$k.ini"
	start "two-tx$k" "$TMP/two-tx$k.ini"
done
for k in 0 1; do
	reap "${PIDS[two-tx$k]}" 130
	expect_eq "two senders: sender $k exit" "$?" 0
done
want=$(((ETH_N[0] + ETH_N[1]) * 5))
expect_eq "two senders: sent" $(($(total "$TMP/two-tx0.json" zmq-out packets_sent) + $(total "$TMP/two-tx1.json" zmq-out packets_sent))) "$want"
wait_total two-rx 60 pcap-out packets_out "$want" || fail "two senders: receiver got too little"
stop two-rx
expect_eq "two senders: receiver exit" "$status" 0
expect_balanced "two senders" "$TMP/two-rx.json"
expect_eq "two senders: received" "$(stat "$TMP/two-rx.json" out packets_out)" "$want"
expect_eq "two senders: no loss" "$(stat "$TMP/two-rx.json" in dropped network)" 0
expect_eq "two senders: frames" "$(stat "$TMP/two-rx.json" in frames_ok)" \
	$(($(stat "$TMP/two-tx0.json" z frames_sent) + $(stat "$TMP/two-tx1.json" z frames_sent)))
# Each sender's packets arrive whole and in order (interleaved with the
# other's): a subsequence check over (time, origlen, bytes).
cat >"$TMP/subseq.py" <<'PY'
import struct, sys
def packets(path):
    b = open(path, "rb").read()
    for e in "<>":
        magic = struct.unpack(e + "I", b[:4])[0]
        if magic in (0xa1b2c3d4, 0xa1b23c4d):
            break
    else:
        sys.exit(0)  # pcapng: the counts above cover it
    snaplen = struct.unpack(e + "I", b[16:20])[0]  # libpcap cuts longer records
    out, at = [], 24
    while at + 16 <= len(b):
        s, f, cap, orig = struct.unpack(e + "IIII", b[at:at + 16])
        data = b[at + 16:at + 16 + cap][:snaplen]
        out.append((s, f if magic == 0xa1b23c4d else f * 1000, orig, data))
        at += 16 + cap
    return out
want = packets(sys.argv[2]) * int(sys.argv[3])
got = iter(packets(sys.argv[1]))
sys.exit(0 if all(p in got for p in want) else 1)
PY
for k in 0 1; do
	if "$PY" "$TMP/subseq.py" "$TMP/two.pcap" "${ETH[k]}" 5; then ok; else
		fail "two senders: the packets of ${ETH[k]} are not all there in order"
	fi
done

# ------------------------------------------------------------------ #
# The receiver killed and restarted mid-stream                        #

restart_rx() { # restart_rx NAME ENDPOINT
	printf '[in]\nplugin = zmq-in\nendpoint = %s\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nprecision = ns\n' \
		"$2" "$TMP/$1.pcap" >"$TMP/$1.ini"
	start "$1" "$TMP/$1.ini"
	wait_bound "$TMP/$1.err" 1 60 && ok || fail "restart: $1 did not bind: $(tail -n 2 "$TMP/$1.err")"
}
restart_rx rx1 "tcp://127.0.0.1:*"
port=$(bound_port "$TMP/rx1.err" in)
printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 1MiB/s\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 20\nbatch_packets = 8\nlinger = 0\n' \
	"${ETH[0]}" "$port" >"$TMP/restart-tx.ini"
start tx "$TMP/restart-tx.ini"
wait_total rx1 30 pcap-out packets_out 1 && ok || fail "restart: the first receiver got nothing"
stop rx1 KILL
wait_total tx 30 zmq-out dropped 1 hwm && ok || fail "restart: no hwm drops while the receiver is away"
# The sender keeps reading while nobody listens.
read1=$(stat "$TMP/tx.json" src packets_in)
wait_total tx 30 pcap-in packets_in $((read1 + 1)) && ok || fail "restart: the sender stalled"
restart_rx rx2 "tcp://127.0.0.1:$port"
wait_total rx2 30 pcap-out packets_out 1 && ok || fail "restart: nothing after the restart"
stop tx
expect_eq "restart: sender exit" "$status" 0
expect_balanced "restart: sender" "$TMP/tx.json"
hwm=$(stat "$TMP/tx.json" z dropped hwm)
if [ "$hwm" -gt 0 ]; then ok; else fail "restart: hwm drops $hwm"; fi
stop rx2
expect_eq "restart: receiver exit" "$status" 0
expect_balanced "restart: receiver" "$TMP/rx2.json"
expect_eq "restart: bad frames" "$(stat "$TMP/rx2.json" in frames_bad)" 0

# ------------------------------------------------------------------ #
# pub/sub                                                             #

printf '[in]\nplugin = zmq-in\nsocket = sub\nendpoint = tcp://127.0.0.1:*\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\n' \
	"$TMP/sub.pcap" >"$TMP/sub.ini"
start sub "$TMP/sub.ini"
wait_bound "$TMP/sub.err" 1 60 && ok || fail "pub/sub: no bind"
port=$(bound_port "$TMP/sub.err" in)
printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 200KiB/s\n\n[z]\nplugin = zmq-out\ninput = src\nsocket = pub\nendpoint = tcp://127.0.0.1:%s\n' \
	"${ETH[0]}" "$port" >"$TMP/pub.ini"
start pub "$TMP/pub.ini"
wait_total sub 30 pcap-out packets_out 1 && ok || fail "pub/sub: nothing arrived"
stop pub
expect_eq "pub/sub: sender exit" "$status" 0
sleep 0.3
stop sub
expect_eq "pub/sub: receiver exit" "$status" 0
expect_balanced "pub/sub" "$TMP/sub.json"
expect_eq "pub/sub: bad frames" "$(stat "$TMP/sub.json" in frames_bad)" 0

# ------------------------------------------------------------------ #
# An independent legacy sender                                        #

# tests/tools/legacy-peer.py (shared with the compat suite): the original's
# formats encoded from their description, valid and malformed interleaved.

# legacy_run KIND WIRE: the peer sends, zmq-in (wire = WIRE) -> pcap-out as
# the original wrote it; the file must be the expected one, byte for byte.
legacy_run() {
	local kind=$1 wire=$2 what="legacy peer ($1, wire = $2)" n
	rm -f "$TMP/port"
	spawn peer "$PY" "$ROOT/tests/tools/legacy-peer.py" "$kind" "$TMP/port" "$TMP/expect.pcap" "$TMP/info.json" 65536
	if ! wait_for 20 test -s "$TMP/port"; then
		fail "$what: the peer did not start: $(cat "$TMP/peer.err")"
		return
	fi
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:%s\nbind = no\nwire = %s\nmax_message = 64KiB\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nlinktype = 12\nsnaplen = 65535\nprecision = us\n' \
		"$(cat "$TMP/port")" "$wire" "$TMP/legacy.pcap" >"$TMP/legacy.ini"
	start legacy "$TMP/legacy.ini"
	reap "${PIDS[peer]}" 60
	expect_eq "$what: peer exit" "$?" 0
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames"])' "$TMP/info.json")
	wait_total legacy 30 zmq-in frames_in "$n" || fail "$what: $(total "$TMP/legacy.json" zmq-in frames_in) of $n messages arrived"
	stop legacy
	expect_eq "$what: exit" "$status" 0
	expect_balanced "$what" "$TMP/legacy.json"
	if cmp -s "$TMP/legacy.pcap" "$TMP/expect.pcap"; then ok; else
		fail "$what: output differs from the original's: $(cmp "$TMP/legacy.pcap" "$TMP/expect.pcap" 2>&1)"
	fi
	python3 - "$TMP/info.json" "$TMP/legacy.json" <<'PY' && ok || fail "$what: counters"
import json, sys
want = json.load(open(sys.argv[1]))
n = json.load(open(sys.argv[2]))["nodes"]["in"]
got = {"packets": n["packets_out"], "frames": n["frames_in"], "bad": n["frames_bad"], "ok": n["frames_ok"]}
if got != want:
    sys.exit(print(f"got {got}, want {want}", file=sys.stderr) or 1)
PY
	grep -q 'in: warning: dropped a malformed' "$TMP/legacy.err" && ok || fail "$what: malformed messages not logged"
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bad"])' "$TMP/info.json")
	if [ "$(grep -c 'dropped a malformed' "$TMP/legacy.err")" -lt "$n" ]; then ok; else
		fail "$what: each of $n malformed messages logged: no rate limit"
	fi
}

legacy_run legacy legacy
legacy_run rc legacy-rc
legacy_run mixed auto

# ------------------------------------------------------------------ #
# A message above max_message                                          #

# libzmq drops the connection of a peer that sends one (ZMQ_MAXMSGSIZE):
# the message never becomes a frame, the peer reconnects, and the receiver
# goes on. The peer sends it, then one probe every 50 ms until told to stop.
cat >"$TMP/peer-big.py" <<'PY'
import os, struct, sys, time
import zmq
port, stopfile = sys.argv[1:3]
def xdr(i, data):
    return struct.pack("!IIII", 1700000000 + i, 0, len(data), len(data)) + data + b"\0" * (-len(data) % 4)
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.SNDTIMEO, 20000)
s.setsockopt(zmq.LINGER, 0)
s.connect("tcp://127.0.0.1:" + port)
s.send(xdr(0, b"\x45" * 100000))
deadline = time.monotonic() + 30
i = 1
while not os.path.exists(stopfile) and time.monotonic() < deadline:
    s.send(xdr(i, b"\x45" * 40))
    i += 1
    time.sleep(0.05)
s.close()
ctx.term()
PY
printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nmax_message = 64KiB\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\n' \
	"$TMP/big.pcap" >"$TMP/big.ini"
start big "$TMP/big.ini"
wait_bound "$TMP/big.err" 1 60 && ok || fail "max_message: no bind"
rm -f "$TMP/stop"
spawn peer "$PY" "$TMP/peer-big.py" "$(bound_port "$TMP/big.err" in)" "$TMP/stop"
wait_total big 30 pcap-out packets_out 3 && ok || fail "max_message: nothing after the oversized message"
touch "$TMP/stop"
reap "${PIDS[peer]}" 30
stop big
expect_eq "max_message: exit" "$status" 0
expect_balanced "max_message" "$TMP/big.json"
expect_eq "max_message: never a frame" "$(stat "$TMP/big.json" in frames_bad)" 0
expect_eq "max_message: every frame delivered" "$(stat "$TMP/big.json" in frames_in)" \
	"$(stat "$TMP/big.json" out packets_out)"

# ------------------------------------------------------------------ #
# The legacy encoder, checked by the peer                             #

# peer-check.py PORTFILE INPUT.pcap KIND RESULT: makes a raw-IP capture
# (ns timestamps), receives what zmq-out sends from it, and compares every
# message with its own encoding of the same packet.
cat >"$TMP/peer-check.py" <<'PY'
import os, random, struct, sys
import zmq

portfile, pcap_path, kind, result = sys.argv[1:5]
rnd = random.Random(11)
pkts = []
for i in range(300):
    n = rnd.choice([1, 2, 3, 20, 40, 61, 1500])
    data = b"\x45" + bytes(rnd.randrange(256) for _ in range(n - 1))
    pkts.append((1700000000 + i, rnd.randrange(10**9), n + rnd.choice([0, 0, 7]), data))
with open(pcap_path, "wb") as f:
    f.write(struct.pack("=IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, 262144, 101))
    for sec, ns, orig, data in pkts:
        f.write(struct.pack("=IIII", sec, ns, len(data), orig) + data)

def xdr(sec, ns, orig, data):
    m = struct.pack("!IIII", sec, ns // 1000, orig, len(data)) + data + b"\0" * (-len(data) % 4)
    return (b"\x00" + m) if kind == "legacy-rc" else m

ctx = zmq.Context()
s = ctx.socket(zmq.PULL)
s.setsockopt(zmq.RCVTIMEO, 30000)
s.setsockopt(zmq.LINGER, 0)
port = s.bind_to_random_port("tcp://127.0.0.1")
open(portfile + ".tmp", "w").write(str(port))
os.rename(portfile + ".tmp", portfile)
msg = "ok"
for k, p in enumerate(pkts):
    try:
        got = s.recv()
    except zmq.Again:
        msg = f"only {k} of {len(pkts)} messages arrived"
        break
    if got != xdr(*p):
        msg = f"message {k} differs: got {got[:24].hex()} want {xdr(*p)[:24].hex()}"
        break
open(result, "w").write(msg)
s.close()
ctx.term()
PY

for kind in legacy legacy-rc; do
	rm -f "$TMP/port" "$TMP/check.result"
	spawn peer "$PY" "$TMP/peer-check.py" "$TMP/port" "$TMP/check.pcap" "$kind" "$TMP/check.result"
	wait_for 20 test -s "$TMP/port" || fail "encoder $kind: the peer did not start"
	printf '[src]\nplugin = pcap-in\npath = %s\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nwire = %s\nlinger = 30s\n' \
		"$TMP/check.pcap" "$(cat "$TMP/port")" "$kind" >"$TMP/check.ini"
	run_graph check 60
	expect_eq "encoder $kind: exit" "$?" 0
	reap "${PIDS[peer]}" 60
	expect_eq "encoder $kind: byte-exact" "$(cat "$TMP/check.result" 2>/dev/null)" ok
	expect_eq "encoder $kind: messages" "$(stat "$TMP/check.json" z frames_sent)" 300
done

# ------------------------------------------------------------------ #
# Native frames from an independent encoder (WIRE.md)                 #

cat >"$TMP/peer-native.py" <<'PY'
import json, os, struct, sys, zlib
import zmq

portfile, expect_path, info_path = sys.argv[1:4]
MAGIC, SEQ = 0x504B5450, 1

def record(ts, data, orig=None, linktype=101, meta=b""):
    return struct.pack("!QIIIH", ts, len(data), orig if orig is not None else len(data),
                       linktype, len(meta)) + meta + data

def frame(sender, seq, recs, codec=0, flags=SEQ, version=1, count=None, raw_len=None, payload=None):
    raw = b"".join(recs)
    if payload is None:
        payload = zlib.compress(raw) if codec == 1 else raw
    return struct.pack("!IBBHQQII", MAGIC, version, codec, flags, sender, seq,
                       len(recs) if count is None else count,
                       len(raw) if raw_len is None else raw_len) + payload

ts = [1700000000_000000000]
def pkt(n):
    ts[0] += 123456789
    return (ts[0], b"\x45" + bytes((k * 7) & 255 for k in range(n - 1)))

good, msgs, info = [], [], {"packets_in": 0, "network": 0, "malformed": 0, "codec": 0, "bad": 0}
def send(m, delivered=(), counted=0, reason=None, bad=False):
    msgs.append(m)
    good.extend(delivered)
    info["packets_in"] += counted
    if reason:
        info[reason] += counted
    info["bad"] += bad
def recs(ps, **kw):
    return [record(t, d, **kw) for t, d in ps]

A, B, C = 0x1111, 0x2222, 0x3333
meta = bytes([1, 2, 0, 5]) + bytes([2, 4]) + b"DROP" + bytes([200, 3]) + b"xyz"
p = [pkt(40), pkt(60), pkt(1)]
send(frame(A, 0, [record(t, d, meta=meta) for t, d in p]), p, 3)
p = [pkt(100), pkt(1400)]
send(frame(A, 3, recs(p), codec=1), p, 2)
p = [pkt(20)]
send(frame(A, 10, recs(p)), p, 1 + 5)                       # 5 lost before it
info["network"] += 5
bad_recs = [record(*pkt(30)), record(*pkt(30))[:-4] + b"\0\0\0\0\0\0\0\0"]
send(frame(A, 11, [b"".join(bad_recs)], count=2), (), 2, "malformed", True)  # damaged records
p = [pkt(33)]
send(frame(A, 13, recs(p)), p, 1)                           # in order after the damaged one
p = [pkt(50), pkt(51)]
send(frame(B, 1000, recs(p)), p, 2)                         # a new sender: its baseline
send(frame(B, 1002, recs([pkt(10)] * 3), codec=77), (), 3, "codec", True)
bomb = zlib.compress(struct.pack("!QIIIH", 1, 1 << 20, 1 << 20, 101, 0) + b"\0" * (1 << 20))
send(frame(B, 1005, [], count=1, codec=1, raw_len=100, payload=bomb), (), 1, "malformed", True)
p = [pkt(60)]
send(frame(B, 1006, recs(p)), p, 1)
p = [pkt(70)]
send(frame(C, 0, recs(p), flags=0), p, 1)
p = [pkt(71)]
send(frame(C, 50, recs(p), flags=0), p, 1)                  # no sequence promise: no loss
for m in (b"PKTP\x01\x00", frame(A, 14, recs([pkt(5)]), version=2),
          frame(A, 14, recs([pkt(5)]), count=100), frame(A, 14, recs([pkt(5)]))[:-1],
          frame(A, 14, recs([pkt(5)])) + b"\0"):
    send(m, bad=True)                                       # no sound header: no count
p = [pkt(80)]
send(frame(A, 14, recs(p)), p, 1)
info["frames"] = len(msgs)
info["packets_out"] = len(good)

ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.SNDTIMEO, 30000)
s.setsockopt(zmq.LINGER, 30000)
port = s.bind_to_random_port("tcp://127.0.0.1")
open(portfile + ".tmp", "w").write(str(port))
os.rename(portfile + ".tmp", portfile)
out = [struct.pack("=IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, 262144, 101)]
for t, d in good:
    out.append(struct.pack("=IIII", t // 10**9, t % 10**9, len(d), len(d)) + d)
open(expect_path, "wb").write(b"".join(out))
json.dump(info, open(info_path, "w"))
for m in msgs:
    s.send(m)
s.close()
ctx.term()
PY

rm -f "$TMP/port"
spawn peer "$PY" "$TMP/peer-native.py" "$TMP/port" "$TMP/expect-native.pcap" "$TMP/info-native.json"
wait_for 20 test -s "$TMP/port" || fail "native peer did not start: $(cat "$TMP/peer.err")"
printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:%s\nbind = no\nmax_message = 64KiB\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nprecision = ns\n' \
	"$(cat "$TMP/port")" "$TMP/native.pcap" >"$TMP/native.ini"
start native "$TMP/native.ini"
reap "${PIDS[peer]}" 60
expect_eq "native peer: exit" "$?" 0
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames"])' "$TMP/info-native.json")
wait_total native 30 zmq-in frames_in "$n" || fail "native peer: not every frame arrived"
stop native
expect_eq "native peer: receiver exit" "$status" 0
expect_balanced "native peer" "$TMP/native.json"
if cmp -s "$TMP/native.pcap" "$TMP/expect-native.pcap"; then ok; else
	fail "native peer: output differs: $(cmp "$TMP/native.pcap" "$TMP/expect-native.pcap" 2>&1)"
fi
python3 - "$TMP/info-native.json" "$TMP/native.json" <<'PY' && ok || fail "native peer: counters"
import json, sys
w = json.load(open(sys.argv[1]))
n = json.load(open(sys.argv[2]))["nodes"]["in"]
got = {"packets_in": n["packets_in"], "network": n["dropped"]["network"],
       "malformed": n["dropped"]["malformed"], "codec": n["dropped"]["codec"],
       "bad": n["frames_bad"], "frames": n["frames_in"], "packets_out": n["packets_out"]}
if got != w or n["frames_ok"] + n["frames_bad"] != n["frames_in"]:
    sys.exit(print(f"got {got}, want {w}", file=sys.stderr) or 1)
PY

# ------------------------------------------------------------------ #
# CurveZMQ                                                            #

KEYGEN="$BUILD/tools/zmq-keygen"
for k in server client other; do
	"$KEYGEN" "$TMP/$k.key" || fail "keygen $k"
done
SERVER_PUB=$(cat "$TMP/server.key.pub")
CLIENT_PUB=$(cat "$TMP/client.key.pub")
expect_eq "keygen: secret key mode" "$(command stat -c %a "$TMP/client.key")" 600

curve_rx() { # curve_rx NAME SECRET_KEY_FILE: a CURVE server admitting "client"
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\ncurve_secret_key = %s\ncurve_allow = %s\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nprecision = ns\n' \
		"$2" "$CLIENT_PUB" "$TMP/$1.pcap" >"$TMP/$1.ini"
}

# curve_tx_ini NAME PORT LINGER SOURCE_OPTIONS [SECRET_KEY_FILE
# [SERVER_PUBLIC_KEY]]: $TMP/NAME.ini, a sender of ETH[0] (SOURCE_OPTIONS
# lines added to pcap-in) with that key, or none, for the server with
# that public key (default SERVER_PUB).
curve_tx_ini() {
	printf '[src]\nplugin = pcap-in\npath = %s\n%s\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nlinger = %s\n' \
		"${ETH[0]}" "$4" "$2" "$3" >"$TMP/$1.ini"
	[ -z "${5:-}" ] ||
		printf 'curve_secret_key = %s\ncurve_server_key = %s\n' "$5" "${6:-$SERVER_PUB}" >>"$TMP/$1.ini"
}

# curve_tx NAME PORT LINGER [SECRET_KEY_FILE]: a sender with that key, or
# none; a fail unless it exits 0, with its last words.  A refused sender
# still holds its packets when it stops, if the refusal comes after its
# end of input (a loaded machine), so it lingers the whole LINGER: that
# must stay under the drain deadline (5 s), or the run ends "still
# draining" and exits 1.
curve_tx() {
	curve_tx_ini "$1" "$2" "$3" "" "${4:-}"
	run_graph "$1" 60
	expect_eq "curve: $1: sender exit ($(tail -n 1 "$TMP/$1.err"))" "$status" 0
}

curve_rx crx "$TMP/server.key"
start crx "$TMP/crx.ini"
wait_bound "$TMP/crx.err" 1 60 && ok || fail "curve: no bind: $(tail -n 2 "$TMP/crx.err")"
port=$(bound_port "$TMP/crx.err" in)
# Refused first: whatever they got through would show in the count below.
curve_tx stranger "$port" 1s "$TMP/other.key"
curve_tx plain "$port" 1s
curve_tx friend "$port" 4s "$TMP/client.key"
sent=$(stat "$TMP/friend.json" z packets_sent)
wait_total crx 30 pcap-out packets_out "$sent" || fail "curve: the allowed sender's packets did not all arrive"
# The sender learns it too: a refused key is an error there, naming the
# server; a key other than the server's a warning. These senders run
# until stopped, so the line comes however late the handshake does.
curve_tx_endless() { # NAME SECRET_KEY_FILE SERVER_PUBLIC_KEY
	curve_tx_ini "$1" "$port" 0 $'loop = 0\nrate = 100KiB/s\n' "$2" "$3"
	start "$1" "$TMP/$1.ini"
}
curve_tx_endless refused "$TMP/other.key" "$SERVER_PUB"
curve_tx_endless wrongserver "$TMP/client.key" "$(cat "$TMP/other.key.pub")"
wait_for 30 grep -q "refused our key" "$TMP/refused.err"
expect_contains "curve: the refused sender is told" "$(cat "$TMP/refused.err")" \
	"z: error: the CurveZMQ server tcp://127.0.0.1:$port refused our key (ZAP status 400): is our public key in its curve_allow? Nothing goes there"
wait_for 30 grep -q "CurveZMQ handshake" "$TMP/wrongserver.err"
expect_contains "curve: a wrong server key is told" "$(cat "$TMP/wrongserver.err")" \
	"z: warning: CurveZMQ handshake with tcp://127.0.0.1:$port failed ("
expect_contains "curve: a wrong server key: the hint" "$(cat "$TMP/wrongserver.err")" \
	"): is it a CurveZMQ server, and curve_server_key its public key?"
for name in refused wrongserver; do
	stop "$name"
	expect_eq "curve: $name: sender exit" "$status" 0
	expect_balanced "curve: $name" "$TMP/$name.json"
done
stop crx
expect_eq "curve: receiver exit" "$status" 0
expect_eq "curve: only the allowed key delivers" "$(stat "$TMP/crx.json" out packets_out)" "$sent"
expect_eq "curve: frames" "$(stat "$TMP/crx.json" in frames_in)" "$(stat "$TMP/friend.json" z frames_sent)"
expect_contains "curve: refusal logged" "$(cat "$TMP/crx.err")" "refused a CurveZMQ client whose key is not in curve_allow: $(cat "$TMP/other.key.pub")"
same "curve: packets differ" "${ETH[0]}" "$TMP/crx.pcap"

# A key file others may read is refused, naming it.
cp "$TMP/server.key" "$TMP/open.key"
chmod 644 "$TMP/open.key"
curve_rx open "$TMP/open.key"
err=$(timeout 30 "$PKTPIPE" -c "$TMP/open.ini" 2>&1 >/dev/null)
expect_eq "curve: open key file: exit" "$?" 1
expect_contains "curve: open key file" "$err" "key file $TMP/open.key is open to others (mode 0644): chmod 600 it"
# A FIFO named as the key file is refused at once, naming it: opened
# blocking, it would hold the start (and the loop) until someone wrote.
# The bound turns a hang into a failure (124, or 137 past -k).
mkfifo -m 600 "$TMP/fifo.key"
curve_rx fifokey "$TMP/fifo.key"
err=$(timeout -k 2 10 "$PKTPIPE" -c "$TMP/fifokey.ini" 2>&1 >/dev/null)
expect_eq "curve: FIFO as key file: exit" "$?" 1
expect_contains "curve: FIFO as key file" "$err" "key file $TMP/fifo.key is not a regular file"
mkdir -m 700 "$TMP/dir.key"
curve_rx dirkey "$TMP/dir.key"
err=$(timeout -k 2 10 "$PKTPIPE" -c "$TMP/dirkey.ini" 2>&1 >/dev/null)
expect_eq "curve: directory as key file: exit" "$?" 1
expect_contains "curve: directory as key file" "$err" "key file $TMP/dir.key is not a regular file"
# Keys are checked with the graph.
printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\ncurve_secret_key = %s\ncurve_allow = notakey\n\n[out]\nplugin = pcap-out\ninput = in\npath = /dev/null\n' \
	"$TMP/server.key" >"$TMP/badkey.ini"
err=$("$PKTPIPE" -c "$TMP/badkey.ini" --check 2>&1 >/dev/null)
expect_eq "curve: bad key: exit" "$?" 2
expect_contains "curve: bad key" "$err" "curve_allow: 'notakey' is not a 40-character Z85 public key"

# --- pktpipe --gen-curve-key, a command the zmq-out plugin adds ---
"$PKTPIPE" --gen-curve-key "$TMP/gen.key" >/dev/null 2>"$TMP/gen.err"
expect_eq "gen-curve-key: exit" "$?" 0
expect_eq "gen-curve-key: secret key mode" "$(command stat -c %a "$TMP/gen.key" 2>/dev/null)" 600
expect_eq "gen-curve-key: Z85 public key" "$(tr -d '\n' < "$TMP/gen.key.pub" | wc -c)" 40
"$PKTPIPE" --gen-curve-key "$TMP/gen.key" >/dev/null 2>&1
expect_eq "gen-curve-key: refuses to overwrite" "$?" 1

finish
