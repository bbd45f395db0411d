#!/usr/bin/env python3
"""Sorts two `perf report --no-children --sort dso,symbol --stdio -q` outputs
(bare_server's and boxhook_server's) into parts of the event path and prints,
per part, the microseconds of each server's CPU per request and the
difference: where boxhook's extra time per request goes.

    profile_parts.py BARE_REPORT BARE_US FULL_REPORT FULL_US

BARE_US and FULL_US are each server's measured CPU (user + system) per
request; a part's microseconds are its share of the samples times that.
Used by benches/load/profile.sh.
"""

import re
import sys

# (part, test on (dso, symbol)), first match wins.
PARTS = [
    ("kernel: TCP, epoll, scheduling", lambda d, s: d.startswith("[kernel")),
    ("HMAC-SHA256", lambda d, s: re.match(r"(sha2|hmac|digest|block_buffer)::", s)
        or "boxhook_core::signature" in s),
    ("JSON: envelope peek", lambda d, s: "boxhook_core::model::peek" in s),
    ("JSON: typed parse (boxhook_core::model, serde_json)",
        lambda d, s: "boxhook_core::model" in s or s.startswith("serde_json::")
        or s.startswith("<serde_json::") or "serde_core::" in s),
    ("allocator (malloc, free)", lambda d, s: re.search(
        r"^(_int_malloc|_int_free|_int_realloc|malloc|cfree|free|realloc|malloc_consolidate|"
        r"unlink_chunk|sysmalloc|__libc_malloc|__libc_free|tcache_|__rustc::__rust_)", s)),
    ("memcpy, memmove, memset", lambda d, s: re.match(r"__mem(move|cpy|set)", s)),
    ("HTTP: hyper, httparse, http, bytes", lambda d, s: re.search(
        r"(^|[<&])(hyper|hyper_util|httparse|http|http_body|http_body_util|bytes)::", s)),
    ("tokio runtime, mio, wakers", lambda d, s: re.search(
        r"(^|[<&])(tokio|mio|atomic_waker|futures_util|futures_core)::", s)),
    ("boxhook: verify layer, router, idempotency store, metrics",
        lambda d, s: re.search(r"(^|[<&])(boxhook|boxhook_core|boxhook_server)", s)
        or re.search(r"hashbrown|core::hash|rapidhash|chrono::|subtle::|metrics::", s)),
    ("clock (vdso), other", lambda d, s: True),
]

LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*?)\s*(-\s+-\s*)?$")


def shares(path):
    totals = {name: 0.0 for name, _ in PARTS}
    with open(path, encoding="utf-8", errors="replace") as report:
        for line in report:
            m = LINE.match(line)
            if not m:
                continue
            share, dso, symbol = float(m.group(1)), m.group(2), m.group(3)
            for name, test in PARTS:
                if test(dso, symbol):
                    totals[name] += share
                    break
    return totals


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    bare, bare_us = shares(sys.argv[1]), float(sys.argv[2])
    full, full_us = shares(sys.argv[3]), float(sys.argv[4])
    bare_sum = sum(bare.values()) or 1.0
    full_sum = sum(full.values()) or 1.0
    print("| part | bare µs/req | boxhook µs/req | boxhook − bare |")
    print("|---|---:|---:|---:|")
    for name, _ in PARTS:
        b = bare[name] / bare_sum * bare_us
        f = full[name] / full_sum * full_us
        print(f"| {name} | {b:.1f} | {f:.1f} | {f - b:+.1f} |")
    print(f"| **total** | {bare_us:.1f} | {full_us:.1f} | {full_us - bare_us:+.1f} |")


if __name__ == "__main__":
    main()
