#!/usr/bin/env python3
"""Prints criterion's medians as a Markdown table, with verify/bare-HMAC ratios.

    python3 benches/scripts/medians.py [DIR]   # default: target

Reads DIR/criterion/<group>/<function>/<param>/new/{estimates,benchmark}.json (or
DIR/<group>/... when DIR is itself a CRITERION_HOME), as written by the last
`cargo bench -p boxhook-benches` run.
"""

import json
import re
import sys
from pathlib import Path


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}" if ns / scale < 100 else f"{ns / scale:.0f} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(bytes_per_s):
    for unit, scale in (("GiB/s", 2**30), ("MiB/s", 2**20), ("KiB/s", 2**10)):
        if bytes_per_s >= scale:
            return f"{bytes_per_s / scale:.3g} {unit}"
    return f"{bytes_per_s:.3g} B/s"


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target")
    if (root / "criterion").is_dir():
        root = root / "criterion"
    rows = {}
    def order(path):
        # 1KiB before 8KiB before 64KiB.
        return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(path))]

    for bench in sorted(root.glob("**/new/benchmark.json"), key=order):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        median = est["median"]["point_estimate"]
        lo = est["median"]["confidence_interval"]["lower_bound"]
        hi = est["median"]["confidence_interval"]["upper_bound"]
        tp = (meta.get("throughput") or {}).get("Bytes")
        rows[meta["full_id"]] = (median, lo, hi, tp)

    print("| benchmark | median | 95 % CI of median | throughput at median |")
    print("|---|---|---|---|")
    for full_id, (median, lo, hi, tp) in rows.items():
        rate = fmt_rate(tp / (median * 1e-9)) if tp else "–"
        print(f"| `{full_id}` | {fmt_time(median)} | {fmt_time(lo)} – {fmt_time(hi)} | {rate} |")

    ratios = []
    for full_id, (median, *_rest) in rows.items():
        parts = full_id.split("/")
        if parts[:2] == ["verify", "boxhook"]:
            bare = rows.get(f"verify/bare_hmac/{parts[2]}")
            if bare:
                ratios.append((parts[2], median, bare[0]))
    if ratios:
        print()
        print("| body | verify median | bare HMAC median | verify / bare HMAC |")
        print("|---|---|---|---|")
        for size, verify, bare in ratios:
            print(f"| {size} | {fmt_time(verify)} | {fmt_time(bare)} | {verify / bare:.3f} |")


if __name__ == "__main__":
    main()
