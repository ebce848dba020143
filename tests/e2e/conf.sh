#!/bin/bash
# conf/ examples and plugin READMEs: each example passes --check with the
# plugins it names and lists every key of every node's plugin (set or
# commented out), and each README's key table is the generated one, so
# neither can fall behind the option tables.
SUITE=conf
. "$(dirname "$0")/../lib.sh"

for ini in "$ROOT"/conf/*.ini; do
	name=$(basename "$ini")
	missing=""
	for plugin in $(sed -n 's/^plugin *= *//p' "$ini" | sort -u); do
		[ -e "$BUILD/plugins/$plugin.so" ] || missing="$missing $plugin"
	done
	if [ -n "$missing" ]; then
		fail "$name: plugins not built:$missing"
		continue
	fi
	out=$("$PKTPIPE" --check -c "$ini" 2>&1)
	expect_eq "$name: --check" "$?" 0
	# Walk sections: every key the plugin declares appears as 'key =' or ';key ='.
	python3 - "$ini" "$PKTPIPE" <<'PY' && ok || fail "$name: keys missing (see above)"
import re, subprocess, sys
ini, pktpipe = sys.argv[1], sys.argv[2]
sections, cur = {}, None
for line in open(ini):
    m = re.match(r"\s*\[([^\]]+)\]", line)
    if m:
        cur = sections.setdefault(m.group(1), {"plugin": None, "keys": set()})
        continue
    m = re.match(r"\s*;?\s*([a-z0-9_]+)\s*=\s*(.*)", line)
    if m and cur is not None:
        cur["keys"].add(m.group(1))
        if m.group(1) == "plugin" and not line.lstrip().startswith(";"):
            cur["plugin"] = m.group(2).split(";")[0].strip()
bad = False
for name, s in sections.items():
    out = subprocess.run([pktpipe, "--describe", s["plugin"], "--format", "ini"],
                         capture_output=True, text=True).stdout
    want = set(re.findall(r"^;([a-z0-9_]+) =", out, re.M))
    lack = want - s["keys"]
    if lack:
        print(f"{ini}: [{name}] lacks keys: {', '.join(sorted(lack))}", file=sys.stderr)
        bad = True
sys.exit(1 if bad else 0)
PY
done
# Plugin READMEs carry their option tables as generated, not as copied.
if "$ROOT/contrib/readme-keys.sh" "$BUILD" --check; then ok; else fail "README key tables (see above)"; fi
finish
