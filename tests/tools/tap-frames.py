#!/usr/bin/env python3
"""Helper of tests/e2e/tap.sh: what tap-out should write, written again from
its README rather than from its code, and exact comparisons of captures.

  tap-frames.py expect [options] EXP.pcap INPUT    append INPUT's expected
        frames to EXP.pcap (created if absent, linktype 1); print a JSON
        object {"written", "bytes", "truncated", "dropped": {reason: n}}
        options: --src MAC --dst MAC --mtu N --vlan N --truncated write|drop
  tap-frames.py stats STATS.json NODE EXPECT.json  the node's counters match
  tap-frames.py count FILE                         complete records so far
  tap-frames.py compare GOT.pcap EXP.pcap          same frames, same order
  tap-frames.py subset GOT.pcap EXP.pcap           every GOT frame is in EXP
  tap-frames.py relink IN OUT LINKTYPE             same records, new linktype
  tap-frames.py sll2 IN OUT                        LINUX_SLL -> LINUX_SLL2
"""
import argparse
import json
import os
import struct
import sys

MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
          b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}


def read_pcap(path, partial=False):
    """(header bytes, endianness, linktype, [(hdr16, data, caplen, origlen)])."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 24:
        if partial:
            return b"", "<", 1, []
        sys.exit(f"{path}: not a pcap file")
    e = MAGICS.get(b[:4])
    if not e:
        sys.exit(f"{path}: not a classic pcap file")
    linktype = struct.unpack(e + "I", b[20:24])[0] & 0xFFFF
    recs, off = [], 24
    while off + 16 <= len(b):
        _, _, cl, ol = struct.unpack(e + "IIII", b[off:off + 16])
        if off + 16 + cl > len(b):
            if partial:
                break
            sys.exit(f"{path}: truncated record at offset {off}")
        recs.append((b[off:off + 16], b[off + 16:off + 16 + cl], cl, ol))
        off += 16 + cl
    return b[:24], e, linktype, recs


def mac(text):
    return bytes(int(x, 16) for x in text.replace("-", ":").split(":"))


def expected_frame(lt, data, caplen, origlen, o):
    """The frame tap-out writes, or the reason it drops the packet."""
    tag = b"\x81\x00" + struct.pack(">H", o.vlan) if o.vlan else b""
    tags = 1 if o.vlan else 0
    if lt == 1:
        if len(data) < 14:
            return "runt"
        if data[12:14] in (b"\x81\x00", b"\x88\xa8"):
            tags += 1
        frame = data[:12] + tag + data[12:]
    elif lt in (12, 101, 228, 229):
        version = data[0] >> 4 if data else None
        if version not in (4, 6):
            return "not-ip"
        frame = o.dst + o.src + tag + (b"\x08\x00" if version == 4 else b"\x86\xdd") + data
    elif lt in (113, 276):
        hlen = 16 if lt == 113 else 20
        if len(data) < hlen:
            return "runt"
        if lt == 113:
            pkttype, _, halen = struct.unpack(">HHH", data[:6])
            addr, proto = data[6:12], struct.unpack(">H", data[14:16])[0]
        else:
            proto, pkttype, halen = struct.unpack(">H", data[:2])[0], data[10], data[11]
            addr = data[12:18]
        if proto < 0x600:
            length = max(origlen - hlen, 0)
            if proto not in (1, 4) or length > 1500:
                return "linktype"
            proto = length
        dst = b"\xff" * 6 if pkttype == 1 else o.dst
        src = addr if halen == 6 else o.src
        frame = dst + src + tag + struct.pack(">H", proto) + data[hlen:]
    else:
        return "linktype"
    if caplen < origlen and o.truncated == "drop":
        return "truncated"
    if len(frame) > o.mtu + 14 + 4 * tags:
        return "mtu"
    return frame


def cmd_expect(a):
    _, _, lt, recs = read_pcap(a.input)
    a.src, a.dst = mac(a.src), mac(a.dst)
    out = {"written": 0, "bytes": 0, "truncated": 0, "dropped": {}}
    new = not os.path.exists(a.exp)
    with open(a.exp, "ab") as f:
        if new:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for _, data, cl, ol in recs:
            r = expected_frame(lt, data, cl, ol, a)
            if isinstance(r, str):
                out["dropped"][r] = out["dropped"].get(r, 0) + 1
                continue
            f.write(struct.pack("<IIII", 0, 0, len(r), len(r)) + r)
            out["written"] += 1
            out["bytes"] += cl
            out["truncated"] += cl < ol
    print(json.dumps(out))


def cmd_stats(a):
    node = json.load(open(a.stats))["nodes"][a.node]
    want = json.load(open(a.expect))
    bad = []
    checks = [("packets_out", want["written"]), ("bytes_out", want["bytes"]),
              ("truncated_written", want["truncated"])]
    checks += [(f"dropped {r}", n) for r, n in want["dropped"].items()]
    checks += [(f"dropped {r}", 0) for r in node["dropped"] if r not in want["dropped"]]
    for what, n in checks:
        got = node["dropped"].get(what[8:], 0) if what.startswith("dropped ") else node.get(what)
        if got != n:
            bad.append(f"{what}: got {got}, expected {n}")
    if bad:
        sys.exit("; ".join(bad))


def frames(path):
    return [data for _, data, _, _ in read_pcap(path, partial=True)[3]]


def cmd_compare(a):
    got, exp = frames(a.got), frames(a.exp)
    for i, (g, e) in enumerate(zip(got, exp)):
        if g != e:
            at = next((j for j in range(min(len(g), len(e))) if g[j] != e[j]), min(len(g), len(e)))
            sys.exit(f"frame {i + 1} differs at byte {at}: got {len(g)} bytes "
                     f"{g[:48].hex()}, expected {len(e)} bytes {e[:48].hex()}")
    if len(got) != len(exp):
        extra = (got if len(got) > len(exp) else exp)[min(len(got), len(exp))]
        sys.exit(f"got {len(got)} frames, expected {len(exp)}; the first unmatched: {extra[:48].hex()}")
    print(f"{len(got)} frames identical")


def cmd_subset(a):
    exp = set(frames(a.exp))
    got = frames(a.got)
    stray = [g for g in got if g not in exp]
    if stray or not got:
        sys.exit(f"{len(stray)} of {len(got)} frames unexpected, first: {stray[0][:48].hex() if stray else '-'}")
    print(f"{len(got)} frames, all expected")


def cmd_relink(a):
    head, e, _, recs = read_pcap(a.input)
    with open(a.output, "wb") as f:
        f.write(head[:20] + struct.pack(e + "I", a.linktype))
        for hdr, data, _, _ in recs:
            f.write(hdr + data)


def cmd_sll2(a):
    head, e, lt, recs = read_pcap(a.input)
    if lt != 113:
        sys.exit(f"{a.input}: linktype {lt}, not LINUX_SLL")
    with open(a.output, "wb") as f:
        f.write(head[:20] + struct.pack(e + "I", 276))
        for hdr, d, cl, ol in recs:
            pkttype, hatype, halen = struct.unpack(">HHH", d[:6])
            sll2 = d[14:16] + b"\0\0" + struct.pack(">IHBB", 7, hatype, pkttype, halen) + d[6:14]
            ts, frac = struct.unpack(e + "II", hdr[:8])
            f.write(struct.pack(e + "IIII", ts, frac, cl + 4, ol + 4) + sll2 + d[16:])


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("expect")
    x.add_argument("--src", default="02:00:00:00:00:01")
    x.add_argument("--dst", default="02:00:00:00:00:02")
    x.add_argument("--mtu", type=int, default=1500)
    x.add_argument("--vlan", type=int, default=0)
    x.add_argument("--truncated", default="write", choices=["write", "drop"])
    x.add_argument("exp")
    x.add_argument("input")
    x = sub.add_parser("stats")
    x.add_argument("stats")
    x.add_argument("node")
    x.add_argument("expect")
    x = sub.add_parser("count")
    x.add_argument("file")
    for name in ("compare", "subset"):
        x = sub.add_parser(name)
        x.add_argument("got")
        x.add_argument("exp")
    x = sub.add_parser("relink")
    x.add_argument("input")
    x.add_argument("output")
    x.add_argument("linktype", type=int)
    x = sub.add_parser("sll2")
    x.add_argument("input")
    x.add_argument("output")
    a = p.parse_args()
    if a.cmd == "count":
        print(len(read_pcap(a.file, partial=True)[3]))
    else:
        globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()
