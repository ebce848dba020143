#!/usr/bin/env python3
"""cgcore: the host's share of a callgrind profile of pktpipe.

    cgcore.py CALLGRIND_OUT

Prints "host H plugins P other O total T" (instructions, Ir). The host is
the pktpipe executable: the self cost of its functions (core/*.c), plus the
inclusive cost of every call they make into other libraries (libc: malloc,
mutexes, epoll, timerfd; PLT stubs), since those calls are the core's work.
Calls from the core into plugins (process(), a source's timer callback)
are not the core's: they, and what plugins call (libpcap, memcpy), count
as plugins and other. bench.sh runs two captures of different sizes and
divides the difference by the difference in packets, so start-up and
shutdown cancel out.
"""
import re
import sys

COST = re.compile(r"^[0-9+\-*]")
NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")
BELOW_MAIN = ("(below main)", "_start")


class Names:
    """callgrind's name compression: "(id) name" once, "(id)" after."""

    def __init__(self):
        self.ids = {}

    def get(self, text):
        m = NAMED.match(text)
        if not m:
            return text
        if m.group(2) is not None:
            self.ids[m.group(1)] = m.group(2)
        return self.ids.get(m.group(1), text)


def kind(obj):
    if obj.endswith("/pktpipe"):
        return "host"
    if obj.endswith(".so") and "/plugins/" in obj:
        return "plugin"
    return "other"


def parse(path):
    obs, fns = Names(), Names()
    ob = fn = cob = cfn = None
    self_cost = {}  # (ob, fn) -> Ir
    arcs = []  # (caller ob, caller fn, callee ob, callee fn, Ir)
    in_call = False
    summary = 0
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if in_call and COST.match(line):
                arcs.append((ob, fn, cob if cob is not None else ob, cfn,
                             int(line.split()[-1])))
                in_call, cob = False, None
            elif COST.match(line):
                key = (ob, fn)
                self_cost[key] = self_cost.get(key, 0) + int(line.split()[-1])
            elif line.startswith("ob="):
                ob = obs.get(line[3:])
            elif line.startswith("fn="):
                fn, cob = fns.get(line[3:]), None
            elif line.startswith("cob="):
                cob = obs.get(line[4:])
            elif line.startswith("cfn="):
                cfn = fns.get(line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                summary = max(summary, int(line.split()[1]))
    return self_cost, arcs, summary


def main():
    self_cost, arcs, summary = parse(sys.argv[1])
    host = sum(c for (o, _), c in self_cost.items() if kind(o) == "host")
    plugins = sum(c for (o, _), c in self_cost.items() if kind(o) == "plugin")
    # What the core calls outside itself and the plugins is its own work;
    # not the C library's start-up, which runs everything.
    host += sum(c for caller, cfn_, callee, callee_fn, c in arcs
                if kind(caller) == "host" and kind(callee) == "other"
                and cfn_ not in BELOW_MAIN and not callee_fn.startswith("__libc_start"))
    other = summary - host - plugins
    print(f"host {host} plugins {plugins} other {other} total {summary}")


if __name__ == "__main__":
    main()
