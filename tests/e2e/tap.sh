#!/bin/bash
# tap-out end to end, as root, in a network namespace of its own: corpus
# captures replayed with pcap-in into a TAP interface while tcpdump captures
# on it. tcpdump must see exactly the expected frames (Ethernet input as it
# was, raw IP and cooked input wrapped), and the stats must say where every
# other packet went. The expected frames come from tests/tools/tap-frames.py,
# written from the plugin's README, not from its code.
#
# For the exact comparisons the interface is created first (ip tuntap) and
# tcpdump attached to it before anything is written; tap-out attaches to it.
# Creation and removal by tap-out itself are checked separately.
SUITE=tap
. "$(dirname "$0")/../lib.sh"

FRAMES="$ROOT/tests/tools/tap-frames.py"
NS=pptap$$
TAP=ppt0

if [ "$(id -u)" -ne 0 ] || ! command -v tcpdump >/dev/null || [ ! -c /dev/net/tun ]; then
	fail "needs root, tcpdump and /dev/net/tun"
	finish
	exit
fi

ip netns add "$NS" || { fail "ip netns add $NS"; finish; exit; }
on_exit "ip netns del $NS"
# No IPv6 in the namespace: the kernel sends nothing of its own on the TAP.
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

# pp INI [args...]: pktpipe in the namespace; status in $status, stderr in $err.
pp() {
	err=$(nsx timeout 60 "$PKTPIPE" "$@" -c "$ini" 2>&1 >/dev/null)
	status=$?
}

# write_ini INPUT [tap-out keys...]: pcap-in -> tap-out, in $ini.
write_ini() {
	local input=$1 kv
	shift
	ini="$TMP/run.ini"
	printf '[in]\nplugin = pcap-in\npath = %s\n\n[tap]\nplugin = tap-out\ninput = in\n' \
		"$input" > "$ini"
	for kv in "$@"; do printf '%s\n' "$kv" >> "$ini"; done
}

# capture_start $TMP/NAME: tcpdump on the TAP, inbound only (what tap-out
# writes), each packet written at once, into $TMP/NAME (its stderr in
# $TMP/NAME.err); returns when it listens. pcap-in writes a file in one
# burst: the ring gets room for all of it (-B KiB; -s keeps ring slots small).
capture_start() {
	cap=$1
	spawn "${cap##*/}" ip netns exec "$NS" tcpdump -n -i "$TAP" -Q in -U --immediate-mode -s 2048 \
		-B 32768 -Z root -w "$cap"
	tcpdump_pid=${PIDS[${cap##*/}]}
	wait_for 10 grep -q "listening on" "$cap.err" || fail "tcpdump did not start: $(cat "$cap.err")"
}

# The capture holds exactly $exp; else say why, and whether tcpdump's ring
# overflowed.
capture_compare() {
	local why
	if why=$(python3 "$FRAMES" compare "$cap" "$exp" 2>&1); then
		ok
	else
		fail "$1: tcpdump saw other frames: $why ($(grep -h 'dropped by kernel' "$cap.err"))"
	fi
}

capture_has() { [ "$(python3 "$FRAMES" count "$cap")" -ge "$1" ]; }

# Wait until the capture holds $1 frames (or the bound passes), then stop it.
capture_stop() {
	wait_for 10 capture_has "$1"
	stop_pid "$tcpdump_pid" INT 10
}

# replay INPUT EXPECT_ARGS [tap-out keys...]: one run into the TAP; checks
# exit status, accounting and counters against tap-frames.py's expectation,
# and adds the expected frames to $exp. $total counts them; $seen collects
# the drop counters.
replay() {
	local input=$1 eargs=$2 name want why
	shift 2
	name=$(basename "$input")
	write_ini "$input" "ifname = $TAP" "$@"
	# shellcheck disable=SC2086
	want=$(python3 "$FRAMES" expect $eargs "$exp" "$input")
	pp --stats-json "$TMP/run.json"
	expect_eq "$name: exit ($err)" "$status" 0
	expect_balanced "$name" "$TMP/run.json"
	printf '%s\n' "$want" > "$TMP/want.json"
	if why=$(python3 "$FRAMES" stats "$TMP/run.json" tap "$TMP/want.json" 2>&1); then ok; else fail "$name: $why"; fi
	expect_contains "$name: attached" "$err" "attached to TAP interface $TAP"
	python3 -c 'import json, sys
n = json.load(open(sys.argv[1]))["nodes"]["tap"]
for r, v in n["dropped"].items(): print(r, v)
print("truncated_written", n["truncated_written"])' "$TMP/run.json" >> "$seen"
	total=$((total + $(python3 -c 'import json,sys; print(json.load(sys.stdin)["written"])' <<<"$want")))
}

C="$CORPUS"
# Variants nobody shipped: raw IP under the old number 12, SLL as SLL2.
python3 "$FRAMES" relink "$C/babel_rtt.pcap" "$TMP/raw12.pcap" 12
python3 "$FRAMES" sll2 "$C/forces2.pcap" "$TMP/forces2-sll2.pcap"

nsx ip tuntap add mode tap name "$TAP"
nsx ip link set "$TAP" up # tcpdump refuses an interface that is down

# --- default framing, custom MACs: every input kind, exact bytes ---
KEYS=("src_mac = 02:aa:bb:cc:dd:01" "dst_mac = 02-AA-BB-CC-DD-02")
EARGS="--src 02:aa:bb:cc:dd:01 --dst 02:aa:bb:cc:dd:02"
exp="$TMP/exp1.pcap"
seen="$TMP/seen1"
total=0
capture_start "$TMP/cap1.pcap"
for input in \
	"$C/vrrp.pcap" "$C/ldp-common-session.pcap" "$C/l2tp-avp-overflow.pcap" \
	"$C/pim-packet-assortment.pcap" \
	"$C/babel_rtt.pcap" "$C/gquic.pcap" "$TMP/raw12.pcap" "$C/heap-overflow-1.pcap" \
	"$C/LINKTYPE_IPV4.pcap" "$C/LINKTYPE_IPV4_invalid.pcap" \
	"$C/icmpv6_nodeinfo_replyipv6.pcap" "$C/hoobr_rt6_print.pcap" \
	"$C/forces2.pcap" "$C/babel.pcap" "$C/resp_1_benchmark.pcap" "$TMP/forces2-sll2.pcap" \
	"$C/bgp_vpn_rt-oobr.pcap" "$C/chdlc-slarp.pcap"; do
	replay "$input" "$EARGS" "${KEYS[@]}"
done
replay "$C/bgp-lu-multiple-labels.pcap" "$EARGS" "${KEYS[@]}" "thread = yes"
capture_stop "$total"
capture_compare "default framing"

# What those inputs hold, so that every case is covered: oversize (pim,
# loopback SLL), a linktype that cannot be written (Cisco HDLC), raw packets
# that are not IP, runts and truncated packets.
total_of() { awk -v r="$1" '$1 == r { n += $2 } END { print n + 0 }' "$seen"; }
expect_eq "covered: mtu" "$(total_of mtu)" 12
expect_eq "covered: linktype" "$(total_of linktype)" 1
expect_eq "covered: not-ip" "$(total_of not-ip)" 3
expect_eq "covered: runt" "$(total_of runt)" 39
expect_eq "covered: truncated written" "$(total_of truncated_written)" 20
expect_eq "covered: written" "$total" 826

# --- VLAN tag, small MTU, truncated packets dropped ---
exp="$TMP/exp2.pcap"
seen="$TMP/seen2"
total=0
EARGS2="--vlan 100 --mtu 576 --truncated drop"
KEYS2=("vlan = 100" "mtu = 576" "truncated = drop")
capture_start "$TMP/cap2.pcap"
for input in "$C/vrrp.pcap" "$C/ldp-common-session.pcap" "$C/l2tp-avp-overflow.pcap" \
	"$C/babel_rtt.pcap" "$C/gquic.pcap" "$C/forces2.pcap" "$TMP/forces2-sll2.pcap"; do
	replay "$input" "$EARGS2" "${KEYS2[@]}"
done
capture_stop "$total"
capture_compare "vlan, mtu 576"
expect_eq "the interface took the MTU" "$(nsx cat /sys/class/net/$TAP/mtu)" 576
expect_eq "covered: mtu 576" "$(total_of mtu)" 1
expect_eq "covered: truncated dropped" "$(total_of truncated)" 18

# --- a link that is down: counted, never written ---
json="$TMP/run.json"
nsx ip link set "$TAP" down
write_ini "$C/vrrp.pcap" "ifname = $TAP" "up = no"
pp --stats-json "$json"
expect_eq "link down: exit" "$status" 0
expect_eq "link down: dropped" "$(stat "$json" tap dropped link-down)" 165
expect_balanced "link down" "$json"
expect_contains "link down: logged" "$err" "$TAP is down"
nsx ip link del "$TAP"

# --- frames (encoded batches) cannot be written: dropped as what they carry ---
mkdir -p "$TMP/plugins"
cat > "$TMP/frames.c" <<'C'
/* Test source: 5 frames of 7 packets each, then done. */
#include <stdlib.h>
#include <string.h>
#include <pktpipe/plugin.h>
static const struct pp_option opts[] = { PP_OPTION_END };
struct st { struct pp_node *n; const struct pp_host *h; struct pp_timer *t; };
static void turn(void *arg)
{
	struct st *s = arg;
	struct pp_packet *p[5];
	struct pp_batch b = { .pkts = p, .count = 5 };
	for (int i = 0; i < 5; i++) {
		p[i] = s->h->packet_alloc(s->n, 64);
		memset(p[i]->data, 0, 64);
		p[i]->caplen = p[i]->origlen = 64;
		p[i]->linktype = PP_LINKTYPE_FRAME;
		p[i]->count = 7;
	}
	pp_counter_add(&s->h->stats(s->n)->packets_in, 35);
	s->h->emit(s->n, &b);
	for (int i = 0; i < 5; i++)
		s->h->packet_unref(p[i]);
	s->h->timer_free(s->t);
	s->h->finished(s->n, 0);
}
static int op(struct pp_node *n, const struct pp_host *h, const void *c, void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	(void)c;
	s->n = n, s->h = h, s->t = h->timer_new(n, turn, s);
	*state = s;
	return 0;
}
static int start(void *state) { struct st *s = state; return s->h->timer_arm(s->t, 0, 0); }
static void cl(void *state) { free(state); }
PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION, .struct_size = sizeof(struct pp_plugin),
	.name = "frames", .summary = "test: emits frames", .roles = PP_ROLE_SOURCE,
	.options = opts, .open = op, .start = start, .close = cl,
};
C
if cc -std=c11 -Wall -Werror -shared -fPIC -fvisibility=hidden -I"$ROOT/include" \
	-o "$TMP/plugins/frames.so" "$TMP/frames.c"; then ok; else fail "frames test plugin does not build"; fi
ini="$TMP/frames.ini"
printf '[in]\nplugin = frames\n\n[tap]\nplugin = tap-out\ninput = in\nifname = ppf0\n' > "$ini"
pp --plugin-path "$TMP/plugins" --stats-json "$json"
expect_eq "frames: exit ($err)" "$status" 0
expect_eq "frames: dropped as packets" "$(stat "$json" tap dropped frame)" 35
expect_balanced "frames" "$json"

# --- tap-out creates the interface, configures it, removes it at exit ---
# New interfaces would have IPv6 now: tap-out must turn it off by itself.
nsx sysctl -qw net.ipv6.conf.default.disable_ipv6=0
printf '[in]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 200KiB/s\n\n[tap]\nplugin = tap-out\ninput = in\nifname = ppc0\nmtu = 9000\n' \
	"$C/vrrp.pcap" > "$ini"
spawn create ip netns exec "$NS" "$PKTPIPE" -c "$ini" --stats-json "$TMP/create.json"
link_up() { nsx ip link show "$1" 2>/dev/null | grep -q '[<,]UP[,>]'; }
if wait_for 10 link_up ppc0; then ok; else fail "ppc0 not created and up: $(cat "$TMP/create.err")"; fi
link=$(nsx ip -d link show ppc0)
expect_contains "created: mtu" "$link" "mtu 9000"
expect_contains "created: a TAP" "$link" "tun type tap pi off"
expect_contains "created: not persistent" "$link" "persist off"
expect_eq "created: IPv6 turned off" "$(nsx cat /proc/sys/net/ipv6/conf/ppc0/disable_ipv6)" 1
# While it runs: tcpdump sees only expected frames there too.
TAP=ppc0
exp="$TMP/exp3.pcap"
python3 "$FRAMES" expect "$exp" "$C/vrrp.pcap" >/dev/null
capture_start "$TMP/cap3.pcap"
capture_stop 10
if why=$(python3 "$FRAMES" subset "$TMP/cap3.pcap" "$exp" 2>&1); then ok; else fail "created: $why"; fi
# A second user of the same interface is refused, clearly.
printf '[in]\nplugin = pcap-in\npath = %s\n\n[tap]\nplugin = tap-out\ninput = in\nifname = ppc0\n' \
	"$C/vrrp.pcap" > "$TMP/busy.ini"
out=$(nsx "$PKTPIPE" -c "$TMP/busy.ini" 2>&1)
expect_eq "busy: exit" "$?" 1
expect_contains "busy: message" "$out" "cannot create or attach to interface ppc0: it exists and another process has it open"
stop create TERM 10
expect_eq "created: exit after SIGTERM" "$status" 0
expect_balanced "created" "$TMP/create.json"
expect_contains "created: logged" "$(cat "$TMP/create.err")" "created TAP interface ppc0 (mtu 9000, up)"
if nsx ip link show ppc0 >/dev/null 2>&1; then fail "ppc0 left behind"; else ok; fi

# --- persist = yes keeps it (named by the kernel); attaching leaves it ---
printf '[in]\nplugin = pcap-in\npath = %s\n\n[tap]\nplugin = tap-out\ninput = in\nifname = ppp%%d\npersist = yes\ndisable_ipv6 = no\n' \
	"$C/vrrp.pcap" > "$ini"
pp --stats-json "$json"
expect_eq "persist: exit ($err)" "$status" 0
expect_contains "persist: named by the kernel" "$err" "created TAP interface ppp0"
expect_contains "persist: kept" "$(nsx ip -d link show ppp0 2>&1)" "persist on"
expect_eq "persist: delivered" "$(stat "$json" tap packets_out)" 165
expect_eq "disable_ipv6 = no" "$(nsx cat /proc/sys/net/ipv6/conf/ppp0/disable_ipv6)" 0
nsx sysctl -qw net.ipv6.conf.default.disable_ipv6=1
write_ini "$C/vrrp.pcap" "ifname = ppp0"
pp --stats-json "$json"
expect_contains "attach: logged" "$err" "attached to TAP interface ppp0"
if nsx ip link show ppp0 >/dev/null 2>&1; then ok; else fail "an interface tap-out attached to was removed"; fi
nsx ip link del ppp0

# --- refusals ---
write_ini "$C/vrrp.pcap" "ifname = lo"
pp
expect_eq "not a TAP: exit" "$status" 1
expect_contains "not a TAP: message" "$err" "cannot create or attach to interface lo: it exists and is not a single-queue TAP interface"
write_ini "$C/vrrp.pcap" "ifname = ppn0"
err=$(nsx setpriv --inh-caps=-all --bounding-set=-net_admin "$PKTPIPE" -c "$ini" 2>&1)
expect_eq "no CAP_NET_ADMIN: exit" "$?" 1
expect_contains "no CAP_NET_ADMIN: message" "$err" "needs CAP_NET_ADMIN"
if nsx ip link show ppn0 >/dev/null 2>&1; then fail "ppn0 created without CAP_NET_ADMIN"; else ok; fi
check() { # KEY=VALUE... -> --check's status and message
	write_ini "$C/vrrp.pcap" "$@"
	err=$("$PKTPIPE" --check -c "$ini" 2>&1)
	status=$?
}
check "ifname = a-name-far-too-long"
expect_eq "long ifname: exit" "$status" 2
expect_contains "long ifname: message" "$err" "ifname 'a-name-far-too-long': 1 to 15 characters"
check "ifname = a/b"
expect_contains "bad ifname" "$err" "ifname 'a/b' is not a valid interface name"
check "ifname = x" "src_mac = 02:00:00:00:00"
expect_eq "bad MAC: exit" "$status" 2
expect_contains "bad MAC: message" "$err" "'02:00:00:00:00' is not a MAC address"
check "ifname = x" "dst_mac = 02:00:00:00:00:0g"
expect_contains "bad MAC digit" "$err" "is not a MAC address"
check "ifname = x" "src_mac = 01:00:5e:00:00:01"
expect_contains "multicast src_mac" "$err" "src_mac must be a unicast address"
check "ifname = x" "vlan = 4095"
expect_eq "vlan out of range: exit" "$status" 2
check "ifname = x" "mtu = 20"
expect_eq "mtu out of range: exit" "$status" 2
check "ifname = x" "dst_mac = ff:ff:ff:ff:ff:ff" "vlan = 4094"
expect_eq "broadcast dst_mac, vlan 4094: accepted ($err)" "$status" 0

finish
