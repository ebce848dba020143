#!/bin/bash
# The zlib node (and the zstd codec when built), end to end:
#   - compress -> decompress in one graph: the capture comes back identical,
#     frames hold exactly batch_packets packets, and the counters of both
#     sides agree (frames, bytes before and after);
#   - compress -> zmq-out -> zmq-in -> pcap-out: zmq-out sends the frames
#     made upstream as they are (one message each), zmq-in decodes them by
#     itself, the capture arrives identical;
#   - the compressor on a worker thread (thread = yes): the same output;
#   - batch_delay: a slow input still leaves in frames, many of them;
#   - frames pass a compressor untouched and plain packets a decompressor;
#   - codec = zstd, compressed here and decoded by zmq-in and by the node;
#   - frames on a legacy wire are dropped (frame), counted as packets;
#   - wire_rc_from_native() (tests/tools/ratelimit-legacyrc.c), the
#     transcoding a legacy-rc zmq-out needs for frames, checked against an
#     independent decoder;
#   - bad levels and unknown codecs are refused.
# The capture is built from corpus Ethernet packets (ratelimit-corpus.py).
# Ports are picked at run time; every wait is bounded.
SUITE=zlib
. "$(dirname "$0")/../lib.sh"

TOOLS="$ROOT/tests/tools"

# ------------------------------------------------------------------ #
# Helpers                                                             #

src() { # src PATH [KEYS]
	printf '[src]\nplugin = pcap-in\npath = %s\n%s\n\n' "$1" "${2:-}"
}

node() { # node NAME INPUT KEYS
	printf '[%s]\nplugin = zlib\ninput = %s\n%s\n\n' "$1" "$2" "$3"
}

out() { # out INPUT PATH
	printf '[out]\nplugin = pcap-out\ninput = %s\npath = %s\nprecision = ns\n' "$1" "$2"
}

# ------------------------------------------------------------------ #
# Captures                                                            #

CAP="$TMP/c4.pcap"
if "$PY" "$TOOLS/ratelimit-corpus.py" "$CORPUS" "$CAP" 4 >"$TMP/c4.info"; then ok; else
	fail "cannot build the capture from $CORPUS"
	finish
	exit
fi
read -r NPKT NBYTES <"$TMP/c4.info"
"$PY" "$TOOLS/ratelimit-corpus.py" "$CORPUS" "$TMP/small.pcap" 0.25 >"$TMP/small.info"
read -r NSMALL _ <"$TMP/small.info"

# ------------------------------------------------------------------ #
# compress -> decompress                                              #

{
	src "$CAP"
	node c src $'batch_packets = 100\nbatch_bytes = 256MiB\nbatch_delay = 10s'
	node d c "mode = decompress"
	out d "$TMP/local.pcap"
} >"$TMP/local.ini"
run_graph local
j="$TMP/local.json"
expect_eq "local: exit" "$status" 0
expect_balanced "local" "$j"
same "local" "$CAP" "$TMP/local.pcap"
expect_eq "local: frames of batch_packets" "$(stat "$j" c frames_out)" $(((NPKT + 99) / 100))
expect_eq "local: frames decoded" "$(stat "$j" d frames_in)" "$(stat "$j" c frames_out)"
expect_eq "local: bytes before" "$(stat "$j" c bytes_before)" "$NBYTES"
expect_eq "local: bytes after decompression" "$(stat "$j" d bytes_after)" "$NBYTES"
expect_eq "local: compressed bytes" "$(stat "$j" d bytes_before)" "$(stat "$j" c bytes_after)"
expect_eq "local: frames counted by their size" "$(stat "$j" c bytes_out)" "$(stat "$j" c bytes_after)"
expect_eq "local: frames count their packets" "$(stat "$j" c packets_out)" "$NPKT"
expect_eq "local: drops" "$(($(drops "$j" c) + $(drops "$j" d)))" 0
if [ "$(stat "$j" c bytes_after)" -lt "$NBYTES" ]; then ok; else fail "local: nothing got smaller"; fi
echo "  zlib level 6: $NBYTES -> $(stat "$j" c bytes_after) bytes in $(stat "$j" c frames_out) frames"

# ------------------------------------------------------------------ #
# compress -> zmq-out -> zmq-in                                       #

# wire NAME KEYS: the capture compressed by a node with KEYS, over zmq.
wire() {
	pcap_receiver "$1-rx" || return
	{
		src "$CAP"
		node c src "$2"
		printf '[z]\nplugin = zmq-out\ninput = c\nendpoint = tcp://127.0.0.1:%s\nsndhwm = 100000\nlinger = 60s\n' "$port"
	} >"$TMP/$1.ini"
	run_graph "$1"
	j="$TMP/$1.json"
	expect_eq "$1: sender exit" "$status" 0
	expect_balanced "$1: sender" "$j"
	expect_eq "$1: drops" "$(($(drops "$j" c) + $(drops "$j" z)))" 0
	# Every message is a frame made upstream, sent as it is.
	expect_eq "$1: one message per frame" "$(stat "$j" z frames_sent)" "$(stat "$j" c frames_out)"
	expect_eq "$1: bytes on the wire" "$(stat "$j" z bytes_sent)" "$(stat "$j" c bytes_after)"
	expect_eq "$1: packets sent" "$(stat "$j" z packets_sent)" "$NPKT"
	settle "$1-rx" "$NPKT"
	expect_eq "$1: frames received" "$(stat "$TMP/$1-rx.json" in frames_ok)" "$(stat "$j" z frames_sent)"
	same "$1" "$CAP" "$TMP/$1-rx.pcap"
}

wire net ""
wire threaded $'thread = yes\nqueue = 4096'
if cmp -s "$TMP/net-rx.pcap" "$TMP/threaded-rx.pcap"; then ok; else
	fail "thread = yes: the output differs from the run without"
fi

# ------------------------------------------------------------------ #
# batch_delay: a slow input leaves in frames all the same             #

{
	src "$TMP/small.pcap" "rate = 256KiB/s"
	node c src $'batch_packets = 65536\nbatch_bytes = 256MiB\nbatch_delay = 50ms'
	node d c "mode = decompress"
	out d "$TMP/slow.pcap"
} >"$TMP/slow.ini"
run_graph slow
expect_eq "batch_delay: exit" "$status" 0
expect_balanced "batch_delay" "$TMP/slow.json"
same "batch_delay" "$TMP/small.pcap" "$TMP/slow.pcap"
frames=$(stat "$TMP/slow.json" c frames_out)
if [ "$frames" -ge 5 ]; then ok; else fail "batch_delay: $frames frames for a 1 s input"; fi

# ------------------------------------------------------------------ #
# Pass-through: frames through a compressor, packets a decompressor    #

{
	src "$CAP"
	node d1 src "mode = decompress"
	node c1 d1 "batch_packets = 7"
	node c2 c1 ""
	node d2 c2 "mode = decompress"
	out d2 "$TMP/pass.pcap"
} >"$TMP/pass.ini"
run_graph pass
j="$TMP/pass.json"
expect_eq "pass-through: exit" "$status" 0
expect_balanced "pass-through" "$j"
same "pass-through" "$CAP" "$TMP/pass.pcap"
expect_eq "pass-through: plain packets decoded nothing" "$(stat "$j" d1 frames_in)" 0
expect_eq "pass-through: frames not compressed again" "$(stat "$j" c2 frames_out)" 0
expect_eq "pass-through: frames decoded" "$(stat "$j" d2 frames_in)" "$(stat "$j" c1 frames_out)"

# ------------------------------------------------------------------ #
# zstd, when built                                                    #

if [ -e "$BUILD/plugins/zstd.so" ]; then
	wire zstd "codec = zstd"
	{
		src "$CAP"
		node c src "codec = zstd"
		node d c "mode = decompress"
		out d "$TMP/zstd-local.pcap"
	} >"$TMP/zstd-local.ini"
	run_graph zstd-local
	expect_eq "zstd local: exit" "$status" 0
	expect_balanced "zstd local" "$TMP/zstd-local.json"
	same "zstd local" "$CAP" "$TMP/zstd-local.pcap"
	echo "  zstd level 3: $NBYTES -> $(stat "$TMP/zstd-local.json" c bytes_after) bytes"
else
	echo "  zstd: not built, its cases skipped"
fi

# ------------------------------------------------------------------ #
# Frames on a legacy wire                                             #

{
	src "$CAP"
	node c src ""
	printf '[z]\nplugin = zmq-out\ninput = c\nendpoint = tcp://127.0.0.1:9\nwire = legacy\nlinger = 0\n'
} >"$TMP/legacy.ini"
run_graph legacy
expect_eq "legacy wire: exit" "$status" 0
expect_balanced "legacy wire" "$TMP/legacy.json"
expect_eq "legacy wire: frames dropped as their packets" "$(stat "$TMP/legacy.json" z dropped frame)" "$NPKT"

# ------------------------------------------------------------------ #
# Frames for a legacy-rc wire (wire_rc_from_native, for zmq-out)       #

# The corpus' raw-IP captures and the Ethernet one, as one frame turned
# into the original's compressed message; checked by the tool (decoded
# again) and here by an independent decoder (python's zlib and struct):
# exactly the raw-IP packets, as XDR messages, the rest left out.
"$PY" - "$CORPUS" >"$TMP/raw.list" <<'PY'
import ctypes, os, sys
pcap = ctypes.CDLL("libpcap.so.0.8")
pcap.pcap_open_offline.restype = ctypes.c_void_p
pcap.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
pcap.pcap_datalink.argtypes = [ctypes.c_void_p]
pcap.pcap_close.argtypes = [ctypes.c_void_p]
for name in sorted(os.listdir(sys.argv[1])):
    err = ctypes.create_string_buffer(512)
    p = pcap.pcap_open_offline(os.path.join(sys.argv[1], name).encode(), err)
    if p:
        if pcap.pcap_datalink(p) in (12, 101, 228, 229):
            print(os.path.join(sys.argv[1], name))
        pcap.pcap_close(p)
PY
mapfile -t RAW <"$TMP/raw.list"
if [ "${#RAW[@]}" -gt 0 ]; then ok; else fail "legacy-rc: no raw-IP capture in the corpus"; fi
got=$("$BUILD/tools/ratelimit-legacyrc" "$BUILD/plugins/zlib.so" "$TMP/rc.msg" "${RAW[@]:0:8}" \
	"$TMP/small.pcap" "${RAW[@]:8}")
expect_eq "legacy-rc: transcoding" "$?" 0
"$PY" - "$TMP/rc.msg" "${RAW[@]:0:8}" "$TMP/small.pcap" "${RAW[@]:8}" >"$TMP/rc.count" <<'PY'
import ctypes, struct, sys, zlib
pcap = ctypes.CDLL("libpcap.so.0.8")
pcap.pcap_open_offline_with_tstamp_precision.restype = ctypes.c_void_p
pcap.pcap_open_offline_with_tstamp_precision.argtypes = [ctypes.c_char_p, ctypes.c_uint,
                                                         ctypes.c_char_p]
pcap.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
pcap.pcap_datalink.argtypes = [ctypes.c_void_p]
pcap.pcap_close.argtypes = [ctypes.c_void_p]

class Hdr(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("frac", ctypes.c_long),
                ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]

hdr, data, want = ctypes.POINTER(Hdr)(), ctypes.POINTER(ctypes.c_ubyte)(), []
for path in sys.argv[2:]:
    err = ctypes.create_string_buffer(512)
    p = pcap.pcap_open_offline_with_tstamp_precision(path.encode(), 1, err)
    raw = pcap.pcap_datalink(p) in (12, 101, 228, 229)
    while pcap.pcap_next_ex(p, ctypes.byref(hdr), ctypes.byref(data)) == 1:
        h = hdr.contents
        d = ctypes.string_at(data, h.caplen)
        if raw:  # XDR: sec, usec, pkt_len, data_len, data, zero padding
            want.append(struct.pack("!IIII", h.sec & 0xffffffff, h.frac // 1000, h.len, len(d))
                        + d + b"\0" * (-len(d) % 4))
    pcap.pcap_close(p)
msg = open(sys.argv[1], "rb").read()
if msg[:1] != b"\x01":
    sys.exit("not a compressed legacy-rc message (tag 0x01)")
body, got = zlib.decompress(msg[1:]), []
while body:
    n = struct.unpack("!I", body[:4])[0]
    got.append(body[4:4 + n])
    body = body[4 + n:]
if got != want:
    sys.exit(f"{len(got)} messages where {len(want)} were expected, or they differ")
print(len(got))
PY
expect_eq "legacy-rc: an independent decoder" "$?" 0
expect_eq "legacy-rc: raw-IP packets kept, the rest left out" "$got" "$(cat "$TMP/rc.count") $NSMALL"

# ------------------------------------------------------------------ #
# Configuration errors                                                #

{
	src "$CAP"
	node c src "level = 12"
	out c /dev/null
} >"$TMP/bad.ini"
err=$("$PKTPIPE" -c "$TMP/bad.ini" --check 2>&1)
expect_eq "zlib level 12: exit" "$?" 2
expect_contains "zlib level 12" "$err" "zlib's levels are 0 to 9"
sed -i 's/^level = 12$/codec = nosuchcodec/' "$TMP/bad.ini"
err=$(timeout 30 "$PKTPIPE" -c "$TMP/bad.ini" 2>&1)
expect_eq "unknown codec: exit" "$?" 1
expect_contains "unknown codec" "$err" "nosuchcodec"

finish
