# Shared helpers for the shell suites. Source it, set SUITE, then call
# ok/fail (or expect_*) per check and `finish` at the end, which prints the
# closing "SUITE: N passed, N failed" line and sets the exit status.
# Every suite gets a private $TMP removed on exit, whatever happened.
set -u
export PATH="/usr/bin:$PATH" # Debian's python3 with python3-zmq, no shim

BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS="$ROOT/../shared/corpus/pcap"
PKTPIPE="$BUILD/pktpipe"
TESTPLUGINS="$BUILD/tests/plugins"
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

finish() {
	echo "${SUITE}: ${PASSED} passed, ${FAILED} failed"
	[ "$FAILED" -eq 0 ]
}
