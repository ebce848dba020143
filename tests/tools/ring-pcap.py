#!/usr/bin/python3
"""ring-pcap: what tests/e2e/ring.sh expects of a ring, computed on its own
from capture files (classic pcap, either byte order, us or ns), with no code
of the ring's. Writes ns pcap files that build/tools/pcapcmp compares.

  ring-pcap.py mkinput CORPUS_DIR OUT MAX     raw-IP capture from Ethernet ones
  ring-pcap.py window IN OUT BYTES             the newest packets that fit a window
  ring-pcap.py slice IN OUT [--after NS] [--before NS] [--last NS]
                      [--limit-packets N] [--limit-bytes N]
  ring-pcap.py info IN                         count, cost, timestamps (JSON)
  ring-pcap.py rfc3339 NS [OFFSET_MIN]         an instant as RFC 3339
  ring-pcap.py contiguous PART WHOLE           PART is a run of WHOLE, cyclically
  ring-pcap.py legacy-same LEGACY FULL         same packets, timestamps in us

Window accounting, as the ring's README states it: each packet costs its
caplen plus 256 bytes; the ring keeps the newest packets whose costs add up
to at most the window.
"""
import json
import os
import struct
import sys

OVERHEAD = 256
T0 = 1700000000 * 10**9


def read_pcap(path):
    """(linktype, [(ts_ns, caplen, origlen, data)]) of a classic pcap file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 24:
        raise ValueError(f"{path}: too short for a pcap header")
    for endian in "<>":
        magic = struct.unpack(endian + "I", raw[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    scale = 1 if magic == 0xA1B23C4D else 1000
    _, _, _, _, _, linktype = struct.unpack(endian + "HHiIII", raw[4:24])
    recs, off = [], 24
    while off < len(raw):
        if off + 16 > len(raw):
            raise ValueError(f"{path}: truncated record header at {off}")
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", raw[off:off + 16])
        data = raw[off + 16:off + 16 + caplen]
        if len(data) != caplen:
            raise ValueError(f"{path}: truncated record at {off}")
        recs.append((sec * 10**9 + frac * scale, caplen, origlen, data))
        off += 16 + caplen
    return linktype & 0xFFFF, recs


def write_pcap(path, linktype, recs):
    with open(path, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for ts, caplen, origlen, data in recs:
            f.write(struct.pack("=IIII", (ts // 10**9) & 0xFFFFFFFF, ts % 10**9, caplen, origlen))
            f.write(data)


def mkinput(corpus, out, most):
    """IPv4/IPv6 packets of the corpus's Ethernet captures, their link
    header cut off, on a made-up clock with ns fractions (and some equal
    timestamps)."""
    recs = []
    for name in sorted(os.listdir(corpus)):
        try:
            linktype, got = read_pcap(os.path.join(corpus, name))
        except (ValueError, OSError):
            continue
        if linktype != 1:
            continue
        for _, caplen, origlen, data in got:
            if caplen < 34 or data[12:14] not in (b"\x08\x00", b"\x86\xdd"):
                continue
            if caplen - 14 > 9000:
                continue
            recs.append((caplen - 14, max(origlen - 14, caplen - 14), data[14:]))
            if len(recs) == most:
                break
        if len(recs) == most:
            break
    out_recs, ts = [], T0
    for i, (caplen, origlen, data) in enumerate(recs):
        if i % 50 != 49:
            ts += 1234567 + (i * 7919) % 1000
        out_recs.append((ts, caplen, origlen, data))
    write_pcap(out, 101, out_recs)
    print(len(out_recs))


def window(path, out, size):
    linktype, recs = read_pcap(path)
    kept, cost = [], 0
    for r in reversed(recs):
        if cost + r[1] + OVERHEAD > size:
            break
        cost += r[1] + OVERHEAD
        kept.append(r)
    write_pcap(out, linktype, list(reversed(kept)))
    print(len(kept), cost)


def slice_(path, out, args):
    opts = dict(zip(args[::2], (int(v) for v in args[1::2])))
    linktype, recs = read_pcap(path)
    lo = opts.get("--after", 0)
    if "--last" in opts and recs:
        lo = max(lo, max(r[0] for r in recs) - opts["--last"])
    hi = opts.get("--before")
    sel = [r for r in recs if r[0] >= lo and (hi is None or r[0] < hi)]
    kept, nbytes = [], 0
    for r in reversed(sel):
        if "--limit-packets" in opts and len(kept) >= opts["--limit-packets"]:
            break
        if "--limit-bytes" in opts and nbytes + r[1] > opts["--limit-bytes"]:
            break
        kept.append(r)
        nbytes += r[1]
    write_pcap(out, linktype, list(reversed(kept)))
    print(len(kept))


def info(path):
    linktype, recs = read_pcap(path)
    ts = [r[0] for r in recs]
    print(json.dumps({"count": len(recs), "linktype": linktype,
                      "cost": sum(r[1] + OVERHEAD for r in recs),
                      "caplen": [r[1] for r in recs], "ts": ts}))


def rfc3339(ns, offset_min=0):
    """ns since the epoch as RFC 3339 at a UTC offset, with 9 decimals."""
    import datetime
    secs, frac = divmod(ns, 10**9)
    tz = datetime.timezone(datetime.timedelta(minutes=offset_min))
    d = datetime.datetime.fromtimestamp(secs, tz)
    zone = "Z" if offset_min == 0 else d.strftime("%z")
    if zone != "Z":
        zone = zone[:3] + ":" + zone[3:]
    print(d.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}" + zone)


def contiguous(part, whole):
    """Every packet of PART, in order, is a run of WHOLE's packets (by
    bytes), WHOLE repeating: a snapshot with no torn or missing packet."""
    _, p = read_pcap(part)
    _, w = read_pcap(whole)
    pd, wd = [r[3] for r in p], [r[3] for r in w]
    if not pd:
        print("empty")
        return
    for start in (i for i, d in enumerate(wd) if d == pd[0]):
        if all(pd[k] == wd[(start + k) % len(wd)] for k in range(len(pd))):
            print(f"{len(pd)} packets contiguous from {start}")
            return
    sys.exit(f"{part}: {len(pd)} packets are not a run of {whole}")


def legacy_same(legacy, full):
    lt_l, l = read_pcap(legacy)
    lt_f, f = read_pcap(full)
    if len(l) != len(f):
        sys.exit(f"{len(l)} packets in the legacy reply, {len(f)} in the ring")
    for i, (a, b) in enumerate(zip(l, f)):
        if a[0] != b[0] // 1000 * 1000 or a[1:] != b[1:]:
            sys.exit(f"packet {i} differs: {a[:3]} vs {b[:3]}")
    print(f"{len(l)} packets the same")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "mkinput":
        mkinput(argv[2], argv[3], int(argv[4]))
    elif cmd == "window":
        window(argv[2], argv[3], int(argv[4]))
    elif cmd == "slice":
        slice_(argv[2], argv[3], argv[4:])
    elif cmd == "info":
        info(argv[2])
    elif cmd == "rfc3339":
        rfc3339(int(argv[2]), int(argv[3]) if len(argv) > 3 else 0)
    elif cmd == "contiguous":
        contiguous(argv[2], argv[3])
    elif cmd == "legacy-same":
        legacy_same(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
