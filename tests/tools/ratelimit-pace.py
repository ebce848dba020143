#!/usr/bin/env python3
"""ratelimit-pace.py CAPTURE PORT EXPECT.pcap PHASE_S LOW HIGH CYCLES

An independent sender whose rate swings: it connects a ZeroMQ PUSH socket
to tcp://127.0.0.1:PORT and sends the packets of CAPTURE (a classic pcap,
read here with struct; looped as needed) as native frames encoded from
plugins/zmq-out/WIRE.md (codec none, no sequence promise), one frame every
10 ms holding that tick's share of the current rate: PHASE_S seconds at LOW
bytes/s, then PHASE_S at HIGH, CYCLES times. Pacing is against the clock:
a late tick sends more, so each phase carries its rate's bytes. Writes what
it sent to EXPECT.pcap (nanosecond pcap, CAPTURE's linktype) and prints
the packet count."""
import struct
import sys
import time

import zmq

TICK = 0.01


def read_pcap(path):
    b = open(path, "rb").read()
    for e in "<>":
        magic = struct.unpack(e + "I", b[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        sys.exit(path + ": not a classic pcap")
    linktype = struct.unpack(e + "I", b[20:24])[0]
    pkts, at = [], 24
    while at + 16 <= len(b):
        s, f, cap, orig = struct.unpack(e + "IIII", b[at:at + 16])
        ns = s * 10**9 + (f if magic == 0xA1B23C4D else f * 1000)
        pkts.append((ns, orig, b[at + 16:at + 16 + cap]))
        at += 16 + cap
    return linktype, pkts


def frame(recs, linktype, seq):
    raw = b"".join(struct.pack("!QIIIH", ts, len(d), orig, linktype, 0) + d
                   for ts, orig, d in recs)
    return struct.pack("!IBBHQQII", 0x504B5450, 1, 0, 0, 0x5A5A, seq, len(recs),
                       len(raw)) + raw


def main():
    path, port, expect = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    phase, low, high, cycles = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    linktype, pkts = read_pcap(path)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDTIMEO, 30000)
    s.setsockopt(zmq.LINGER, 30000)
    s.connect(f"tcp://127.0.0.1:{port}")
    sent, i, seq = [], 0, 0
    start = time.monotonic()
    for k in range(2 * cycles):
        rate = low if k % 2 == 0 else high
        t0, done = start + k * phase, 0
        while time.monotonic() < t0 + phase:
            due = rate * (time.monotonic() - t0)
            recs = []
            while done < due:
                p = pkts[i % len(pkts)]
                i += 1
                recs.append(p)
                done += len(p[2])
            if recs:
                s.send(frame(recs, linktype, seq))
                seq += len(recs)
                sent.extend(recs)
            time.sleep(TICK)
    with open(expect, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for ts, orig, d in sent:
            f.write(struct.pack("=IIII", ts // 10**9, ts % 10**9, len(d), orig) + d)
    s.close()
    ctx.term()
    print(len(sent))


main()
