#!/bin/bash
# A receiver (zmq-in -> pcap-out) in a storm of hostile messages.
#
# Real frames first: raw IP packets of corpus captures go through a
# zmq-out sender graph (four nodes, batches of 1 to 32 packets) into a
# python3-zmq PULL that keeps them. tests/tools/storm-peer.py then adds
# compressed, metadata-carrying and (for wire = auto) legacy and legacy-rc
# variants, mutates them by the tens of thousands (bit flips, bytes set,
# truncation, random tails, count, raw_len and record fields changed,
# codecs swapped, splices, random bytes), sends the mutants, waits, and
# sends every valid base message again.
#
# The same script judges each message with a decoder written from WIRE.md,
# independently of plugins/lib/wire.c, and predicts every counter and the
# output file. The receiver must stay up through the storm, count
# frames_in = frames_ok + frames_bad exactly, count packets_in, network,
# malformed and codec drops exactly as predicted, balance, exit 0 on
# SIGTERM, log bad frames rate-limited, and write exactly the predicted
# pcap, the valid packets of the storm and then every valid one (byte for
# byte, so the valid ones are all there, in order).
#
# Runs twice: wire = auto (the default: native, legacy and legacy-rc) and
# wire = native. STORM_N sets the mutants of the auto run (default 20000;
# the native run sends half as many). Ports are picked at run time; every
# wait is bounded; processes are killed on exit.
SUITE=storm
. "$(dirname "$0")/../lib.sh"

PEER="$ROOT/tests/tools/storm-peer.py"
N_AUTO=${STORM_N:-20000}
N_NATIVE=$((N_AUTO / 2))
MAX_MESSAGE=1048576
# Codec ids the receiver can decode: those whose plugin is built (WIRE.md).
CODECS=""
[ -f "$BUILD/plugins/zlib.so" ] && CODECS="$CODECS,1"
[ -f "$BUILD/plugins/zstd.so" ] && CODECS="$CODECS,2"

need_pyzmq
need_plugins pcap-in pcap-out zmq-in zmq-out zlib
finish_if_failed

# ------------------------------------------------------------------ #
# Real frames from a zmq-out sender                                   #

RAWSRC=()
for f in babel_rfc6126bis.pcap of10_s4810.pcap mptcp-v0.pcap isis_iid_tlv.pcap; do
	[ -f "$CORPUS/$f" ] && RAWSRC+=("$CORPUS/$f")
done
npkts=$("$PY" "$PEER" mkraw "$TMP/raw.pcap" "${RAWSRC[@]}" 2>"$TMP/mkraw.err")
if [ "${npkts:-0}" -gt 100 ]; then ok; else
	fail "too few raw IP packets from the corpus (${npkts:-none}): $(cat "$TMP/mkraw.err")"
	finish
	exit 1
fi

spawn collect "$PY" "$PEER" collect "$TMP/port" "$TMP/count" "$TMP/frames"
wait_for 20 test -s "$TMP/port" || fail "the collector did not start: $(cat "$TMP/collect.err")"
: >"$TMP/tx.ini"
k=0
for b in 1 3 8 32; do
	printf '[src%d]\nplugin = pcap-in\npath = %s\n\n[z%d]\nplugin = zmq-out\ninput = src%d\nendpoint = tcp://127.0.0.1:%s\nbatch_packets = %d\nsndhwm = 100000\nlinger = 20s\n\n' \
		$k "$TMP/raw.pcap" $k $k "$(cat "$TMP/port")" $b >>"$TMP/tx.ini"
	k=$((k + 1))
done
run_graph tx 60
expect_eq "sender exit" "$?" 0
sent=$(python3 -c 'import json,sys
n = json.load(open(sys.argv[1]))["nodes"]
print(sum(v.get("frames_sent", 0) for v in n.values()))' "$TMP/tx.json" 2>/dev/null)
echo "${sent:-0}" >"$TMP/count"
reap "${PIDS[collect]}" 60
expect_eq "collector got every frame the sender sent (${sent:-0})" "$?" 0

# ------------------------------------------------------------------ #
# The storm                                                           #

# check_counters RUN: the receiver's counters against the judge's.
check_counters() {
	python3 - "$TMP/$1.info" "$TMP/$1.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
nodes = json.load(open(sys.argv[2]))["nodes"]
i, o = nodes["in"], nodes["out"]
got = {"frames_in": i["frames_in"], "frames_ok": i["frames_ok"], "frames_bad": i["frames_bad"],
       "packets_in": i["packets_in"], "network": i["dropped"].get("network", 0),
       "malformed": i["dropped"].get("malformed", 0), "codec": i["dropped"].get("codec", 0),
       "written": o["packets_out"], "linktype": o["dropped"].get("linktype", 0)}
want = {k: w[k] for k in got}
bad = [f"{k}: got {got[k]}, want {want[k]}" for k in got if got[k] != want[k]]
if i["frames_in"] != i["frames_ok"] + i["frames_bad"]:
    bad.append("frames_in != frames_ok + frames_bad")
if bad:
    sys.exit(print("; ".join(bad), file=sys.stderr) or 1)
PY
}

storm_run() { # storm_run RUN WIRE MUTANTS SEED
	local run=$1 wire=$2 n=$3 seed=$4 mutants total bad lines
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nwire = %s\nmax_message = %s\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nlinktype = RAW\nprecision = ns\n' \
		"$wire" "$MAX_MESSAGE" "$TMP/$run.pcap" >"$TMP/$run.ini"
	start "$run" "$TMP/$run.ini"
	if ! wait_bound "$TMP/$run.err" 1 20; then
		fail "$run: receiver did not bind: $(tail -n 3 "$TMP/$run.err")"
		return
	fi
	rm -f "$TMP/$run.mark" "$TMP/$run.go"
	spawn "$run.peer" "$PY" "$PEER" storm "tcp://127.0.0.1:$(bound_port "$TMP/$run.err" in)" \
		"$TMP/frames" "$wire" "$n" "$seed" "$MAX_MESSAGE" "$CODECS" "$TMP/$run.expect" \
		"$TMP/$run.info" "$TMP/$run.mark" "$TMP/$run.go"
	if ! wait_for 120 test -s "$TMP/$run.mark"; then
		fail "$run: the mutants were not all sent: $(tail -n 3 "$TMP/$run.peer.err")"
		return
	fi
	mutants=$(cat "$TMP/$run.mark")
	wait_stat "$run" 60 in frames_in -ge "$mutants" ||
		fail "$run: $(stat "$TMP/$run.json" in frames_in) of $mutants mutants arrived"
	if kill -0 "${PIDS[$run]}" 2>/dev/null; then ok; else fail "$run: the receiver died in the storm"; fi
	touch "$TMP/$run.go"
	reap "${PIDS[$run.peer]}" 60
	expect_eq "$run: peer exit" "$?" 0
	total=$(python3 -c 'import json,sys; i = json.load(open(sys.argv[1])); print(i["mutants"] + i["base"])' "$TMP/$run.info")
	wait_stat "$run" 60 in frames_in -ge "$total" ||
		fail "$run: $(stat "$TMP/$run.json" in frames_in) of $total messages arrived"
	stop "$run"
	expect_eq "$run: receiver exit" "$status" 0
	expect_balanced "$run" "$TMP/$run.json"
	if why=$(check_counters "$run" 2>&1); then ok; else fail "$run: counters: $why"; fi
	if cmp -s "$TMP/$run.pcap" "$TMP/$run.expect"; then ok; else
		fail "$run: output differs from the judge's: $(cmp "$TMP/$run.pcap" "$TMP/$run.expect" 2>&1)"
	fi
	bad=$(stat "$TMP/$run.json" in frames_bad)
	lines=$(grep -c 'dropped a malformed' "$TMP/$run.err")
	if [ "$bad" -gt 100 ] && [ "$lines" -lt $((bad / 10)) ]; then ok; else
		fail "$run: $lines log lines for $bad bad frames: not rate limited, or too few bad frames"
	fi
	sanitizer_clean "$run" "$TMP/$run.err"
	python3 - "$run" "$TMP/$run.info" <<'PY'
import json, sys
i = json.load(open(sys.argv[2]))
print(f"storm: {sys.argv[1]}: {i['mutants']} mutants ({i['valid_mutants']} valid), "
      f"{i['valid_base']} of {i['base']} base messages valid, {i['frames_bad']} bad frames; "
      f"packets: {i['packets_in']} in, {i['written']} written, dropped {i['malformed']} malformed, "
      f"{i['codec']} codec, {i['network']} network, {i['linktype']} linktype")
PY
}

storm_run auto auto "$N_AUTO" 11
storm_run native native "$N_NATIVE" 12

finish
