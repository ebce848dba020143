#!/bin/sh
# pktpipe.ini(5): the fixed head, then every key of the core and of each
# named plugin, generated from the option tables by pktpipe --describe.
#   gen-ini5.sh PKTPIPE VERSION PLUGIN...
set -eu
pktpipe=$1 version=$2
shift 2
dir=$(dirname "$0")
sed "s|@VERSION@|$version|g" "$dir/pktpipe.ini.5.head"
"$pktpipe" --describe core --format man
for name in "$@"; do
	"$pktpipe" --list-plugins 2>/dev/null | awk -v n="$name" '$1 == n' |
		while read -r plugin roles summary; do
			printf '.SH PLUGIN %s\n%s (%s).\n' "$plugin" "$summary" "$roles" | sed 's/-/\\-/g'
		done
	"$pktpipe" --describe "$name" --format man
done
printf '.SH SEE ALSO\n.BR pktpipe (8)\n'
