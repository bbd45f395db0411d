# Sourced by benches/load/work.sh and benches/load/postgres.sh: graphile-worker
# (npm) with a no-op task on the same PostgreSQL as boxhook's worker.
#
#   graphile_install            npm install graphile-worker into a temp dir
#                               (removed on exit by graphile_cleanup)
#   graphile_noop URL JOBS CONCURRENCY [LOCAL_QUEUE]
#                               enqueue JOBS jobs with add_jobs, drain them,
#                               print "N jobs in S s: R/s" (benches/load/graphile_noop.js)

graphile_dir=""
graphile_install() {
  command -v npm >/dev/null || { echo "graphile.sh: npm is not installed (apt-get install npm)" >&2; return 1; }
  graphile_dir="$(mktemp -d /tmp/boxhook-graphile-XXXXXX)"
  (cd "$graphile_dir" && timeout 300 npm install --no-audit --no-fund --loglevel=error graphile-worker >npm.log 2>&1) || {
    echo "graphile.sh: npm install graphile-worker failed; see $graphile_dir/npm.log" >&2; return 1; }
  echo "graphile-worker $(node -p "require('$graphile_dir/node_modules/graphile-worker/package.json').version"), node $(node --version)"
}
graphile_cleanup() { [[ -n "$graphile_dir" ]] && rm -rf "$graphile_dir"; graphile_dir=""; }
graphile_noop() {
  local result
  result="$(NODE_PATH="$graphile_dir/node_modules" timeout 600 node "$root/benches/load/graphile_noop.js" "$@" 2>&1)" || {
    echo "graphile.sh: graphile_noop $2 jobs failed: $result" >&2; return 1; }
  sed -n 's/^GRAPHILE_RESULT jobs=\([0-9]*\) seconds=\([0-9.]*\) per_second=\([0-9]*\).*/\1 jobs in \2 s: \3\/s/p' <<<"$result"
}
