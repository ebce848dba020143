#!/bin/bash
# Privileges and exposure (contrib/SECURITY.md says the same in words).
#   - A gateway sender (nflog with user = nobody -> zmq-out) in a network
#     namespace of its own: once started it is nobody/nogroup with no
#     supplementary group, no thread of it holds a capability (CapInh,
#     CapPrm, CapEff, CapAmb zero in every thread, CapBnd in the main one;
#     threads made before the switch keep their bounding set, which is
#     reported); it listens on nothing; and it still works: pings reach
#     the receiver.
#   - The receiver needs no privilege: zmq-in -> pcap-out started as
#     nobody with every capability dropped (setpriv) receives them.
#   - Key files others may read or write are refused, naming the file and
#     its mode (zmq-in, zmq-out, and the ring when it is built); a symbolic
#     link as a key file is refused; mode 0600 is accepted.
#   - The ring's query endpoint (when the ring plugin is built): a tcp
#     endpoint that is not loopback is refused by --check unless
#     allow_remote = yes or CurveZMQ keys are set; loopback and ipc pass;
#     no endpoint, no query socket.
# Needs root (namespaces, NFLOG rules, setpriv). Every wait is bounded;
# namespaces and processes go with on_exit.
SUITE=security
. "$(dirname "$0")/../lib.sh"

KEYGEN="$BUILD/tools/zmq-keygen"

need_plugins zmq-in zmq-out pcap-out nflog
need_tools ip iptables ping setpriv ss
[ -x "$KEYGEN" ] || fail "$KEYGEN not built"
[ "$(id -u)" = 0 ] || fail "needs root"
getent passwd nobody >/dev/null || fail "no user nobody"
finish_if_failed
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
# Where processes that became nobody write.
chmod 711 "$TMP"
mkdir -m 777 "$TMP/nobody"
W="$TMP/nobody"

new_ns "ppsec-$$" || { finish; exit 1; }

# status_field PID|PID/task/TID FIELD: a line of /proc/.../status, values only.
status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null | tr -s ' \t' ' '; }

# ------------------------------------------------------------------ #
# The receiver, unprivileged                                          #

printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\n\n[out]\nplugin = pcap-out\ninput = in\npath = %s\n' \
	"$W/rx.pcap" >"$W/rx.ini"
# Named nobody/rx: its stats and stderr in $W, where nobody may write. ip
# netns exec and setpriv exec, so the pid spawn keeps is pktpipe.
spawn nobody/rx ip netns exec "$NS" setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" \
	--clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
	"$PKTPIPE" -c "$W/rx.ini" --stats-json "$W/rx.json" >/dev/null
RX=${PIDS[nobody/rx]}
if wait_bound "$W/rx.err" 1 20; then ok; else
	fail "unprivileged receiver: no bind: $(tail -n 3 "$W/rx.err")"
fi
wait_for 10 ready "$RX"
port=$(bound_port "$W/rx.err" in)
expect_eq "unprivileged receiver: CapEff" "$(status_field "$RX" CapEff)" 0000000000000000

# ------------------------------------------------------------------ #
# The sender drops everything                                         #

GROUP=17
nsx iptables -A OUTPUT -o lo -p icmp --icmp-type echo-request -j NFLOG --nflog-group $GROUP
printf '[capture]\nplugin = nflog\ngroups = %d\nuser = nobody\nqthreshold = 1\n\n[to-ids]\nplugin = zmq-out\ninput = capture\nendpoint = tcp://127.0.0.1:%s\nbatch_delay = 0\n' \
	$GROUP "$port" >"$W/tx.ini"
spawn nobody/tx ip netns exec "$NS" "$PKTPIPE" -c "$W/tx.ini" --stats-json "$W/tx.json" >/dev/null
TX=${PIDS[nobody/tx]}
# The switch happens at start, after the group is bound: wait for the uid.
if wait_for 20 bash -c "[ \"\$(sed -n 's/^Uid:[[:space:]]*//p' /proc/$TX/status | tr -s ' \t' ' ')\" = '$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID' ]"; then
	ok
else
	fail "sender: never became nobody: Uid $(status_field "$TX" Uid): $(tail -n 3 "$W/tx.err")"
fi
wait_for 10 ready "$TX"
expect_eq "sender: Gid" "$(status_field "$TX" Gid)" "$NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID"
groups=$(status_field "$TX" Groups)
case "${groups% }" in
"" | "$NOBODY_GID") ok ;;
*) fail "sender: supplementary groups left: $groups" ;;
esac
# Every thread (libzmq's I/O threads, workers) holds nothing either. The
# bounding set is per thread and only a limit on what an exec could gain:
# the main thread's must be empty (what nflog's README promises); other
# threads' are reported.
bad=""
bnd=""
nthreads=0
for task in /proc/"$TX"/task/*; do
	tid=${task##*/}
	nthreads=$((nthreads + 1))
	for f in CapInh CapPrm CapEff CapAmb; do
		v=$(status_field "$TX/task/$tid" $f)
		[ "$v" = 0000000000000000 ] || bad="$bad thread $tid ($(cat "$task/comm" 2>/dev/null)) $f=$v;"
	done
	v=$(status_field "$TX/task/$tid" Uid)
	[ "$v" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ] || bad="$bad thread $tid Uid=$v;"
	v=$(status_field "$TX/task/$tid" CapBnd)
	[ "$v" = 0000000000000000 ] || bnd="$bnd $(cat "$task/comm" 2>/dev/null)"
done
if [ -z "$bad" ]; then ok; else fail "sender: privileges left:$bad"; fi
expect_eq "sender: CapBnd (main thread)" "$(status_field "$TX" CapBnd)" 0000000000000000
[ -n "$bnd" ] && echo "security: note: sender threads with a full bounding set (made before the switch):$bnd"
echo "security: sender: $nthreads threads, all nobody, none with an inheritable, permitted, effective or ambient capability"
# A gateway listens on nothing: zmq-out connects.
listening=$(nsx ss -Hltnp 2>/dev/null | grep -c "pid=$TX,")
expect_eq "sender: listening sockets" "$listening" 0
# And it still works, unprivileged: pings reach the receiver.
nsx ping -c 5 -i 0.1 -W 1 127.0.0.1 >/dev/null 2>&1
if wait_stat nobody/rx 10 out packets_out -ge 5; then ok; else
	fail "after the switch: the pings did not reach the receiver: $(tail -n 3 "$W/tx.err")"
fi
stop nobody/tx
expect_eq "sender: exit" "$status" 0
expect_balanced "sender" "$W/tx.json"
stop nobody/rx
expect_eq "unprivileged receiver: exit" "$status" 0
expect_balanced "unprivileged receiver" "$W/rx.json"

# ------------------------------------------------------------------ #
# Key files                                                           #

"$KEYGEN" "$TMP/server.key" >/dev/null && "$KEYGEN" "$TMP/client.key" >/dev/null || fail "zmq-keygen"
SERVER_PUB=$(cat "$TMP/server.key.pub")
CLIENT_PUB=$(cat "$TMP/client.key.pub")

rx_key_ini() { # rx_key_ini INI KEYFILE: a CURVE server with that key
	printf '[in]\nplugin = zmq-in\nendpoint = tcp://127.0.0.1:*\ncurve_secret_key = %s\ncurve_allow = %s\n\n[out]\nplugin = pcap-out\ninput = in\npath = /dev/null\n' \
		"$2" "$CLIENT_PUB" >"$1"
}
tx_key_ini() { # tx_key_ini INI KEYFILE: a CURVE client with that key
	printf '[src]\nplugin = pcap-in\npath = %s\n\n[z]\nplugin = zmq-out\ninput = src\nendpoint = tcp://127.0.0.1:9\ncurve_secret_key = %s\ncurve_server_key = %s\nlinger = 0\n' \
		"$CORPUS/empty.pcap" "$2" "$SERVER_PUB" >"$1"
}

# refused WHAT INI KEYFILE MODE: the run exits 1, naming the file and mode.
refused() {
	local err st
	err=$(timeout -s KILL 30 "$PKTPIPE" -c "$2" 2>&1 >/dev/null)
	st=$?
	expect_eq "$1: exit" "$st" 1
	expect_contains "$1: message" "$err" "key file $3 is open to others (mode $4): chmod 600 it"
}

for mode in 0644 0640 0604 0660 0606; do
	cp "$TMP/server.key" "$TMP/rx-$mode.key"
	chmod "$mode" "$TMP/rx-$mode.key"
	rx_key_ini "$TMP/rx-$mode.ini" "$TMP/rx-$mode.key"
	refused "zmq-in key mode $mode" "$TMP/rx-$mode.ini" "$TMP/rx-$mode.key" "$mode"
done
cp "$TMP/client.key" "$TMP/tx-0644.key"
chmod 0644 "$TMP/tx-0644.key"
tx_key_ini "$TMP/tx-0644.ini" "$TMP/tx-0644.key"
refused "zmq-out key mode 0644" "$TMP/tx-0644.ini" "$TMP/tx-0644.key" 0644

# A symbolic link is not followed (someone else could swap its target).
ln -s "$TMP/server.key" "$TMP/link.key"
rx_key_ini "$TMP/link.ini" "$TMP/link.key"
err=$(timeout -s KILL 30 "$PKTPIPE" -c "$TMP/link.ini" 2>&1 >/dev/null)
expect_eq "key file symlink: exit" "$?" 1
expect_contains "key file symlink: message" "$err" "key file $TMP/link.key"

# Mode 0600 is accepted: the receiver starts and binds.
rx_key_ini "$TMP/ok.ini" "$TMP/server.key"
start ok "$TMP/ok.ini"
if wait_bound "$TMP/ok.err" 1 20; then ok; else
	fail "key mode 0600: refused: $(tail -n 3 "$TMP/ok.err")"
fi
wait_for 10 ready "${PIDS[ok]}"
stop ok
expect_eq "key mode 0600: exit" "$status" 0

# ------------------------------------------------------------------ #
# The ring's query endpoint                                           #

if [ ! -f "$BUILD/plugins/ring.so" ]; then
	echo "security: note: the ring plugin is not built: its endpoint checks skipped (counted neither way)"
else
	ring_ini() { # ring_ini INI ENDPOINT [more keys...]
		local ini=$1 ep=$2
		shift 2
		printf '[src]\nplugin = pcap-in\npath = %s\n\n[ring]\nplugin = ring\ninput = src\nendpoint = %s\n' \
			"$CORPUS/empty.pcap" "$ep" >"$ini"
		for k in "$@"; do printf '%s\n' "$k" >>"$ini"; done
	}
	# check_ring WHAT WANT_STATUS ENDPOINT [keys...]
	check_ring() {
		local what=$1 want=$2 ep=$3 err st
		shift 3
		ring_ini "$TMP/ring.ini" "$ep" "$@"
		err=$("$PKTPIPE" --check -c "$TMP/ring.ini" 2>&1 >/dev/null)
		st=$?
		expect_eq "ring endpoint $what: --check" "$st" "$want"
		if [ "$want" = 2 ]; then
			expect_contains "ring endpoint $what: message" "$err" "is not loopback"
		fi
	}
	for ep in "tcp://0.0.0.0:*" "tcp://*:5555" "tcp://[::]:5555" "tcp://192.0.2.1:5555" \
		"tcp://eth0:5555" "tcp://localhost:5555"; do
		check_ring "$ep" 2 "$ep"
	done
	for ep in "tcp://127.0.0.1:*" "tcp://127.1.2.3:5555" "tcp://[::1]:5555" "ipc://$TMP/ring.sock"; do
		check_ring "$ep" 0 "$ep"
	done
	check_ring "0.0.0.0 with allow_remote" 0 "tcp://0.0.0.0:*" "allow_remote = yes"
	check_ring "0.0.0.0 with CurveZMQ" 0 "tcp://0.0.0.0:*" "curve_secret_key = $TMP/server.key" \
		"curve_allow = $CLIENT_PUB"
	# CURVE needs both halves: a secret key alone is refused.
	ring_ini "$TMP/ring.ini" "tcp://0.0.0.0:*" "curve_secret_key = $TMP/server.key"
	"$PKTPIPE" --check -c "$TMP/ring.ini" >/dev/null 2>&1
	expect_eq "ring endpoint 0.0.0.0 with a secret key but no curve_allow: --check" "$?" 2
	# An open key file is refused by the ring too.
	cp "$TMP/server.key" "$TMP/ring-0644.key"
	chmod 0644 "$TMP/ring-0644.key"
	ring_ini "$TMP/ring-key.ini" "tcp://127.0.0.1:*" "curve_secret_key = $TMP/ring-0644.key" \
		"curve_allow = $CLIENT_PUB"
	refused "ring key mode 0644" "$TMP/ring-key.ini" "$TMP/ring-0644.key" 0644
	# No endpoint: no socket at all.
	printf '[src]\nplugin = pcap-in\npath = %s\nloop = 0\nrate = 10KiB/s\n\n[ring]\nplugin = ring\ninput = src\n' \
		"$CORPUS/babel_rfc6126bis.pcap" >"$TMP/ring-none.ini"
	spawn none "$PKTPIPE" -c "$TMP/ring-none.ini" >/dev/null
	running none
	expect_eq "ring without endpoint: listening sockets" \
		"$(ss -Hltnp 2>/dev/null | grep -c "pid=${PIDS[none]},")" 0
	stop none
	expect_eq "ring without endpoint: exit" "$status" 0
fi

finish
