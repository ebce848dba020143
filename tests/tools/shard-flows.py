#!/usr/bin/python3
"""Captures and flow checks for tests/e2e/shard.sh, written from the rules in
plugins/zmq-out/README.md ("Sharding by flow"), not from flowhash.c.

  shard-flows.py merge OUT CORPUS_DIR       every classic Ethernet capture of the
                                            corpus, merged (ns timestamps, each
                                            packet a distinct one); prints a summary
  shard-flows.py strip IN OUT               the IP packets of IN as raw IP (101)
  shard-flows.py shift IN OUT SECONDS       IN with every timestamp moved on
  shard-flows.py check MODE IN RX...        MODE flow or addresses: every flow of
                                            the receivers' captures in exactly one
                                            of them, their union equal to IN;
                                            prints JSON: per receiver its packets,
                                            and the partial / not_ip counts of IN
  shard-flows.py share IN RX [SINCE]        print how many packets of IN belong to
                                            flows RX has (from timestamp SINCE on)
  shard-flows.py count PCAP                 print how many packets PCAP holds
  shard-flows.py same A B [SINCE]           A and B hold the same packets (those
                                            from SINCE on), as multisets
  shard-flows.py within A SHARES...         every flow of A is in SHARES' flows

Packets are compared as (timestamp ns, origlen, bytes); with --us anywhere
on the command line, timestamps are compared in microseconds (legacy wire).
"""
import collections
import json
import os
import struct
import sys

US = "--us" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--us"]

# ------------------------------------------------------------------ #
# pcap files                                                          #

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1),
}


def read_pcap(path, strict=True):
    """(linktype, [(ts_ns, origlen, data)]); a damaged tail ends the list
    unless strict (then it is an error)."""
    if not os.path.exists(path):
        return None, []
    b = open(path, "rb").read()
    if len(b) < 24 or b[:4] not in MAGICS:
        if strict and b:
            raise SystemExit(f"{path}: not a classic pcap file")
        return None, []
    e, mult = MAGICS[b[:4]]
    linktype = struct.unpack(e + "I", b[20:24])[0] & 0xFFFF
    off, pkts = 24, []
    while off + 16 <= len(b):
        sec, frac, caplen, orig = struct.unpack(e + "IIII", b[off:off + 16])
        if caplen > 262144 or off + 16 + caplen > len(b):
            break
        pkts.append((sec * 10**9 + frac * mult, orig, b[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    if strict and off != len(b):
        raise SystemExit(f"{path}: damaged at byte {off}")
    return linktype, pkts


def write_pcap(path, linktype, pkts):
    out = [struct.pack("=IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype)]
    for ts, orig, data in pkts:
        out.append(struct.pack("=IIII", ts // 10**9, ts % 10**9, len(data), orig) + data)
    open(path, "wb").write(b"".join(out))


def ident(pkt):
    ts, orig, data = pkt
    return (ts // 1000 if US else ts, orig, data)


# ------------------------------------------------------------------ #
# Flows, as the README defines them                                   #

VLAN_TPIDS = {0x8100, 0x88A8, 0x9100}
VLAN_MAX = 8
WITH_PORTS = {6, 17, 33, 132, 136}  # TCP, UDP, DCCP, SCTP, UDP-Lite
IPV6_EXT = {0, 43, 44, 51, 60, 139, 140}
EXT_MAX = 16
ICMP4_ERRORS = {3, 4, 5, 11, 12}
ICMP6_ERRORS = {1, 2, 3, 4}


def u16(b, at):
    return b[at] << 8 | b[at + 1]


def network(linktype, d):
    """(version the link layer names or None, bytes from the IP header on),
    or None when the link layer holds no IP."""
    if linktype in (101, 12, 228, 229):
        return None, d
    if linktype in (0, 108):
        return (None, d[4:]) if len(d) >= 4 else None
    heads = {1: (14, 12), 113: (16, 14), 276: (20, 0)}
    if linktype not in heads or len(d) < heads[linktype][0]:
        return None
    hlen, at = heads[linktype]
    etype, d = u16(d, at), d[hlen:]
    tags = 0
    while etype in VLAN_TPIDS:
        if tags == VLAN_MAX or len(d) < 4:
            return None
        etype, d, tags = u16(d, 2), d[4:], tags + 1
    if etype == 0x0800:
        return 4, d
    if etype == 0x86DD:
        return 6, d
    return None


def transport(proto, t, addrs, quoted):
    if proto in WITH_PORTS:
        if len(t) < 4:
            return ("partial", addrs)
        return ("ports", addrs, proto, u16(t, 0), u16(t, 2))
    if proto in (1, 58) and not quoted and len(t) >= 8:
        if t[0] in (ICMP4_ERRORS if proto == 1 else ICMP6_ERRORS):
            inner = (ipv4 if proto == 1 else ipv6)(t[8:], True)
            if inner[0] in ("ports", "addrs"):
                return inner
    return ("addrs", addrs)


def ipv4(d, quoted=False):
    if len(d) < 20 or d[0] >> 4 != 4 or d[0] & 15 < 5:
        return ("not_ip",)
    addrs = (d[12:16], d[16:20])
    if u16(d, 6) & 0x3FFF:  # a fragment, first or not
        return ("addrs", addrs)
    return transport(d[9], d[(d[0] & 15) * 4:], addrs, quoted)


def ipv6(d, quoted=False):
    if len(d) < 40 or d[0] >> 4 != 6:
        return ("not_ip",)
    addrs, nh, off, seen = (d[8:24], d[24:40]), d[6], 40, 0
    while nh in IPV6_EXT:
        if seen == EXT_MAX or len(d) - off < 2 or (nh == 44 and len(d) - off < 4):
            return ("partial", addrs)
        if nh == 44:
            if u16(d, off + 2) & 0xFFF9:  # offset or more fragments
                return ("addrs", addrs)
            size = 8
        elif nh == 51:
            size = (d[off + 1] + 2) * 4
        else:
            size = (d[off + 1] + 1) * 8
        nh, off, seen = d[off], off + size, seen + 1
    return transport(nh, d[off:], addrs, quoted)


def transport_bytes(linktype, data):
    """What follows the IP header (and IPv6 extension headers) of a packet
    that classify() found ports in."""
    d = network(linktype, data)[1]
    if d[0] >> 4 == 4:
        return d[(d[0] & 15) * 4:]
    nh, off = d[6], 40
    while nh in IPV6_EXT:
        nh, off = d[off], off + ((d[off + 1] + 2) * 4 if nh == 51 else (d[off + 1] + 1) * 8)
    return d[off:]


def classify(linktype, data):
    net = network(linktype, data)
    if net is None or not net[1]:
        return ("not_ip",)
    version, d = net
    if version is None:
        version = d[0] >> 4
    if version == 4:
        return ipv4(d)
    if version == 6:
        return ipv6(d)
    return ("not_ip",)


def flow(linktype, data, mode="flow"):
    """A key equal for both directions of a flow."""
    c = classify(linktype, data)
    if c[0] == "not_ip":
        return ("not-ip",)
    if c[0] == "ports" and mode == "flow":
        ends = sorted([(c[1][0], c[3]), (c[1][1], c[4])])
        return ("ports", c[2], ends[0], ends[1])
    return ("addrs",) + tuple(sorted(c[1]))


# ------------------------------------------------------------------ #
# Commands                                                            #


def cmd_merge(out, corpus):
    merged = []
    for name in sorted(os.listdir(corpus)):
        linktype, pkts = read_pcap(os.path.join(corpus, name), strict=False)
        if linktype == 1:
            merged.extend(pkts)
    # The corpus has no packet cut before its ports: add some, copies of
    # every 40th TCP or UDP packet cut two bytes into its ports.
    cut = []
    for i, (ts, orig, data) in enumerate(merged):
        c = classify(1, data)
        if c[0] == "ports" and i % 40 == 0:
            keep = len(data) - len(transport_bytes(1, data)) + 2
            cut.append((ts, orig, data[:keep]))
    merged.extend(cut)
    base = 1700000000 * 10**9
    pkts = [(base + i * 1000003, orig, data) for i, (_, orig, data) in enumerate(merged)]
    write_pcap(out, 1, pkts)
    kinds = collections.Counter(classify(1, d)[0] for _, _, d in pkts)
    flows = {flow(1, d) for _, _, d in pkts}
    print(json.dumps({"packets": len(pkts), "flows": len(flows), "kinds": kinds}))


def cmd_strip(src, out):
    linktype, pkts = read_pcap(src)
    raw = []
    for ts, orig, data in pkts:
        net = network(linktype, data)
        if net and net[1] and net[1][0] >> 4 in (4, 6):
            cut = len(data) - len(net[1])
            raw.append((ts, max(orig - cut, len(net[1])), net[1]))
    write_pcap(out, 101, raw)
    print(len(raw))


def cmd_shift(src, out, seconds):
    linktype, pkts = read_pcap(src)
    write_pcap(out, linktype, [(ts + int(seconds) * 10**9, o, d) for ts, o, d in pkts])


def since(pkts, ts):
    return [p for p in pkts if p[0] >= ts]


def cmd_check(mode, src, *rxs):
    linktype, want = read_pcap(src)
    got, owner, counts, bad = collections.Counter(), {}, [], []
    per_rx = [set() for _ in rxs]
    for i, path in enumerate(rxs):
        lt, pkts = read_pcap(path)
        counts.append(len(pkts))
        for p in pkts:
            per_rx[i].add(flow(linktype, p[2], mode))
            got[ident(p)] += 1
            key = flow(linktype, p[2], mode)
            if owner.setdefault(key, i) != i and len(bad) < 5:
                bad.append(f"flow {key} in receivers {owner[key]} and {i}")
    wanted = collections.Counter(ident(p) for p in want)
    if got != wanted:
        bad.append(f"union differs from the input: {sum((wanted - got).values())} missing, "
                   f"{sum((got - wanted).values())} extra")
    kinds = collections.Counter(classify(linktype, p[2])[0] for p in want)
    not_ip_owner = owner.get(("not-ip",))
    print(json.dumps({"packets": counts, "partial": kinds["partial"], "not_ip": kinds["not_ip"],
                      "not_ip_receiver": not_ip_owner, "flows": len(owner),
                      "flows_per_receiver": [len(f) for f in per_rx]}))
    if bad:
        sys.exit("; ".join(bad))


def flows_of(linktype, pkts, mode="flow"):
    return {flow(linktype, p[2], mode) for p in pkts}


def cmd_share(src, rx, ts=0):
    linktype, pkts = read_pcap(src)
    mine = flows_of(linktype, read_pcap(rx)[1])
    print(sum(1 for p in since(pkts, int(ts)) if flow(linktype, p[2]) in mine))


def cmd_count(path):
    print(len(read_pcap(path)[1]))


def cmd_same(a, b, ts=0):
    pa, pb = read_pcap(a)[1], read_pcap(b)[1]
    ca = collections.Counter(ident(p) for p in since(pa, int(ts)))
    cb = collections.Counter(ident(p) for p in since(pb, int(ts)))
    if ca != cb:
        sys.exit(f"{a} and {b} differ: {sum((ca - cb).values())} only in the first, "
                 f"{sum((cb - ca).values())} only in the second")


def cmd_within(a, *shares):
    linktype, pkts = read_pcap(a)
    allowed = set()
    for s in shares:
        allowed |= flows_of(linktype, read_pcap(s)[1])
    stray = flows_of(linktype, pkts) - allowed
    if stray:
        sys.exit(f"{a}: {len(stray)} flows from outside the shares, e.g. {sorted(stray)[0]}")


COMMANDS = {"merge": cmd_merge, "strip": cmd_strip, "shift": cmd_shift, "check": cmd_check,
            "share": cmd_share, "count": cmd_count, "same": cmd_same, "within": cmd_within}

if __name__ == "__main__":
    if not ARGS or ARGS[0] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[ARGS[0]](*ARGS[1:])
