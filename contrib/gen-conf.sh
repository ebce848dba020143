#!/bin/bash
# Print one conf/ node section: the plugin's every key from its option
# table, commented out at the default, except the KEY=VALUE pairs given.
#   gen-conf.sh PKTPIPE NODE PLUGIN [input=...] [KEY=VALUE]...
# conf/*.ini are assembled from these (the conf suite checks they list
# every key), so examples follow the option tables.
set -eu
pktpipe=$1 node=$2 plugin=$3
shift 3
printf '[%s]\nplugin = %s\n' "$node" "$plugin"
for kv in "$@"; do
	case "$kv" in input=* | thread=* | queue=*) printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" ;; esac
done
"$pktpipe" --describe "$plugin" --format ini | python3 -c '
import sys
sets = dict(a.split("=", 1) for a in sys.argv[1:])
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith(";") and not line.startswith("; ") and "=" in line:
        key = line[1:].split("=")[0].strip()
        if key in sets:
            print(f"{key} = {sets[key]}")
            continue
    print(line)' "$@"
