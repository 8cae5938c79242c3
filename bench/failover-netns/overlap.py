#!/usr/bin/python3
"""Double-VIP overlap per run, from the shared harness's measure.py records.

usage: overlap.py FILE.jsonl
       overlap.py --compare PACEMAKER.jsonl TANDEM.jsonl

overlap = (VIP removed from the cut node) - (VIP added on the new node), in
seconds; > 0 means both held the address at once (a double VIP). A cut
node that never removed it inside the measurement window counts as an
overlap of at least (window end - added). With CUT=crash the dead node
never removes it (it is gone), so no overlap is computed.
Percentiles are nearest-rank, as in the harness's summarize.py.
"""
import json
import math
import sys


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[max(1, math.ceil(p / 100 * len(xs))) - 1]


def rows(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def overlaps(rs):
    """[(run, overlap_s or None, note)] for link cuts."""
    out = []
    for r in rs:
        if r.get("cut_mode") == "crash":
            continue
        added, removed = r.get("vip_added_new_s"), r.get("vip_removed_old_s")
        if added is None:
            out.append((r.get("run"), None, "VIP never added on another node"))
        elif removed is None:
            end = max([e[0] for e in r.get("vip_events", [])] + [added])
            out.append((r.get("run"), end - added, "old node still held the VIP at the end (>=)"))
        else:
            out.append((r.get("run"), removed - added, ""))
    return out


def describe(path):
    rs = rows(path)
    ov = overlaps(rs)
    if not ov:
        return "overlap: n/a (crash cuts: the old node is dead)"
    known = [o for _, o, _ in ov if o is not None]
    doubles = [o for o in known if o > 0]
    lines = [f"double-VIP overlap (VIP removed on old node - added on new; >0 = both held it): "
             f"{len(doubles)}/{len(ov)} runs with overlap"
             + (f", max {max(doubles):.3f} s, p50 {pct(doubles, 50):.3f} s" if doubles else "")]
    gaps = [-o for o in known if o <= 0]
    if gaps:
        lines.append(f"  VIP released before the survivor added it by: min {min(gaps):.3f} s, "
                     f"p50 {pct(gaps, 50):.3f} s, max {max(gaps):.3f} s")
    for run, o, note in ov:
        if note:
            lines.append(f"  run {run}: {note}" + (f" {o:.3f} s" if o is not None else ""))
    return "\n".join(lines)


def stats(path):
    fo = [r["failover_s"] for r in rows(path) if r.get("failover_s") is not None]
    return fo, len(rows(path))


if sys.argv[1:2] == ["--compare"]:
    pcmk, tandem = sys.argv[2], sys.argv[3]
    (p, pn), (t, tn) = stats(pcmk), stats(tandem)
    print(f"{'series':<10} {'runs':>6} {'min':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}   (s, cut -> HTTP 200 from another node)")
    for name, xs, n in (("pacemaker", p, pn), ("tandem", t, tn)):
        if xs:
            print(f"{name:<10} {len(xs):>3}/{n:<2} {min(xs):7.3f} {pct(xs, 50):7.3f} {pct(xs, 90):7.3f} "
                  f"{pct(xs, 99):7.3f} {max(xs):7.3f}")
    if p and t:
        print(f"ratio pacemaker/tandem: p50 {pct(p, 50) / pct(t, 50):.2f}x, p99 {pct(p, 99) / pct(t, 99):.2f}x")
        print(f"goal tandem p99 <= 1.5 s: {'met' if pct(t, 99) <= 1.5 else 'MISSED'} ({pct(t, 99):.3f} s)")
    print("pacemaker " + describe(pcmk))
    print("tandem    " + describe(tandem))
else:
    print(describe(sys.argv[1]))
