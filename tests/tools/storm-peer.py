#!/usr/bin/python3
"""The storm suite's peer (tests/e2e/storm.sh): real frames in, mutants out.

storm-peer.py mkraw OUT.pcap IN.pcap...
    Raw IP (LINKTYPE_RAW, ns) capture of the IPv4/IPv6 packets of Ethernet
    captures, for a zmq-out sender to turn into real frames.

storm-peer.py collect PORTFILE COUNTFILE OUT.frames
    Binds a PULL socket to a free loopback port (written to PORTFILE) and
    keeps every message it receives, until COUNTFILE names how many to
    expect and that many arrived (60 s at most); OUT.frames holds them,
    each as [u32 BE length][bytes].

storm-peer.py storm ENDPOINT FRAMES WIRE N SEED MAX_MESSAGE CODECS EXPECT.pcap INFO.json MARK GO
    From the real frames (plus legacy and compressed variants made here,
    from WIRE.md), N mutants: bit flips, bytes set, truncation, random
    tails, length fields and record fields changed, codecs swapped,
    splices, random bytes. Every message is judged by an independent
    decoder written from WIRE.md (this file), which predicts what a
    receiver with `wire = WIRE` (auto or native) and `max_message =
    MAX_MESSAGE`, on a host whose plugins offer the codec ids CODECS
    (comma-separated, e.g. 1,2), must count, and what a pcap-out (linktype RAW, precision
    ns) behind it must write: EXPECT.pcap byte for byte, INFO.json the
    counters. Connects a PUSH socket to ENDPOINT, sends the mutants, writes
    MARK (the number sent), waits for GO (60 s at most), then sends every
    valid base message again and exits.
"""
import json, os, random, struct, sys, time, zlib

MAGIC = b"PKTP"
REC = 22
META_LEN = {1: 2, 3: 4, 4: 4, 5: 4, 6: 4, 7: 4, 8: 4, 9: 4, 10: 2, 11: 4, 12: 4}
RAW_FAMILY = (12, 101, 228, 229)
FILE_LINKTYPE = 101
SNAPLEN = 262144
GAP_MAX = 1 << 32
M64 = (1 << 64) - 1


# ---------------------------------------------------------------- #
# Captures                                                          #

def read_pcap(path):
    b = open(path, "rb").read()
    for e in "<>":
        magic = struct.unpack(e + "I", b[:4])[0]
        if magic in (0xa1b2c3d4, 0xa1b23c4d):
            break
    else:
        return 0, []
    nano = magic == 0xa1b23c4d
    linktype = struct.unpack(e + "I", b[20:24])[0] & 0xffff
    out, at = [], 24
    while at + 16 <= len(b):
        s, f, cap, orig = struct.unpack(e + "IIII", b[at:at + 16])
        data = b[at + 16:at + 16 + cap]
        if len(data) < cap:
            break
        out.append((s * 10**9 + (f if nano else f * 1000), orig, data))
        at += 16 + cap
    return linktype, out


def mkraw(out_path, inputs):
    recs = []
    for path in inputs:
        linktype, pkts = read_pcap(path)
        if linktype != 1:
            continue
        for ts, orig, data in pkts:
            if len(data) > 14 and data[12:14] in (b"\x08\x00", b"\x86\xdd"):
                recs.append((ts, max(orig - 14, 0), data[14:]))
    with open(out_path, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, SNAPLEN, 101))
        for ts, orig, data in recs:
            f.write(struct.pack("=IIII", ts // 10**9, ts % 10**9, len(data), orig) + data)
    print(len(recs))


# ---------------------------------------------------------------- #
# Collecting real frames                                            #

def collect(portfile, countfile, out_path):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 200)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    open(portfile + ".tmp", "w").write(str(port))
    os.rename(portfile + ".tmp", portfile)
    got, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            got.append(s.recv())
        except zmq.Again:
            pass
        if os.path.exists(countfile) and len(got) >= int(open(countfile).read()):
            break
    with open(out_path, "wb") as f:
        for m in got:
            f.write(struct.pack("!I", len(m)) + m)
    s.close()
    ctx.term()
    sys.exit(0 if os.path.exists(countfile) and len(got) == int(open(countfile).read()) else 1)


def read_frames(path):
    b, at, out = open(path, "rb").read(), 0, []
    while at + 4 <= len(b):
        n = struct.unpack("!I", b[at:at + 4])[0]
        out.append(b[at + 4:at + 4 + n])
        at += 4 + n
    return out


# ---------------------------------------------------------------- #
# The judge: what a receiver must make of a message (WIRE.md)       #

class Judge:
    """Decodes like a receiver must, and keeps the counts it must keep."""

    def __init__(self, wire, max_message, codecs):
        self.wire, self.max, self.codecs = wire, max_message, codecs
        self.slots = [None] * 64          # [id, next_seq, last_use]
        self.clock = 0
        self.c = dict(frames_in=0, frames_ok=0, frames_bad=0, packets_in=0,
                      network=0, malformed=0, codec=0, written=0, linktype=0)
        self.records = []

    @staticmethod
    def inflate(data, limit):
        """The stream's bytes if it is one whole zlib stream of at most
        limit bytes with nothing after it, else None."""
        d = zlib.decompressobj()
        try:
            # One byte of extra room, so that a stream that fits exactly
            # still gets its trailer read.
            out = d.decompress(data, limit + 1)
        except zlib.error:
            return None
        if not d.eof or d.unused_data or len(out) > limit:
            return None
        return out

    @staticmethod
    def meta_ok(m):
        while m:
            if len(m) < 2:
                return False
            t, n = m[0], m[1]
            v, m = m[2:2 + n], m[2 + n:]
            if len(v) < n:
                return False
            if t == 2 and (n > 127 or 0 in v):
                return False
            if t in META_LEN and n != META_LEN[t]:
                return False
        return True

    @classmethod
    def records_of(cls, raw, count):
        recs, at, left = [], 0, len(raw)
        for _ in range(count):
            if left < REC:
                return None
            ts, cap, orig, lt, mlen = struct.unpack("!QIIIH", raw[at:at + REC])
            at, left = at + REC, left - REC
            if mlen > left or lt > 0xffff:
                return None
            if not cls.meta_ok(raw[at:at + mlen]):
                return None
            at, left = at + mlen, left - mlen
            if cap > left:
                return None
            recs.append((ts, cap, orig, lt, raw[at:at + cap]))
            at, left = at + cap, left - cap
        return recs if left == 0 else None

    def sequence(self, flags, sender, seq, count):
        if not flags & 1:
            return
        found = None
        for i, sl in enumerate(self.slots):
            if sl and sl[0] == sender:
                found = i
                break
        if found is None:
            free = [i for i, sl in enumerate(self.slots) if sl is None]
            i = free[0] if free else min(range(64), key=lambda k: self.slots[k][2])
        else:
            i = found
            expected = self.slots[i][1]
            if seq > expected and seq - expected < GAP_MAX:
                self.c["packets_in"] += seq - expected
                self.c["network"] += seq - expected
        self.clock += 1
        self.slots[i] = [sender, (seq + count) & M64, self.clock]

    def native(self, m):
        """'ok', 'bad' (no packets counted) or the drop reason."""
        if len(m) < 32 or m[:4] != MAGIC or m[4] == 0 or m[4] != 1:
            return "bad", None
        codec, flags, sender, seq, count, raw_len = struct.unpack("!BHQQII", m[5:32])
        payload = m[32:]
        if count > raw_len // REC:
            return "bad", None
        if (len(payload) != raw_len) if codec == 0 else (len(payload) == 0):
            return "bad", None
        self.sequence(flags, sender, seq, count)
        self.c["packets_in"] += count
        if codec == 0:
            raw = payload
        elif codec not in self.codecs:
            self.c["codec"] += count
            return "codec", None
        elif raw_len > self.max or codec != 1:
            # Only zlib is judged here; no payload of another codec is
            # ever a valid stream of it (see unpredictable()).
            self.c["malformed"] += count
            return "malformed", None
        else:
            raw = self.inflate(payload, raw_len)
            if raw is None or len(raw) != raw_len:
                self.c["malformed"] += count
                return "malformed", None
        recs = self.records_of(raw, count)
        if recs is None:
            self.c["malformed"] += count
            return "malformed", None
        return "ok", recs

    @staticmethod
    def legacy(m):
        if len(m) < 16:
            return None
        sec, usec, pkt_len, data_len = struct.unpack("!IIII", m[:16])
        if usec >= 10**6 or data_len > len(m) - 16 or (data_len + 3) & ~3 != len(m) - 16:
            return None
        return (sec * 10**9 + usec * 1000, data_len, pkt_len or data_len, 101, m[16:16 + data_len])

    def legacy_rc(self, m):
        if not m or m[0] not in (0, 1) or m[0] == 1 and 1 not in self.codecs:
            return None
        if m[0] == 0:
            r = self.legacy(m[1:])
            return None if r is None else [r]
        raw = self.inflate(m[1:], self.max)
        if raw is None:
            return None
        recs, at = [], 0
        while at < len(raw):
            if len(raw) - at < 4:
                return None
            n = struct.unpack("!I", raw[at:at + 4])[0]
            if n > len(raw) - at - 4:
                return None
            r = self.legacy(raw[at + 4:at + 4 + n])
            if r is None:
                return None
            recs.append(r)
            at += 4 + n
        return recs

    def judge(self, m):
        """Counts m as the receiver must; True if it is a valid message."""
        c = self.c
        c["frames_in"] += 1
        if self.wire == "native" or (len(m) >= 5 and m[:4] == MAGIC and m[4] != 0):
            verdict, recs = self.native(m)
        else:
            recs = self.legacy(m)
            if recs is not None:
                recs = [recs]
            else:
                recs = self.legacy_rc(m)
            if recs is not None:
                c["packets_in"] += len(recs)
            verdict = "ok" if recs is not None else "bad"
        if verdict != "ok":
            c["frames_bad"] += 1
            return False
        c["frames_ok"] += 1
        for r in recs:
            if r[3] == FILE_LINKTYPE or r[3] in RAW_FAMILY:
                c["written"] += 1
                self.records.append(r)
            else:
                c["linktype"] += 1
        return True

    def pcap(self):
        out = [struct.pack("=IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, SNAPLEN, FILE_LINKTYPE)]
        for ts, cap, orig, lt, data in self.records:
            cap = min(cap, SNAPLEN)
            out.append(struct.pack("=IIII", (ts // 10**9) & 0xffffffff, ts % 10**9, cap, orig)
                       + data[:cap])
        return b"".join(out)


# ---------------------------------------------------------------- #
# Base messages and mutants                                         #

def split_records(raw, count):
    """[(offset, caplen offset, meta_len offset)] of a valid record area."""
    at, out = 0, []
    for _ in range(count):
        ts, cap, orig, lt, mlen = struct.unpack("!QIIIH", raw[at:at + REC])
        out.append(at)
        at += REC + mlen + cap
    return out


def header(codec, flags, sender, seq, count, raw_len):
    return MAGIC + struct.pack("!BBHQQII", 1, codec, flags, sender, seq, count, raw_len)


def variants(rnd, frames, wire):
    """Real frames, plus compressed and metadata-carrying copies of them,
    plus legacy messages of their packets (auto only)."""
    out = list(frames)
    meta = (bytes([1, 2, 0, 7]) + bytes([3, 4, 0, 0, 0, 2]) + bytes([7, 4, 1, 2, 3, 4]) +
            bytes([11, 4, 0, 0, 0, 9]) + bytes([99, 3]) + b"new" + bytes([2, 6]) + b"DROP: ")
    sender = rnd.getrandbits(64)
    seq = 0
    for f in frames:
        codec, flags, _, _, count, raw_len = struct.unpack("!BHQQII", f[5:32])
        raw = f[32:]
        recs = []
        for i, at in enumerate(split_records(raw, count)):
            ts, cap, orig, lt, mlen = struct.unpack("!QIIIH", raw[at:at + REC])
            data = raw[at + REC + mlen:at + REC + mlen + cap]
            recs.append((ts, cap, orig, lt, data))
        body = b"".join(struct.pack("!QIIIH", ts, cap, orig, lt, len(meta)) + meta + d
                        for ts, cap, orig, lt, d in recs)
        out.append(header(0, 1, sender, seq, count, len(body)) + body)
        seq += count
        z = zlib.compress(raw, rnd.choice([1, 6, 9]))
        out.append(header(1, 1, sender, seq, count, len(raw)) + z)
        seq += count
        if wire == "auto":
            for ts, cap, orig, lt, d in recs[:3]:
                x = struct.pack("!IIII", ts // 10**9, ts % 10**9 // 1000, orig, cap) + d + b"\0" * (-cap % 4)
                out.append(rnd.choice([x, b"\0" + x]))
            xs = [struct.pack("!IIII", ts // 10**9, ts % 10**9 // 1000, orig, cap) + d + b"\0" * (-cap % 4)
                  for ts, cap, orig, lt, d in recs]
            out.append(b"\x01" + zlib.compress(b"".join(struct.pack("!I", len(x)) + x for x in xs)))
    return out


INTERESTING32 = [0, 1, 2, 21, 22, 23, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000,
                 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]


def set32(m, at, v):
    if at + 4 > len(m):
        return m
    return m[:at] + struct.pack("!I", v & 0xffffffff) + m[at + 4:]


def set16(m, at, v):
    if at + 2 > len(m):
        return m
    return m[:at] + struct.pack("!H", v & 0xffff) + m[at + 2:]


def some32(rnd, old):
    return rnd.choice([rnd.choice(INTERESTING32), old + rnd.randint(-4, 4),
                       old ^ (1 << rnd.randrange(32)), rnd.getrandbits(32)])


def record_field(rnd, m):
    """Change one field of one record of an uncompressed native frame."""
    if len(m) < 32 or m[:4] != MAGIC or m[5] != 0:
        return None
    count = struct.unpack("!I", m[24:28])[0]
    try:
        offs = split_records(m[32:], count)
    except struct.error:
        return None
    if not offs:
        return None
    at = 32 + rnd.choice(offs)
    field = rnd.choice(["caplen", "origlen", "linktype", "meta_len", "meta", "ts"])
    if field == "caplen":
        return set32(m, at + 8, some32(rnd, struct.unpack("!I", m[at + 8:at + 12])[0]))
    if field == "origlen":
        return set32(m, at + 12, rnd.getrandbits(32))
    if field == "linktype":
        return set32(m, at + 16, rnd.choice([0, 1, 12, 101, 228, 229, 239, 0xffff, 0x10000,
                                             rnd.getrandbits(32)]))
    if field == "meta_len":
        return set16(m, at + 20, rnd.choice([0, 1, 2, 3, 0xffff, rnd.getrandbits(16)]))
    if field == "ts":
        return m[:at] + struct.pack("!Q", rnd.getrandbits(64)) + m[at + 8:]
    mlen = struct.unpack("!H", m[at + 20:at + 22])[0]
    if mlen < 2:
        return None
    k = at + REC + rnd.randrange(mlen)
    return m[:k] + bytes([rnd.choice([0, 1, 2, 3, 10, 12, 255, rnd.getrandbits(8)])]) + m[k + 1:]


def mutate_once(rnd, m, base):
    op = rnd.randrange(14)
    if op == 0 and m:                                   # bit flips
        b = bytearray(m)
        for _ in range(rnd.choice([1, 1, 2, 3, 8])):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        return bytes(b)
    if op == 1 and m:                                   # bytes set
        b = bytearray(m)
        for _ in range(rnd.choice([1, 2, 4])):
            b[rnd.randrange(len(b))] = rnd.choice([0, 0xff, 0x7f, 0x80, rnd.getrandbits(8)])
        return bytes(b)
    if op == 2:                                         # truncation
        return m[:rnd.randrange(len(m) + 1)]
    if op == 3:                                         # a random tail
        return m + rnd.randbytes(rnd.choice([1, 3, 4, 22, rnd.randrange(1, 300)]))
    if op == 4:                                         # count
        return set32(m, 24, some32(rnd, struct.unpack("!I", m[24:28])[0] if len(m) >= 28 else 0))
    if op == 5:                                         # raw_len
        return set32(m, 28, some32(rnd, struct.unpack("!I", m[28:32])[0] if len(m) >= 32 else 0))
    if op == 6:                                         # one record's fields
        return record_field(rnd, m) or m[:-1]
    if op == 7 and len(m) >= 6:                         # version, codec
        k = rnd.choice([4, 5])
        return m[:k] + bytes([rnd.choice([0, 1, 2, 3, 77, 255])]) + m[k + 1:]
    if op == 8 and len(m) >= 32:                        # flags, sender, seq
        k = rnd.choice([6, 8, 16])
        n = 2 if k == 6 else 8
        return m[:k] + rnd.getrandbits(8 * n).to_bytes(n, "big") + m[k + n:]
    if op == 9:                                         # splice two messages
        o = rnd.choice(base)
        return m[:rnd.randrange(len(m) + 1)] + o[rnd.randrange(len(o) + 1):]
    if op == 10:                                        # random bytes
        n = rnd.choice([0, 1, 4, 5, 16, 20, 31, 32, 33, 100, rnd.randrange(2000)])
        head = rnd.choice([b"", MAGIC + b"\x01", MAGIC + b"\x01\x00\x00\x01", b"\x00", b"\x01x\x9c"])
        return head + rnd.randbytes(n)
    if op == 11 and len(m) > 40:                        # a chunk deleted or doubled
        a = rnd.randrange(len(m))
        b = min(len(m), a + rnd.randrange(1, 64))
        return m[:a] + m[b:] if rnd.random() < 0.5 else m[:b] + m[a:b] + m[b:]
    if op == 12:                                        # recompressed, lengths kept or not
        if len(m) >= 32 and m[:4] == MAGIC and m[5] == 0:
            z = zlib.compress(m[32:])
            raw_len = struct.unpack("!I", m[28:32])[0] + rnd.choice([0, 0, -1, 1, 100])
            return m[:5] + b"\x01" + m[6:28] + struct.pack("!I", raw_len & 0xffffffff) + \
                rnd.choice([z, z[:-1], z + b"\0", z[:2] + bytes([z[2] ^ 0x40]) + z[3:]])
        return m[:1] + b"\x01" + zlib.compress(m[2:]) if m else m
    if op == 13 and len(m) > 8 and m[:1] in (b"\x00", b"\x01") or op == 13 and len(m) % 4 == 0 and len(m) >= 16:
        k = rnd.choice([0, 4, 8, 12]) + (1 if m[:1] in (b"\x00", b"\x01") else 0)
        return set32(m, k, rnd.choice([999999, 1000000, 0, len(m) - 16, len(m) - 15, 0xffffffff]))
    return m[:len(m) // 2]


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def unpredictable(m):
    """A native frame of codec 2 (zstd) whose payload could be a zstd
    stream: the judge has no zstd decoder, so such a mutant is not sent.
    Any other payload cannot be one (zstd frames and skippable frames start
    with their magic)."""
    if len(m) < 36 or m[:4] != MAGIC or m[4] != 1 or m[5] != 2:
        return False
    lead = struct.unpack("<I", m[32:36])[0]
    return m[32:36] == ZSTD_MAGIC or lead & 0xfffffff0 == 0x184d2a50


def storm(endpoint, frames_path, wire, n, seed, max_message, codecs, expect_path, info_path,
          mark, go):
    import zmq
    rnd = random.Random(int(seed))
    frames = read_frames(frames_path)
    base = variants(rnd, frames, wire)
    judge = Judge(wire, int(max_message), {int(c) for c in codecs.split(",") if c})
    limit = min(int(max_message), 1 << 16)
    mutants = []
    while len(mutants) < int(n):
        m = rnd.choice(base)
        for _ in range(rnd.choice([1, 1, 1, 2, 3])):
            m = mutate_once(rnd, m, base)
        if len(m) <= limit and not unpredictable(m):
            mutants.append(m)
    valid_mutants = sum(judge.judge(m) for m in mutants)
    valid_base = sum(judge.judge(m) for m in base)
    info = dict(judge.c, mutants=len(mutants), valid_mutants=valid_mutants,
                base=len(base), valid_base=valid_base)
    open(expect_path, "wb").write(judge.pcap())
    json.dump(info, open(info_path, "w"))

    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDTIMEO, 30000)
    s.setsockopt(zmq.LINGER, 30000)
    s.connect(endpoint)
    for m in mutants:
        s.send(m)
    open(mark + ".tmp", "w").write(str(len(mutants)))
    os.rename(mark + ".tmp", mark)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    for m in base:
        s.send(m)
    s.close()
    ctx.term()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "mkraw":
        mkraw(args[0], args[1:])
    elif cmd == "collect":
        collect(*args)
    elif cmd == "storm":
        storm(*args)
    else:
        sys.exit(f"unknown command {cmd}")
