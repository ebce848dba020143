#!/bin/bash
# pcap-out as an IDS feed, end to end with real readers:
#   - a FIFO: the real pipeline (pcap-in at 2 MiB/s -> zmq-out -> zmq-in ->
#     pcap-out) feeds a FIFO that tcpdump reads; started without a reader
#     (no-reader drops, no failure), a reader paused (reader-slow drops, the
#     writer keeps taking input), killed (SIGTERM, and SIGKILL with -U),
#     none for a while (packets_out frozen, no-reader growing), another to
#     the end with SIGHUPs meanwhile: every reader's file is a valid capture
#     of whole input packets, the last one holds exactly what was written
#     after it came, and every node balances;
#   - rotation by size (names, sizes, content in order, rotate_count), by
#     time, SIGHUP under load with the file moved away (logrotate);
#   - append: continued, a torn end cut off, incompatible files refused;
#   - pcapng: nflog metadata from native frames (an independent Python
#     encoder) as comments tshark shows, an interface per linktype, ns;
#     a FIFO reader gets its own section;
#   - option checks.
# Stats come from SIGUSR1 snapshots and --stats-json; every wait is bounded;
# processes and FIFOs go with on_exit. No wall-clock assertion.
SUITE=fifo
. "$(dirname "$0")/../lib.sh"

need_tools tcpdump tshark capinfos mergecap editcap mkfifo
need_pyzmq
need_plugins pcap-in pcap-out zmq-in zmq-out
[ -x "$PCAPCMP" ] || fail "$PCAPCMP not built"
finish_if_failed

# ------------------------------------------------------------------ #
# Helpers                                                             #

# get NAME NODE FIELD: a counter of the last snapshot; dropped.REASON for drops.
get() {
	"$PY" - "$TMP/$1.json" "$2" "$3" <<'PY'
import json, sys
n = json.load(open(sys.argv[1]))["nodes"][sys.argv[2]]
f = sys.argv[3]
print(n["dropped"].get(f[8:], 0) if f.startswith("dropped.") else n.get(f, 0))
PY
}

# reader NAME FIFO [tcpdump options]: tcpdump -r FIFO -w $TMP/NAME.pcap;
# ended with stop NAME SIGNAL 20.
reader() {
	local name=$1 fifo=$2
	shift 2
	spawn "$name" tcpdump "$@" -r "$fifo" -w "$TMP/$name.pcap"
}

# count FILE: packets tcpdump reads in it.
count() { tcpdump -r "$1" 2>/dev/null | wc -l; }

# valid WHAT FILE: tcpdump and capinfos read it to its end, without error.
# capture_problem FILE: what tcpdump and capinfos find wrong with it, or
# nothing.
capture_problem() {
	local err n
	err=$(tcpdump -r "$1" -w /dev/null 2>&1 | grep -v '^reading from file')
	n=$(capinfos -c -T -r "$1" 2>&1 | cut -f 2)
	if [ -n "$err" ] || [ "$n" != "$(count "$1")" ]; then
		echo "${err:-capinfos says $n, tcpdump $(count "$1")}"
	fi
}

valid() {
	local why
	why=$(capture_problem "$2")
	if [ -z "$why" ]; then ok; else fail "$1: $2 is not a valid capture: $why"; fi
}

# A pcap reader of our own, for what the tools do not say.
cat >"$TMP/pcaps.py" <<'PY'
import struct, sys

def records(path):
    """(header bytes, data) of each record of a native-order pcap file."""
    b = open(path, "rb").read()
    magic, = struct.unpack_from("=I", b, 0)
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), "%s: magic %x" % (path, magic)
    off = 24
    while off < len(b):
        caplen, = struct.unpack_from("=I", b, off + 8)
        yield b[off:off + 16], b[off + 16:off + 16 + caplen]
        off += 16 + caplen

cmd = sys.argv[1]
if cmd == "subset":
    # subset INPUT FILE...: every record of each FILE is one of INPUT's.
    known = set(records(sys.argv[2]))
    for f in sys.argv[3:]:
        bad = sum(1 for r in records(f) if r not in known)
        if bad:
            sys.exit("%s: %d records are not input packets" % (f, bad))
elif cmd == "sizes":
    # sizes INPUT LOOPS LIMIT: files rotate_size = LIMIT makes of INPUT
    # played LOOPS times; prints each file's packet count.
    recs = [16 + len(d) for h, d in records(sys.argv[2])] * int(sys.argv[3])
    limit, files, size, n = int(sys.argv[4]), [], 24, 0
    for r in recs:
        if n and size + r > limit:
            files.append(n)
            size, n = 24, 0
        size, n = size + r, n + 1
    files.append(n)
    print(" ".join(map(str, files)))
PY
pcaps() { "$PY" "$TMP/pcaps.py" "$@"; }

# The input: three Ethernet captures of the corpus, end to end.
mergecap -F pcap -a -w "$TMP/input.pcap" "$CORPUS/pim-packet-assortment.pcap" \
	"$CORPUS/AoE_Linux.pcap" "$CORPUS/spb.pcap" 2>"$TMP/mergecap.err"
N0=$(count "$TMP/input.pcap")
if [ "$N0" -gt 400 ]; then ok; else fail "input: $N0 packets: $(cat "$TMP/mergecap.err")"; fi

# ------------------------------------------------------------------ #
# The FIFO, through the real pipeline                                 #

FIFO="$TMP/ids.fifo"
mkfifo "$FIFO"
cat >"$TMP/rx.ini" <<INI
[in]
plugin = zmq-in
endpoint = tcp://127.0.0.1:*
rcvhwm = 100000

[ids]
plugin = pcap-out
input = in
path = $FIFO
buffer = 256KiB
pipe_size = 256KiB
retry = 100ms
INI
start rx "$TMP/rx.ini"
wait_bound "$TMP/rx.err" 1 20 || fail "receiver did not bind: $(cat "$TMP/rx.err")"
PORT=$(bound_port "$TMP/rx.err" in)
cat >"$TMP/tx.ini" <<INI
[src]
plugin = pcap-in
path = $TMP/input.pcap
rate = 2MiB/s
loop = 0

[z]
plugin = zmq-out
input = src
endpoint = tcp://127.0.0.1:$PORT
sndhwm = 100000
linger = 30s
INI
start tx "$TMP/tx.ini"

# No reader: the writer runs, drops and counts.
wait_stat rx 20 ids dropped -gt 0 no-reader || fail "no reader: no no-reader drops: $(cat "$TMP/rx.err")"
expect_eq "no reader: packets_out" "$(get rx ids packets_out)" 0
expect_eq "no reader: sessions" "$(get rx ids reader_sessions)" 0
expect_contains "no reader: logged" "$(cat "$TMP/rx.err")" "FIFO has no reader yet"

# Reader 1: connects, reads, is paused (the writer keeps going), then killed.
reader r1 "$FIFO"
wait_stat rx 20 ids reader_sessions -eq 1 || fail "reader 1 never connected"
wait_stat rx 20 ids packets_out -gt 100 || fail "reader 1 gets nothing"
expect_eq "reader 1: pipe size" "$(get rx ids pipe_size)" 262144
kill -STOP "${PIDS[r1]}"
wait_stat rx 30 ids dropped -gt 0 reader-slow || fail "paused reader: no reader-slow drops"
in1=$(get rx ids packets_in)
wait_stat rx 20 ids packets_in -gt "$in1" || fail "paused reader: the writer stalled"
expect_eq "paused reader: buffer bounded" "$(($(get rx ids buffer_bytes) <= 262144))" 1
out1=$(get rx ids packets_out)
kill -CONT "${PIDS[r1]}"
wait_stat rx 20 ids packets_out -gt "$out1" || fail "resumed reader gets nothing"
stop r1 TERM 20
wait_stat rx 20 ids reader_connected -eq 0 || fail "reader 1 left unnoticed"

# Reader 2 at once, packet-buffered, killed like a crashing IDS.
reader r2 "$FIFO" -U
wait_stat rx 20 ids reader_sessions -eq 2 || fail "reader 2 never connected"
out2=$(get rx ids packets_out)
wait_stat rx 20 ids packets_out -gt $((out2 + 100)) || fail "reader 2 gets nothing"
stop r2 KILL 20
wait_stat rx 20 ids reader_connected -eq 0 || fail "reader 2 left unnoticed"

# None for a while: nothing is written, everything counted, input flows.
snapshot rx
gone_out=$(get rx ids packets_out)
gone_in=$(get rx ids packets_in)
gone_drop=$(get rx ids dropped.no-reader)
wait_stat rx 20 ids packets_in -gt $((gone_in + 200)) || fail "no reader: the writer stalled"
expect_eq "no reader again: packets_out frozen" "$(get rx ids packets_out)" "$gone_out"
expect_eq "no reader again: drops counted" "$(($(get rx ids dropped.no-reader) > gone_drop))" 1

# Reader 3 to the end, with SIGHUPs meanwhile: its stream stays whole.
reader r3 "$FIFO"
wait_stat rx 20 ids reader_sessions -eq 3 || fail "reader 3 never connected"
for i in 1 2; do
	kill -HUP "${PIDS[rx]}"
	o=$(get rx ids packets_out)
	wait_stat rx 20 ids packets_out -gt $((o + 50)) || fail "reader 3 stalled after SIGHUP $i"
done
expect_contains "SIGHUP: FIFO kept" "$(cat "$TMP/rx.err")" "its reader is connected: nothing to reopen"
stop tx
expect_eq "sender: exit" "$status" 0
sent=$(stat "$TMP/tx.json" z packets_out)
wait_stat rx 60 in packets_in -ge "$sent" || fail "receiver: not everything arrived"
stop rx
expect_eq "receiver: exit" "$status" 0
timeout 20 tail --pid="${PIDS[r3]}" -f /dev/null || fail "reader 3 did not see the end"
expect_balanced "sender" "$TMP/tx.json"
expect_balanced "receiver" "$TMP/rx.json"
R="$TMP/rx.json"
expect_eq "receiver: all in" "$(stat "$R" in packets_in)" "$sent"
expect_eq "receiver: write errors" "$(stat "$R" ids dropped write-error)" 0
expect_eq "receiver: sessions" "$(stat "$R" ids reader_sessions)" 3
expect_eq "receiver: held" "$(stat "$R" ids packets_held)" 0
for r in r1 r2 r3; do
	valid "$r" "$TMP/$r.pcap"
	n=$(count "$TMP/$r.pcap")
	if [ "$n" -gt 0 ]; then ok; else fail "$r: no packets"; fi
done
if why=$(pcaps subset "$TMP/input.pcap" "$TMP"/r[123].pcap 2>&1); then ok; else fail "readers: $why"; fi
expect_eq "reader 3: exactly what was written after it came" "$(count "$TMP/r3.pcap")" \
	$(($(stat "$R" ids packets_out) - gone_out))
expect_eq "readers: at most what was written" \
	$(($(count "$TMP/r1.pcap") + $(count "$TMP/r2.pcap") + $(count "$TMP/r3.pcap") <= $(stat "$R" ids packets_out))) 1

# Stopping with no reader ends at once, packets counted.
cat >"$TMP/none.ini" <<INI
[src]
plugin = pcap-in
path = $TMP/input.pcap

[ids]
plugin = pcap-out
input = src
path = $FIFO
INI
run_graph none 30
expect_eq "never a reader: exit" "$?" 0
expect_eq "never a reader: no-reader" "$(stat "$TMP/none.json" ids dropped no-reader)" "$N0"
expect_balanced "never a reader" "$TMP/none.json"

# wait = yes: a reader that does not read holds pcap-in back instead of
# costing drops; once it reads it gets every packet of the input, in order. The
# buffer holds more than pcap-in's batch (up to the whole 450 kB input),
# which goes on arriving while the node is busy.
cat >"$TMP/wait.ini" <<INI
[src]
plugin = pcap-in
path = $TMP/input.pcap
loop = 20

[ids]
plugin = pcap-out
input = src
path = $FIFO
buffer = 2MiB
pipe_size = 64KiB
wait = yes
INI
# The reader opens the FIFO first (a writer alone would drop), and reads
# only once told to.
spawn rw "$PY" -c '
import os, shutil, sys, time
src = open(sys.argv[1], "rb")
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
shutil.copyfileobj(src, open(sys.argv[3], "wb"), 1 << 20)' "$FIFO" "$TMP/rw.go" "$TMP/rw.pcap"
wait_for 10 fifo_opening "${PIDS[rw]}" || fail "wait: reader not opening"
START_READY=10 start wait "$TMP/wait.ini"
wait_stat wait 20 src paused -gt 0 || fail "wait: pcap-in never paused: $(cat "$TMP/wait.err")"
expect_eq "wait: nothing dropped while paused" "$(get wait ids dropped.reader-slow)" 0
expect_eq "wait: buffer bounded" "$(($(get wait ids buffer_bytes) <= 2097152))" 1
touch "$TMP/rw.go"
reap "${PIDS[wait]}" 60
expect_eq "wait: exit" "$?" 0
timeout 20 tail --pid="${PIDS[rw]}" -f /dev/null || fail "wait: the reader did not see the end"
expect_balanced "wait" "$TMP/wait.json"
expect_eq "wait: all written" "$(stat "$TMP/wait.json" ids packets_out)" $((N0 * 20))
expect_eq "wait: no drops" "$(stat "$TMP/wait.json" ids dropped reader-slow)" 0
expect_eq "wait: the reader got all" "$(count "$TMP/rw.pcap")" $((N0 * 20))
yes "$TMP/input.pcap" | head -n 20 | xargs mergecap -a -F pcap -w "$TMP/input20.pcap"
same "wait: in order" "$TMP/rw.pcap" "$TMP/input20.pcap"
sanitizer_clean "wait = yes" "$TMP/wait.err"

# ------------------------------------------------------------------ #
# Rotation                                                            #

# by size: NAME.0, NAME.1, ...; each at most rotate_size; together the input.
mkdir "$TMP/size"
graph() { # graph NAME "pcap-in keys" "pcap-out keys"
	printf '[src]\nplugin = pcap-in\npath = %s\n%b\n\n[out]\nplugin = pcap-out\ninput = src\n%b\n' \
		"$TMP/input.pcap" "$2" "$3" >"$TMP/$1.ini"
}
graph size "loop = 3" "path = $TMP/size/cap-%Y.pcap\nrotate_size = 64KiB"
run_graph size 60
expect_eq "size: exit" "$?" 0
expect_balanced "size" "$TMP/size.json"
read -r -a want <<<"$(pcaps sizes "$TMP/input.pcap" 3 65536)"
base="$TMP/size/cap-$(date +%Y).pcap"
expect_eq "size: files" "$(ls "$TMP/size" | wc -l)" "${#want[@]}"
expect_eq "size: files counter" "$(stat "$TMP/size.json" out files)" "${#want[@]}"
files=()
for ((i = 0; i < ${#want[@]}; i++)); do
	f="$base.$i"
	files+=("$f")
	[ -f "$f" ] || { fail "size: $f missing"; continue; }
	valid "size $i" "$f"
	expect_eq "size: $f packets" "$(count "$f")" "${want[i]}"
	# (a record larger than rotate_size makes a file of its own)
	expect_eq "size: $f within 64KiB" "$(($(wc -c <"$f") <= 65536 || want[i] == 1))" 1
done
mergecap -F pcap -a -w "$TMP/size-all.pcap" "${files[@]}"
mergecap -F pcap -a -w "$TMP/input3.pcap" "$TMP/input.pcap" "$TMP/input.pcap" "$TMP/input.pcap"
same "size: content" "$TMP/input3.pcap" "$TMP/size-all.pcap"

# rotate_count keeps the newest, and only those.
rm -rf "$TMP/size"/*
graph keep "loop = 3" "path = $TMP/size/cap-%Y.pcap\nrotate_size = 64KiB\nrotate_count = 3"
timeout 60 "$PKTPIPE" -c "$TMP/keep.ini" 2>"$TMP/keep.err"
expect_eq "keep: exit" "$?" 0
n=${#want[@]}
expect_eq "keep: files left" "$(ls "$TMP/size" | sort -V | tr '\n' ' ')" \
	"$(basename "$base").$((n - 3)) $(basename "$base").$((n - 2)) $(basename "$base").$((n - 1)) "
expect_eq "keep: newest kept whole" "$(count "$base.$((n - 1))")" "${want[n - 1]}"
expect_contains "keep: deletions logged" "$(cat "$TMP/keep.err")" "deleted (rotate_count)"

# by time: a file per second; names from strftime; together the input.
mkdir "$TMP/time"
graph time "rate = 150KiB/s" "path = $TMP/time/t-%Y%m%d-%H%M%S.pcap\nrotate_interval = 1s"
run_graph time 60
expect_eq "time: exit" "$?" 0
expect_balanced "time" "$TMP/time.json"
mapfile -t tfiles < <(ls "$TMP/time" | sort)
if [ "${#tfiles[@]}" -ge 2 ]; then ok; else fail "time: ${#tfiles[@]} files: $(cat "$TMP/time.err")"; fi
bad=$(printf '%s\n' "${tfiles[@]}" | grep -cvE '^t-[0-9]{8}-[0-9]{6}\.pcap$')
expect_eq "time: names" "$bad" 0
# One check for all: how many files a second makes depends on the clock.
tpaths=()
tbad=""
for f in "${tfiles[@]}"; do
	why=$(capture_problem "$TMP/time/$f")
	[ -z "$why" ] || tbad+="$f: $why; "
	tpaths+=("$TMP/time/$f")
done
expect_eq "time: every file a valid capture" "$tbad" ''
mergecap -F pcap -a -w "$TMP/time-all.pcap" "${tpaths[@]}"
same "time: content" "$TMP/input.pcap" "$TMP/time-all.pcap"

# SIGHUP under load, the file moved away first (logrotate): every part valid,
# together the input in order.
graph hup "rate = 150KiB/s\nloop = 2" "path = $TMP/hup.pcap\nflush = 10ms"
start hup "$TMP/hup.ini"
for i in 1 2 3; do
	wait_for 20 test -s "$TMP/hup.pcap" || fail "hup: nothing written before SIGHUP $i"
	sleep 0.5
	mv "$TMP/hup.pcap" "$TMP/hup.pcap.$i"
	kill -HUP "${PIDS[hup]}"
done
reap "${PIDS[hup]}" 60
expect_eq "hup: exit" "$?" 0
expect_balanced "hup" "$TMP/hup.json"
expect_eq "hup: files" "$(stat "$TMP/hup.json" out files)" 4
for f in "$TMP"/hup.pcap.[123] "$TMP/hup.pcap"; do valid "hup" "$f"; done
mergecap -F pcap -a -w "$TMP/hup-all.pcap" "$TMP"/hup.pcap.[123] "$TMP/hup.pcap"
mergecap -F pcap -a -w "$TMP/input2.pcap" "$TMP/input.pcap" "$TMP/input.pcap"
same "hup: content" "$TMP/input2.pcap" "$TMP/hup-all.pcap"

# ------------------------------------------------------------------ #
# Append                                                              #

graph app "" "path = $TMP/app.pcap\nappend = yes"
for i in 1 2 3; do timeout 30 "$PKTPIPE" -c "$TMP/app.ini" 2>"$TMP/app.err"; done
expect_eq "append: exit" "$?" 0
valid "append" "$TMP/app.pcap"
expect_eq "append: packets" "$(count "$TMP/app.pcap")" $((3 * N0))
same "append: content" "$TMP/input3.pcap" "$TMP/app.pcap"
# A record torn by a crash is cut off, and the file goes on whole.
head -c -7 "$TMP/app.pcap" >"$TMP/torn.pcap" && mv "$TMP/torn.pcap" "$TMP/app.pcap"
timeout 30 "$PKTPIPE" -c "$TMP/app.ini" 2>"$TMP/app.err"
expect_eq "append torn: exit" "$?" 0
expect_contains "append torn: logged" "$(cat "$TMP/app.err")" "cutting"
valid "append torn" "$TMP/app.pcap"
expect_eq "append torn: packets" "$(count "$TMP/app.pcap")" $((4 * N0 - 1))
# Incompatible: refused with the reason, the file untouched.
refused() { # refused FILE "pcap-out keys" REASON
	graph bad "" "path = $1\nappend = yes\n$2"
	err=$(timeout 30 "$PKTPIPE" -c "$TMP/bad.ini" 2>&1)
	expect_eq "append refused ($2): exit" "$?" 1
	expect_contains "append refused ($2)" "$err" "$(basename "$1"): cannot append to it: $3"
}
sum=$(md5sum <"$TMP/app.pcap")
refused "$TMP/app.pcap" "precision = ns" "it has microsecond timestamps, precision = ns"
refused "$TMP/app.pcap" "linktype = RAW" "it has linktype 1, this stream 101"
refused "$TMP/app.pcap" "format = pcapng" "it is not a pcapng file"
expect_eq "append refused: file untouched" "$(md5sum <"$TMP/app.pcap")" "$sum"
# A file cut shorter than ours (snaplen 1024, at byte 16 in this machine's order).
"$PY" -c 'import struct, sys; b = bytearray(open(sys.argv[1], "rb").read()); struct.pack_into("=I", b, 16, 1024); open(sys.argv[2], "wb").write(b)' \
	"$TMP/app.pcap" "$TMP/short.pcap"
refused "$TMP/short.pcap" "" "its snaplen 1024 is below snaplen = 262144"
echo "not a capture at all, just text" >"$TMP/text.pcap"
refused "$TMP/text.pcap" "" "it is not a pcap file"
graph ng "" "path = $TMP/app.pcapng\nappend = yes\nformat = pcapng"
for i in 1 2; do timeout 30 "$PKTPIPE" -c "$TMP/ng.ini" 2>"$TMP/ng.err"; done
expect_eq "append pcapng: exit" "$?" 0
valid "append pcapng" "$TMP/app.pcapng"
expect_eq "append pcapng: packets" "$(count "$TMP/app.pcapng")" $((2 * N0))
expect_eq "append pcapng: sections" "$(tshark -r "$TMP/app.pcapng" -T fields -e frame.interface_id 2>/dev/null | sort -u)" 0

# ------------------------------------------------------------------ #
# pcapng: nflog metadata from native frames                           #

cat >"$TMP/peer.py" <<'PY'
import struct, sys, time, zmq
port = sys.argv[1]
def record(ts, data, linktype=101, meta=b""):
    return struct.pack("!QIIIH", ts, len(data), len(data), linktype, len(meta)) + meta + data
def frame(seq, recs):
    raw = b"".join(recs)
    return struct.pack("!IBBHQQII", 0x504B5450, 1, 0, 1, 0x77, seq, len(recs), len(raw)) + raw
ip = bytes.fromhex("450000140001000040ff0000c0a80001c0a80002")
eth = b"\xff" * 6 + b"\x00\x11\x22\x33\x44\x55\x08\x00" + ip
tlv = lambda t, v: bytes([t, len(v)]) + v
m1 = tlv(1, b"\x00\x05") + tlv(3, b"\x00\x00\x00\x02") + tlv(7, b"\x00\x00\x00\x10") + tlv(2, b'DROP "x"\\')
m2 = tlv(1, b"\x00\x07") + tlv(2, "café".encode())
recs = [record(1700000000123456789, ip, meta=m1), record(1700000001000000001, ip),
        record(1700000002000000002, eth, linktype=1, meta=m2)]
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.LINGER, 10000)
s.connect("tcp://127.0.0.1:" + port)
if len(sys.argv) > 2:  # split: a frame per packet, apart, so each is a batch of its own
    for i, r in enumerate(recs):
        s.send(frame(i, [r]))
        time.sleep(0.3)
else:
    s.send(frame(0, recs))
s.close()
ctx.term()
PY
# ng_run NAME PATH FLUSH [split]: the peer's packets through zmq-in -> pcap-out
# pcapng. Split and flushed late, the Ethernet interface's block is queued
# behind the raw IP packets waiting, not sent ahead of them.
ng_run() {
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nformat = pcapng\nprecision = ns\nflush = %s\n' \
		"$2" "$3" >"$TMP/$1.ini"
	start "$1" "$TMP/$1.ini"
	wait_bound "$TMP/$1.err" 1 20 || fail "$1: no bind"
	if [ -p "$2" ]; then
		wait_stat "$1" 30 out reader_connected -eq 1 || fail "$1: the reader never came"
	fi
	timeout 30 "$PY" "$TMP/peer.py" "$(bound_port "$TMP/$1.err" in)" ${4:+"$4"} || fail "$1: peer failed"
	wait_stat "$1" 20 out packets_out -ge 3 || fail "$1: nothing written: $(cat "$TMP/$1.err")"
	stop "$1"
	expect_eq "$1: exit" "$status" 0
	expect_balanced "$1" "$TMP/$1.json"
}
fields() { tshark -r "$1" -T fields -E separator='|' -e frame.interface_id -e frame.time_epoch \
	-e frame.comment 2>/dev/null; }
WANT='0|1700000000.123456789|nflog group=5 prefix="DROP \"x\"\\" in=2 mark=0x10
0|1700000001.000000001|
1|1700000002.000000002|nflog group=7 prefix="caf\xc3\xa9"'
ng_run ngfile "$TMP/meta.pcapng" 2s split
expect_eq "pcapng: interfaces, ns, comments" "$(fields "$TMP/meta.pcapng")" "$WANT"
expect_eq "pcapng: linktypes" "$(capinfos "$TMP/meta.pcapng" | sed -n 's/^ *Encapsulation = //p' | tr '\n' ',')" \
	"Raw IP (7 - rawip),Ethernet (1 - ether),"
# Through a FIFO, the reader (tshark) gets a section of its own.
mkfifo "$TMP/ng.fifo"
spawn tshark tshark -r "$TMP/ng.fifo" -w "$TMP/fifo.pcapng"
ng_run ngfifo "$TMP/ng.fifo" 0
timeout 20 tail --pid="${PIDS[tshark]}" -f /dev/null || fail "pcapng fifo: tshark did not finish"
expect_eq "pcapng fifo: as read by tshark" "$(fields "$TMP/fifo.pcapng")" "$WANT"

# ------------------------------------------------------------------ #
# pcap-in reading a FIFO: never holds the loop                        #

# feed.py FIFO FILE CHUNK PAUSE [HOLD]: write FILE into FIFO CHUNK bytes at a
# time, PAUSE seconds apart; with HOLD, write the first HOLD bytes, then
# wait (at most 60 s) for $TMP/go before the rest.
cat >"$TMP/feed.py" <<'PY'
import os, sys, time
fifo, path, chunk, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
hold = int(sys.argv[5]) if len(sys.argv) > 5 else -1
data = open(path, "rb").read()
fd = os.open(fifo, os.O_WRONLY)
off = 0
while off < len(data):
    if off == hold:
        for _ in range(600):
            if os.path.exists(os.path.join(os.path.dirname(fifo), "go")):
                break
            time.sleep(0.1)
    end = min(off + chunk, len(data), hold if off < hold else len(data))
    off += os.write(fd, data[off:end])
    time.sleep(pause)
os.close(fd)
PY
# pin_graph NAME FIFO [LOOP]: pcap-in on FIFO -> pcap-out $TMP/NAME.pcap
pin_graph() {
	printf '[f]\nplugin = pcap-in\npath = %s\nloop = %s\n\n[fo]\nplugin = pcap-out\ninput = f\npath = %s\nprecision = ns\n' \
		"$2" "${3:-1}" "$TMP/$1.pcap" >"$TMP/$1.ini"
}
AOE="$CORPUS/AoE_Linux.pcap"
PFIFO="$TMP/in.fifo"
mkfifo "$PFIFO"
on_exit "rm -f $PFIFO"

# A writer connected but silent after the header; a second source's branch
# still flows to its end.
pin_graph silent "$PFIFO"
printf '\n[r]\nplugin = pcap-in\npath = %s\nloop = 5\n\n[ro]\nplugin = pcap-out\ninput = r\npath = %s\n' \
	"$AOE" "$TMP/silent-r.pcap" >>"$TMP/silent.ini"
rm -f "$TMP/go"
spawn feeder "$PY" "$TMP/feed.py" "$PFIFO" "$AOE" 4096 0 24
start silent "$TMP/silent.ini"
running silent
wait_stat silent 20 ro packets_out -eq 930 ||
	fail "silent writer: the other branch wrote $(stat "$TMP/silent.json" ro packets_out) of 930"
expect_eq "silent writer: nothing from the FIFO yet" "$(stat "$TMP/silent.json" f packets_in)" 0
touch "$TMP/go"
reap "${PIDS[feeder]}" 30 || fail "silent writer: feeder failed: $(cat "$TMP/feeder.err")"
reap "${PIDS[silent]}" 30
expect_eq "silent writer: exit" "$?" 0
expect_balanced "silent writer" "$TMP/silent.json"
same "silent writer: FIFO copy" "$TMP/silent.pcap" "$AOE"
mergecap -a -F pcap -w "$TMP/aoe5.pcap" "$AOE" "$AOE" "$AOE" "$AOE" "$AOE"
same "silent writer: file copy" "$TMP/silent-r.pcap" "$TMP/aoe5.pcap"

# A slow writer, a few hundred bytes at a time: complete and identical.
pin_graph slow "$PFIFO"
spawn feeder "$PY" "$TMP/feed.py" "$PFIFO" "$AOE" 300 0.002
run_graph slow 60
expect_eq "slow writer: exit" "$status" 0
expect_balanced "slow writer" "$TMP/slow.json"
same "slow writer: content" "$TMP/slow.pcap" "$AOE"
reap "${PIDS[feeder]}" 10

# pcapng, slowly, twice (loop = 2: a new writer for the second play).
editcap -F pcapng "$AOE" "$TMP/aoe.pcapng"
pin_graph ng "$PFIFO" 2
start ng "$TMP/ng.ini"
for i in 1 2; do
	timeout 30 "$PY" "$TMP/feed.py" "$PFIFO" "$TMP/aoe.pcapng" 500 0.001 ||
		fail "pcapng FIFO: writer $i failed"
done
reap "${PIDS[ng]}" 30
expect_eq "pcapng FIFO: exit" "$?" 0
expect_balanced "pcapng FIFO" "$TMP/ng.json"
expect_eq "pcapng FIFO: both plays" "$(stat "$TMP/ng.json" fo packets_out)" 372
mergecap -a -F pcap -w "$TMP/aoe2.pcap" "$AOE" "$AOE"
same "pcapng FIFO: content" "$TMP/ng.pcap" "$TMP/aoe2.pcap"

# A record cut short by a writer that leaves: the file is named, exit 1.
# A record no file has (2 GiB): refused the same way, without waiting for it.
"$PY" - "$TMP" <<'PY'
import struct, sys
head = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
rec = struct.pack("<IIII", 1, 0, 100, 100)
open(sys.argv[1] + "/cut-in.pcap", "wb").write(head + rec + b"x" * 100 + rec + b"y" * 10)
open(sys.argv[1] + "/huge-in.pcap", "wb").write(head + struct.pack("<IIII", 1, 0, 1 << 31, 1 << 31))
PY
for kind in cut huge; do
	pin_graph "$kind" "$PFIFO"
	spawn feeder "$PY" "$TMP/feed.py" "$PFIFO" "$TMP/$kind-in.pcap" 50 0.01
	run_graph "$kind" 30
	expect_eq "$kind record on a FIFO: exit" "$status" 1
	expect_contains "$kind record on a FIFO: message" "$(cat "$TMP/$kind.err")" "$PFIFO: damaged capture after"
	reap "${PIDS[feeder]}" 10
done
expect_contains "cut record on a FIFO: reason" "$(cat "$TMP/cut.err")" "after 1 packets: truncated"
expect_contains "huge record on a FIFO: reason" "$(cat "$TMP/huge.err")" "limit 262144"
sanitizer_clean "pcap-in on a FIFO" "$TMP"/{silent,slow,ng,cut,huge}.err

# ------------------------------------------------------------------ #
# Checks before anything opens                                        #

check() { # check "pcap-out keys": --check's status and stderr
	graph chk "" "path = $TMP/x.pcap\n$1"
	check_ini "$TMP/chk.ini"
}
check "rotate_count = 3"
expect_eq "check rotate_count alone: exit" "$status" 2
expect_contains "check rotate_count alone" "$err" "rotate_count needs rotate_size or rotate_interval"
check "rotate_interval = 200ms"
expect_eq "check rotate_interval: exit" "$status" 2
expect_contains "check rotate_interval" "$err" "rotate_interval must be at least 1s"
check "format = pcapng\nappend = yes\nrotate_size = 1MiB\nrotate_interval = 1h\nrotate_count = 5"
expect_eq "check all keys: exit" "$status" 0
graph fiforot "" "path = $FIFO\nrotate_size = 1MiB"
err=$(timeout 30 "$PKTPIPE" -c "$TMP/fiforot.ini" 2>&1)
expect_eq "rotation on a FIFO: exit" "$?" 1
expect_contains "rotation on a FIFO: message" "$err" "rotation needs regular files"

finish
