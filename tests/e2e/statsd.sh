#!/bin/bash
# The statsd plugin against a real statsd: etsy statsd from the npm
# registry, installed into build/npm on first use and shared by later runs
# and both builds. Corpus captures are replayed through pcap-in -> pcap-out
# with a statsd node, and statsd's management port must then hold exactly
# what the capture holds: packets, bytes, drops, under pktpipe's names and
# the original tools' names, as counters, gauges or timers, over IPv4, IPv6
# and a host name. Then statsd is stopped, and the same run must write the
# same capture, exit 0 and count its send errors.
SUITE=statsd
. "$(dirname "$0")/../lib.sh"

P=(--plugin-path "$BUILD/plugins")
QUERY="$ROOT/tests/tools/statsd-query.js"
STATSD_VERSION=0.9.0
NPM_DIR=${STATSD_NPM_DIR:-$ROOT/build/npm}
STATSD_JS="$NPM_DIR/node_modules/statsd/stats.js"

# Captures nobody here wrote, each read to its end by libpcap with no
# packet longer than its file's snaplen (so caplen sums are what libpcap
# hands out): two Ethernet, one pcapng, and one Linux SLL for drops.
F1="$CORPUS/AoE_Linux.pcap"
F2="$CORPUS/of13_ericsson.pcapng"
F3="$CORPUS/resp_1_benchmark.pcap"

# --- statsd itself ---------------------------------------------------

# Both builds' suites may get here at once: one installs, the other waits.
install_statsd() {
	[ -f "$STATSD_JS" ] && return 0
	command -v node >/dev/null && command -v npm >/dev/null || return 1
	mkdir -p "$NPM_DIR" || return 1
	(
		flock -w 600 9 || exit 1
		[ -f "$STATSD_JS" ] && exit 0
		timeout 300 npm install --prefix "$NPM_DIR" --no-audit --no-fund --no-save \
			"statsd@$STATSD_VERSION"
	) 9>"$NPM_DIR/.lock" >"$TMP/npm.log" 2>&1
	[ -f "$STATSD_JS" ]
}

for need in "$PKTPIPE" "$BUILD/plugins/statsd.so" "$BUILD/plugins/pcap-in.so" \
	"$BUILD/plugins/pcap-out.so" "$PCAPCMP" "$F1" "$F2" "$F3"; do
	[ -e "$need" ] || { fail "$need is missing (run make)"; finish; exit; }
done
if ! install_statsd; then
	fail "cannot install statsd@$STATSD_VERSION with npm: $(tail -n 5 "$TMP/npm.log" 2>/dev/null)"
	finish
	exit
fi

# Ports nobody uses now, on 127.0.0.1 and, with IPv6, ::1 (free_port ... v6).
HAVE_V6=no V6=
python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' \
	2>/dev/null && HAVE_V6=yes V6=v6
SD_PORT=$(free_port udp $V6)
MG_PORT=$(free_port tcp $V6)
if [ "$HAVE_V6" = yes ]; then
	SD_LISTEN='address: "::", address_ipv6: true' # dual stack: IPv4 too
else
	SD_LISTEN='address: "127.0.0.1"'
fi
# No backend and an hour between flushes: counters only grow during the
# suite, and each scenario uses a prefix of its own.
cat >"$TMP/statsd-config.js" <<JS
{
  port: $SD_PORT, $SD_LISTEN,
  mgmt_port: $MG_PORT, mgmt_address: "127.0.0.1",
  flushInterval: 3600000,
  backends: []
}
JS
node "$STATSD_JS" "$TMP/statsd-config.js" >"$TMP/statsd.log" 2>&1 &
SD_PID=$!
on_exit "kill $SD_PID"

query() { # query OUT [counters|gauges|timers]
	timeout 10 node "$QUERY" 127.0.0.1 "$MG_PORT" "${2:-counters}" >"$1"
}
if ! wait_for 30 query "$TMP/ready.json"; then
	fail "statsd did not answer on its management port $MG_PORT: $(tail -n 5 "$TMP/statsd.log")"
	finish
	exit
fi
ok

# --- helpers -----------------------------------------------------------

packets_of() { capinfos -M -c "$1" 2>/dev/null | sed -n 's/^Number of packets: *\([0-9]*\)$/\1/p'; }
bytes_of() { tshark -r "$1" -T fields -e frame.cap_len 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

N1=$(packets_of "$F1") B1=$(bytes_of "$F1")
N2=$(packets_of "$F2") B2=$(bytes_of "$F2")
N3=$(packets_of "$F3") B3=$(bytes_of "$F3")
for v in "$N1" "$N2" "$N3" "$B1" "$B2" "$B3"; do
	[ "${v:-0}" -gt 0 ] || { fail "capinfos/tshark could not count the captures"; finish; exit; }
done

run() { run_graph "$1" 60 "${P[@]}"; } # run NAME: run_graph, 60 s at most

# metric FILE NAME: a value of a statsd table ("absent" if it is not there);
# a timer's samples are summed.
metric() {
	python3 - "$@" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
if isinstance(v, list):
    v = sum(v)
print("absent" if v is None else int(v) if v == int(v) else v)
PY
}

# keys FILE PREFIX: the names under PREFIX., sorted, one line.
keys() {
	python3 -c 'import json, sys
print(" ".join(sorted(k for k in json.load(open(sys.argv[1])) if k.startswith(sys.argv[2] + "."))))' "$@"
}

# same_as_stats WHAT PREFIX STATS: every counter of every node in the stats
# JSON is in statsd as PREFIX.NODE.COUNTER with the same value, levels as
# gauges. The statsd node's datagrams_sent and metrics_sent grow with the
# very flush that reports them, so they are one flush behind.
same_as_stats() {
	local why
	query "$TMP/c.json" counters && query "$TMP/g.json" gauges
	if why=$(python3 - "$2" "$3" "$TMP/c.json" "$TMP/g.json" <<'PY'
import json, sys
prefix, stats, counters, gauges = sys.argv[1], *(json.load(open(f)) for f in sys.argv[2:])
bad = []
for node, n in stats["nodes"].items():
    want = {f"dropped.{r}": v for r, v in n["dropped"].items()}
    want.update({k: v for k, v in n.items() if isinstance(v, int) and k != "packets_held"})
    if n["plugin"] == "statsd":
        want.pop("datagrams_sent"), want.pop("metrics_sent")
    for k, v in want.items():
        got = counters.get(f"{prefix}.{node}.{k}")
        if got is None:
            got = gauges.get(f"{prefix}.{node}.{k}")
        if got != v:
            bad.append(f"{node}.{k}: statsd {got}, stats {v}")
    got = gauges.get(f"{prefix}.{node}.packets_held")
    if got != n["packets_held"]:
        bad.append(f"{node}.packets_held: statsd {got}, stats {n['packets_held']}")
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
	); then ok; else fail "$1: $why"; fi
}

# pipe_ini NAME PREFIX [statsd keys...]: F1 -> pcap-out, and a statsd node
# flushing every $INTERVAL (50ms).
pipe_ini() {
	local name=$1 prefix=$2
	shift 2
	{
		printf '[in]\nplugin = pcap-in\npath = %s\n\n' "$F1"
		printf '[sd]\nplugin = statsd\nhost = 127.0.0.1:%s\ninterval = %s\n' "$SD_PORT" \
			"${INTERVAL:-50ms}"
		[ -n "$prefix" ] && printf 'prefix = %s\n' "$prefix"
		printf '%s\n' "$@"
		printf '\n[out]\nplugin = pcap-out\ninput = in\npath = %s\n' "$TMP/$name.pcap"
	} >"$TMP/$name.ini"
}

# --- one capture, exact --------------------------------------------------
pipe_ini one one
run one
expect_eq "one: exit" "$status" 0
expect_balanced "one" "$TMP/one.json"
query "$TMP/one.c.json"
expect_eq "one: sink packets_in" "$(metric "$TMP/one.c.json" one.out.packets_in)" "$N1"
expect_eq "one: sink bytes_in" "$(metric "$TMP/one.c.json" one.out.bytes_in)" "$B1"
expect_eq "one: sink packets_out" "$(metric "$TMP/one.c.json" one.out.packets_out)" "$N1"
expect_eq "one: source packets_in" "$(metric "$TMP/one.c.json" one.in.packets_in)" "$N1"
expect_eq "one: no drop" "$(metric "$TMP/one.c.json" one.out.dropped.reader-slow)" 0
expect_eq "one: no bad line" "$(metric "$TMP/one.c.json" statsd.bad_lines_seen)" 0
same_as_stats "one: statsd = stats" one "$TMP/one.json"
expect_eq "one: no send error" "$(stat "$TMP/one.json" sd send_errors)" 0
for c in flushes datagrams_sent metrics_sent send_errors metrics_skipped; do
	expect_eq "one: own counter $c in stats" "$(stat "$TMP/one.json" sd "$c" >/dev/null 2>&1 && echo yes)" yes
done
out=$("$PCAPCMP" "$F1" "$TMP/one.pcap" 2>&1)
expect_eq "one: capture written" "$out" "$N1 packets identical"

# --- fan-in and drops: three captures, one of another linktype -----------
cat >"$TMP/fan.ini" <<INI
[sd]
plugin = statsd
host = 127.0.0.1:$SD_PORT
interval = 20ms
prefix = fan

[a]
plugin = pcap-in
path = $F1

[b]
plugin = pcap-in
path = $F2

[sll]
plugin = pcap-in
path = $F3

[sink]
plugin = pcap-out
input = a, b, sll
linktype = EN10MB
path = $TMP/fan.pcap
INI
run fan
expect_eq "fan: exit" "$status" 0
expect_balanced "fan" "$TMP/fan.json"
query "$TMP/fan.c.json"
expect_eq "fan: sink packets_in" "$(metric "$TMP/fan.c.json" fan.sink.packets_in)" $((N1 + N2 + N3))
expect_eq "fan: sink bytes_in" "$(metric "$TMP/fan.c.json" fan.sink.bytes_in)" $((B1 + B2 + B3))
expect_eq "fan: dropped.linktype" "$(metric "$TMP/fan.c.json" fan.sink.dropped.linktype)" "$N3"
expect_eq "fan: sink packets_out" "$(metric "$TMP/fan.c.json" fan.sink.packets_out)" $((N1 + N2))
expect_eq "fan: sink bytes_out" "$(metric "$TMP/fan.c.json" fan.sink.bytes_out)" $((B1 + B2))
same_as_stats "fan: statsd = stats" fan "$TMP/fan.json"

# --- the default prefix: {host}.pktpipe --------------------------------
HOSTPART=$(python3 -c 'import re, socket; print(re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "unknown")')
pipe_ini dflt ""
sed -i 's/^\[out\]$/[dflt-out]/; s/^input = in$/input = dflt-in/; s/^\[in\]$/[dflt-in]/' "$TMP/dflt.ini"
run dflt
expect_eq "default prefix: exit" "$status" 0
query "$TMP/dflt.c.json"
expect_eq "default prefix: {host}.pktpipe" \
	"$(metric "$TMP/dflt.c.json" "$HOSTPART.pktpipe.dflt-out.packets_in")" "$N1"

# --- the original's names --------------------------------------------------
# Its prefix ended in a dot ({host}.nflog_pipe.); the same names come out.
pipe_ini legacy "{host}.nflog_pipe." "names = legacy" "legacy_map = in:raw_in, out:raw_out"
run legacy
expect_eq "legacy: exit" "$status" 0
query "$TMP/legacy.c.json"
L="$HOSTPART.nflog_pipe"
expect_eq "legacy: only the original's names" "$(keys "$TMP/legacy.c.json" "$L")" \
	"$L.raw_in.bytes $L.raw_in.pkt $L.raw_out.bytes $L.raw_out.pkt"
expect_eq "legacy: raw_in.pkt" "$(metric "$TMP/legacy.c.json" "$L.raw_in.pkt")" "$N1"
expect_eq "legacy: raw_in.bytes" "$(metric "$TMP/legacy.c.json" "$L.raw_in.bytes")" "$B1"
expect_eq "legacy: raw_out.pkt" "$(metric "$TMP/legacy.c.json" "$L.raw_out.pkt")" "$N1"
expect_eq "legacy: raw_out.bytes" "$(metric "$TMP/legacy.c.json" "$L.raw_out.bytes")" "$B1"

# Both sets; two nodes on one name add up; *_in and *_out pick the side.
cat >"$TMP/both.ini" <<INI
[sd]
plugin = statsd
host = 127.0.0.1:$SD_PORT
prefix = both
names = both
legacy_map = a:compress_in, b:compress_in, sink:compress_out, a:decompress_out

[a]
plugin = pcap-in
path = $F1

[b]
plugin = pcap-in
path = $F2

[sink]
plugin = pcap-out
input = a, b
path = $TMP/both.pcap
INI
run both
expect_eq "both: exit" "$status" 0
query "$TMP/both.c.json"
expect_eq "both: native name" "$(metric "$TMP/both.c.json" both.sink.packets_in)" $((N1 + N2))
expect_eq "both: compress_in.pkt adds up" "$(metric "$TMP/both.c.json" both.compress_in.pkt)" $((N1 + N2))
expect_eq "both: compress_in.bytes" "$(metric "$TMP/both.c.json" both.compress_in.bytes)" $((B1 + B2))
expect_eq "both: compress_out.pkt" "$(metric "$TMP/both.c.json" both.compress_out.pkt)" $((N1 + N2))
expect_eq "both: decompress_out.bytes" "$(metric "$TMP/both.c.json" both.decompress_out.bytes)" "$B1"
expect_eq "both: unmapped names absent" "$(metric "$TMP/both.c.json" both.raw_in.pkt)" absent

# --- type: d and ms send deltas, g the totals --------------------------
pipe_ini td td "type = d"
run td
query "$TMP/td.c.json"
expect_eq "type d: a counter to statsd" "$(metric "$TMP/td.c.json" td.out.packets_in)" "$N1"
pipe_ini tg tg "type = g"
run tg
query "$TMP/tg.g.json" gauges
query "$TMP/tg.c.json"
expect_eq "type g: totals as gauges" "$(metric "$TMP/tg.g.json" tg.out.bytes_in)" "$B1"
expect_eq "type g: no counter" "$(keys "$TMP/tg.c.json" tg)" ""
pipe_ini tm tm "type = ms"
run tm
query "$TMP/tm.t.json" timers
expect_eq "type ms: samples add up" "$(metric "$TMP/tm.t.json" tm.out.packets_in)" "$N1"

# --- addresses: IPv6 and a name ------------------------------------------
if [ "$HAVE_V6" = yes ]; then
	pipe_ini v6 v6
	sed -i "s/^host = .*/host = [::1]:$SD_PORT/" "$TMP/v6.ini"
	run v6
	query "$TMP/v6.c.json"
	expect_eq "IPv6: exit" "$status" 0
	expect_eq "IPv6: [::1]:port" "$(metric "$TMP/v6.c.json" v6.out.packets_in)" "$N1"
else
	echo "statsd: no IPv6 on this machine; [::1] not tried" >&2
fi
pipe_ini name name
sed -i "s/^host = .*/host = localhost:$SD_PORT/" "$TMP/name.ini"
run name
query "$TMP/name.c.json"
expect_eq "name: exit" "$status" 0
expect_eq "name: localhost:port" "$(metric "$TMP/name.c.json" name.out.packets_in)" "$N1"

# --- datagrams: several metrics each, never above the limit --------------
# A listener of our own sees each datagram as it was sent.
listen() { # listen PORT OUT: one JSON string per datagram, until "END"
	python3 - "$1" "$2" "$2.ready" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(60)
open(sys.argv[3], "w").close()
with open(sys.argv[2], "w") as out:
    while True:
        d = s.recv(65536).decode()
        if d == "END":
            break
        out.write(json.dumps(d) + "\n")
        out.flush()
PY
	LISTENER=$!
	on_exit "kill $LISTENER"
	wait_for 10 test -e "$2.ready" || fail "the datagram listener did not start"
}
# check_datagrams WHAT FILE LIMIT NODE: sizes, line syntax, several lines
# per datagram, and the deltas of NODE's packets_in adding up.
check_datagrams() {
	local why
	if why=$(python3 - "$2" "$3" "$4" <<'PY'
import json, re, sys
dgs = [json.loads(l) for l in open(sys.argv[1])]
limit, node = int(sys.argv[2]), sys.argv[3]
bad = [f"{len(d)} bytes" for d in dgs if len(d.encode()) > limit]
line = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]+\|(c|g)$")
bad += [f"bad line {l!r}" for d in dgs for l in d.split("\n") if not line.match(l)]
if not any("\n" in d for d in dgs):
    bad.append("never two metrics in one datagram")
total = sum(int(l.split(":")[1].split("|")[0]) for d in dgs for l in d.split("\n")
            if l.startswith(node + ".packets_in:"))
print(f"{len(dgs)} {total} " + "; ".join(bad[:5]))
sys.exit(1 if bad else 0)
PY
	); then ok; else fail "$1: $why"; fi
	DG_COUNT=${why%% *}
	why=${why#* }
	DG_TOTAL=${why%% *}
}
for size in 1432 512; do
	port=$(free_port udp $V6)
	listen "$port" "$TMP/dg$size.txt"
	sed -e "s/^host = .*/host = 127.0.0.1:$port\ndatagram_size = $size/" \
		-e "s/^prefix = fan$/prefix = a.rather.long.prefix.to.need.several.datagrams/" \
		"$TMP/fan.ini" >"$TMP/dg$size.ini"
	run "dg$size"
	expect_eq "datagrams $size: exit" "$status" 0
	printf END >"/dev/udp/127.0.0.1/$port"
	wait_for 10 sh -c "! kill -0 $LISTENER"
	check_datagrams "datagrams of at most $size bytes" "$TMP/dg$size.txt" "$size" \
		a.rather.long.prefix.to.need.several.datagrams.sink
	expect_eq "datagrams $size: every datagram counted" "$DG_COUNT" \
		"$(stat "$TMP/dg$size.json" sd datagrams_sent)"
	expect_eq "datagrams $size: deltas add up" "$DG_TOTAL" $((N1 + N2 + N3))
	if [ "$DG_COUNT" -gt "$(stat "$TMP/dg$size.json" sd flushes)" ]; then ok; else
		fail "datagrams $size: one datagram per flush ($DG_COUNT), expected several"
	fi
done

# --- SIGTERM: the last flush still has everything -----------------------
INTERVAL=30ms pipe_ini term term
sed -i -e "s|^path = $F1$|path = $F1\nloop = 0\nrate = 2MiB/s|" \
	-e "s|^path = $TMP/term.pcap$|path = $TMP/term.pcap\nflush = 1s|" "$TMP/term.ini"
start term "$TMP/term.ini" "${P[@]}"
seen() { query "$TMP/term.c.json" && [ "$(metric "$TMP/term.c.json" term.out.packets_in)" != absent ]; }
if wait_for 20 seen; then ok; else fail "SIGTERM: nothing reached statsd while running"; fi
stop term TERM 20
expect_eq "SIGTERM: exit" "$status" 0
same_as_stats "SIGTERM: statsd = stats" term "$TMP/term.json"

# --- stats_endpoint: a JSON snapshot on a unix socket ---------------------
ep_read() { # ep_read SOCKET OUT: read one answer, check it is JSON
	timeout 10 python3 - "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
data = b""
while chunk := s.recv(65536):
    data += chunk
json.loads(data)
open(sys.argv[2], "wb").write(data)
PY
}
SOCK="$TMP/stats.sock"
# A socket file left by a process that died is taken over.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK"
INTERVAL=30ms pipe_ini ep ep "stats_endpoint = $SOCK"
sed -i -e "s|^path = $F1$|path = $F1\nloop = 0\nrate = 2MiB/s|" -e "s/^host = .*/host =/" "$TMP/ep.ini"
start ep "$TMP/ep.ini" "${P[@]}"
moving() { ep_read "$SOCK" "$TMP/snap1.json" && [ "$(stat "$TMP/snap1.json" out packets_in)" -gt 0 ]; }
if wait_for 20 moving; then ok; else fail "stats_endpoint: no snapshot with packets: $(cat "$TMP/ep.err")"; fi
ep_read "$SOCK" "$TMP/snap2.json"
expect_eq "stats_endpoint: answers again" "$?" 0
expect_balanced "stats_endpoint: snapshot" "$TMP/snap2.json"
first=$(stat "$TMP/snap1.json" in packets_out) second=$(stat "$TMP/snap2.json" in packets_out)
if [ "$second" -ge "$first" ]; then ok; else fail "stats_endpoint: counts went back ($first, $second)"; fi
expect_eq "stats_endpoint: nodes" \
	"$(python3 -c 'import json,sys; print(sorted(json.load(open(sys.argv[1]))["nodes"]))' "$TMP/snap2.json")" \
	"['in', 'out', 'sd']"
expect_eq "stats_endpoint: its queries" "$(stat "$TMP/snap2.json" sd endpoint_queries)" \
	$(($(stat "$TMP/snap1.json" sd endpoint_queries) + 1))
expect_eq "stats_endpoint: drops as in --stats-json" "$(stat "$TMP/snap2.json" out dropped linktype)" 0
stop ep TERM 20
expect_eq "stats_endpoint: exit" "$status" 0
expect_eq "stats_endpoint: host empty, nothing sent" "$(stat "$TMP/ep.json" sd flushes 2>/dev/null || echo none)" none
if [ ! -e "$SOCK" ]; then ok; else fail "stats_endpoint: $SOCK left behind"; fi
# Anything else at the path is not ours to remove.
: >"$TMP/file"
pipe_ini epfile epfile "stats_endpoint = $TMP/file"
run epfile
expect_eq "stats_endpoint on a file: exit" "$status" 1
expect_contains "stats_endpoint on a file" "$(cat "$TMP/epfile.err")" "stats_endpoint $TMP/file exists and is not a socket"
if [ -f "$TMP/file" ]; then ok; else fail "stats_endpoint: a regular file was removed"; fi

# --- configuration errors, caught by --check ---------------------------
check() { # check WHAT KEY=VALUE... EXPECTED
	local what=$1 expected=${!#} ini="$TMP/bad.ini" err
	printf '[sd]\nplugin = statsd\n' >"$ini"
	for kv in "${@:2:$#-2}"; do printf '%s\n' "$kv" >>"$ini"; done
	err=$("$PKTPIPE" "${P[@]}" -c "$ini" --check 2>&1)
	expect_eq "$what: exit" "$?" 2
	expect_contains "$what" "$err" "$expected"
}
check "bad port" "host = statsd:99999" "bad port '99999' (1 to 65535)"
check "port missing" "host = statsd:" "bad port ''"
check "bracket" "host = [::1" "bad address '[::1'"
check "not IPv6" "host = [fe80::zz]:8125" "'fe80::zz' is not an IPv6 address"
check "host character" "host = stat/sd" "bad character '/' in host name"
check "prefix character" "prefix = a|b" "prefix 'a|b': bad character '|'"
check "prefix dots" "prefix = a..b" "no empty part between dots"
check "legacy without map" "names = legacy" "names = legacy needs legacy_map"
check "map without legacy" "legacy_map = x:raw_in" "names = pktpipe does not use it"
check "bad stem" "names = legacy" "legacy_map = x:raw_sideways" "'x:raw_sideways' is not NODE:NAME"
check "map twice" "names = both" "legacy_map = x:raw_in, y:raw_in, x : raw_in" "'x : raw_in' is given twice"
check "interval bound" "interval = 1ms" "interval"
check "nothing to do" "host =" "host is empty and there is no stats_endpoint: nothing to do"
check "endpoint path" "stats_endpoint = /$(printf 'x%.0s' {1..120})" "stats_endpoint: a unix socket path has at most 107 bytes"
err=$(printf '[sd]\nplugin = statsd\nhost = [::1]:9\nprefix = {host}.x\ntype = ms\n' \
	>"$TMP/good.ini" && "$PKTPIPE" "${P[@]}" -c "$TMP/good.ini" --check 2>&1)
expect_eq "good config: --check" "$?" 0

# Only a run knows the other nodes and the resolver's answer.
pipe_ini ghost ghost "names = legacy" "legacy_map = nosuch:raw_in"
run ghost
expect_eq "unknown node in legacy_map: exit" "$status" 1
expect_contains "unknown node in legacy_map" "$(cat "$TMP/ghost.err")" "legacy_map: there is no node [nosuch]"
pipe_ini unres unres
sed -i "s/^host = .*/host = no-such-host.invalid/" "$TMP/unres.ini"
run unres
expect_eq "unresolvable host: exit" "$status" 1
expect_contains "unresolvable host" "$(cat "$TMP/unres.err")" "cannot resolve statsd host 'no-such-host.invalid'"

# --- statsd gone: the graph does not notice -----------------------------
kill "$SD_PID"
wait "$SD_PID" 2>/dev/null
if wait_for 10 sh -c "! query '$TMP/gone.json'"; then ok; else fail "statsd still answers"; fi
# Paced over about a second with a flush every 10 ms: many refusals.
INTERVAL=10ms pipe_ini down down
sed -i "s|^path = $F1$|path = $F1\nrate = $((B1 * 2))|" "$TMP/down.ini"
run down
expect_eq "statsd down: exit" "$status" 0
expect_balanced "statsd down" "$TMP/down.json"
if cmp -s "$TMP/one.pcap" "$TMP/down.pcap"; then ok; else fail "statsd down: another capture"; fi
out=$("$PCAPCMP" "$F1" "$TMP/down.pcap" 2>&1)
expect_eq "statsd down: capture written" "$out" "$N1 packets identical"
errors=$(stat "$TMP/down.json" sd send_errors)
if [ "$errors" -ge 2 ]; then ok; else fail "statsd down: $errors send errors counted"; fi
lines=$(grep -c "cannot send to statsd at 127.0.0.1:$SD_PORT: Connection refused" "$TMP/down.err")
if [ "$lines" -ge 1 ] && [ $((lines * 5)) -le "$errors" ]; then ok; else
	fail "statsd down: $lines warnings for $errors errors (not rate limited?)"
fi

finish
