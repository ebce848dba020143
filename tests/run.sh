#!/bin/bash
# Run every suite against one build directory: the unit test binaries,
# then the shell suites. Prints each suite's closing line and a total.
set -u
# Debian's python3 (with python3-zmq), not a version manager's shim that
# would also cost a tenth of a second a call.
export PATH="/usr/bin:$PATH"
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
total_pass=0
total_fail=0
broken=0

# Each suite is bounded (SUITE_TIMEOUT seconds): a hang fails that suite
# with a message instead of eating the whole CI budget.
run_suite() {
	local out status line start=$SECONDS
	out=$(timeout -k 10 "${SUITE_TIMEOUT:-900}" "$@" 2> >(cat >&2))
	status=$?
	[ "$status" -eq 124 ] && echo "suite $* timed out after ${SUITE_TIMEOUT:-900} s" >&2
	printf '%s\n' "$out"
	echo "  ($* took $((SECONDS - start)) s)" >&2
	line=$(printf '%s\n' "$out" | grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$line" ]; then
		echo "suite $* printed no result line (exit $status)" >&2
		broken=$((broken + 1))
		return
	fi
	total_pass=$((total_pass + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
	total_fail=$((total_fail + $(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')))
	if [ "$status" -ne 0 ] && ! echo "$line" | grep -qv ' 0 failed'; then
		echo "suite $* exited $status" >&2
		broken=$((broken + 1))
	fi
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && run_suite "$t"
done
for s in tests/e2e/*.sh; do
	run_suite bash "$s" "$BUILD"
done
echo "total ($BUILD): $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$broken" -eq 0 ]
