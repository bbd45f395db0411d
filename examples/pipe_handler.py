#!/usr/bin/env python3
"""A `boxhook work --pipe` handler: one event per line in, one answer out."""
import json
import sys


def handle(event):
    """Returns `ok`, `retry [seconds]` or `dead [reason]` for one event."""
    body = event["body"]  # the event as Box sent it
    if event["trigger"] == "FILE.DELETED":
        return "dead deleted files have nothing to process"
    if body["source"]["type"] != "file":
        return "retry 60"  # not ready yet: ask again in a minute
    print(f"{event['event_id']} attempt {event['attempt']}", file=sys.stderr)
    return "ok"


for line in sys.stdin.buffer:  # UTF-8 bytes, whatever the locale; ends at stop
    try:
        answer = handle(json.loads(line))
    except Exception as error:  # a bug costs one attempt, not the process
        print(f"failed: {error!r}", file=sys.stderr)
        answer = "retry"  # after --backoff, up to --max-attempts
    print(answer, flush=True)
