#!/usr/bin/env python3
"""ratelimit-subseq.py GOT.pcap WANT.pcap: exit 0 when every packet of GOT
(timestamp, caplen, origlen, bytes) is a packet of WANT, in WANT's order:
what a shaper that drops lets through is an unchanged subsequence of its
input. Prints the number of packets matched, or the first stray one.
Classic pcap only (what pcap-out and ratelimit-corpus.py write)."""
import struct
import sys


def packets(path):
    b = open(path, "rb").read()
    for e in "<>":
        magic = struct.unpack(e + "I", b[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        sys.exit(path + ": not a classic pcap")
    at = 24
    while at + 16 <= len(b):
        s, f, cap, orig = struct.unpack(e + "IIII", b[at:at + 16])
        yield (s, f if magic == 0xA1B23C4D else f * 1000, orig, b[at + 16:at + 16 + cap])
        at += 16 + cap


want = packets(sys.argv[2])
n = 0
for p in packets(sys.argv[1]):
    if not any(p == w for w in want):
        sys.exit(f"packet {n} of {sys.argv[1]} is not in {sys.argv[2]} (or out of order)")
    n += 1
print(n)
