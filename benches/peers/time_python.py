#!/usr/bin/env python3
"""Times Box's Python SDK (box-sdk-gen) WebhooksManager.validate_message.

    python time_python.py CORPUS NUMBER REPEAT

CORPUS is written by `sign_corpus peers`. For each delivery: check it
validates, one warm-up batch, then REPEAT batches of NUMBER calls with
timeit; prints one JSON line with the median and minimum per-call time.
The body is passed as the `str` the SDK takes, decoded once, outside the timing.
"""

import json
import statistics
import sys
import timeit

from box_sdk_gen import WebhooksManager


def main():
    corpus, number, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(corpus, encoding="utf-8") as lines:
        for line in lines:
            d = json.loads(line)
            body, headers = d["body"], d["headers"]
            primary, secondary = d["primary_key"], d["secondary_key"]

            def once():
                return WebhooksManager.validate_message(
                    body, headers, primary, secondary_key=secondary
                )

            if once() is not True:
                sys.exit(f"python SDK rejects the {d['size']}-byte delivery (older than 10 min?)")
            timeit.timeit(once, number=number)  # warm-up
            batches = timeit.repeat(once, number=number, repeat=repeat)
            per_call = sorted(b * 1e9 / number for b in batches)
            print(json.dumps({
                "impl": "python box-sdk-gen",
                "size": d["size"],
                "median_ns": statistics.median(per_call),
                "min_ns": per_call[0],
                "number": number,
                "repeat": repeat,
            }), flush=True)


if __name__ == "__main__":
    main()
