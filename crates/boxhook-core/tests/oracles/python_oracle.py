#!/usr/bin/env python3
"""Oracle for boxhook's interop tests: Box's official Python SDK (box-sdk-gen).

Reads JSON Lines on stdin and writes exactly one JSON line per input line on
stdout, in order. Requests:

  {"op":"sign", "body_b64", "timestamp", "primary_key", "secondary_key"?, "escape_body"?}
      -> {"primary": "<b64>", "secondary": "<b64>" | null}
      computed with box_sdk_gen's compute_webhook_signature (escape_body
      defaults to false; true signs the SDK's own escaped copy of the body).
  {"op":"validate", "body_b64", "headers", "primary_key", "secondary_key"?, "max_age"?}
      -> {"valid": true | false}
      using WebhooksManager.validate_message; headers are passed through as
      given (the SDK looks names up lower-case). A null/missing max_age or
      secondary_key is not passed, so the SDK default applies.

Any exception becomes {"error": "<type>: <message>"} for that line.

The body travels as base64 of its exact bytes. box-sdk-gen takes the body as
`str`, so it is decoded as strict UTF-8 (invalid UTF-8 is an error here); the
SDK encodes it back to UTF-8 before hashing.

The SDK checks freshness against the real clock: send timestamps near now.
"""

import base64
import json
import sys

from box_sdk_gen import WebhooksManager, compute_webhook_signature


def decode_body(request):
    return base64.b64decode(request["body_b64"], validate=True).decode("utf-8")


def sign(request):
    body = decode_body(request)
    headers = {
        "box-signature-version": "1",
        "box-signature-algorithm": "HmacSHA256",
        "box-delivery-timestamp": request["timestamp"],
    }
    escape = bool(request.get("escape_body", False))
    secondary_key = request.get("secondary_key")
    return {
        "primary": compute_webhook_signature(
            body, headers, request["primary_key"], escape_body=escape
        ),
        "secondary": None
        if secondary_key is None
        else compute_webhook_signature(body, headers, secondary_key, escape_body=escape),
    }


def validate(request):
    kwargs = {}
    if request.get("secondary_key") is not None:
        kwargs["secondary_key"] = request["secondary_key"]
    if request.get("max_age") is not None:
        kwargs["max_age"] = request["max_age"]
    valid = WebhooksManager.validate_message(
        decode_body(request), request["headers"], request["primary_key"], **kwargs
    )
    return {"valid": bool(valid)}


OPS = {"sign": sign, "validate": validate}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            response = OPS[request["op"]](request)
        except Exception as exc:  # report, never die mid-stream
            response = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(response) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
