#!/usr/bin/env python3
"""ratelimit-corpus.py CORPUS_DIR OUT.pcap [MIB|once]: a capture of MIB MiB
(default 10) of packet data, made only of Ethernet packets taken from the
corpus captures (read through libpcap, so pcapng counts too), in file order
and over again until the size is reached; "once": each packet once. Timestamps are rewritten to rise
by 10 us per packet (the corpus' own are from many unrelated captures);
caplen, origlen and bytes are kept. Written as nanosecond pcap, linktype 1.
Prints "PACKETS BYTES" on stdout."""
import ctypes
import os
import struct
import sys

LINKTYPE_ETHERNET = 1


def corpus_packets(corpus):
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

    hdr = ctypes.POINTER(Hdr)()
    data = ctypes.POINTER(ctypes.c_ubyte)()
    out = []
    for name in sorted(os.listdir(corpus)):
        err = ctypes.create_string_buffer(512)
        p = pcap.pcap_open_offline_with_tstamp_precision(
            os.path.join(corpus, name).encode(), 1, err)
        if not p:
            continue
        if pcap.pcap_datalink(p) == LINKTYPE_ETHERNET:
            while pcap.pcap_next_ex(p, ctypes.byref(hdr), ctypes.byref(data)) == 1:
                h = hdr.contents
                out.append((h.len, ctypes.string_at(data, h.caplen)))
        pcap.pcap_close(p)
    return out


def main():
    corpus, path = sys.argv[1], sys.argv[2]
    size = sys.argv[3] if len(sys.argv) > 3 else "10"
    pkts = corpus_packets(corpus)
    if not pkts:
        sys.exit("no Ethernet packet in " + corpus)
    want = sum(len(d) for _, d in pkts) if size == "once" else int(float(size) * (1 << 20))
    ts, total, n = 1700000000 * 10**9, 0, 0
    with open(path, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
        while total < want:
            orig, data = pkts[n % len(pkts)]
            f.write(struct.pack("=IIII", ts // 10**9, ts % 10**9, len(data), orig) + data)
            ts += 10000
            total += len(data)
            n += 1
    print(n, total)


main()
