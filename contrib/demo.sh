#!/bin/bash
# make demo: the main job end to end on this machine. For now: a real
# capture copied through a pcap-in -> pcap-out graph, read back by tcpdump,
# with the per-node counters. Cleans up after itself.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS="$ROOT/../shared/corpus/pcap"
work=$(mktemp -d /tmp/pktpipe-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

input="$CORPUS/mpls-traceroute.pcap"
[ -r "$input" ] || input=$(ls -S "$CORPUS"/*.pcap | head -n 1)
cat > "$work/copy.ini" <<INI
[replay]
plugin = pcap-in
path = $input

[copy]
plugin = pcap-out
input = replay
path = $work/copy.pcap
precision = ns
INI
echo "== graph: $work/copy.ini"
cat "$work/copy.ini"
echo "== running pktpipe"
"$BUILD/pktpipe" -c "$work/copy.ini" --stats-json "$work/stats.json"
echo "== tcpdump reads the copy"
tcpdump -nn -r "$work/copy.pcap" 2>/dev/null | head -n 10
echo "   ... $(tcpdump -nn -r "$work/copy.pcap" 2>/dev/null | wc -l) packets in the copy," \
	"$(tcpdump -nn -r "$input" 2>/dev/null | wc -l) in the original"
echo "== counters (--stats-json)"
cat "$work/stats.json"
