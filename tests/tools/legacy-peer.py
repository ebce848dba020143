#!/usr/bin/python3
"""An independent sender of nflog-zmq-pcap-pipe's legacy messages.

legacy-peer.py KIND PORTFILE|connect:ENDPOINT EXPECT.pcap INFO.json MAX_MESSAGE

Encodes the original's formats from their description (KIND: legacy, rc
or mixed), valid and malformed messages interleaved, sends them over a
PUSH socket (bound to a free port written to PORTFILE, or connected to
ENDPOINT), and writes the pcap the original receiver would have written
for the valid ones (EXPECT.pcap) and what a receiver should count
(INFO.json)."""
import json, os, random, struct, sys, zlib
import zmq

kind, portfile, expect_path, info_path, max_message = sys.argv[1:6]
max_message = int(max_message)
rnd = random.Random(7)

def xdr(sec, usec, pkt_len, data):
    return struct.pack("!IIII", sec, usec, pkt_len, len(data)) + data + b"\0" * (-len(data) % 4)

def packet(i):
    n = rnd.choice([0, 1, 2, 3, 4, 20, 41, 63, 576, 1500])
    data = (b"\x45" + bytes(rnd.randrange(256) for _ in range(n - 1))) if n else b""
    return (1700000000 + i, rnd.randrange(1000000), rnd.choice([0, n, n + 100]), data)

msgs, good, bad, frames_ok = [], [], 0, 0
def valid(parts, pkts):
    global frames_ok
    msgs.append(parts); good.extend(pkts); frames_ok += 1
def malformed(m):
    global bad
    msgs.append([m]); bad += 1

def rc_records(pkts):
    return b"".join(struct.pack("!I", len(x)) + x for x in (xdr(*p) for p in pkts))

i = 0
def nxt():
    global i
    i += 1
    return packet(i)

for round_ in range(12):
    if kind in ("legacy", "mixed"):
        p = nxt(); valid([xdr(*p)], [p])
        p = nxt(); m = xdr(*p); valid([m[:7], m[7:]], [p])          # multi-part, joined
        m = xdr(*nxt())
        malformed(m[:-3])                                            # truncated
        malformed(m + b"\0\0\0\0")                                   # trailing bytes
        malformed(struct.pack("!IIII", 1, 2, 3, 400) + b"\x45" * 40) # data past the end
        malformed(struct.pack("!IIII", 1, 1000000, 3, 4) + b"\x45" * 4)  # usec
        malformed(b"")
        malformed(b"PKTP\x01" + bytes(rnd.randrange(256) for _ in range(30)))
    if kind in ("rc", "mixed"):
        p = nxt(); valid([b"\x00" + xdr(*p)], [p])
        ps = [nxt() for _ in range(rnd.randrange(1, 6))]
        valid([b"\x01" + zlib.compress(rc_records(ps))], ps)
        valid([b"\x01" + zlib.compress(b"")], [])                    # no records
        z = zlib.compress(rc_records([nxt(), nxt()]))
        malformed(b"\x01" + z[:-4])                                  # truncated stream
        malformed(b"\x01" + z + b"xx")                               # bytes after it
        malformed(b"\x01" + b"not zlib at all")
        malformed(b"\x01" + zlib.compress(struct.pack("!I", 999) + xdr(*nxt())))  # record past the end
        malformed(b"\x07" + xdr(*nxt()))                             # unknown tag
        malformed(b"\x00" + xdr(*nxt())[:-1])
        if round_ == 0:
            malformed(b"\x01" + zlib.compress(b"\0" * (max_message + 4096)))  # a bomb

ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.SNDTIMEO, 30000)
s.setsockopt(zmq.LINGER, 30000)
if portfile.startswith("connect:"):       # the receiver binds, as nflog-pcap-recv does
    s.connect(portfile[len("connect:"):])
else:                                     # we bind and tell the port
    port = s.bind_to_random_port("tcp://127.0.0.1")
    open(portfile + ".tmp", "w").write(str(port))
    os.rename(portfile + ".tmp", portfile)

# What nflog-pcap-recv wrote: native order, snaplen 65535, linktype 12,
# origlen `pkt_len or caplen`.
out = [struct.pack("=IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 12)]
for sec, usec, pkt_len, data in good:
    out.append(struct.pack("=IIII", sec, usec, len(data), pkt_len or len(data)) + data)
open(expect_path, "wb").write(b"".join(out))
json.dump({"packets": len(good), "frames": len(msgs), "bad": bad, "ok": frames_ok},
          open(info_path, "w"))
for parts in msgs:
    s.send_multipart(parts)
s.close()
ctx.term()
