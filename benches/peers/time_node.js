#!/usr/bin/env node
// Times Box's Node SDK (box-node-sdk) WebhooksManager.validateMessage.
//
//   node time_node.js CORPUS NUMBER REPEAT
//
// CORPUS is written by `sign_corpus peers`. For each delivery: check it
// validates, one warm-up batch (lets V8 optimize), then REPEAT batches of
// NUMBER sequential awaited calls timed with process.hrtime.bigint; prints one
// JSON line with the median and minimum per-call time. validateMessage is
// async, so each call includes awaiting its promise: that is its API.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

// The SDK is installed by .ci/install-oracles beside the interop oracles.
const oracles = path.join(__dirname, '..', '..', 'crates', 'boxhook-core', 'tests', 'oracles');
const sdkRequire = createRequire(path.join(oracles, 'package.json'));
const { WebhooksManager } = sdkRequire('box-node-sdk/managers');

async function batch(once, number) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < number; i++) {
    await once();
  }
  return Number(process.hrtime.bigint() - started) / number;
}

async function main() {
  const [corpus, numberText, repeatText] = process.argv.slice(2);
  const number = Number(numberText);
  const repeat = Number(repeatText);
  const lines = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.trim());
  for (const line of lines) {
    const d = JSON.parse(line);
    const options = { secondaryKey: d.secondary_key };
    const once = () => WebhooksManager.validateMessage(d.body, d.headers, d.primary_key, options);
    if ((await once()) !== true) {
      throw new Error(`node SDK rejects the ${d.size}-byte delivery (older than 10 min?)`);
    }
    await batch(once, number); // warm-up
    const perCall = [];
    for (let r = 0; r < repeat; r++) {
      perCall.push(await batch(once, number));
    }
    perCall.sort((a, b) => a - b);
    console.log(JSON.stringify({
      impl: 'node box-node-sdk',
      size: d.size,
      median_ns: perCall[Math.floor(perCall.length / 2)],
      min_ns: perCall[0],
      number,
      repeat,
    }));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
