# Shared helpers for the shell suites (tests/e2e, tests/soak, and
# tests/bench/bench.sh). Source it, set SUITE, then call ok/fail (or
# expect_*) per check and `finish` at the end, which prints the closing
# "SUITE: N passed, N failed" line and sets the exit status. Every suite
# gets a private $TMP removed on exit, whatever happened, and BUILD
# (absolute), ROOT, CORPUS, PKTPIPE, TESTPLUGINS, PCAPCMP, PY (the python3
# that python3-zmq is for) and PIDS.
#
# What suites share beyond the checks, each defined once below:
#   - prerequisites: need_plugins, need_tools, need_pyzmq, finish_if_failed;
#   - processes in the background, by name: spawn NAME COMMAND... (any
#     program: its pid in PIDS[NAME], its stderr in $TMP/NAME.err), start
#     NAME INI (pktpipe, its stats in $TMP/NAME.json), ready, running,
#     stop NAME [SIGNAL [SECONDS]], stop_pid, reap;
#   - counters: stat, total, drops of a stats file; snapshot NAME (SIGUSR1)
#     and wait_stat, wait_total, wait_snapshot on a running pktpipe;
#   - ports and namespaces: bound_port, wait_bound, free_port, new_ns, nsx;
#   - graphs and their output: run_graph, pcap_receiver, settle, same,
#     sanitizer_clean.
# What a suite needs differently is an argument or a variable of the shared
# helper (a bound, a signal, START_READY, SNAPSHOT_WAIT, NETNS), not a copy.
# Every wait is bounded (SECONDS arguments have defaults), and whatever a
# helper starts or makes goes with on_exit, even on failure. `stat` here is
# the counter reader: the program is `command stat`.
set -u
export PATH="/usr/bin:$PATH" # Debian's python3 with python3-zmq, no shim

BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS="$ROOT/../shared/corpus/pcap"
PKTPIPE="$BUILD/pktpipe"
TESTPLUGINS="$BUILD/tests/plugins"
PCAPCMP="$BUILD/tools/pcapcmp"
PY=/usr/bin/python3 # the distribution's, which python3-zmq is for
declare -A PIDS     # processes in the background, by name (spawn, start)
PASSED=0
FAILED=0
CLEANUPS=()

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pktpipe-test.XXXXXX")
cleanup_all() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}" >/dev/null 2>&1 || true
	done
	rm -rf "$TMP"
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

# Register a command to run at exit (in reverse order of registration).
on_exit() { CLEANUPS+=("$1"); }

ok() { PASSED=$((PASSED + 1)); }
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL ${SUITE}: $*" >&2
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
	if [ "$2" == "$3" ]; then ok; else fail "$1: got '$2', expected '$3'"; fi
}

# expect_contains WHAT HAYSTACK NEEDLE
expect_contains() {
	case "$2" in
	*"$3"*) ok ;;
	*) fail "$1: '$3' not found in: $(printf '%s' "$2" | head -c 600)" ;;
	esac
}

# expect_balanced WHAT STATS_JSON: in = out + dropped + held on every node.
expect_balanced() {
	local why
	if why=$(python3 - "$2" <<'PY'
import json, sys
nodes = json.load(open(sys.argv[1]))["nodes"]
bad = [f"{k}: in {n['packets_in']} out {n['packets_out']} dropped {n['dropped']} held {n['packets_held']}"
       for k, n in nodes.items()
       if n["packets_in"] != n["packets_out"] + sum(n["dropped"].values()) + n["packets_held"]]
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
	); then ok; else fail "$1: accounting: $why"; fi
}

# stat JSON NODE FIELD [SUBFIELD]: one number from a stats file.
stat() {
	python3 -c 'import json,sys
n = json.load(open(sys.argv[1]))["nodes"][sys.argv[2]]
v = n[sys.argv[3]]
if len(sys.argv) > 4: v = v.get(sys.argv[4], 0)
print(v)' "$@"
}

# Wait until a command succeeds, at most $1 seconds.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# reap PID [SECONDS]: wait for PID to end, at most SECONDS (default 15),
# then SIGKILL it; returns its exit status (137 when it had to be killed).
reap() {
	timeout "${2:-15}" tail --pid="$1" -f /dev/null || kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# ------------------------------------------------------------------ #
# Prerequisites                                                       #

# need_plugins NAME...: a fail for each plugin not built in $BUILD/plugins;
# 1 if any is missing.
need_plugins() {
	local p missing=0
	for p in "$@"; do
		[ -f "$BUILD/plugins/$p.so" ] || { fail "plugin $p not built in $BUILD/plugins"; missing=1; }
	done
	return $missing
}

# need_tools PROGRAM...: a fail for each program not on PATH; 1 if any is.
need_tools() {
	local t missing=0
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { fail "$t is missing"; missing=1; }
	done
	return $missing
}

# need_pyzmq: a fail (and 1) when $PY has no zmq module.
need_pyzmq() {
	"$PY" -c 'import zmq' 2>/dev/null && return 0
	fail "python3-zmq is not installed for $PY (apt-get install python3-zmq)"
	return 1
}

# finish_if_failed: after the prerequisites, end the suite (finish, exit 1)
# if any check failed so far.
finish_if_failed() {
	[ "$FAILED" -eq 0 ] && return 0
	finish
	exit 1
}

# ------------------------------------------------------------------ #
# Processes in the background, by name                               #

# spawn NAME COMMAND...: COMMAND in the background, stdin from /dev/null,
# stderr in $TMP/NAME.err, stdout wherever the call sends it; its pid in
# PIDS[NAME], killed at exit. COMMAND is a program (or a chain of programs
# that exec the next, e.g. ip netns exec NS setpriv ... pktpipe), not a
# function: a function in the background is a subshell, and $! is that.
# NAME may go down into a folder of $TMP (nobody/rx: beside the stats of a
# process that gives up root).
spawn() {
	local name=$1
	shift
	"$@" </dev/null 2>"$TMP/$name.err" &
	PIDS[$name]=$!
	on_exit "kill -9 ${PIDS[$name]}"
}

# start NAME INI [ARGS...]: pktpipe -c INI ARGS... spawned as NAME, its stats
# in $TMP/NAME.json (--stats-json and snapshots), stdout to /dev/null. With
# START_READY=SECONDS set, it then waits for it to be running (see running).
start() {
	local name=$1 ini=$2
	shift 2
	spawn "$name" "$PKTPIPE" -c "$ini" --stats-json "$TMP/$name.json" "$@" >/dev/null
	[ -z "${START_READY:-}" ] || running "$name" "$START_READY"
}

# ready PID: PID is pktpipe (not a shell or a wrapper about to exec it) and
# has its signals on its signalfd (SIGHUP and SIGUSR1 blocked): before
# that, a SIGUSR1 would kill it.
ready() {
	local blk
	[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$(readlink -f "$PKTPIPE")" ] || return 1
	blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
	[ -n "$blk" ] && [ $((0x$blk & 0x201)) -eq $((0x201)) ]
}

# running NAME [SECONDS]: wait at most SECONDS (default 10) until PIDS[NAME]
# is ready; a fail, with the end of its stderr, if it never is.
running() {
	wait_for "${2:-10}" ready "${PIDS[$1]}" || fail "$1: not running: $(tail -n 3 "$TMP/$1.err" 2>&1)"
}

# fifo_opening PID: PID is blocked in its open of a FIFO, waiting for the
# other end; a reader there already counts for a writer's non-blocking open.
fifo_opening() { grep -qx wait_for_partner "/proc/$1/wchan"; }

# stop_pid PID [SIGNAL [SECONDS]]: send SIGNAL (default TERM), then reap it
# (at most SECONDS, default 30, then SIGKILL); returns its exit status.
# (bash's "Killed" notice for a SIGKILLed job goes to /dev/null too.)
stop_pid() {
	{
		kill -"${2:-TERM}" "$1"
		reap "$1" "${3:-30}"
	} 2>/dev/null
}

# stop NAME [SIGNAL [SECONDS]]: stop_pid for PIDS[NAME]; its exit status in
# $status.
stop() {
	stop_pid "${PIDS[$1]}" "${2:-TERM}" "${3:-30}"
	status=$?
}

# ------------------------------------------------------------------ #
# Counters of a running pktpipe (start)                              #

# snapshot NAME: fresh stats in $TMP/NAME.json: SIGUSR1, then a wait for the
# file of at most SNAPSHOT_WAIT seconds (default 10).
snapshot() {
	rm -f "$TMP/$1.json"
	kill -USR1 "${PIDS[$1]}" 2>/dev/null && wait_for "${SNAPSHOT_WAIT:-10}" test -s "$TMP/$1.json"
}

# wait_snapshot NAME SECONDS OP VALUE COMMAND...: snapshots of NAME, four a
# second, until [ "$(COMMAND...)" OP VALUE ] (OP: -ge, -gt, -eq, = ...);
# 1 if that never held within SECONDS seconds' worth of tries.
wait_snapshot() {
	local name=$1 limit=$2 op=$3 want=$4 i
	shift 4
	for ((i = 0; i < limit * 4; i++)); do
		if snapshot "$name" && [ "$("$@")" "$op" "$want" ]; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}

# wait_stat NAME SECONDS NODE FIELD OP VALUE [REASON]: until a counter of
# NAME (as stat reads it) is OP VALUE.
wait_stat() {
	wait_snapshot "$1" "$2" "$5" "$6" stat "$TMP/$1.json" "$3" "$4" ${7:+"$7"}
}

# total JSON PLUGIN FIELD [REASON]: a counter summed over a plugin's nodes.
total() {
	python3 - "$@" <<'PY'
import json, sys
nodes = json.load(open(sys.argv[1]))["nodes"].values()
t = 0
for n in nodes:
    if n["plugin"] != sys.argv[2]:
        continue
    v = n.get(sys.argv[3], 0)
    t += v.get(sys.argv[4], 0) if len(sys.argv) > 4 else v
print(t)
PY
}

# wait_total NAME SECONDS PLUGIN FIELD WANT [REASON]: until that sum over a
# plugin's nodes of NAME reaches WANT.
wait_total() {
	wait_snapshot "$1" "$2" -ge "$5" total "$TMP/$1.json" "$3" "$4" ${6:+"$6"}
}

# drops JSON NODE: a node's drops, every reason together.
drops() {
	python3 -c 'import json,sys
print(sum(json.load(open(sys.argv[1]))["nodes"][sys.argv[2]]["dropped"].values()))' "$1" "$2"
}

# ------------------------------------------------------------------ #
# Ports and network namespaces                                        #

# bound_port ERRFILE NODE: the tcp port NODE logged it bound
# (endpoint = tcp://127.0.0.1:*).
bound_port() {
	sed -n "s|^pktpipe: $2: info: bound to tcp://127.0.0.1:\([0-9]*\)$|\1|p" "$1" | head -n 1
}

# wait_bound ERRFILE [COUNT [SECONDS]]: until ERRFILE logs COUNT binds
# (default 1), at most SECONDS (default 30).
wait_bound() {
	wait_for "${3:-30}" bound_count "$1" "${2:-1}"
}
bound_count() { [ "$(grep -c ': info: bound to ' "$1" 2>/dev/null)" -ge "$2" ]; }

# free_port [tcp|udp] [v6]: a port nobody uses now on 127.0.0.1 (tcp by
# default); with v6, one free on ::1 too. In network namespace $NETNS when
# that is set.
free_port() {
	${NETNS:+ip netns exec "$NETNS"} python3 - "${1:-tcp}" "${2:-}" <<'PY'
import socket, sys
udp, v6 = sys.argv[1] == "udp", sys.argv[2] == "v6"
for _ in range(100):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)]
    socks[0].bind(("127.0.0.1", 0))
    port = socks[0].getsockname()[1]
    try:
        if v6:
            socks.append(socket.socket(socket.AF_INET6, socks[0].type))
            socks[1].bind(("::1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
PY
}

# new_ns NAME: a network namespace with loopback up, deleted at exit; NS
# names it (for nsx). A fail (and 1) if it cannot be made.
new_ns() {
	ip netns add "$1" || { fail "ip netns add $1"; return 1; }
	NS=$1
	on_exit "ip netns del $1"
	ip -n "$1" link set lo up
}

# nflog_bound GROUP: whether the nfnetlink_log of namespace $NS has a
# reader on GROUP.
nflog_bound() { nsx awk -v g="$1" '$1 == g { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_log; }

# nflog_matched: the packets the NFLOG rules in OUTPUT of namespace $NS
# matched, IPv4 and IPv6 together.
nflog_matched() {
	{
		nsx iptables -L OUTPUT -v -x -n
		nsx ip6tables -L OUTPUT -v -x -n
	} | awk '/NFLOG/ { s += $1 } END { print s + 0 }'
}

# nsx COMMAND...: COMMAND in the namespace $NS. Not for the background
# ($! would be a subshell): spawn NAME ip netns exec "$NS" COMMAND... .
nsx() { ip netns exec "$NS" "$@"; }

# ------------------------------------------------------------------ #
# Graphs and their output                                             #

# check_ini INI [ARGS...]: pktpipe -c INI --check ARGS...; its exit status
# in $status, its stderr in $err.
check_ini() {
	err=$("$PKTPIPE" -c "$1" --check "${@:2}" 2>&1 >/dev/null)
	status=$?
}

# run_graph NAME [SECONDS [ARGS...]]: pktpipe -c $TMP/NAME.ini ARGS... to its
# end, at most SECONDS (default 120); stats in $TMP/NAME.json, stderr in
# $TMP/NAME.err; its exit status in $status, and returned.
run_graph() {
	local name=$1 limit=${2:-120}
	shift $(($# < 2 ? $# : 2))
	timeout "$limit" "$PKTPIPE" -c "$TMP/$name.ini" --stats-json "$TMP/$name.json" "$@" \
		2>"$TMP/$name.err" >/dev/null
	status=$?
	return $status
}

# pcap_receiver NAME: zmq-in (a free tcp port, rcvhwm 100000) -> pcap-out
# (precision ns) into $TMP/NAME.pcap, started as NAME; the port in $port.
# A fail (and 1) if it does not bind.
pcap_receiver() {
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\nrcvhwm = 100000\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\nprecision = ns\n' \
		"$TMP/$1.pcap" >"$TMP/$1.ini"
	start "$1" "$TMP/$1.ini"
	port=""
	wait_bound "$TMP/$1.err" && port=$(bound_port "$TMP/$1.err" in)
	[ -n "$port" ] || fail "$1: the receiver did not bind: $(tail -n 3 "$TMP/$1.err")"
	[ -n "$port" ]
}

# settle NAME SENT: the pcap_receiver NAME wrote SENT packets (a bounded
# wait), then stops (SIGTERM, 60 s): exit 0, balanced, SENT written, no bad
# frame.
settle() {
	wait_stat "$1" 60 out packets_out -ge "$2" ||
		fail "$1: the receiver wrote $(stat "$TMP/$1.json" out packets_out) of $2 packets"
	stop "$1" TERM 60
	expect_eq "$1: receiver exit" "$status" 0
	expect_balanced "$1: receiver" "$TMP/$1.json"
	expect_eq "$1: receiver wrote what was sent" "$(stat "$TMP/$1.json" out packets_out)" "$2"
	expect_eq "$1: bad frames" "$(stat "$TMP/$1.json" in frames_bad)" 0
}

# same WHAT A B: captures A and B hold the same packets (pcapcmp).
same() {
	local why
	if why=$("$PCAPCMP" "$2" "$3" 2>&1); then ok; else fail "$1: $why"; fi
}

# sanitizer_clean WHAT FILE...: no ASan, LSan or UBSan report in the files
# (stderr of processes of an ASan build).
sanitizer_clean() {
	local what=$1
	shift
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$@" 2>/dev/null; then
		fail "$what: sanitizer report: $(grep -h -m1 -E 'Sanitizer|runtime error:' "$@")"
	else
		ok
	fi
}

finish() {
	echo "${SUITE}: ${PASSED} passed, ${FAILED} failed"
	[ "$FAILED" -eq 0 ]
}
