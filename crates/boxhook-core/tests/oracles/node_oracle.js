#!/usr/bin/env node
// Oracle for boxhook's interop tests: Box's official Node SDK (box-node-sdk,
// the generated SDK; v10 no longer ships the legacy one).
//
// Reads JSON Lines on stdin and writes exactly one JSON line per input line on
// stdout, in order. Requests:
//
//   {"op":"sign", "body_b64", "timestamp", "primary_key", "secondary_key"?, "escape_body"?}
//       -> {"primary": "<b64>", "secondary": "<b64>" | null}
//       computed with computeWebhookSignature, which the SDK exports from its
//       public "box-node-sdk/internal" entry point (escape_body defaults to
//       false; true signs the SDK's own escaped copy of the body).
//   {"op":"validate", "body_b64", "headers", "primary_key", "secondary_key"?, "max_age"?}
//       -> {"valid": true | false}
//       using the async WebhooksManager.validateMessage(body, headers,
//       primaryKey, {secondaryKey, maxAge}); headers are passed through as
//       given (the SDK looks names up lower-case). A null/missing max_age or
//       secondary_key is not passed, so the SDK default applies.
//
// Any exception becomes {"error": "<type>: <message>"} for that line.
//
// The body travels as base64 of its exact bytes. The SDK takes the body as a
// string, so it is decoded as strict UTF-8 (invalid UTF-8 is an error here; a
// leading BOM is kept); the SDK hashes the string as UTF-8.
//
// The SDK checks freshness against the real clock: send timestamps near now.
'use strict';

const readline = require('node:readline');
const { WebhooksManager } = require('box-node-sdk/managers');
const { computeWebhookSignature } = require('box-node-sdk/internal');

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeBody(request) {
  return utf8.decode(Buffer.from(request.body_b64, 'base64'));
}

async function sign(request) {
  const body = decodeBody(request);
  const headers = {
    'box-signature-version': '1',
    'box-signature-algorithm': 'HmacSHA256',
    'box-delivery-timestamp': request.timestamp,
  };
  const escape = Boolean(request.escape_body);
  const secondaryKey = request.secondary_key;
  return {
    primary: await computeWebhookSignature(body, headers, request.primary_key, escape),
    secondary:
      secondaryKey == null
        ? null
        : await computeWebhookSignature(body, headers, secondaryKey, escape),
  };
}

async function validate(request) {
  const options = {};
  if (request.secondary_key != null) options.secondaryKey = request.secondary_key;
  if (request.max_age != null) options.maxAge = request.max_age;
  const valid = await WebhooksManager.validateMessage(
    decodeBody(request),
    request.headers,
    request.primary_key,
    options,
  );
  return { valid: Boolean(valid) };
}

const OPS = { sign, validate };

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let response;
    try {
      const request = JSON.parse(line);
      const op = OPS[request.op];
      if (!op) throw new Error(`unknown op ${JSON.stringify(request.op)}`);
      response = await op(request);
    } catch (err) {
      response = { error: `${err && err.name}: ${err && err.message}` };
    }
    process.stdout.write(`${JSON.stringify(response)}\n`);
  }
}

main();
