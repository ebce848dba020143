#!/usr/bin/python3
"""Hostile ini files for tests/e2e/torture.sh.

torture-mutate.py OUT_DIR N SEED FIFO BASE.ini...

BASE files named full-* or conf-* (valid graphs with many keys) are picked
four times as often as the others.

Writes OUT_DIR/NNNN.ini, N files made from the BASE files by a seeded
random choice of 1 to 4 mutations each (lines dropped, duplicated, swapped;
values replaced by hostile ones: huge, negative, bad units, very long, NUL
and binary bytes, unicode, device paths, unreachable endpoints; keys,
section headers and plugin names mangled; byte flips; truncation), and
OUT_DIR/NNNN.why saying which. FIFO is a FIFO nobody writes to, offered as
a path value (a --check that opened it would hang). Paths offered never
name a real file outside /dev and /proc/self, and relative ones point
nowhere: --check must open nothing, but a bug that wrote there would do no
harm.
"""
import os, random, sys

out_dir, n, seed, fifo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bases = []
for path in sys.argv[5:]:
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    # Valid graphs with many keys are the better material: more weight.
    name = os.path.basename(path)
    weight = 4 if name.startswith(("full-", "conf-")) else 1
    bases += [(name, lines)] * weight
rnd = random.Random(seed)

HUGE = [b"99999999999999999999999999999", b"18446744073709551616", b"18446744073709551615",
        b"9223372036854775808", b"9223372036854775807", b"-9223372036854775809",
        b"-9223372036854775808", b"1e308", b"1e309", b"0x7fffffffffffffffffff",
        b"0xffffffffffffffff", b"1" + b"0" * 400, b"4294967296", b"65536", b"2147483648",
        b"17179869184GiB", b"18446744073709551615TiB", b"9223372036854775807ns",
        b"9223372036854775807h", b"1e300GiB/s", b"1.7976931348623157e308min"]
NEGATIVE = [b"-1", b"-0", b"-1KiB", b"-5MiB/s", b"-1s", b"-0.5", b"- 1", b"--1", b"-1e9",
            b"-0x10"]
UNITS = [b"5 MiB/h", b"1.5.5GiB", b"KiB", b"MiB/s/s", b"1e3", b"NaN", b"nan", b"inf", b"-inf",
         b"0x", b"1..2", b"1,5", b"12 34", b"5 parsecs", b"0.0000000000000000001ms",
         b"1e-400s", b"1.5", b"  ", b"", b"1B/s", b"1 b", b"1kib", b"1 KiB KiB", b"1/s",
         b"Mbit/s", b"100Mbit", b"3min4s", b"1h-1s", b".", b"0.", b".5s", b"1e", b"+5",
         b"0b101", b"010", b"0o7", b"1_000", b"\t7\t"]
LONG = [b"A" * 5000, b"9" * 5000, b"," * 5000, b"tcp://" + b"a" * 10000 + b":1",
        b",".join([b"1"] * 20000), b"x" * 70000, b"%n" * 1000, b"\\" * 3000,
        b",".join(b"n%d" % i for i in range(3000)), b"9" * 190, b"1" * 150 + b"KiB",
        b"0." + b"0" * 150 + b"1s", b"1" * 100 + b"e" + b"9" * 50, b"/" + b"a/" * 90,
        b",".join([b"1"] * 90), b"tcp://" + b"a" * 150 + b":1", b"a" * 196]
BINARY = [b"\x00", b"a\x00b", b"\x00" * 64, b"\xff\xfe\xfd", b"\x1b[2J\x1b[31m", b"\r", b"\x7f",
          b"\x01\x02\x03\x04", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
UNICODE = ["ünïcödé", "😀", "\u202eevil", "\ufeff1", "１２３", "٣", "e\u0301", "Ω", "𝟗",
           "ＭｉＢ", "5ＭiB", "tcp://例え.テスト:1", "/tmp/\u0000", "\u2028", "\u00a0"]
PATHS = [b"/dev/zero", b"/dev/null", b"/dev/full", b"/dev/urandom", b"/proc/self/mem",
         b"/proc/self/fd/0", b"/", b"", b".", b"..", b"relative/nowhere/x",
         b"../../../../nonexistent-pktpipe-torture/x", b"/nonexistent-pktpipe-torture/dir/file",
         b"/dev/stdin", b"~/x", b"%s%s%s%n", b"$(false)", b"`false`", b"/dev/tty",
         b"/proc/self/status", b"/sys/kernel/notes", fifo.encode()]
ENDPOINTS = [b"tcp://192.0.2.1:1", b"tcp://[::1]:0", b"tcp://*:99999", b"tcp://*:-1",
             b"tcp://256.256.256.256:1", b"ipc:///nonexistent-pktpipe-torture/dir/sock",
             b"inproc://x", b"udp://1.2.3.4:5", b"tcp://", b"tcp://:", b"tcp://:*",
             b"pgm://eth0;239.192.1.1:5555", b"epgm://", b"tcp://host.invalid:1",
             b"tcp://127.0.0.1:*", b"tcp://0.0.0.0:1234,tcp://0.0.0.0:1234", b"ws://x",
             b"tcp://[::ffff:1.2.3.4]:1", b"tcp://eth0:1", b"tcp://10.255.255.1:65535",
             b"ipc://@abstract", b"ipc://" + b"a" * 200, b"tcp://*:*,tcp://*:*,tcp://*:*",
             b"192.0.2.1:1", b"tcp:/x", b"tcp://127.0.0.1:0x10"]
WORDS = [b"yes", b"no", b"maybe", b"YES", b"On", b"2", b"true false", b"pull", b"push", b"sub",
         b"pub", b"auto", b"native", b"legacy", b"legacy-rc", b"us", b"ns", b"raw", b"nflog",
         b"c", b"g", b"ms", b"d", b"both", b"EN10MB", b"RAW", b"LINUX_SLL", b"DLT_FOO",
         b"65535", b"0x71", b"root", b"nobody", b"0", b"4294967295", b"pp-no-such-user"]
PLUGINS = [b"pcap-in", b"pcap-out", b"zmq-in", b"zmq-out", b"nflog", b"statsd", b"tap-out",
           b"zlib", b"ring", b"ratelimit", b"gen", b"count", b"pass", b"nosuch", b"badabi",
           b"../pcap-in", b"/etc/passwd", b"PCAP-IN", b"pcap_in", b"", b"a" * 300,
           b"needs-gone", b"notaplugin", b"misnamed", b"badopts", b"badsize", b"noprocess"]
KEYS = [b"plugin", b"input", b"thread", b"queue", b"path", b"endpoint", b"groups", b"rate",
        b"loop", b"user", b"group", b"bind", b"socket", b"linger", b"interval", b"host",
        b"curve_secret_key", b"curve_allow", b"curve_server_key", b"max_message", b"snaplen",
        b"buffer", b"flush", b"wire", b"count", b"PLUGIN", b"pl\xc3\xbcgin", b"", b" ", b"=",
        b"a" * 2000, b"key with spaces", b"[x]", b";", b"#", b"input\x00", b"thread "]


def hostile():
    kind = rnd.randrange(9)
    if kind == 0:
        return rnd.choice(HUGE), "huge number"
    if kind == 1:
        return rnd.choice(NEGATIVE), "negative"
    if kind == 2:
        return rnd.choice(UNITS), "units garbage"
    if kind == 3:
        return rnd.choice(LONG), "very long value"
    if kind == 4:
        return rnd.choice(BINARY) + rnd.randbytes(rnd.randrange(8)), "NUL and binary"
    if kind == 5:
        return rnd.choice(UNICODE).encode("utf-8", "surrogatepass"), "unicode"
    if kind == 6:
        return rnd.choice(PATHS), "path"
    if kind == 7:
        return rnd.choice(ENDPOINTS), "endpoint"
    return rnd.choice(WORDS), "word"


def key_lines(lines):
    """Key lines; mostly not plugin = or input =, which have mutations of
    their own."""
    ks = [i for i, l in enumerate(lines) if b"=" in l and not l.lstrip().startswith(b";")]
    plain = [i for i in ks if not lines[i].lstrip().startswith((b"plugin", b"input"))]
    return plain if plain and rnd.random() < 0.85 else ks


def mutate(lines):
    op = rnd.randrange(18)
    if not lines:
        lines = [b""]
    i = rnd.randrange(len(lines))
    if op == 0:
        del lines[i]
        return "line %d dropped" % (i + 1)
    if op == 1:
        lines.insert(i, lines[i])
        return "line %d duplicated" % (i + 1)
    if op == 2:
        j = rnd.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "lines %d and %d swapped" % (i + 1, j + 1)
    if op in (3, 4, 5, 6, 7):                           # the most useful one: values
        ks = key_lines(lines) or [i]
        k = rnd.choice(ks)
        v, why = hostile()
        key = lines[k].split(b"=", 1)[0] if b"=" in lines[k] else b"x "
        lines[k] = key + b"= " + v
        return "line %d: value: %s" % (k + 1, why)
    if op == 8:
        ks = key_lines(lines) or [i]
        k = rnd.choice(ks)
        rest = lines[k].split(b"=", 1)[1] if b"=" in lines[k] else b""
        lines[k] = rnd.choice(KEYS) + rnd.choice([b" = ", b"=", b" =", b"\t=\t"]) + rest
        return "line %d: key mangled" % (k + 1)
    if op == 9:
        ks = [k for k, l in enumerate(lines) if l.startswith(b"plugin")] or [i]
        k = rnd.choice(ks)
        lines[k] = b"plugin = " + rnd.choice(PLUGINS)
        return "line %d: plugin changed" % (k + 1)
    if op == 10:
        ss = [k for k, l in enumerate(lines) if l.startswith(b"[")] or [i]
        k = rnd.choice(ss)
        lines[k] = rnd.choice([b"[]", b"[ ]", b"[x", b"x]", b"[[x]]", b"[" + b"n" * 5000 + b"]",
                               "[ünï]".encode(), b"[a b]", b"[a\x00b]", b"[in]", b"[out]",
                               b"[src]", b"[sink]", b"[" + rnd.randbytes(6) + b"]", b"[;]"])
        return "line %d: section header mangled" % (k + 1)
    if op == 11:
        lines.insert(i, rnd.choice([rnd.randbytes(rnd.randrange(1, 200)), b"\x00" * 10,
                                    b"=" * 10, b"= value", b"key =", b"key", b"  = ",
                                    b"\t[x]\t", "ключ = значение".encode()]))
        return "garbage line inserted at %d" % (i + 1)
    if op == 12:
        b = bytearray(b"\n".join(lines))
        for _ in range(rnd.randrange(1, 6)):
            if b:
                b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        lines[:] = bytes(b).split(b"\n")
        return "bytes flipped"
    if op == 13:
        b = b"\n".join(lines)
        lines[:] = b[:rnd.randrange(len(b) + 1)].split(b"\n")
        return "truncated"
    if op == 14:
        lines[:] = [l + b"\r" for l in lines]
        if rnd.random() < 0.5:
            lines[0] = b"\xef\xbb\xbf" + lines[0]
        return "CRLF (and a BOM)"
    if op == 15:
        ks = [k for k, l in enumerate(lines) if l.startswith(b"input")] or [i]
        k = rnd.choice(ks)
        lines[k] = b"input = " + rnd.choice([b"", b",", b"in,in", b"src,src", b"a,b,c",
                                             b",".join([b"src"] * 500), b"nosuch", b" , , ",
                                             b"in;x", b"in #x", b"in ;x"])
        return "line %d: input mangled" % (k + 1)
    if op == 16:
        n = rnd.choice([200, 1000, 3000])
        chain = [b"[src]", b"plugin = gen", b"count = 1"]
        prev = b"src"
        for j in range(n):
            chain += [b"[p%d]" % j, b"plugin = pass", b"input = " + prev]
            prev = b"p%d" % j
        chain += [b"[sink]", b"plugin = count", b"input = " + prev]
        lines[:] = chain
        return "a chain of %d nodes" % n
    n = rnd.choice([100, 1000])
    fan = [b"[src%d]\nplugin = gen\ncount = 1" % j for j in range(n)]
    fan.append(b"[sink]\nplugin = count\ninput = " + b",".join(b"src%d" % j for j in range(n)))
    lines[:] = b"\n".join(fan).split(b"\n")
    return "fan-in of %d nodes" % n


os.makedirs(out_dir, exist_ok=True)
for k in range(n):
    name, lines = rnd.choice(bases)
    lines = list(lines)
    whys = [mutate(lines) for _ in range(rnd.choice([1, 1, 2, 3, 4]))]
    with open(os.path.join(out_dir, "%04d.ini" % k), "wb") as f:
        f.write(b"\n".join(lines))
    with open(os.path.join(out_dir, "%04d.why" % k), "w") as f:
        f.write("%s: %s\n" % (name, "; ".join(whys)))
