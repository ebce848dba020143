#!/bin/bash
# Faults under load: the graph keeps flowing, counts what it loses, and
# recovers.
#   - the receiver SIGKILLed and restarted three times while a paced sender
#     keeps going: the sender never stalls (its source keeps producing
#     through every outage), counts what libzmq cannot queue as hwm drops,
#     each new receiver gets packets again, both sides balance;
#   - the FIFO reader (tcpdump -r FIFO) SIGKILLed and restarted four
#     times: pcap-out never stalls, its counters keep moving through every
#     absence (the packets dropped and counted), each new reader gets a
#     readable stream, the run ends cleanly;
#   - statsd down: a statsd node pointed at a port with nothing listening:
#     the capture is written whole, send_errors counted;
#   - pcap-out on a full file system (a 1 MiB tmpfs in a private mount
#     namespace, nearly filled): drops counted as write-error, no crash,
#     the source never stalls; once the filler is deleted, writing recovers
#     and the file reads clean to its end;
#   - SIGHUP during load, logrotate style (file moved, SIGHUP, five times):
#     every file reads clean to its end, together they hold every packet;
#   - the input file cut short, or appended to, while pcap-in reads it
#     (through its map and with read()): the output holds what the file
#     held when the reader got there, and a map says it shrank;
#   - ring queries during load (only when build/pktpipe-query and the ring
#     plugin exist: otherwise a note, counted neither way).
# Ports are picked at run time, every wait is bounded, and processes,
# FIFOs and the mount namespace go with on_exit whatever happens.
SUITE=faults
. "$(dirname "$0")/../lib.sh"

INPUT="$CORPUS/babel_rfc6126bis.pcap"
START_READY=10 # start waits until pktpipe can take a SIGUSR1

need_plugins pcap-in pcap-out zmq-in zmq-out statsd
need_tools tcpdump unshare mount python3
[ -f "$INPUT" ] || fail "no $INPUT"
[ "$(id -u)" = 0 ] || fail "needs root (a tmpfs in a mount namespace)"
finish_if_failed

# ------------------------------------------------------------------ #
# Helpers                                                             #

# now NAME NODE FIELD [REASON]: a counter from a fresh snapshot (-1: none).
now() {
	if snapshot "$1"; then stat "$TMP/$1.json" "$2" "$3" ${4:+"$4"}; else echo -1; fi
}

# pcap_check FILE: "PACKETS clean" if libpcap reads it to its end, else
# "PACKETS damaged: REASON".
pcap_check() {
	"$PY" - "$1" <<'PY'
import ctypes, sys
pcap = ctypes.CDLL("libpcap.so.0.8")
pcap.pcap_open_offline.restype = ctypes.c_void_p
pcap.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
pcap.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
pcap.pcap_geterr.restype = ctypes.c_char_p
pcap.pcap_geterr.argtypes = [ctypes.c_void_p]
err = ctypes.create_string_buffer(512)
p = pcap.pcap_open_offline(sys.argv[1].encode(), err)
if not p:
    sys.exit(print("0 damaged: " + err.value.decode()))
h, d, n = ctypes.c_void_p(), ctypes.c_void_p(), 0
while (rc := pcap.pcap_next_ex(p, ctypes.byref(h), ctypes.byref(d))) == 1:
    n += 1
print(f"{n} clean" if rc == -2 else f"{n} damaged: {pcap.pcap_geterr(p).decode()}")
PY
}

# ------------------------------------------------------------------ #
# The receiver killed and restarted under load                        #

rx_ini() { # rx_ini NAME ENDPOINT
	printf '[in]\nplugin = zmq-in\nendpoint = %s\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\n' \
		"$2" "$TMP/$1.pcap" >"$TMP/$1.ini"
}

rx_ini rx0 "tcp://127.0.0.1:*"
start rx0 "$TMP/rx0.ini"
wait_bound "$TMP/rx0.err" 1 20 || fail "receiver: no bind: $(tail -n 2 "$TMP/rx0.err")"
port=$(bound_port "$TMP/rx0.err" in)
printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 300KiB/s\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 20\nbatch_packets = 8\nlinger = 0\n' \
	"$INPUT" "$port" >"$TMP/tx.ini"
start tx "$TMP/tx.ini"
wait_stat rx0 20 out packets_out -gt 50 || fail "receiver: no packets before the first kill"
rx=rx0
for k in 1 2 3; do
	stop $rx KILL
	src0=$(now tx src packets_out)
	hwm0=$(now tx z dropped hwm)
	# The outage: the source goes on, libzmq's queue fills, drops are counted.
	wait_stat tx 10 z dropped -gt "$hwm0" hwm && ok || fail "restart $k: no hwm drops counted while the receiver was away"
	wait_stat tx 10 src packets_out -gt "$((src0 + 100))" && ok || fail "restart $k: the sender stalled while the receiver was away"
	rx=rx$k
	rx_ini $rx "tcp://127.0.0.1:$port"
	start $rx "$TMP/$rx.ini"
	wait_bound "$TMP/$rx.err" 1 20 || fail "restart $k: the new receiver did not bind port $port: $(tail -n 2 "$TMP/$rx.err")"
	wait_stat $rx 20 out packets_out -gt 20 && ok || fail "restart $k: the new receiver got nothing"
done
stop tx
expect_eq "restarts: sender exit" "$status" 0
expect_balanced "restarts: sender" "$TMP/tx.json"
hwm=$(stat "$TMP/tx.json" z dropped hwm)
sent=$(stat "$TMP/tx.json" z packets_sent)
echo "faults: receiver restarts: sender sent $sent packets, dropped $hwm (hwm) in 3 outages"
wait_stat $rx 5 in frames_in -gt 0 >/dev/null
sleep 0.3
stop $rx
expect_eq "restarts: last receiver exit" "$status" 0
expect_balanced "restarts: last receiver" "$TMP/$rx.json"
expect_eq "restarts: last receiver: bad frames" "$(stat "$TMP/$rx.json" in frames_bad)" 0
got=$(pcap_check "$TMP/$rx.pcap")
expect_eq "restarts: last receiver's file" "$got" "$(stat "$TMP/$rx.json" out packets_out) clean"
sanitizer_clean "restarts: sender" "$TMP/tx.err"

# ------------------------------------------------------------------ #
# The FIFO reader killed repeatedly                                   #

FIFO="$TMP/ids.fifo"
mkfifo "$FIFO"
on_exit "rm -f $FIFO"
# reader K: tcpdump reading the FIFO, one line per packet in $TMP/readerK.txt
# (not under timeout: its pid must be tcpdump itself; on_exit bounds it).
reader() {
	spawn "reader$1" tcpdump -l -nn -r "$FIFO" >"$TMP/reader$1.txt"
	READER=${PIDS[reader$1]}
}
lines() { wc -l <"$TMP/reader$1.txt"; }

sessions=no
"$PKTPIPE" --describe pcap-out | grep -q '^retry ' && sessions=yes
printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 300KiB/s\n\n[out]\nplugin = pcap-out\ninput = src\npath = %s\nbuffer = 64KiB\nflush = 20ms\n' \
	"$INPUT" "$FIFO" >"$TMP/fifo.ini"
[ $sessions = yes ] && echo 'retry = 50ms' >>"$TMP/fifo.ini"
reader 0
start fifo "$TMP/fifo.ini"
wait_for 20 bash -c "[ \$(wc -l < '$TMP/reader0.txt') -ge 20 ]" && ok || fail "fifo: the first reader got nothing: $(cat "$TMP/reader0.err")"
for k in 1 2 3 4; do
	stop_pid "$READER" KILL
	in0=$(now fifo out packets_in)
	drop0=$(drops "$TMP/fifo.json" out)
	src0=$(now fifo src packets_out)
	# Nobody reads: the source and pcap-out go on, and count what is lost.
	wait_stat fifo 10 src packets_out -gt "$((src0 + 100))" && ok || fail "fifo: restart $k: the source stalled without a reader"
	wait_stat fifo 10 out packets_in -gt "$in0" && ok || fail "fifo: restart $k: pcap-out took nothing without a reader"
	wait_snapshot fifo 10 -gt "$drop0" drops "$TMP/fifo.json" out && ok || fail "fifo: restart $k: no drop counted without a reader"
	if kill -0 "${PIDS[fifo]}" 2>/dev/null; then ok; else fail "fifo: restart $k: pktpipe died"; fi
	reader $k
	if [ $sessions = yes ]; then
		wait_for 20 bash -c "[ \$(wc -l < '$TMP/reader$k.txt') -ge 10 ]" && ok ||
			fail "fifo: reader $k got nothing: $(head -c 300 "$TMP/reader$k.err")"
	fi
done
if [ $sessions = no ]; then
	echo "faults: note: pcap-out has no FIFO reader sessions (no 'retry' key): readers after the first were not checked"
fi
stop fifo
expect_eq "fifo: exit" "$status" 0
expect_balanced "fifo" "$TMP/fifo.json"
if [ $sessions = yes ]; then
	expect_eq "fifo: reader sessions" "$(stat "$TMP/fifo.json" out reader_sessions)" 5
	wait_for 10 bash -c "! kill -0 $READER 2>/dev/null"
	grep -qiE 'truncated|bad dump|error' "$TMP/reader4.err" &&
		fail "fifo: the last reader saw a damaged stream: $(head -c 300 "$TMP/reader4.err")" || ok
fi
echo "faults: fifo: $(stat "$TMP/fifo.json" out packets_in) packets in, $(stat "$TMP/fifo.json" out packets_out) written, dropped $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"]["out"]["dropped"])' "$TMP/fifo.json")"
sanitizer_clean "fifo" "$TMP/fifo.err"

# ------------------------------------------------------------------ #
# statsd down                                                         #

deadport=$(free_port udp)
bytes=$(command stat -c %s "$INPUT")
printf '[src]\nplugin = pcap-in\npath = %s\nrate = %d\n\n[out]\nplugin = pcap-out\ninput = src\npath = %s\nprecision = ns\n\n[sd]\nplugin = statsd\nhost = 127.0.0.1:%s\ninterval = 20ms\n' \
	"$INPUT" $((bytes)) "$TMP/sd.pcap" "$deadport" >"$TMP/sd.ini"
run_graph sd 60
expect_eq "statsd down: exit" "$?" 0
expect_balanced "statsd down" "$TMP/sd.json"
expect_eq "statsd down: capture" "$("$BUILD/tools/pcapcmp" "$INPUT" "$TMP/sd.pcap" 2>&1)" \
	"$(stat "$TMP/sd.json" src packets_out) packets identical"
errors=$(stat "$TMP/sd.json" sd send_errors)
if [ "$errors" -ge 2 ]; then ok; else fail "statsd down: $errors send errors counted"; fi
sanitizer_clean "statsd down" "$TMP/sd.err"

# ------------------------------------------------------------------ #
# A full file system                                                  #

FULL="$TMP/full"
mkdir -p "$FULL"
printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 100KiB/s\n\n[out]\nplugin = pcap-out\ninput = src\npath = %s\nflush = 20ms\n' \
	"$INPUT" "$FULL/out.pcap" >"$TMP/full.ini"
# A private mount namespace: the tmpfs goes with its last process. unshare
# and sh exec, so the pid spawn keeps is pktpipe itself.
spawn full unshare -m --propagation private sh -c '
	mount -t tmpfs -o size=1m pktpipe-faults "$1" &&
	head -c 900k /dev/zero >"$1/filler" &&
	exec "$2" -c "$3" --stats-json "$4" >/dev/null' sh \
	"$FULL" "$PKTPIPE" "$TMP/full.ini" "$TMP/full.json"
running full
INSIDE="/proc/${PIDS[full]}/root$FULL"
wait_stat full 20 out dropped -gt 0 write-error && ok || fail "full: no write-error drops: $(tail -n 3 "$TMP/full.err")"
if kill -0 "${PIDS[full]}" 2>/dev/null; then ok; else fail "full: pktpipe died: $(tail -n 3 "$TMP/full.err")"; fi
src0=$(now full src packets_out)
wait_stat full 10 src packets_out -gt "$((src0 + 100))" && ok || fail "full: the source stalled on a full disk"
grep -q 'No space left on device' "$TMP/full.err" && ok || fail "full: ENOSPC not logged: $(tail -n 3 "$TMP/full.err")"
werr=$(now full out dropped write-error)
out0=$(stat "$TMP/full.json" out packets_out)
rm -f "$INSIDE/filler" || fail "full: cannot delete the filler through $INSIDE"
wait_stat full 10 out packets_out -gt "$((out0 + 50))" && ok || fail "full: writing did not recover once space returned"
werr1=$(now full out dropped write-error)
sleep 0.5
expect_eq "full: no more write errors after recovery" "$(now full out dropped write-error)" "$werr1"
cp "$INSIDE/out.pcap" "$TMP/full-copy.pcap" 2>/dev/null
stop full
expect_eq "full: exit" "$status" 0
expect_balanced "full" "$TMP/full.json"
echo "faults: full: $werr packets dropped as write-error while full; $(stat "$TMP/full.json" out packets_out) written"
cp "$INSIDE/out.pcap" "$TMP/full-copy.pcap" 2>/dev/null
got=$(pcap_check "$TMP/full-copy.pcap")
case "$got" in
*clean) ok ;;
*) fail "full: the file does not read clean after ENOSPC and recovery: $got (pcap-out wrote $(stat "$TMP/full.json" out packets_out))" ;;
esac
sanitizer_clean "full" "$TMP/full.err"

# ------------------------------------------------------------------ #
# SIGHUP during load, logrotate style                                 #

printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 500KiB/s\n\n[out]\nplugin = pcap-out\ninput = src\npath = %s\nprecision = ns\nflush = 10ms\n' \
	"$INPUT" "$TMP/hup.pcap" >"$TMP/hup.ini"
start hup "$TMP/hup.ini"
wait_stat hup 20 out packets_out -gt 50 || fail "hup: nothing written"
for k in 0 1 2 3 4; do
	mv "$TMP/hup.pcap" "$TMP/hup.$k.pcap"
	kill -HUP "${PIDS[hup]}"
	w=$(now hup out packets_out)
	wait_stat hup 10 out packets_out -gt "$((w + 50))" || fail "hup: nothing written after SIGHUP $k"
	wait_for 10 test -s "$TMP/hup.pcap" || fail "hup: no new file after SIGHUP $k"
done
stop hup
expect_eq "hup: exit" "$status" 0
expect_balanced "hup" "$TMP/hup.json"
total=0
for f in "$TMP"/hup.[0-4].pcap "$TMP/hup.pcap"; do
	got=$(pcap_check "$f")
	case "$got" in
	*clean) ok ;;
	*) fail "hup: $(basename "$f") does not read clean: $got" ;;
	esac
	total=$((total + ${got%% *}))
done
expect_eq "hup: every packet in one of the files" "$total" "$(stat "$TMP/hup.json" out packets_out)"
sanitizer_clean "hup" "$TMP/hup.err"

# ------------------------------------------------------------------ #
# The input file shrinks, or grows, while it is read                  #

# records FILE COUNT OUT: a capture of INPUT's records repeated COUNT
# times into OUT; prints the byte offset after each 100th record.
records() {
	"$PY" - "$@" <<'PY'
import struct, sys
src, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(src, "rb").read()
head, recs, at = data[:24], [], 24
while at + 16 <= len(data):
    n = struct.unpack_from("<I", data, at + 8)[0]
    recs.append(data[at:at + 16 + n])
    at += 16 + n
with open(out, "wb") as f:
    f.write(head)
    for i in range(count):
        f.write(recs[i % len(recs)])
        if (i + 1) % 100 == 0:
            print(f.tell())
PY
}

# The reader is paced (256 KiB/s); the file changes once the first packets
# are out, about two seconds before the reader could reach the change.
# read_changing NAME MMAP CHANGE...: runs pcap-in (mmap = MMAP) on
# $TMP/NAME.in, runs CHANGE once it is under way, waits for the end.
read_changing() {
	local name=$1 mmap=$2
	shift 2
	printf '[src]\nplugin = pcap-in\npath = %s\nrate = 256KiB/s\nmmap = %s\n\n[out]\nplugin = pcap-out\ninput = src\npath = %s\nprecision = ns\nflush = 20ms\n' \
		"$TMP/$name.in" "$mmap" "$TMP/$name.pcap" >"$TMP/$name.ini"
	start "$name" "$TMP/$name.ini"
	wait_for 20 test -s "$TMP/$name.pcap" || fail "$name: nothing written"
	"$@"
	reap "${PIDS[$name]}" 30
	status=$?
}

mapfile -t cuts < <(records "$INPUT" 8000 "$TMP/whole.in")
cut=${cuts[39]} # 4000 records, about 600 KiB
head -c "$cut" "$TMP/whole.in" >"$TMP/first.in"
for mmap in yes no; do
	cp "$TMP/whole.in" "$TMP/shrink-$mmap.in"
	read_changing "shrink-$mmap" "$mmap" truncate -s "$cut" "$TMP/shrink-$mmap.in"
	expect_eq "shrink (mmap $mmap): exit" "$status" 0
	expect_balanced "shrink (mmap $mmap)" "$TMP/shrink-$mmap.json"
	expect_eq "shrink (mmap $mmap): what the file held at its end" \
		"$("$BUILD/tools/pcapcmp" "$TMP/first.in" "$TMP/shrink-$mmap.pcap" 2>&1)" "4000 packets identical"
	sanitizer_clean "shrink (mmap $mmap)" "$TMP/shrink-$mmap.err"

	cp "$TMP/first.in" "$TMP/grow-$mmap.in"
	read_changing "grow-$mmap" "$mmap" sh -c 'tail -c +$(($2 + 1)) "$1" >>"$3"' sh \
		"$TMP/whole.in" "$cut" "$TMP/grow-$mmap.in"
	expect_eq "grow (mmap $mmap): exit" "$status" 0
	expect_balanced "grow (mmap $mmap)" "$TMP/grow-$mmap.json"
	expect_eq "grow (mmap $mmap): what was appended is read too" \
		"$("$BUILD/tools/pcapcmp" "$TMP/whole.in" "$TMP/grow-$mmap.pcap" 2>&1)" "8000 packets identical"
	sanitizer_clean "grow (mmap $mmap)" "$TMP/grow-$mmap.err"
done
expect_contains "shrink (mmap yes): said so" "$(cat "$TMP/shrink-yes.err")" \
	"shrink-yes.in: the file shrank to $cut bytes while it was read"

# ------------------------------------------------------------------ #
# Ring queries during load                                            #

QUERY="$BUILD/pktpipe-query"
if [ ! -x "$QUERY" ] || [ ! -f "$BUILD/plugins/ring.so" ]; then
	echo "faults: note: ring queries during load skipped: no $QUERY or ring plugin (counted neither way)"
else
	printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 500KiB/s\n\n[ring]\nplugin = ring\ninput = src\nwindow = 256KiB\nendpoint = tcp://127.0.0.1:*\n\n[out]\nplugin = pcap-out\ninput = src\npath = /dev/null\n' \
		"$INPUT" >"$TMP/ring.ini"
	start ring "$TMP/ring.ini"
	wait_bound "$TMP/ring.err" 1 20 || fail "ring: no bind: $(tail -n 2 "$TMP/ring.err")"
	rport=$(bound_port "$TMP/ring.err" ring)
	wait_stat ring 10 ring packets_in -gt 500 || fail "ring: no load"
	qbad=0
	for k in $(seq 1 10); do
		case $((k % 3)) in
		0) args=(--filter udp) ;;
		1) args=(--limit-packets 100) ;;
		2) args=(--last 2s) ;;
		esac
		if ! timeout 20 "$QUERY" --timeout 10s "${args[@]}" "tcp://127.0.0.1:$rport" >"$TMP/q$k.pcap" 2>"$TMP/q$k.err"; then
			qbad=$((qbad + 1))
			fail "ring: query $k (${args[*]}) failed: $(head -c 300 "$TMP/q$k.err")"
			continue
		fi
		got=$(pcap_check "$TMP/q$k.pcap")
		case "$got" in
		0\ *) qbad=$((qbad + 1)); fail "ring: query $k (${args[*]}): no packet" ;;
		*clean) ;;
		*) qbad=$((qbad + 1)); fail "ring: query $k (${args[*]}): $got" ;;
		esac
	done
	[ $qbad -eq 0 ] && ok
	src0=$(now ring src packets_out)
	wait_stat ring 10 src packets_out -gt "$((src0 + 100))" && ok || fail "ring: the graph stalled after the queries"
	stop ring
	expect_eq "ring: exit" "$status" 0
	expect_balanced "ring" "$TMP/ring.json"
	expect_eq "ring: queries answered" "$(stat "$TMP/ring.json" ring queries)" 10
	sanitizer_clean "ring" "$TMP/ring.err"
fi

finish
