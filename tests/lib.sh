# Shared helpers for the shell suites. Source it, set SUITE, then call
# ok/fail (or expect_*) per check and `finish` at the end, which prints the
# closing "SUITE: N passed, N failed" line and sets the exit status.
# Every suite gets a private $TMP removed on exit, whatever happened.
set -u

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
# Processes in the background, by name                               #

# spawn NAME COMMAND...: COMMAND in the background, stdin from /dev/null,
# stderr in $TMP/NAME.err, stdout wherever the call sends it; its pid in
# PIDS[NAME], killed at exit. COMMAND is a program (or a chain of programs
# that exec the next, e.g. ip netns exec NS setpriv ... pktpipe), not a
# function: a function in the background is a subshell, and $! is that.
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

finish() {
	echo "${SUITE}: ${PASSED} passed, ${FAILED} failed"
	[ "$FAILED" -eq 0 ]
}
