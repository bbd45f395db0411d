// graphile-worker (npm) draining JOBS no-op jobs on the same PostgreSQL as
// boxhook's worker, for benches/load/graphile.sh:
//   NODE_PATH=DIR/node_modules node graphile_noop.js URL JOBS CONCURRENCY [LOCAL_QUEUE]
// Migrates graphile-worker's schema, enqueues JOBS jobs in bulk with its SQL
// graphile_worker.add_jobs (10,000 per statement), then runs a no-op task
// with CONCURRENCY jobs at once in this one process and times it from the
// start of the runner until every job succeeded and none is left in
// graphile_worker.jobs (a completed job's row is deleted: the last commit
// counts, as the last settle counts in boxhook's worker_noop). LOCAL_QUEUE > 1
// turns on graphile-worker's own batching (localQueue.size = LOCAL_QUEUE,
// completeJobBatchDelay = failJobBatchDelay = 0). Prints
// `GRAPHILE_RESULT jobs=… seconds=… per_second=…`; its own log is silenced.
"use strict";
const { Logger, run, runMigrations } = require("graphile-worker");
const { Pool } = require("pg");

async function main() {
  const [url, jobsArg, concurrencyArg, localQueueArg] = process.argv.slice(2);
  const jobs = parseInt(jobsArg, 10);
  const concurrency = parseInt(concurrencyArg, 10);
  const localQueue = parseInt(localQueueArg || "1", 10);
  if (!url || !(jobs > 0) || !(concurrency > 0)) {
    throw new Error("usage: graphile_noop.js URL JOBS CONCURRENCY [LOCAL_QUEUE]");
  }
  const logger = new Logger(() => () => {});
  await runMigrations({ connectionString: url, logger });
  const pool = new Pool({ connectionString: url, max: 2 });
  for (let from = 1; from <= jobs; from += 10000) {
    const to = Math.min(jobs, from + 9999);
    await pool.query(
      `SELECT count(*) FROM graphile_worker.add_jobs((
         SELECT array_agg(json_populate_record(null::graphile_worker.job_spec,
           json_build_object('identifier', 'noop', 'payload', json_build_object('id', i))))
         FROM generate_series($1::int, $2::int) i))`,
      [from, to],
    );
  }
  const preset =
    localQueue > 1
      ? { worker: { localQueue: { size: localQueue }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } }
      : undefined;
  let succeeded = 0;
  let finished;
  const allDone = new Promise((resolve) => (finished = resolve));
  const started = process.hrtime.bigint();
  const runner = await run({
    connectionString: url,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    pollInterval: 1000,
    logger,
    preset,
    taskList: { noop: async () => {} },
  });
  runner.events.on("job:success", () => {
    succeeded += 1;
    if (succeeded === jobs) {
      finished();
    }
  });
  await allDone;
  // The last completions' commits: until no row is left (at most 30 s).
  const left = async () =>
    (await pool.query("SELECT count(*)::int AS n FROM graphile_worker.jobs")).rows[0].n;
  const deadline = Date.now() + 30000;
  let remaining = await left();
  while (remaining !== 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    remaining = await left();
  }
  const ended = process.hrtime.bigint();
  await runner.stop();
  await pool.end();
  if (remaining !== 0) {
    throw new Error(`${remaining} of ${jobs} jobs are still in graphile_worker.jobs`);
  }
  const seconds = Number(ended - started) / 1e9;
  console.log(
    `GRAPHILE_RESULT jobs=${jobs} seconds=${seconds.toFixed(3)} per_second=${Math.round(jobs / seconds)}`,
  );
}

main().catch((error) => {
  console.error(`graphile_noop: ${error.message}`);
  process.exit(1);
});
