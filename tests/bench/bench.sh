#!/bin/bash
# make bench: pktpipe's speed against tcpdump, raw libzmq and ulogd2, its
# codecs, its host overhead and its memory, as one table.
#
#   bash tests/bench/bench.sh BUILD_DIR        (make bench: BUILD_DIR = build)
#
# Every comparison is a ratio of two programs run side by side, alternating,
# in the same run: the median of BENCH_RUNS (default 5) runs each. Nothing
# here fails on a goal: the table says which goals hold. Exit status 0,
# unless a row could not run at all (1) or the arguments are wrong (2).
#
# Needs root for row 3 (a network namespace, iptables, NFLOG) and installs
# ulogd2 and ulogd2-pcap with apt-get when they are missing. Builds its own
# helpers (tests/bench/*.c) with cc into BUILD_DIR/bench/; runs `make` for
# what the Makefile builds (the host, plugins, test plugins, tools) if
# something is missing. All data goes to a tmpfs and is removed at exit.
#
# Rows 1 and 2 first run each side once, untimed: the early runs after the
# inputs are made can be slow for reasons of their own (once, row 1b's
# first tcpdump took 0.59 s and the next pktpipe 0.65 s, against 0.18 to
# 0.29 s for every later copy of either).
#
# Knobs (environment): BENCH_RUNS (5), BENCH_ROWS ("1 2 3 4 5 6"),
# BENCH_FLOOD_SECONDS (5), BENCH_DEBUG (set: rows 1 and 2 print each run's
# times on stderr), BENCH_HOLD_MEMORY (0: leave free page reporting as the
# machine has it; see hold_memory), BENCH_HOLD_GIB (8).
#
# tests/lib.sh brings $TMP (removed at exit), PKTPIPE, CORPUS, on_exit and
# the process helpers; sourced from the root, so that a relative BUILD_DIR
# is the root's, as for make. It has no checks to count here: the exit
# status is the table's.
set -u

BUILD_ARG=${1:-build}
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
SUITE=bench
. tests/lib.sh
RUNS=${BENCH_RUNS:-5}
ROWS=${BENCH_ROWS:-1 2 3 4 5 6}
FLOOD=${BENCH_FLOOD_SECONDS:-5}
BENCH=$BUILD/bench
RT=$BENCH/runtime
BROKEN=0
TABLE=()
COMMANDS=()
NOTES=()

# ------------------------------------------------------------------ #
# Plumbing                                                            #

say() { echo "bench: $*" >&2; }
debug() { [ -z "${BENCH_DEBUG:-}" ] || say "$*"; }

# A table row: ID WHAT PKTPIPE BASELINE RATIO GOAL MET
row() {
	local line="|" f
	for f in "$@"; do
		line+=" $f |"
	done
	TABLE+=("$line")
}

# The command lines that reproduce row ID.
cmds() {
	local id=$1 c
	shift
	for c in "$@"; do
		COMMANDS+=("$id	$c")
	done
}

# A row that could not run: printed as such, and the exit status says so.
broken() {
	row "$1" "$2" "not run: $3" "" "" "" ""
	BROKEN=1
	say "row $1 not run: $3"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# calc EXPR: floating point arithmetic.
calc() { awk "BEGIN { printf \"%.6g\", ($*) }"; }
# yesno COND: "yes" or "no" from an awk condition.
yesno() { awk "BEGIN { print (($*) ? \"yes\" : \"no\") }"; }
# One field from "key value key value" output.
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'; }
mpps() { calc "$1 / 1e6" | awk '{ printf "%.2f", $1 }'; }
# fmt EXPR [FORMAT]: the value of EXPR, formatted (default %.2f).
fmt() { awk "BEGIN { printf \"${2:-%.2f}\", ($1) }"; }

# ------------------------------------------------------------------ #
# Set-up                                                              #

machine() {
	local cpu
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	echo "$(nproc) vCPU ($cpu), kernel $(uname -r), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; shared with other engineers' test suites while it ran (load average at start: $(cut -d' ' -f1-3 /proc/loadavg))"
}

# What the Makefile builds, if it is not there yet.
build_project() {
	local want=("$PKTPIPE" "$BUILD/tests/plugins/pass.so" "$BUILD/tests/plugins/count.so"
		"$BUILD/tools/nflog-udp") missing=() f
	for f in "${want[@]}"; do
		[ -e "$f" ] || missing+=("${f#"$ROOT"/}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "building ${missing[*]}"
	make -s -C "$ROOT" BUILD="$BUILD_ARG" all "${missing[@]}" >&2 || say "make failed"
}

# The benchmark's own programs, with cc straight into BUILD/bench.
build_helpers() {
	local cc=${CC:-cc} flags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -O2 -I"$ROOT/include")
	mkdir -p "$BENCH" || return 1
	"$cc" "${flags[@]}" -o "$BENCH/mkpcap" tests/bench/mkpcap.c -lpcap &&
		"$cc" "${flags[@]}" -o "$BENCH/runtime" tests/bench/runtime.c &&
		"$cc" "${flags[@]}" -o "$BENCH/rawzmq" tests/bench/rawzmq.c -lzmq -lpcap -lpthread &&
		"$cc" "${flags[@]}" -o "$BENCH/codec" tests/bench/codec.c -lpcap -ldl &&
		"$cc" "${flags[@]}" -o "$BENCH/ballast" tests/bench/ballast.c
}

# A tmpfs for every file: $TMP moves to /dev/shm, or gets one mounted on it
# for the run (lib.sh removes $TMP at exit, after the unmount).
make_tmp() {
	local shm
	if [ "$(command stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
		shm=$(mktemp -d /dev/shm/pktpipe-bench.XXXXXX); then
		rmdir "$TMP"
		TMP=$shm
		return 0
	fi
	mount -t tmpfs -o size=8g pktpipe-bench "$TMP" || return 1
	on_exit "umount $TMP"
}

# A VM whose guest hands freed memory back to its host at once (free page
# reporting with min_free_ms 0, as under PVM here) pays the host for every
# page a new file takes: a new tmpfs file was written at 0.45 to 4.4 GB/s,
# against 5 GB/s into memory the guest kept. That is the machine's cost,
# not either program's, and it swamps row 3a (and 2a's file). So for the
# run, when that knob exists and BENCH_HOLD_MEMORY is not 0, freed pages
# are kept a while (the largest min_free_ms the kernel takes, and no cap
# on what waits), and HOLD_GIB of the tmpfs is written and removed first,
# so that what the rows write lands on pages the guest already has. That
# holds only part of it: within seconds of a large file's removal, the
# host takes back gigabytes all the same. So each of row 3's captures to
# a tmpfs file also gets a ballast (ballast_for): BALLAST_MIB of the tmpfs
# written just before, when the last capture's file had just freed its
# pages, and given up a little ahead of the capture's file as that grows.
# Both knobs are set back at exit; the table's notes tell what was done
# and how much the host still took back. The values found are also kept in
# HOLD_STATE until then: a bench killed before its exit handlers ran
# leaves them there, and the next run sets the knobs back from them.
PAGE_REPORTING=/sys/module/page_reporting/parameters
HOLD_GIB=${BENCH_HOLD_GIB:-8}
HOLD_STATE=/run/pktpipe-bench.page_reporting
HELD_KIB=
BALLAST_MIB=

hold_memory() {
	local p=$PAGE_REPORTING ms0 wait0 ms avail
	[ "${BENCH_HOLD_MEMORY:-1}" != 0 ] && [ -w "$p/min_free_ms" ] && [ -w "$p/max_waiting_mib" ] || return 0
	if [ -s "$HOLD_STATE" ] && read -r ms0 wait0 <"$HOLD_STATE"; then
		NOTES+=("an earlier bench left free page reporting held; its values before ($ms0, $wait0) come from $HOLD_STATE")
	else
		ms0=$(cat "$p/min_free_ms") wait0=$(cat "$p/max_waiting_mib") || return 0
		echo "$ms0 $wait0" >"$HOLD_STATE" || return 0
	fi
	on_exit "echo $ms0 >$p/min_free_ms; echo $wait0 >$p/max_waiting_mib; rm -f $HOLD_STATE"
	for ms in 3600000 600000 300000 60000; do
		echo "$ms" 2>/dev/null >"$p/min_free_ms" && break
	done
	echo $(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024)) >"$p/max_waiting_mib"
	# Half the memory available, and what the tmpfs takes (a full one
	# would only stop dd early; this keeps the note true).
	avail=$(awk '/^MemAvailable:/ { print int($2 / 2097152) }' /proc/meminfo)
	[ "$HOLD_GIB" -le "$avail" ] || HOLD_GIB=$avail
	avail=$(df --output=avail -B1G "$TMP" | tail -n 1)
	[ "$HOLD_GIB" -le "$((avail))" ] || HOLD_GIB=$((avail))
	dd if=/dev/zero of="$TMP/hold" bs=1M count=$((HOLD_GIB * 1024)) 2>/dev/null
	rm -f "$TMP/hold"
	HELD_KIB=$(cat "$p/reported_kib")
	# A 1400 B flood fills a file at about 1 GiB/s.
	BALLAST_MIB=$((FLOOD * 1200 + 256))
	[ "$BALLAST_MIB" -le $((HOLD_GIB * 1024)) ] || BALLAST_MIB=$((HOLD_GIB * 1024))
	NOTES+=("free page reporting to the host held for the run (min_free_ms $ms0 -> $(cat "$p/min_free_ms"), max_waiting_mib $wait0 -> $(cat "$p/max_waiting_mib")), $HOLD_GIB GiB of the tmpfs written and removed first, a ballast of $BALLAST_MIB MiB for each row 3 capture to a tmpfs file; set back at exit")
}

# ballast_for OUT: while memory is held, BALLAST_MIB of the tmpfs in a
# file (build/bench/ballast) that gives its pages up 256 MiB ahead of OUT
# as OUT grows, so that OUT's pages are ones the guest kept; its pid in
# BALLAST_PID (empty without one). Stopped by ballast_stop.
BALLAST_PID=
ballast_for() {
	BALLAST_PID=
	[ -n "$BALLAST_MIB" ] || return 0
	rm -f "$TMP/ballast.out"
	spawn ballast "$BENCH/ballast" "$TMP/ballast" "$BALLAST_MIB" "$1" >"$TMP/ballast.out"
	BALLAST_PID=${PIDS[ballast]}
	wait_for 120 grep -q ready "$TMP/ballast.out" && return 0
	NOTES+=("the ballast could not be written ($(head -c 200 "$TMP/ballast.err")); later runs had none")
	BALLAST_MIB=
	ballast_stop
}

# What each ballast's giving up cost in CPU is summed in BALLAST_CPU
# (seconds) over BALLAST_RUNS, for the notes.
BALLAST_CPU=0 BALLAST_RUNS=0
ballast_stop() {
	local cpu
	[ -n "$BALLAST_PID" ] || return 0
	stop_pid "$BALLAST_PID" TERM 20
	BALLAST_PID=
	cpu=$(awk '$1 == "cpu" { print $2 }' "$TMP/ballast.out")
	[ -n "$cpu" ] || return 0
	BALLAST_CPU=$(calc "$BALLAST_CPU + $cpu")
	BALLAST_RUNS=$((BALLAST_RUNS + 1))
}

# What the host took back all the same while the rows ran.
held_note() {
	[ -n "$HELD_KIB" ] || return 0
	[ "$BALLAST_RUNS" -eq 0 ] ||
		NOTES+=("the ballast used $(fmt "$BALLAST_CPU / $BALLAST_RUNS" %.2f) s of CPU a capture on average ($BALLAST_RUNS captures), giving its pages up")
	NOTES+=("the host took back $(fmt "($(cat "$PAGE_REPORTING/reported_kib") - $HELD_KIB) / 1048576" %.1f) GiB of freed memory during the rows")
}

# ------------------------------------------------------------------ #
# Inputs                                                              #

RAW100=
RAW1500=
CORPUSCAP=
N100=1000000
N1500=300000
NCORPUS=500000

make_inputs() {
	RAW100=$TMP/raw100.pcap
	RAW1500=$TMP/raw1500.pcap
	CORPUSCAP=$TMP/corpus.pcap
	"$BENCH/mkpcap" raw $N100 100 "$RAW100" >/dev/null &&
		"$BENCH/mkpcap" raw $N1500 1500 "$RAW1500" >/dev/null &&
		"$BENCH/mkpcap" corpus $NCORPUS "$CORPUSCAP" "$CORPUS"/* >/dev/null
}

# ------------------------------------------------------------------ #
# Row 1: pcap copy against tcpdump                                    #

# copy_once TOOL FILE: wall seconds of one copy, or nothing if it failed.
copy_once() {
	local out=$TMP/copy-$1.pcap line
	rm -f "$out" "$TMP/copy.json"
	if [ "$1" = pktpipe ]; then
		printf '[in]\nplugin = pcap-in\npath = %s\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\n' \
			"$2" "$out" >"$TMP/copy.ini"
		line=$("$RT" -- "$PKTPIPE" -q -c "$TMP/copy.ini" --stats-json "$TMP/copy.json") || return 1
		[ "$(stat "$TMP/copy.json" out packets_out)" = "$3" ] || return 1
	else
		line=$("$RT" -- tcpdump -r "$2" -w "$out" 2>/dev/null) || return 1
	fi
	echo "$line" | field wall
}

row_copy() { # ID LABEL FILE PACKETS
	local id=$1 label=$2 file=$3 n=$4 r a b pp=() td=() ratio=()
	copy_once pktpipe "$file" "$n" >/dev/null
	copy_once tcpdump "$file" "$n" >/dev/null
	for ((r = 0; r < RUNS; r++)); do
		if ((r % 2)); then
			b=$(copy_once tcpdump "$file" "$n")
			a=$(copy_once pktpipe "$file" "$n")
		else
			a=$(copy_once pktpipe "$file" "$n")
			b=$(copy_once tcpdump "$file" "$n")
		fi
		if [ -z "$a" ] || [ -z "$b" ]; then
			broken "$id" "$label" "a copy failed (pktpipe: '$a', tcpdump: '$b')"
			return
		fi
		debug "$id run $r: pktpipe $a s, tcpdump $b s"
		pp+=("$(calc "$n / $a")")
		td+=("$(calc "$n / $b")")
		ratio+=("$(calc "$b / $a")")
	done
	a=$(printf '%s\n' "${pp[@]}" | median)
	b=$(printf '%s\n' "${td[@]}" | median)
	r=$(printf '%s\n' "${ratio[@]}" | median)
	row "$id" "$label" "$(mpps "$a") Mpkt/s" "$(mpps "$b") Mpkt/s (tcpdump -r -w)" \
		"$(fmt "$r")x" ">= 1.2x tcpdump" "$(yesno "$r >= 1.2")"
	cmds "$id" "pktpipe -c copy.ini   # [in] pcap-in path = IN; [out] pcap-out input = in, path = OUT (defaults otherwise)" \
		"tcpdump -r IN -w OUT"
}

row1() {
	row_copy 1a "pcap copy: 1M x 100 B raw IP, tmpfs" "$RAW100" $N100
	cmds 1a "build/bench/mkpcap raw 1000000 100 IN   # in a tmpfs"
	row_copy 1b "pcap copy: 500k corpus packets (Ethernet, avg 596 B), tmpfs" "$CORPUSCAP" $NCORPUS
	cmds 1b "build/bench/mkpcap corpus 500000 IN ../shared/corpus/pcap/*   # Ethernet captures only"
}

# ------------------------------------------------------------------ #
# Row 2: the ZeroMQ path against raw libzmq                           #

# zmq_once FILE PACKETS SIZE: "START STEADY", two rates in packets/s, or
# nothing if packets went missing. START counts from starting the sender
# until the receiver's file is complete. STEADY counts from the first
# packets' arrival in that file (less what they were) until it is
# complete: the rate of a running pair, as rawzmq's clock runs from its
# first send, after its own start, its sockets and its packets are ready.
# A file replay as it is best configured: zmq-out waits at sndhwm
# (wait = yes), so pcap-in keeps pace with the receiver and nothing is
# dropped, and both libzmq queues stay short (4 messages), so their buffers
# stay warm.
zmq_once() {
	local file=$1 n=$2 size=$3 port line until first early
	local hdr=24 rec=$((16 + size)) # pcap's file and record headers
	rm -f "$TMP/zrx.pcap" "$TMP/zrx.json"
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 4\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nflush = 1ms\n' \
		"$TMP/zrx.pcap" >"$TMP/zrx.ini"
	start zrx "$TMP/zrx.ini"
	wait_bound "$TMP/zrx.err" 1 10
	port=$(bound_port "$TMP/zrx.err" in)
	printf '[in]\nplugin = pcap-in\npath = %s\n\n[out]\nplugin = zmq-out\ninput = in\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 4\nwait = yes\n' \
		"$file" "$port" >"$TMP/ztx.ini"
	line=$("$RT" -t 60 -w "$TMP/zrx.pcap" $((hdr + n * rec)) -f $hdr -- \
		"$PKTPIPE" -q -c "$TMP/ztx.ini")
	stop zrx TERM 20
	until=$(echo "$line" | field until)
	first=$(echo "$line" | field first)
	early=$((($(echo "$line" | field first_size) - hdr) / rec))
	[ -n "$port" ] && [ -f "$TMP/zrx.json" ] &&
		[ "$(stat "$TMP/zrx.json" out packets_out)" = "$n" ] &&
		[ "$(yesno "$until > 0 && $until > $first && $first > 0")" = yes ] || return 1
	echo "$(calc "$n / $until") $(calc "($n - $early) / ($until - $first)")"
}

raw_once() {
	"$BENCH/rawzmq" "$1" 'tcp://127.0.0.1:*' 2>/dev/null | field seconds
}

row_zmq() { # ID SIZE FILE PACKETS GOAL
	local id=$1 size=$2 file=$3 n=$4 goal=$5 r a b pp=() started=() raw=() ratio=()
	local label="ZeroMQ tcp loopback, $((n / 1000))k x $size B: pcap-in > zmq-out, zmq-in > pcap-out (tmpfs)"
	zmq_once "$file" "$n" "$size" >/dev/null
	raw_once "$file" >/dev/null
	for ((r = 0; r < RUNS; r++)); do
		if ((r % 2)); then
			b=$(raw_once "$file")
			a=$(zmq_once "$file" "$n" "$size")
		else
			a=$(zmq_once "$file" "$n" "$size")
			b=$(raw_once "$file")
		fi
		if [ -z "$a" ] || [ -z "$b" ]; then
			broken "$id" "$label" "a transfer failed (pktpipe: '$a', raw zmq: '$b')"
			return
		fi
		debug "$id run $r: pktpipe $a packets/s (from its start, steady), raw zmq $b s"
		started+=("${a% *}")
		pp+=("${a#* }")
		raw+=("$(calc "$n / $b")")
		ratio+=("$(calc "${a#* } * $b / $n")")
	done
	a=$(printf '%s\n' "${pp[@]}" | median)
	b=$(printf '%s\n' "${raw[@]}" | median)
	r=$(printf '%s\n' "${ratio[@]}" | median)
	row "$id" "$label" "$(mpps "$a") Mpkt/s end to end ($(mpps "$(printf '%s\n' "${started[@]}" | median)") from the sender's start)" \
		"$(mpps "$b") Mmsg/s (raw PUSH/PULL, 1 msg/packet)" "$(fmt "$r")x" ">= ${goal}x raw zmq" \
		"$(yesno "$r >= $goal")"
	cmds "$id" "build/bench/mkpcap raw $n $size IN" \
		"pktpipe -c rx.ini &   # [in] zmq-in endpoint = tcp://127.0.0.1:PORT, rcvhwm = 4; [out] pcap-out input = in, path = OUT, flush = 1ms" \
		"build/bench/runtime -w OUT $((24 + n * (16 + size))) -f 24 -- pktpipe -c tx.ini   # [in] pcap-in path = IN; [out] zmq-out endpoint = tcp://127.0.0.1:PORT, sndhwm = 4, wait = yes; rate: packets after the first in OUT / (until - first); from the sender's start: packets / until" \
		"build/bench/rawzmq IN 'tcp://127.0.0.1:*'"
}

row2() {
	row_zmq 2a 100 "$RAW100" $N100 3
	row_zmq 2b 1500 "$RAW1500" $N1500 1.5
}

# ------------------------------------------------------------------ #
# Row 3: nflog capture against ulogd2                                 #

GROUP=7
ULOGD_LIB=

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

ulogd_ready() {
	local f
	command -v ulogd >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y ulogd2 ulogd2-pcap >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y ulogd2 ulogd2-pcap >&2; }; }
	f=$(ls /usr/lib/*/ulogd/ulogd_output_PCAP.so /usr/lib/ulogd/ulogd_output_PCAP.so 2>/dev/null | head -n 1)
	if [ -z "$f" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y ulogd2-pcap >&2
		f=$(ls /usr/lib/*/ulogd/ulogd_output_PCAP.so /usr/lib/ulogd/ulogd_output_PCAP.so 2>/dev/null | head -n 1)
	fi
	[ -n "$f" ] && command -v ulogd >/dev/null || return 1
	ULOGD_LIB=$(dirname "$f")
}

nflog_setup() {
	new_ns "pktpipe-bench-$$" &&
		nsx iptables -A OUTPUT -o lo -p udp --dport 9999 -j NFLOG --nflog-group $GROUP --nflog-threshold 64
}

# The same stack the issue names: NFLOG -> BASE -> PCAP, 8 MiB socket
# buffer growing to 64 MiB as pktpipe's rcvbuf and rcvbuf_max.
# ulogd_conf CONF OUT
ulogd_conf() {
	cat >"$TMP/$1" <<-EOF
		[global]
		logfile="$TMP/ulogd.log"
		loglevel=5
		plugin="$ULOGD_LIB/ulogd_inppkt_NFLOG.so"
		plugin="$ULOGD_LIB/ulogd_raw2packet_BASE.so"
		plugin="$ULOGD_LIB/ulogd_output_PCAP.so"
		stack=log1:NFLOG,base1:BASE,pcap1:PCAP

		[log1]
		group=$GROUP
		netlink_socket_buffer_size=8388608
		netlink_socket_buffer_maxsize=67108864

		[pcap1]
		file="$2"
		sync=0
	EOF
}

# The nflog keys at their defaults (rcvbuf 8 MiB growing to 64 MiB,
# qthreshold 64), and pcap-out in the capture's loop: writing to tmpfs
# never waits for a disk, and there it took half the CPU a packet of a
# worker thread and kept more (RESULTS.md, "The writer in the capture's
# loop"). With THREAD yes, pcap-out gets a worker thread with a queue that
# absorbs what the socket buffer would have (512 batches); nflog stops
# reading while that queue is three quarters full, so the socket buffer
# adds to it. That one is the capture "pktpipe-thread", row 3d, run in
# turn with 3a's two.
# pktpipe_conf [OUT]: OUT is the pcap file on tmpfs unless given; the
# worker's configuration writes to nf-pktpipe-thread.pcap, the FIFO's
# (capture "pktpipe-fifo", row 3e) to NFLOG_FIFO, with wait = yes: a
# reader that lags holds the capture back to its socket buffer, as
# ulogd2's blocking writes do, instead of dropping (reader-slow).
NFLOG_OUT= NFLOG_FIFO=
pktpipe_conf() {
	local f='[cap]\nplugin = nflog\ngroups = %s\n\n[out]\nplugin = pcap-out\ninput = cap\npath = %s\n'
	NFLOG_OUT=${1:-$TMP/nf-pktpipe.pcap}
	printf "$f" "$GROUP" "$NFLOG_OUT" >"$TMP/nflog-pktpipe.ini"
	printf "${f}thread = yes\nqueue = 512\n" "$GROUP" "$TMP/nf-pktpipe-thread.pcap" \
		>"$TMP/nflog-pktpipe-thread.ini"
	printf "${f}wait = yes\n" "$GROUP" "$NFLOG_FIFO" >"$TMP/nflog-pktpipe-fifo.ini"
}

# Where pktpipe lost packets, per run, for the notes: "kernel 120 (rcvbuf
# 64 MiB)"; appended to LOSSES[TOOL].
declare -A LOSSES=()
nflog_losses() { # TOOL
	LOSSES[$1]+=$(python3 - "$TMP/nflog.json" <<-'PY' 2>/dev/null
		import json, sys
		nodes = json.load(open(sys.argv[1]))["nodes"]
		lost = {f"{k}.{r}": n for k, v in nodes.items() for r, n in v["dropped"].items() if n}
		if nodes["cap"].get("unseen_batches"):
		    lost["cap.unseen_batches"] = nodes["cap"]["unseen_batches"]
		print(" %s (rcvbuf %d MiB);" % (", ".join(f"{r} {n}" for r, n in lost.items()) or "none",
		                                nodes["cap"].get("rcvbuf", 0) // 2 // 1048576))
	PY
	)
}

# nflog_once TOOL SIZE: "offered captured cpu_seconds", or nothing. A
# TOOL ending in -fifo writes to NFLOG_FIFO, whose reader counts the
# records it reads (mkpcap count) until the capture closes it.
nflog_once() {
	local tool=$1 size=$2 pid c0 c1 offered captured reader= file
	file=$TMP/nf-$tool.pcap
	rm -f "$file" "$TMP/nf-count"
	nsx iptables -Z OUTPUT
	if [ "${tool%-fifo}" != "$tool" ]; then
		spawn nfreader "$BENCH/mkpcap" count "$NFLOG_FIFO" >"$TMP/nf-count"
		reader=${PIDS[nfreader]}
		# A writer that came first would find no reader and drop for a
		# retry's time (pcap-out's no-reader).
		wait_for 5 fifo_opening "$reader"
	fi
	# file: the capture's pcap on the tmpfs, none with a reader or /dev/null.
	if [ -n "$reader" ] || { [ "$tool" = pktpipe ] && [ "$NFLOG_OUT" = /dev/null ]; }; then
		file=
	else
		ballast_for "$file"
	fi
	if [ "${tool#ulogd}" != "$tool" ]; then
		spawn nflog ip netns exec "$NS" ulogd -c "$TMP/$tool.conf" >/dev/null
	else
		spawn nflog ip netns exec "$NS" "$PKTPIPE" -q -c "$TMP/nflog-$tool.ini" \
			--stats-json "$TMP/nflog.json" >/dev/null
	fi
	pid=${PIDS[nflog]}
	wait_for 10 nflog_bound "$GROUP" || { kill -9 "$pid" $reader $BALLAST_PID; return 1; }
	c0=$(cpu_ticks "$pid")
	nsx "$BUILD/tools/nflog-udp" -t "$FLOOD" -s "$size" >/dev/null ||
		{ kill -9 "$pid" $reader $BALLAST_PID; return 1; }
	# The kernel's last batches (qtimeout: pktpipe 100 ms, ulogd the
	# kernel's 1 s) and the reader's backlog.
	sleep 1.5
	c1=$(cpu_ticks "$pid")
	stop_pid "$pid" TERM 20
	ballast_stop
	offered=$(nflog_matched)
	[ "${tool#ulogd}" != "$tool" ] || nflog_losses "$tool"
	if [ -n "$reader" ]; then
		reap "$reader" 20
		captured=$(cut -d' ' -f1 "$TMP/nf-count")
	elif [ -z "$file" ]; then
		captured=$(stat "$TMP/nflog.json" out packets_out)
	else
		captured=$("$BENCH/mkpcap" count "$file" 2>/dev/null | cut -d' ' -f1)
	fi
	[ -n "$captured" ] || captured=0
	echo "$offered $captured $(calc "($c1 - $c0) / $(getconf CLK_TCK)")"
}

# nflog_sample TOOL SIZE: one run of nflog_once; NF_SHARE and NF_CPU get
# its share captured and its CPU us a packet. 1 if the flood or the
# capture failed. Not in a subshell: LOSSES, PIDS and on_exit's list are
# kept.
NF_SHARE= NF_CPU=
nflog_sample() {
	local o= c= s=
	nflog_once "$1" "$2" >"$TMP/nflog.result"
	read -r o c s <"$TMP/nflog.result"
	[ -n "${s:-}" ] && [ "${o:-0}" -ne 0 ] || return 1
	NF_SHARE=$(calc "$c / $o")
	NF_CPU=$(calc "$c > 0 ? $s / $c * 1e6 : 0")
}

# The median share and CPU a packet of TOOL's samples: "share cpu".
NF_SAMPLES=()
nflog_medians() { # TOOL
	echo "$(printf '%s\n' "${NF_SAMPLES[@]}" | awk -v t="$1" '$1 == t { print $2 }' | median)" \
		"$(printf '%s\n' "${NF_SAMPLES[@]}" | awk -v t="$1" '$1 == t { print $3 }' | median)"
}

# A capture's figures for the pktpipe column: "93.2 % captured, 1.11 us
# CPU/packet".
nflog_figures() { # SHARE CPU
	echo "$(fmt "$1 * 100" %.1f) % captured, $(fmt "$2" %.2f) us CPU/packet"
}

# Each run takes the captures in turn, starting one further each time.
# With fifo instead of a THREAD_ID, both write to NFLOG_FIFO, not tmpfs.
row_nflog() { # ID SIZE [THREAD_ID | fifo]
	local id=$1 size=$2 id_thread=${3:-} r i t label sfx= out="pcap on tmpfs"
	[ "$id_thread" != fifo ] || { sfx=-fifo id_thread= out="a FIFO read by mkpcap count"; }
	local tools=("pktpipe$sfx" "ulogd$sfx")
	label="nflog capture, ${FLOOD} s sendmmsg UDP flood of $size B, --nflog-threshold 64, to $out"
	[ -z "$id_thread" ] || tools+=(pktpipe-thread)
	LOSSES=() NF_SAMPLES=()
	for ((r = 0; r < RUNS; r++)); do
		for ((i = 0; i < ${#tools[@]}; i++)); do
			t=${tools[(r + i) % ${#tools[@]}]}
			if ! nflog_sample "$t" "$size"; then
				broken "$id" "$label" "$t: the flood or the capture failed"
				return
			fi
			NF_SAMPLES+=("$t $NF_SHARE $NF_CPU")
		done
	done
	local ps us_ps pu us_u
	read -r ps us_ps < <(nflog_medians "pktpipe$sfx")
	read -r pu us_u < <(nflog_medians "ulogd$sfx")
	local ratio cratio goal met
	ratio=$(calc "$pu > 0 ? $ps / $pu : 0")
	cratio=$(calc "$us_u > 0 ? $us_ps / $us_u : 0")
	if [ "$size" -ge 1000 ]; then
		goal=">= 99 % captured, >= 1.25x ulogd2's share, less CPU/packet"
		met=$(yesno "$ps >= 0.99 && $ratio >= 1.25 && $us_ps < $us_u")
	else
		goal="less CPU/packet (share: no goal)"
		met=$(yesno "$us_ps < $us_u")
	fi
	NOTES+=("$id: pktpipe's drops per run (node.reason count):${LOSSES[pktpipe$sfx]:-}")
	row "$id" "$label" "$(nflog_figures "$ps" "$us_ps")" \
		"ulogd2: $(fmt "$pu * 100" %.1f) %, $(fmt "$us_u" %.2f) us CPU/packet" \
		"share $(fmt "$ratio")x, CPU $(fmt "$cratio")x" "$goal" "$met"
	cmds "$id" "ip netns add NS; ip -n NS link set lo up; ip netns exec NS iptables -A OUTPUT -o lo -p udp --dport 9999 -j NFLOG --nflog-group $GROUP --nflog-threshold 64" \
		"ip netns exec NS pktpipe -c nflog-pktpipe$sfx.ini   # [cap] nflog groups = $GROUP; [out] pcap-out input = cap, path = OUT${sfx:+, wait = yes}" \
		"ip netns exec NS ulogd -c ulogd$sfx.conf   # stack=log1:NFLOG,base1:BASE,pcap1:PCAP; group=$GROUP, netlink_socket_buffer_size=8388608, _maxsize=67108864; pcap1 file=OUT, sync=0" \
		"ip netns exec NS build/tools/nflog-udp -t $FLOOD -s $size; sleep 1.5   # then SIGTERM the capture" \
		"offered: iptables -L OUTPUT -v -x -n (NFLOG rule); captured: records in OUT; CPU: utime+stime of /proc/PID/stat from bound to before SIGTERM"
	[ -z "$sfx" ] || cmds "$id" "mkfifo OUT; build/bench/mkpcap count OUT   # started before the capture; its count is the records captured"
	[ -n "$sfx" ] || [ -z "$BALLAST_MIB" ] ||
		cmds "$id" "build/bench/ballast BALLAST $BALLAST_MIB OUT   # before each capture, on OUT's tmpfs: the capture starts once it prints ready; SIGTERM after"
	[ -z "$id_thread" ] || row_nflog_thread "$id_thread" "$id" "$ps" "$us_ps"
}

# The worker's samples of row_nflog, set beside its row: pktpipe's share
# and CPU a packet there are ID's.
row_nflog_thread() { # THREAD_ID ID SHARE CPU
	local id=$1 beside=$2 s c
	read -r s c < <(nflog_medians pktpipe-thread)
	row "$id" "nflog capture as $beside, pcap-out on a worker thread (thread = yes, queue = 512)" \
		"$(nflog_figures "$s" "$c")" \
		"$beside (pcap-out in the capture's loop): $(fmt "$3 * 100" %.1f) %, $(fmt "$4" %.2f) us CPU/packet" \
		"CPU $(fmt "$4 > 0 ? $c / $4 : 0")x" "none (taken in turn with $beside's two)" "-"
	NOTES+=("$id: pktpipe's drops per run (node.reason count):${LOSSES[pktpipe-thread]:-}")
	cmds "$id" "ip netns exec NS pktpipe -c nflog-pktpipe-thread.ini   # as $beside's, and [out] thread = yes, queue = 512"
}

# The capture alone: pcap-out writes to /dev/null. Set beside 3a, it tells
# what the capture keeps from what writing the file costs it. pktpipe only:
# ulogd2 counts nothing it could report here.
row_nflog_alone() { # ID SIZE
	local id=$1 size=$2 r c s label dd
	label="nflog capture alone, ${FLOOD} s flood of $size B, pcap-out to /dev/null"
	pktpipe_conf /dev/null
	LOSSES=() NF_SAMPLES=()
	for ((r = 0; r < RUNS; r++)); do
		if ! nflog_sample pktpipe "$size"; then
			broken "$id" "$label" "the flood or the capture failed"
			pktpipe_conf
			return
		fi
		NF_SAMPLES+=("pktpipe $NF_SHARE $NF_CPU")
	done
	pktpipe_conf
	read -r s c < <(nflog_medians pktpipe)
	row "$id" "$label" "$(nflog_figures "$s" "$c")" "" "" \
		"none (beside 3a: what writing the file costs)" "-"
	NOTES+=("$id: pktpipe's drops per run (node.reason count):${LOSSES[pktpipe]:-}")
	dd=$("$RT" -- dd if=/dev/zero of="$TMP/dd" bs=1M count=2048 2>/dev/null | field wall)
	rm -f "$TMP/dd"
	[ -z "$dd" ] || NOTES+=("$id: this tmpfs takes a new 2 GiB file (dd bs=1M) in $(fmt "$dd" %.2f) s, $(fmt "2.147483648 / $dd" %.2f) GB/s")
	cmds "$id" "as 3a with [out] path = /dev/null; captured: out's packets_out (--stats-json)" \
		"dd if=/dev/zero of=OUT bs=1M count=2048   # a new file on the tmpfs"
}

row3() {
	local label="nflog capture against ulogd2"
	if [ "$(id -u)" != 0 ]; then
		broken 3 "$label" "needs root (network namespace, iptables)"
		return
	fi
	if [ ! -f "$BUILD/plugins/nflog.so" ] || [ ! -x "$BUILD/tools/nflog-udp" ]; then
		broken 3 "$label" "nflog.so or tools/nflog-udp not built"
		return
	fi
	if ! ulogd_ready; then
		broken 3 "$label" "ulogd2 with ulogd2-pcap could not be installed"
		return
	fi
	if ! nflog_setup; then
		broken 3 "$label" "cannot make a network namespace with the NFLOG rule"
		return
	fi
	NFLOG_FIFO=$TMP/nf.fifo
	mkfifo "$NFLOG_FIFO"
	ulogd_conf ulogd.conf "$TMP/nf-ulogd.pcap"
	ulogd_conf ulogd-fifo.conf "$NFLOG_FIFO"
	pktpipe_conf
	row_nflog 3a 1400 3d
	row_nflog 3e 1400 fifo
	row_nflog 3b 64
	row_nflog_alone 3c 1400
}

# ------------------------------------------------------------------ #
# Row 4: codecs                                                       #

row4() {
	local out line name level
	out=$("$BENCH/codec" -r "$RUNS" -l 1,-1 "$BUILD"/plugins/*.so -- "$CORPUS"/* 2>"$TMP/codec.err")
	if [ -z "$out" ]; then
		broken 4 "codecs" "no codec plugin built, or it failed: $(tail -n 1 "$TMP/codec.err")"
		return
	fi
	while read -r line; do
		name=$(echo "$line" | field codec)
		level=$(echo "$line" | field level)
		[ "$level" = -1 ] && level="default"
		row "4-$name-$level" "codec $name level $level, corpus bytes in 1024-packet/1 MiB blocks" \
			"compress $(echo "$line" | field compress_MBps) MB/s, decompress $(echo "$line" | field decompress_MBps) MB/s (per core)" \
			"" "ratio $(echo "$line" | field ratio)" "none (issue measured zlib -1 at 80-105 MB/s)" "-"
	done <<<"$out"
	cmds 4 "build/bench/codec -r $RUNS -l 1,-1 build/plugins/*.so -- ../shared/corpus/pcap/*"
}

# ------------------------------------------------------------------ #
# Row 5: host overhead, counted by callgrind                          #

# cg_host PACKETS: "host total" instructions of one run.
cg_host() {
	local n=$1 f=$TMP/cg-$1
	"$BENCH/mkpcap" raw "$n" 100 "$f.pcap" >/dev/null || return 1
	printf '[in]\nplugin = pcap-in\npath = %s\n\n[pass]\nplugin = pass\ninput = in\n\n[sink]\nplugin = count\ninput = pass\n' \
		"$f.pcap" >"$f.ini"
	valgrind --tool=callgrind --callgrind-out-file="$f.out" "$PKTPIPE" -q -c "$f.ini" \
		--plugin-path "$BUILD/tests/plugins" >/dev/null 2>"$f.err" || return 1
	python3 "$ROOT/tests/bench/cgcore.py" "$f.out" | awk '{ print $2, $8 }'
}

row5() {
	local label="host overhead: pcap-in > pass > count, 100 B packets" n1=20000 n2=220000 a b h t
	if ! command -v valgrind >/dev/null || [ ! -f "$BUILD/tests/plugins/pass.so" ]; then
		broken 5 "$label" "valgrind or build/tests/plugins/pass.so missing"
		return
	fi
	a=$(cg_host $n1) && b=$(cg_host $n2)
	if [ -z "$a" ] || [ -z "$b" ]; then
		broken 5 "$label" "callgrind run failed"
		return
	fi
	h=$(calc "($(echo "$b" | cut -d' ' -f1) - $(echo "$a" | cut -d' ' -f1)) / ($n2 - $n1)")
	t=$(calc "($(echo "$b" | cut -d' ' -f2) - $(echo "$a" | cut -d' ' -f2)) / ($n2 - $n1)")
	row 5 "$label" "$(fmt "$h" %.0f) instructions/packet in the core" \
		"(whole process: $(fmt "$t" %.0f)/packet)" "" "< 300 instructions/packet" "$(yesno "$h < 300")"
	cmds 5 "valgrind --tool=callgrind --callgrind-out-file=cg.N pktpipe -c cg.ini --plugin-path build/tests/plugins   # [in] pcap-in; [pass] pass; [sink] count; for N = $n1 and $n2 packets of 100 B" \
		"python3 tests/bench/cgcore.py cg.N   # core = self cost of the pktpipe binary + its calls into libc; per packet = difference / $((n2 - n1))"
}

# ------------------------------------------------------------------ #
# Row 6: memory of a receiver with a ring                             #

WINDOW_MIB=64

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

# mem_once FILE PACKETS: "idle_kib peak_kib", or nothing.
mem_once() {
	local file=$1 n=$2 rx port idle peak
	rm -f "$TMP/mrx.json"
	# A short receive queue (4 messages of about 120 KB): what libzmq
	# holds while the receiver is late would count as the ring's overhead.
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 4\n\n[ring]\nplugin = ring\ninput = in\nwindow = %sMiB\n' \
		"$WINDOW_MIB" >"$TMP/mrx.ini"
	start mrx "$TMP/mrx.ini"
	rx=${PIDS[mrx]}
	wait_bound "$TMP/mrx.err" 1 10
	port=$(bound_port "$TMP/mrx.err" in)
	idle=$(kib "$rx" VmRSS)
	# Paced, so that what waits is the ring's, not libzmq's queues.
	printf '[in]\nplugin = pcap-in\npath = %s\nrate = 100MiB/s\n\n[out]\nplugin = zmq-out\ninput = in\nendpoint = tcp://127.0.0.1:%s\n' \
		"$file" "$port" >"$TMP/mtx.ini"
	"$PKTPIPE" -q -c "$TMP/mtx.ini" >/dev/null 2>&1
	sleep 0.5
	peak=$(kib "$rx" VmHWM)
	stop mrx TERM 20
	[ -n "$port" ] && [ -n "$peak" ] && [ -f "$TMP/mrx.json" ] &&
		[ "$(stat "$TMP/mrx.json" ring packets_in)" = "$n" ] || return 1
	echo "$idle $peak"
}

row_mem() { # ID LABEL FILE PACKETS
	local id=$1 label=$2 r l idle=() peak=() i p win=$((WINDOW_MIB * 1024)) over total
	for ((r = 0; r < RUNS; r++)); do
		l=$(mem_once "$3" "$4")
		if [ -z "$l" ]; then
			broken "$id" "$label" "the receiver did not get every packet"
			return
		fi
		idle+=("${l% *}")
		peak+=("${l#* }")
	done
	i=$(printf '%s\n' "${idle[@]}" | median)
	p=$(printf '%s\n' "${peak[@]}" | median)
	over=$(calc "($p - $i - $win) / $win")
	total=$(calc "($p - $win) / $win")
	row "$id" "$label" "peak RSS $(fmt "$p / 1024" %.1f) MiB (idle $(fmt "$i / 1024" %.1f) MiB)" \
		"window $WINDOW_MIB MiB" "$(fmt "$over * 100" %+.1f) % over the window beyond idle ($(fmt "$total * 100" %+.1f) % in all)" \
		"<= 10 % overhead" "$(yesno "$over <= 0.10")"
	cmds "$id" "pktpipe -c rx.ini &   # [in] zmq-in endpoint = tcp://127.0.0.1:PORT, rcvhwm = 4; [ring] ring input = in, window = ${WINDOW_MIB}MiB; VmRSS once bound, VmHWM at the end" \
		"pktpipe -c tx.ini   # [in] pcap-in path = IN, rate = 100MiB/s; [out] zmq-out endpoint = tcp://127.0.0.1:PORT"
}

row6() {
	if [ ! -f "$BUILD/plugins/ring.so" ]; then
		row 6 "memory: receiver with a ${WINDOW_MIB} MiB ring" "not run: ring plugin not built" "" "" "<= 10 % overhead" "-"
		return
	fi
	row_mem 6a "memory: zmq-in > ring (${WINDOW_MIB} MiB window), 500k corpus packets" "$CORPUSCAP" $NCORPUS
	row_mem 6b "memory: zmq-in > ring (${WINDOW_MIB} MiB window), 1M x 100 B" "$RAW100" $N100
}

# ------------------------------------------------------------------ #
# The run                                                             #

print_table() {
	local c
	echo
	echo "pktpipe bench, $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes')"
	echo "machine: $MACHINE"
	echo "each figure: median of $RUNS runs; ratios: median of the per-run ratios, the two programs alternating"
	echo
	echo "| row | what | pktpipe | baseline | ratio | goal | met |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	printf '%s\n' "${TABLE[@]}"
	echo
	echo "Commands (build/bench/ holds the programs of tests/bench/; IN and OUT live on a tmpfs):"
	for c in "${COMMANDS[@]}"; do
		echo "  [${c%%	*}] ${c#*	}"
	done
	for c in "${NOTES[@]}"; do
		echo "note: $c"
	done
}

main() {
	local r
	MACHINE=$(machine)
	build_project
	if ! build_helpers; then
		say "cannot build the helpers in $BENCH"
		exit 1
	fi
	if [ ! -x "$PKTPIPE" ]; then
		say "$PKTPIPE is missing: run make"
		exit 1
	fi
	make_tmp || { say "no tmpfs for the data"; exit 1; }
	hold_memory
	make_inputs || { say "cannot make the captures"; exit 1; }
	for r in $ROWS; do
		say "row $r"
		"row$r"
	done
	held_note
	NOTES+=("load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)")
	print_table
	exit $BROKEN
}

[ -n "${BENCH_NO_MAIN:-}" ] || main
