#!/bin/bash
# ratelimit end to end, over real ZeroMQ sockets (issue 5):
#   - a 10 MiB capture built from corpus Ethernet packets
#     (tests/tools/ratelimit-corpus.py) replayed at 3 MiB/s through
#     ratelimit (lwm 1MiB/s, hwm 5MiB/s, codec zlib) -> zmq-out -> zmq-in ->
#     pcap-out: every packet arrives unchanged, frames were compressed,
#     nothing was dropped anywhere;
#   - the same with ratelimit on a worker thread (thread = yes): the same
#     output, byte for byte;
#   - the same replayed flat out (rate = 0): drops happen (hwm), ratelimit's
#     packets_in = packets_out + dropped exactly, the receiver writes
#     exactly what zmq-out sent, and what arrives is an unchanged, ordered
#     subsequence of the input;
#   - the output rate over a shaped run is within 20 % of hwm. The input is
#     paced at 15 MiB/s (3 x hwm) for 100 MiB rather than read flat out:
#     flat out, the capture is read in a fraction of a second, shorter than
#     the 1 s window the rate is measured over, so "the rate over the run"
#     would measure the first window's share (hwm x window passes before
#     the rate is known to exceed hwm; plugins/ratelimit/README.md), not the
#     shaper. The rate is packet bytes the receiver wrote over the sender's
#     run as this script timed it (start-up and the final flush included);
#   - an independent sender (python3-zmq, tests/tools/ratelimit-pace.py)
#     whose rate swings across lwm every half second: the mode switches
#     again and again, and every packet arrives, in order, while the sender
#     still runs (pending frames leave within max_delay).
# Ports are picked at run time; every wait is bounded; processes are killed
# on exit.
SUITE=ratelimit
. "$(dirname "$0")/../lib.sh"

TOOLS="$ROOT/tests/tools"
MIB=1048576

need_pyzmq || { finish; exit; }

# ------------------------------------------------------------------ #
# Helpers                                                             #

# sender NAME PORT SRC_KEYS RL_KEYS: pcap-in -> ratelimit -> zmq-out, run to
# its end; SRC_KEYS and RL_KEYS are extra ini lines. Times the run.
sender() {
	printf '[src]\nplugin = pcap-in\npath = %s\n%s\n\n[rl]\nplugin = ratelimit\ninput = src\nlwm = 1MiB/s\nhwm = 5MiB/s\ncodec = zlib\n%s\n\n[z]\nplugin = zmq-out\ninput = rl\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 100000\nlinger = 60s\n' \
		"$TMP/c10.pcap" "$3" "$4" "$2" >"$TMP/$1.ini"
	t0=$(date +%s%N)
	run_graph "$1" 300
	t1=$(date +%s%N)
}

# settle_nodrop RX SENT: settle (lib.sh), and the receiver dropped nothing.
settle_nodrop() {
	settle "$1" "$2"
	expect_eq "$1: receiver drops" "$(($(drops "$TMP/$1.json" in) + $(drops "$TMP/$1.json" out)))" 0
}

# ------------------------------------------------------------------ #
# The capture: 10 MiB of corpus Ethernet packets                      #

if "$PY" "$TOOLS/ratelimit-corpus.py" "$CORPUS" "$TMP/c10.pcap" 10 >"$TMP/c10.info"; then ok; else
	fail "cannot build the capture from $CORPUS"
	finish
	exit
fi
read -r NPKT NBYTES <"$TMP/c10.info"
if [ "$NBYTES" -ge $((10 * MIB)) ]; then ok; else fail "capture: $NBYTES bytes"; fi

# ------------------------------------------------------------------ #
# 3 MiB/s, between lwm and hwm: compressed, nothing lost              #

# paced NAME RL_KEYS: the 3 MiB/s run through pcap_receiver NAME-rx.
paced() {
	local what="3 MiB/s${2:+ ($2)}" j="$TMP/$1.json"
	pcap_receiver "$1-rx" || return
	sender "$1" "$port" "rate = 3MiB/s" "$2"
	expect_eq "$what: sender exit" "$status" 0
	expect_balanced "$what: sender" "$j"
	expect_eq "$what: ratelimit packets_in" "$(stat "$j" rl packets_in)" "$NPKT"
	expect_eq "$what: ratelimit drops" "$(drops "$j" rl)" 0
	expect_eq "$what: zmq-out drops" "$(drops "$j" z)" 0
	if [ "$(stat "$j" rl frames_compressed)" -gt 0 ]; then ok; else fail "$what: no frame compressed"; fi
	if [ "$(stat "$j" rl bytes_after)" -lt "$(stat "$j" rl bytes_before)" ]; then ok; else
		fail "$what: compression made nothing smaller"
	fi
	expect_eq "$what: zmq-out sent" "$(stat "$j" z packets_sent)" "$NPKT"
	settle_nodrop "$1-rx" "$NPKT"
	same "$what" "$TMP/c10.pcap" "$TMP/$1-rx.pcap"
}

paced plain ""
paced threaded $'thread = yes\nqueue = 4096'
if cmp -s "$TMP/plain-rx.pcap" "$TMP/threaded-rx.pcap"; then ok; else
	fail "thread = yes: the output differs from the run without"
fi

# ------------------------------------------------------------------ #
# Flat out: drops, exact accounting                                   #

if pcap_receiver flat-rx; then
	sender flat "$port" "rate = 0" ""
	j="$TMP/flat.json"
	expect_eq "flat out: sender exit" "$status" 0
	expect_balanced "flat out: sender" "$j"
	in=$(stat "$j" rl packets_in)
	expect_eq "flat out: ratelimit packets_in" "$in" "$NPKT"
	hwm=$(stat "$j" rl dropped hwm)
	if [ "$hwm" -gt 0 ] && [ "$hwm" -lt "$in" ]; then ok; else
		fail "flat out: hwm drops $hwm of $in (some, not all, expected)"
	fi
	expect_eq "flat out: in = out + dropped" "$in" \
		$(($(stat "$j" rl packets_out) + $(drops "$j" rl) + $(stat "$j" rl packets_held)))
	expect_eq "flat out: nothing held" "$(stat "$j" rl packets_held)" 0
	sent=$(stat "$j" z packets_sent)
	expect_eq "flat out: zmq-out sent what ratelimit passed" "$sent" "$(stat "$j" rl packets_out)"
	settle_nodrop flat-rx "$sent"
	if why=$("$PY" "$TOOLS/ratelimit-subseq.py" "$TMP/flat-rx.pcap" "$TMP/c10.pcap" 2>&1); then ok; else
		fail "flat out: $why"
	fi
fi

# ------------------------------------------------------------------ #
# Shaped: the output rate over a run at 3 x hwm                       #

if pcap_receiver shaped-rx; then
	sender shaped "$port" $'rate = 15MiB/s\nloop = 10' ""
	j="$TMP/shaped.json"
	expect_eq "shaped: sender exit" "$status" 0
	expect_balanced "shaped: sender" "$j"
	if [ "$(stat "$j" rl dropped hwm)" -gt 0 ]; then ok; else fail "shaped: no hwm drops"; fi
	sent=$(stat "$j" z packets_sent)
	settle_nodrop shaped-rx "$sent"
	# hwm is 5 MiB/s of packet bytes: what the receiver wrote over the run.
	python3 - "$TMP/shaped.json" "$TMP/shaped-rx.json" "$t0" "$t1" <<'PY' && ok || fail "shaped: output rate"
import json, sys
tx = json.load(open(sys.argv[1]))["nodes"]
rx = json.load(open(sys.argv[2]))["nodes"]
secs = (int(sys.argv[4]) - int(sys.argv[3])) / 1e9
mib = 1 << 20
rate_in = tx["src"]["bytes_in"] / secs / mib
rate_out = rx["out"]["bytes_out"] / secs / mib
print(f"  shaped: {secs:.2f} s, input {rate_in:.2f} MiB/s, output {rate_out:.2f} MiB/s "
      f"(hwm 5), {tx['rl']['mode_switches']} mode switches, "
      f"compressed {tx['rl']['bytes_before']} -> {tx['rl']['bytes_after']} bytes")
if rate_in < 6:
    sys.exit(print(f"input only {rate_in:.2f} MiB/s: not enough above hwm to shape "
                   "(machine too loaded?)", file=sys.stderr) or 1)
if not 4.0 <= rate_out <= 6.0:
    sys.exit(print(f"output {rate_out:.2f} MiB/s, not within 20 % of 5", file=sys.stderr) or 1)
PY
fi

# ------------------------------------------------------------------ #
# A rate that crosses lwm again and again                             #

# Sender graph: zmq-in (fed by the python peer) -> ratelimit -> zmq-out.
if pcap_receiver swing-rx; then
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 100000\n\n[rl]\nplugin = ratelimit\ninput = in\nlwm = 1MiB/s\nhwm = 0\nwindow = 200ms\ncodec = zlib\n\n[z]\nplugin = zmq-out\ninput = rl\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 100000\nlinger = 60s\n' \
		"$port" >"$TMP/swing.ini"
	start swing "$TMP/swing.ini"
	if wait_bound "$TMP/swing.err"; then ok; else fail "swing: no bind"; fi
	inport=$(bound_port "$TMP/swing.err" in)
	# 0.5 s at 256 KiB/s (pass), 0.5 s at 3 MiB/s (compress), 6 times.
	n=$(timeout 120 "$PY" "$TOOLS/ratelimit-pace.py" "$TMP/c10.pcap" "$inport" "$TMP/swing-expect.pcap" \
		0.5 262144 $((3 * MIB)) 6 2>"$TMP/pace.err")
	expect_eq "swing: peer exit" "$?" 0
	# Everything arrives while the sender still runs: nothing waits longer
	# than max_delay in a pending frame.
	wait_stat swing-rx 60 out packets_out -ge "${n:-1}" || fail "swing: the receiver did not get every packet"
	stop swing TERM 60
	expect_eq "swing: sender exit" "$status" 0
	j="$TMP/swing.json"
	expect_balanced "swing: sender" "$j"
	expect_eq "swing: ratelimit packets_in" "$(stat "$j" rl packets_in)" "$n"
	expect_eq "swing: ratelimit drops" "$(drops "$j" rl)" 0
	switches=$(stat "$j" rl mode_switches)
	echo "  swing: $n packets, $switches mode switches, $(stat "$j" rl frames_compressed) frames compressed"
	if [ "$switches" -ge 4 ]; then ok; else fail "swing: only $switches mode switches"; fi
	if [ "$(stat "$j" rl frames_compressed)" -gt 0 ]; then ok; else fail "swing: nothing compressed"; fi
	# zmq-out framed the packets that passed uncompressed itself.
	if [ "$(stat "$j" z frames_sent)" -gt "$(stat "$j" rl frames_compressed)" ]; then ok; else
		fail "swing: no packet passed uncompressed"
	fi
	settle_nodrop swing-rx "$(stat "$j" z packets_sent)"
	same "swing" "$TMP/swing-expect.pcap" "$TMP/swing-rx.pcap"
fi

# ------------------------------------------------------------------ #
# Configuration errors                                                #

printf '[src]\nplugin = pcap-in\npath = %s\n\n[rl]\nplugin = ratelimit\ninput = src\nlwm = 6MiB/s\nhwm = 5MiB/s\n\n[out]\nplugin = pcap-out\ninput = rl\npath = /dev/null\n' \
	"$TMP/c10.pcap" >"$TMP/bad.ini"
err=$("$PKTPIPE" -c "$TMP/bad.ini" --check 2>&1)
expect_eq "lwm above hwm: exit" "$?" 2
expect_contains "lwm above hwm" "$err" "lwm (6291456 B/s) is above hwm (5242880 B/s)"
sed -i 's/^lwm = .*/codec = nosuchcodec/' "$TMP/bad.ini"
err=$(timeout 30 "$PKTPIPE" -c "$TMP/bad.ini" 2>&1)
expect_eq "unknown codec: exit" "$?" 1
expect_contains "unknown codec" "$err" "nosuchcodec"

finish
