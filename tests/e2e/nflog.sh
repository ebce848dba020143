#!/bin/bash
# The nflog source against the kernel's real NFLOG target: network
# namespaces this suite creates, iptables/ip6tables/nft rules on loopback,
# traffic from ping, ping -6, a Python UDP sender and tests/tools/nflog-udp,
# pcap-out writing, tcpdump and tshark reading. Needs root (CI runs as root).
#
# Netlink logging is per network namespace, so pktpipe runs inside the
# namespace (ip netns exec execs it: $! is pktpipe itself). Everything made
# here (namespaces and with them their rules, processes, files) goes with
# on_exit, whatever happens; every wait is bounded.
SUITE=nflog
. "$(dirname "$0")/../lib.sh"

UDP="$BUILD/tools/nflog-udp"
PORT=9999

need_tools ip iptables ip6tables nft ping tcpdump tshark capinfos python3 taskset
[ "$(id -u)" = 0 ] || fail "needs root: network namespaces and NFLOG rules"
[ -f "$BUILD/plugins/nflog.so" ] || fail "$BUILD/plugins/nflog.so not built (libnetfilter_log?)"
[ -x "$UDP" ] || fail "$UDP not built"
getent passwd nobody >/dev/null || fail "no user 'nobody' to drop privileges to"
finish_if_failed
# Where a pktpipe that became nobody can still write its stats.
chmod 711 "$TMP"
mkdir -m 777 "$TMP/nobody"

# ---- helpers ----

# nflog_start NAME INI GROUP: pktpipe spawned as NAME in $NS, until the
# group is bound. Its stats go to $TMP/NAME.json (STATS=FILE: there). Ended
# with stop NAME TERM 15 (not killed in time: exit status 137).
nflog_start() {
	spawn "$1" ip netns exec "$NS" "$PKTPIPE" -c "$2" --stats-json "${STATS:-$TMP/$1.json}" >/dev/null
	wait_for 10 nflog_bound "$3" || fail "$1: group $3 not bound within 10 s: $(cat "$TMP/$1.err")"
}

# Packets the namespace's NFLOG rules matched, IPv4 and IPv6 together.
# graph NAME "nflog keys" : an nflog node writing $TMP/NAME.pcap.
graph() {
	printf '[cap]\nplugin = nflog\n%b\n\n[out]\nplugin = pcap-out\ninput = cap\npath = %s\nflush = 10ms\n' \
		"$2" "$TMP/$1.pcap" >"$TMP/$1.ini"
}

encap() { capinfos -E "$1" 2>/dev/null | sed -n 's/^File encapsulation: *//p'; }
count_pcap() { tcpdump -nn -r "$1" "${@:2}" 2>/dev/null | wc -l; }
sum_field() { tshark -r "$1" -T fields -e "$2" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# The Python UDP sender: datagrams of several sizes to 127.0.0.1 and ::1,
# each at a port a socket is bound to (so no ICMP unreachable comes back).
# Prints "PACKETS BYTES" (bytes at the IP layer).
udp_send() {
	nsx python3 - "$PORT" <<'PY'
import socket, sys
port, n, total = int(sys.argv[1]), 0, 0
for fam, addr, hdr in ((socket.AF_INET, "127.0.0.1", 28), (socket.AF_INET6, "::1", 48)):
    sink = socket.socket(fam, socket.SOCK_DGRAM)
    sink.bind((addr, port))
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for size in (0, 1, 100, 1000, 1472, 4000, 9000):
        s.sendto(b"x" * size, (addr, port))
        n, total = n + 1, total + size + hdr
print(n, total)
PY
}

# ---- the option table and its checks, no kernel needed ----
out=$("$PKTPIPE" --describe nflog 2>&1)
expect_contains "describe: rcvbuf_max" "$out" "rcvbuf_max (size, default: 64MiB)"
expect_contains "describe: nlbufsiz" "$out" "at most 131072 bytes (the kernel's limit)"

check() { # check "keys": --check's exit status and stderr in $status, $err
	printf '[cap]\nplugin = nflog\n%b\n[out]\nplugin = pcap-out\ninput = cap\npath = /dev/null\n' "$1" >"$TMP/check.ini"
	check_ini "$TMP/check.ini"
}
check "groups = 1\nnlbufsiz = 1MiB"
expect_eq "nlbufsiz above the kernel's limit: exit" "$status" 2
expect_contains "nlbufsiz above the kernel's limit" "$err" "nlbufsiz 1048576 is above 131072 bytes (128KiB), the largest batch buffer the kernel accepts"
check "groups = 1, 2, 1"
expect_contains "duplicate group" "$err" "group 1 is listed twice"
check "groups = 1\nrcvbuf = 8MiB\nrcvbuf_max = 1MiB"
expect_contains "rcvbuf_max below rcvbuf" "$err" "rcvbuf_max (1048576 bytes) is below rcvbuf (8388608 bytes)"
check "groups = 1\nuser = pp-no-such-user"
expect_contains "unknown user" "$err" "user 'pp-no-such-user' does not exist"
check "groups = 1\nuser = root"
expect_contains "user root refused" "$err" "user 'root' is root, which keeps every capability"
check "groups = 70000"
expect_eq "group out of range: exit" "$status" 2

# ---- two groups, IPv4 and IPv6, ping and UDP: exact count and bytes ----
new_ns "ppnflog-$$-capture"
for ipt in iptables ip6tables; do
	if [ $ipt = iptables ]; then proto=(icmp --icmp-type); else proto=(ipv6-icmp --icmpv6-type); fi
	for t in echo-request echo-reply; do
		nsx $ipt -A OUTPUT -o lo -p "${proto[@]}" $t -j NFLOG --nflog-group 21 --nflog-prefix "pp ping $ipt"
	done
	nsx $ipt -A OUTPUT -o lo -p udp --dport $PORT -j NFLOG --nflog-group 22 --nflog-prefix "pp udp"
done
graph capture "groups = 21, 22"
t0=$(date +%s)
nflog_start capture "$TMP/capture.ini" 22
nsx ping -q -c 4 -i 0.05 -W 2 127.0.0.1 >/dev/null || fail "ping 127.0.0.1"
nsx ping -6 -q -c 3 -i 0.05 -s 120 -W 2 ::1 >/dev/null || fail "ping -6 ::1"
read -r udp_n udp_bytes < <(udp_send)
stop capture TERM 15
t1=$(($(date +%s) + 1))
want=$((8 + 6 + udp_n))
want_bytes=$((8 * 84 + 6 * 168 + udp_bytes))
expect_eq "capture: exit" "$status" 0
expect_balanced "capture" "$TMP/capture.json"
expect_eq "capture: the rules matched" "$(nflog_matched)" "$want"
expect_eq "capture: nflog packets_in" "$(stat "$TMP/capture.json" cap packets_in)" "$want"
expect_eq "capture: nothing lost" "$(stat "$TMP/capture.json" cap dropped kernel)" 0
expect_eq "capture: tcpdump reads every packet" "$(count_pcap "$TMP/capture.pcap")" "$want"
expect_eq "capture: IPv4 pings" "$(count_pcap "$TMP/capture.pcap" icmp)" 8
expect_eq "capture: IPv6 pings" "$(count_pcap "$TMP/capture.pcap" icmp6)" 6
expect_eq "capture: UDP datagrams" "$(count_pcap "$TMP/capture.pcap" udp)" "$udp_n"
expect_eq "capture: bytes" "$(sum_field "$TMP/capture.pcap" frame.cap_len)" "$want_bytes"
expect_eq "capture: nothing cut" "$(sum_field "$TMP/capture.pcap" frame.len)" "$want_bytes"
expect_eq "capture: nflog bytes_out" "$(stat "$TMP/capture.json" cap bytes_out)" "$want_bytes"
expect_eq "capture: raw IP file" "$(encap "$TMP/capture.pcap")" "Raw IP"
# Loopback output has no kernel timestamp: the time of reading, never 0.
stamps=$(tshark -r "$TMP/capture.pcap" -T fields -e frame.time_epoch 2>/dev/null |
	awk -v a="$t0" -v b="$t1" '$1 < a || $1 > b { bad++ } END { print bad + 0 }')
expect_eq "capture: timestamps are the capture's time" "$stamps" 0

# ---- the same rules, linktype = nflog: prefix and group in tshark ----
graph nflogtype "groups = 21, 22\nlinktype = nflog"
nflog_start nflogtype "$TMP/nflogtype.ini" 22
nsx ping -q -c 2 -i 0.05 -W 2 127.0.0.1 >/dev/null
nsx ping -6 -q -c 1 -W 2 ::1 >/dev/null
read -r udp_n udp_bytes < <(udp_send)
stop nflogtype TERM 15
want=$((4 + 2 + udp_n))
expect_eq "nflog linktype: exit" "$status" 0
expect_balanced "nflog linktype" "$TMP/nflogtype.json"
expect_eq "nflog linktype: tcpdump reads it" "$(count_pcap "$TMP/nflogtype.pcap")" "$want"
expect_eq "nflog linktype: encapsulation" "$(encap "$TMP/nflogtype.pcap")" "NFLOG"
fields=$(tshark -r "$TMP/nflogtype.pcap" -T fields -E separator='|' -e nflog.res_id -e nflog.prefix -e ip.proto -e ipv6.nxt 2>/dev/null | sort | uniq -c | sed 's/^ *//')
expect_contains "nflog linktype: IPv4 ping, group and prefix" "$fields" "4 21|pp ping iptables|1|"
expect_contains "nflog linktype: IPv6 ping, group and prefix" "$fields" "2 21|pp ping ip6tables||58"
expect_contains "nflog linktype: IPv4 UDP" "$fields" "7 22|pp udp|17|"
expect_contains "nflog linktype: IPv6 UDP" "$fields" "7 22|pp udp||17"
expect_eq "nflog linktype: interface" "$(tshark -r "$TMP/nflogtype.pcap" -T fields -e nflog.ifindex_outdev 2>/dev/null | sort -u)" 1

# ---- copy_range and the rule's --nflog-size cut; the length stays ----
nsx iptables -A OUTPUT -o lo -p udp --dport 9998 -j NFLOG --nflog-group 23 --nflog-size 40
nsx iptables -A OUTPUT -o lo -p udp --dport 9997 -j NFLOG --nflog-group 23
graph cut "groups = 23\ncopy_range = 64"
nflog_start cut "$TMP/cut.ini" 23
nsx "$UDP" -c 2 -s 1000 -p 9998 >/dev/null
nsx "$UDP" -c 3 -s 1000 -p 9997 >/dev/null
stop cut TERM 15
expect_eq "cut: exit" "$status" 0
lens=$(tshark -r "$TMP/cut.pcap" -T fields -e frame.cap_len -e frame.len 2>/dev/null | sort | uniq -c | sed 's/^ *//' | tr '\t\n' ' ')
expect_eq "cut: caplen and original length" "$lens" "2 40 1028 3 64 1028 "

# ---- a group someone else reads: a clear error naming it ----
graph first "groups = 21"
nflog_start first "$TMP/first.ini" 21
graph second "groups = 20, 21"
err=$(timeout 20 ip netns exec "$NS" "$PKTPIPE" -c "$TMP/second.ini" 2>&1 >/dev/null)
expect_eq "busy group: exit" "$?" 1
expect_contains "busy group: names the group" "$err" "group 21 is already bound by another process (netlink port "
expect_contains "busy group: names the reader" "$err" "'pktpipe')"
if nflog_bound 21 && ! nflog_bound 20; then ok; else fail "busy group: the first reader lost its group, or 20 stayed bound"; fi
stop first TERM 15
expect_eq "busy group: the first reader exits 0" "$status" 0

# ---- the metadata, as zmq-out's native frames carry it ----
# An independent reader (python3-zmq) decodes the frames (WIRE.md) and
# prints each record: linktype|caplen|origlen|group|prefix|ifindex out|mark|
# uid|gid|hw protocol, then the per-group sequence numbers.
# Run as: python3 meta.py ENDPOINT RECORDS OUTFILE (directly, so that $! is
# the receiver itself).
cat >"$TMP/meta.py" <<'PY'
import struct, sys, time, zmq
ep, want, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = zmq.Context().socket(zmq.PULL)
s.bind(ep)
open(out + ".ready", "w").close()
rows, seqs, deadline = [], [], time.time() + 20
while len(rows) < want and time.time() < deadline:
    if not s.poll(200):
        continue
    m = s.recv()
    count = struct.unpack(">I", m[24:28])[0]
    p, off = m[32:], 0
    for _ in range(count):
        ts, cap, orig, lt, mlen = struct.unpack(">QIIIH", p[off:off + 22])
        off, meta = off + 22, {}
        end = off + mlen
        while off < end:
            t, l = p[off], p[off + 1]
            v = p[off + 2:off + 2 + l]
            meta[t] = v.decode() if t == 2 else int.from_bytes(v, "big")
            off += 2 + l
        off += cap
        g = lambda t: str(meta.get(t, "-"))
        rows.append("|".join([str(lt), str(cap), str(orig)] + [g(t) for t in (1, 2, 4, 7, 8, 9, 10)]))
        seqs.append(meta.get(11, -1))
        if ts == 0 or 12 not in meta:
            rows.append("no timestamp or global sequence number")
with open(out, "w") as f:
    f.write("\n".join(sorted(rows)) + "\nseq " + " ".join(map(str, sorted(seqs))) + "\n")
PY
if [ -f "$BUILD/plugins/zmq-out.so" ] && "$PY" -c 'import zmq' 2>/dev/null; then
	nsx iptables -t mangle -A OUTPUT -o lo -p icmp -j MARK --set-mark 42
	nsx ip6tables -t mangle -A OUTPUT -o lo -p ipv6-icmp -j MARK --set-mark 42
	spawn meta-rx "$PY" "$TMP/meta.py" "ipc://$TMP/meta.ipc" 8 "$TMP/meta.txt" >/dev/null
	wait_for 10 test -e "$TMP/meta.txt.ready" || fail "metadata: the receiver did not start: $(cat "$TMP/meta-rx.err")"
	printf '[cap]\nplugin = nflog\ngroups = 21\n\n[out]\nplugin = zmq-out\ninput = cap\nendpoint = ipc://%s\n' \
		"$TMP/meta.ipc" >"$TMP/meta.ini"
	nflog_start meta "$TMP/meta.ini" 21
	nsx ping -q -c 3 -i 0.05 -W 2 127.0.0.1 >/dev/null
	nsx ping -6 -q -c 1 -W 2 ::1 >/dev/null
	stop meta TERM 15
	expect_eq "metadata: exit" "$status" 0
	expect_balanced "metadata" "$TMP/meta.json"
	reap "${PIDS[meta-rx]}" 25
	meta=$(cat "$TMP/meta.txt" 2>/dev/null)
	expect_eq "metadata: records" "$(grep -c '^101|' <<<"$meta")" 8
	expect_contains "metadata: IPv4 requests" "$meta" "$(printf '101|84|84|21|pp ping iptables|1|42|0|0|2048\n101|84|84|21|pp ping iptables|1|42|0|0|2048\n101|84|84|21|pp ping iptables|1|42|0|0|2048')"
	expect_contains "metadata: IPv4 replies (no socket, no uid)" "$meta" "$(printf '101|84|84|21|pp ping iptables|1|42|-|-|2048\n101|84|84|21|pp ping iptables|1|42|-|-|2048\n101|84|84|21|pp ping iptables|1|42|-|-|2048')"
	expect_contains "metadata: IPv6 request" "$meta" "101|104|104|21|pp ping ip6tables|1|42|0|0|34525"
	expect_contains "metadata: IPv6 reply" "$meta" "101|104|104|21|pp ping ip6tables|1|42|-|-|34525"
	expect_contains "metadata: sequence numbers" "$meta" "seq 0 1 2 3 4 5 6 7"
	expect_eq "metadata: timestamps and global sequence" "$(grep -c 'no timestamp' <<<"$meta")" 0
	nsx iptables -t mangle -F OUTPUT
	nsx ip6tables -t mangle -F OUTPUT
else
	echo "nflog: metadata not checked: needs $BUILD/plugins/zmq-out.so and python3-zmq" >&2
fi

# ---- SIGTERM: what the kernel still batches is flushed, none lost ----
graph flush "groups = 21\nqthreshold = 1000\nqtimeout = 30s"
nflog_start flush "$TMP/flush.ini" 21
nsx ping -q -c 5 -i 0.05 -W 2 127.0.0.1 >/dev/null
stop flush TERM 15
expect_eq "flush: exit" "$status" 0
expect_eq "flush: kernel batch written" "$(count_pcap "$TMP/flush.pcap")" 10
expect_balanced "flush" "$TMP/flush.json"

# ---- SIGTERM mid-stream: exit 0, everything read reaches the file ----
graph midstream "groups = 22"
nflog_start midstream "$TMP/midstream.ini" 22
spawn udp ip netns exec "$NS" "$UDP" -t 4 -r 20000 -s 200 >/dev/null
sleep 1
stop midstream TERM 15
expect_eq "mid-stream: exit" "$status" 0
expect_balanced "mid-stream" "$TMP/midstream.json"
got=$(stat "$TMP/midstream.json" cap packets_out)
if [ "$got" -gt 1000 ]; then ok; else fail "mid-stream: only $got packets before SIGTERM"; fi
expect_eq "mid-stream: file holds what nflog emitted" "$(count_pcap "$TMP/midstream.pcap")" "$got"
expect_eq "mid-stream: pcap-out wrote it all" "$(stat "$TMP/midstream.json" out packets_out)" "$got"
reap "${PIDS[udp]}" 10

# ---- a burst far beyond a tiny rcvbuf: exact loss accounting ----
# Same CPU for reader and sender, one packet per message: the buffer (two
# or three messages) overflows for sure. Pings after the burst carry the
# sequence numbers that reveal the last gap.
burst() { # burst NAME "keys": stats in $TMP/nobody/NAME.json
	local j="$TMP/nobody/$1.json"
	new_ns "ppnflog-$$-$1"
	nsx iptables -A OUTPUT -o lo -p udp --dport $PORT -j NFLOG --nflog-group 25
	nsx iptables -A OUTPUT -o lo -p icmp -j NFLOG --nflog-group 25
	graph "$1" "groups = 25\nqthreshold = 1\n$2"
	STATS="$j" nflog_start "$1" "$TMP/$1.ini" 25
	taskset -a -p -c 0 "${PIDS[$1]}" >/dev/null
	nsx taskset -c 0 "$UDP" -c 50000 -s 1000 >/dev/null
	sleep 0.5
	nsx ping -q -c 3 -i 0.2 -W 2 127.0.0.1 >/dev/null
	stop "$1" TERM 15
	expect_eq "$1: exit" "$status" 0
	expect_balanced "$1" "$j"
	expect_eq "$1: packets_in is what the rules matched" "$(stat "$j" cap packets_in)" "$(nflog_matched)"
	expect_eq "$1: file holds what nflog emitted" "$(count_pcap "$TMP/$1.pcap")" "$(stat "$j" cap packets_out)"
	lost=$(stat "$j" cap dropped kernel)
	if [ "$lost" -gt 0 ]; then ok; else fail "$1: no kernel drops counted"; fi
	if [ "$(stat "$j" cap overflows)" -gt 0 ]; then ok; else fail "$1: no overflow counted"; fi
	expect_eq "$1: no unseen batches (the pings show the last gap)" "$(stat "$j" cap unseen_batches)" 0
}
burst tiny "rcvbuf = 4KiB\nrcvbuf_max = 4KiB"
expect_contains "tiny: logged with the size and the key" "$(cat "$TMP/tiny.err")" "): receive buffer overflowed (rcvbuf 4KiB), counted as dropped 'kernel'; raise rcvbuf_max (4KiB) or rcvbuf"
expect_contains "tiny: the gap named" "$(cat "$TMP/tiny.err")" "group 25: the kernel could not deliver "
expect_eq "tiny: one line a gap, saying both" \
	"$(grep -c 'could not deliver' "$TMP/tiny.err")" "$(grep -c 'could not deliver.*receive buffer overflowed' "$TMP/tiny.err")"
expect_eq "tiny: rcvbuf stays" "$(stat "$TMP/nobody/tiny.json" cap rcvbuf)" 8192

burst grow "rcvbuf = 4KiB\nrcvbuf_max = 64KiB"
expect_contains "grow: logged" "$(cat "$TMP/grow.err")" "rcvbuf raised to 8KiB"
expect_eq "grow: rcvbuf doubled up to rcvbuf_max" "$(stat "$TMP/nobody/grow.json" cap rcvbuf)" 131072

# Overflows once privileges are gone: SO_RCVBUFFORCE is refused now, plain
# SO_RCVBUF (up to net.core.rmem_max) still grows it, and nothing is fatal.
burst unprivileged "rcvbuf = 4KiB\nrcvbuf_max = 64KiB\nuser = nobody"
expect_eq "unprivileged: rcvbuf grew all the same" "$(stat "$TMP/nobody/unprivileged.json" cap rcvbuf)" 131072

# ---- a loss at the very end: no later packet shows it as a gap ----
# The reader is stopped (SIGSTOP) while a burst fills its buffer: every
# message after that is dropped, and none comes after them to show their
# sequence numbers. The socket's drop count does: with one packet a
# message, what the rule matched is what came in plus the unseen batches.
new_ns "ppnflog-$$-tail"
nsx iptables -A OUTPUT -o lo -p udp --dport $PORT -j NFLOG --nflog-group 28
graph tail "groups = 28\nqthreshold = 1\nrcvbuf = 4KiB\nrcvbuf_max = 4KiB"
STATS="$TMP/nobody/tail.json" nflog_start tail "$TMP/tail.ini" 28
kill -STOP "${PIDS[tail]}"
nsx "$UDP" -c 2000 -s 1000 >/dev/null
kill -CONT "${PIDS[tail]}"
sleep 0.5
stop tail TERM 15
j=$TMP/nobody/tail.json
expect_eq "tail: exit" "$status" 0
expect_balanced tail "$j"
unseen=$(stat "$j" cap unseen_batches)
if [ "${unseen:-0}" -gt 0 ]; then ok; else fail "tail: no unseen batches counted"; fi
expect_eq "tail: packets_in + unseen batches = what the rule matched" \
	"$(($(stat "$j" cap packets_in) + ${unseen:-0}))" "$(nflog_matched)"
expect_contains "tail: logged" "$(cat "$TMP/tail.err")" \
	"batches (each up to qthreshold = 1 packets) after the last packet that could show them as a sequence gap; counted in unseen_batches, not in dropped 'kernel'"

# ---- user = : the new ids, no capabilities, and still every packet ----
new_ns "ppnflog-$$-privs"
nsx iptables -A OUTPUT -o lo -p icmp -j NFLOG --nflog-group 26
graph privs "groups = 26\nuser = nobody\nqthreshold = 1000\nqtimeout = 200ms"
STATS="$TMP/nobody/privs.json" nflog_start privs "$TMP/privs.ini" 26
uid=$(id -u nobody)
gid=$(id -g nobody)
wait_for 5 grep -q "^Uid:[[:space:]]*${uid}[[:space:]]" "/proc/${PIDS[privs]}/status"
st=$(cat "/proc/${PIDS[privs]}/status")
expect_contains "privs: uid" "$st" "$(printf 'Uid:\t%s\t%s\t%s\t%s' "$uid" "$uid" "$uid" "$uid")"
expect_contains "privs: gid" "$st" "$(printf 'Gid:\t%s\t%s\t%s\t%s' "$gid" "$gid" "$gid" "$gid")"
expect_eq "privs: supplementary groups" "$(awk '/^Groups:/ { print $2 }' <<<"$st")" "$gid"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
	expect_eq "privs: $cap" "$(awk -v c="$cap:" '$1 == c { print $2 }' <<<"$st")" 0000000000000000
done
nsx ping -q -c 3 -i 0.05 -W 2 127.0.0.1 >/dev/null
stop privs TERM 15
expect_eq "privs: exit" "$status" 0
# Unbinding needs the capability we gave up: the kernel's batch comes
# with its timeout instead.
expect_eq "privs: every packet" "$(count_pcap "$TMP/privs.pcap")" 6
expect_balanced "privs" "$TMP/nobody/privs.json"
expect_contains "privs: logged" "$(cat "$TMP/privs.err")" "running as uid $uid, gid $gid, without capabilities"

# ---- nftables: log group, prefix and snaplen ----
new_ns "ppnflog-$$-nft"
nsx nft -f - <<NFT
table inet pp {
	chain out {
		type filter hook output priority 0;
		oifname "lo" icmp type echo-request log prefix "nft v4" group 27
		oifname "lo" icmpv6 type echo-request log prefix "nft v6" group 27 snaplen 48
	}
}
NFT
graph nft "groups = 27\nlinktype = nflog"
nflog_start nft "$TMP/nft.ini" 27
nsx ping -q -c 2 -i 0.05 -W 2 127.0.0.1 >/dev/null
nsx ping -6 -q -c 1 -W 2 ::1 >/dev/null
stop nft TERM 15
expect_eq "nft: exit" "$status" 0
fields=$(tshark -r "$TMP/nft.pcap" -T fields -E separator='|' -e nflog.res_id -e nflog.prefix -e ip.len -e ipv6.plen 2>/dev/null | sort | uniq -c | sed 's/^ *//')
expect_contains "nft: IPv4" "$fields" "2 27|nft v4|84|"
expect_contains "nft: IPv6" "$fields" "1 27|nft v6||"
cut=$(tshark -r "$TMP/nft.pcap" -Y "nflog.family == 10" -T fields -e frame.len -e frame.cap_len 2>/dev/null | awk '{ print $1 - $2 }')
expect_eq "nft: snaplen cut the IPv6 packet (104 bytes) to 48" "$cut" 56

finish
