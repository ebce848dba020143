#!/bin/bash
# Golden error messages: every tests/graph/*.ini is a broken graph whose
# "; expect:" lines are exactly what `pktpipe --check` must print (FILE,
# BUILD and DIRS stand for the ini path, the build directory and the
# searched plugin directories), with exit status 2 and no crash.
SUITE=graph_errors
. "$(dirname "$0")/../lib.sh"

DIRS="$TESTPLUGINS, $BUILD/plugins"
for ini in "$ROOT"/tests/graph/*.ini; do
	name=$(basename "$ini" .ini)
	err=$(timeout 10 "$PKTPIPE" --check --plugin-path "$TESTPLUGINS" -c "$ini" 2>&1 >/dev/null)
	status=$?
	expect_eq "$name: exit status" "$status" 2
	want=$(sed -n 's/^; expect: //p' "$ini" | sed -e "s|FILE|$ini|g" -e "s|DIRS|$DIRS|g" -e "s|BUILD|$BUILD|g")
	if [ -n "$want" ]; then
		expect_eq "$name: messages" "$err" "$want"
	fi
	sed -n 's/^; expect-contains: //p' "$ini" | sed -e "s|FILE|$ini|g" -e "s|BUILD|$BUILD|g" |
		while IFS= read -r line; do printf '%s\n' "$line"; done > "$TMP/contains"
	while IFS= read -r line; do
		expect_contains "$name: message" "$err" "$line"
	done < "$TMP/contains"
done

# Files that cannot be written as text fixtures.
printf '[src]\nplugin = gen\x00\ncount = 1\n' > "$TMP/nul.ini"
err=$(timeout 10 "$PKTPIPE" --check --plugin-path "$TESTPLUGINS" -c "$TMP/nul.ini" 2>&1)
expect_eq "NUL byte: exit status" "$?" 2
expect_contains "NUL byte: message" "$err" "$TMP/nul.ini:2: binary data (NUL byte) in the file"

err=$(timeout 10 "$PKTPIPE" --check -c "$TMP/absent.ini" 2>&1)
expect_eq "missing file: exit status" "$?" 2
expect_eq "missing file: message" "$err" "$TMP/absent.ini: cannot open: No such file or directory"

head -c 4096 /dev/urandom > "$TMP/random.ini"
timeout 10 "$PKTPIPE" --check -c "$TMP/random.ini" >/dev/null 2>&1
expect_eq "random bytes: exit status" "$?" 2

# A correct graph passes --check with 0 and opens nothing.
cat > "$TMP/good.ini" <<INI
[src]
plugin = gen
fail_open = yes ; open() would fail, but --check never opens

[sink]
plugin = count
input = src
INI
out=$(timeout 10 "$PKTPIPE" --check --plugin-path "$TESTPLUGINS" -c "$TMP/good.ini" 2>&1)
expect_eq "good graph: exit status" "$?" 0
expect_eq "good graph: output" "$out" "$TMP/good.ini: ok (2 nodes)"

finish
