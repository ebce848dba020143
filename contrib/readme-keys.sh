#!/bin/bash
# Keep each plugin README's key table equal to its option table: the lines
# between the markers below are `pktpipe --describe NAME --format markdown`.
#   readme-keys.sh BUILD            rewrite the tables
#   readme-keys.sh BUILD --check    list READMEs whose table differs; exit 1
set -u
BUILD=$1
check=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
begin='<!-- keys: generated from the option table by `make docs`; do not edit -->'
end='<!-- keys: end -->'
status=0
for readme in "$ROOT"/plugins/*/README.md; do
	name=$(basename "$(dirname "$readme")")
	[ -e "$BUILD/plugins/$name.so" ] || continue
	if ! grep -qF -- "$begin" "$readme"; then
		echo "$readme: no generated key table (markers missing)" >&2
		status=1
		continue
	fi
	table=$("$BUILD/pktpipe" --plugin-path "$BUILD/plugins" --describe "$name" --format markdown)
	new=$(awk -v b="$begin" -v e="$end" -v t="$table" '
		$0 == b { print; print t; skip = 1; next }
		$0 == e { skip = 0 }
		!skip { print }' "$readme")
	if [ "$check" = --check ]; then
		if [ "$new" != "$(cat "$readme")" ]; then
			echo "$readme: key table differs from the option table (run make docs)" >&2
			status=1
		fi
	elif [ "$new" != "$(cat "$readme")" ]; then
		printf '%s\n' "$new" > "$readme"
		echo "updated $readme"
	fi
done
exit $status
