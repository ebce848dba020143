#!/bin/bash
# Run every suite against one build directory: the unit test binaries,
# then the shell suites. Prints each suite's closing line and a total.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
total_pass=0
total_fail=0
broken=0

run_suite() {
	local out status line
	out=$("$@" 2> >(cat >&2))
	status=$?
	printf '%s\n' "$out"
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
