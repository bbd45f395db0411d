#!/usr/bin/env bash
# `boxhook work` on stored events, one run: how many events per second each
# way of handing them over finishes, on the same store and machine.
#   work --exec true         a no-op command per event (fork + exec of sh)
#   work --pipe python3 ...  one trivial Python process per worker slot,
#                            reading each JSON line and answering `ok`
#   work --forward URL       a signed POST per event to a local 200 server
#                            (bare_server), connections kept alive
#   worker_noop              the library worker with a no-op in-process
#                            handler: the claim and the settle alone, the
#                            ceiling of every row above; one event per
#                            round trip (--batch 1) and BATCH per round
#                            trip (Worker::batch)
#   graphile-worker          (STORE=postgres) the npm job queue with a no-op
#                            task on the same server, CONCURRENCY jobs at
#                            once, without and with its own batching
#                            (localQueue BATCH): installed by this script
#                            into a temp dir (npm), removed at the end
#   serve                    (with wrk installed) the receiver's accepted
#                            deliveries/s on the same store kind, for the
#                            forward ratio
# Each worker row fills a fresh store with COUNT pending events (fill_store:
# Box's fixture shapes, 0.25-2.5 KB) and times `work --once` until all are
# done; the script checks that every one is. STORE=postgres runs the same on
# a throwaway durable PostgreSQL (fsync=on, synchronous_commit=on) started
# from Debian's binaries as `nobody`, as benches/load/postgres.sh does.
# 127.0.0.1 only; everything started is stopped.
#
# The work rows run with `work`'s default --batch (16).
#
#   bash benches/load/work.sh   # STORE=sqlite COUNT=20000 EXEC_COUNT=3000 CONCURRENCY=8 BATCH=64
#                               # DURATION=8 SERVE_COUNT=300000 (serve's corpus: raise it
#                               # if serve runs out of new events, the script says so)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
STORE="${STORE:-sqlite}"
COUNT="${COUNT:-20000}"
EXEC_COUNT="${EXEC_COUNT:-3000}"
CONCURRENCY="${CONCURRENCY:-8}"
BATCH="${BATCH:-64}"
DURATION="${DURATION:-8}"
SERVE_COUNT="${SERVE_COUNT:-300000}"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/load-work"
rm -rf "$out"; mkdir -p "$out"

cargo build --release --quiet -p boxhook-cli
cargo build --release --quiet -p boxhook-benches --bin fill_store --bin bare_server --bin sign_corpus --bin worker_noop
bin="$target/release"

pids=()
pgdir=""
source "$root/benches/load/graphile.sh"
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  graphile_cleanup
  if [[ -n "$pgdir" ]]; then
    runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
}
trap cleanup EXIT

# fresh NAME: prints the --store value of a new, empty store for NAME.
fresh() {
  if [[ "$STORE" == postgres ]]; then
    runuser -u nobody -- "$pgbin/createdb" -h "$pgdir" -p "$port" -U postgres "$1"
    echo "postgres://postgres@localhost/$1?host=$pgdir&port=$port"
  else
    echo "sqlite:$out/$1.sqlite"
  fi
}
case "$STORE" in
  sqlite) ;;
  postgres)
    pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    pgdir="$(mktemp -d /tmp/boxhook-work-pg-XXXXXX)"
    chown nobody "$pgdir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    runuser -u nobody -- "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 >/dev/null
    runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
      -o "-p $port -k $pgdir -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200" start >/dev/null
    ;;
  *) echo "work.sh: STORE is sqlite or postgres, not $STORE" >&2; exit 2 ;;
esac

echo "machine: $(nproc) cores, $(rustc --version); store: $STORE"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

keys=(--primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey)
cat >"$out/handler.py" <<'EOF'
import json, sys
for line in sys.stdin:
    json.loads(line)
    print("ok", flush=True)
EOF

# work NAME EVENTS HANDLER-ARGS...: fills a fresh store with EVENTS pending
# events, times `work --once` on them; prints "N events in S s: R/s".
work() {
  local name="$1" events="$2"; shift 2
  local store start end done_count
  store="$(fresh "$name")"
  "$bin/fill_store" --store "$store" --events "$events" --pending "$events" \
    --from-ms "$(( $(date +%s) * 1000 - events ))" --step-ms 1 >"$out/$name.fill" 2>&1
  start="$(date +%s.%N)"
  timeout 600 "$bin/boxhook" "${keys[@]}" work --store "$store" --concurrency "$CONCURRENCY" \
    --once --timeout 10 "$@" >"$out/$name.out" 2>"$out/$name.err" || {
    echo "work.sh: $name failed; see $out/$name.err" >&2; exit 1; }
  end="$(date +%s.%N)"
  done_count="$("$bin/boxhook" inbox list --all --json --store "$store" --state done | wc -l)"
  [[ "$done_count" == "$events" ]] || { echo "work.sh: $name: $done_count of $events done" >&2; exit 1; }
  awk -v n="$events" -v s="$start" -v e="$end" 'BEGIN { printf "%d events in %.1f s: %.0f/s", n, e - s, n / (e - s) }'
}

# noop NAME BATCH: the library worker, no handler, claiming BATCH events per
# round trip, on a store filled the same way.
noop() {
  local name="$1" batch="$2" store start
  store="$(fresh "$name")"
  "$bin/fill_store" --store "$store" --events "$COUNT" --pending "$COUNT" \
    --from-ms "$(( $(date +%s) * 1000 - COUNT ))" --step-ms 1 >"$out/$name.fill" 2>&1
  timeout 600 "$bin/worker_noop" --store "$store" --concurrency "$CONCURRENCY" --batch "$batch" >"$out/$name.out" 2>&1 || {
    echo "work.sh: worker_noop failed; see $out/$name.out" >&2; exit 1; }
  local result; result="$(grep '^WORKER_RESULT' "$out/$name.out")"
  local events; events="$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$result")"
  [[ "$events" == "$COUNT" ]] || { echo "work.sh: $name: $result" >&2; exit 1; }
  sed -n 's/.* events=\([0-9]*\) seconds=\([0-9.]*\) per_second=\([0-9]*\).*/\1 events in \2 s: \3\/s/p' <<<"$result"
}

exec_row="$(work exec "$EXEC_COUNT" --exec true)"; exec_rate="$(awk -F': ' '{ sub("/s", "", $2); print $2 }' <<<"$exec_row")"
pipe_row="$(work pipe "$COUNT" --pipe "python3 $out/handler.py")"; pipe_rate="$(awk -F': ' '{ sub("/s", "", $2); print $2 }' <<<"$pipe_row")"
timeout 900 "$bin/bare_server" --listen 127.0.0.1:0 --for-seconds 800 >"$out/bare.stdout" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do grep -q '^listening on' "$out/bare.stdout" && break; sleep 0.1; done
bare="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/bare.stdout")"
forward_row="$(work forward "$COUNT" --forward "$bare")"; forward_rate="$(awk -F': ' '{ sub("/s", "", $2); print $2 }' <<<"$forward_row")"
noop1_row="$(noop noop1 1)"
noop_row="$(noop noop "$BATCH")"; noop_rate="$(awk -F': ' '{ sub("/s", "", $2); print $2 }' <<<"$noop_row")"
# graphile-worker on the same server, the same number of jobs, each on a
# database of its own.
gw_row=""; gwq_row=""
if [[ "$STORE" == postgres ]]; then
  graphile_install
  for db in gw gwq; do runuser -u nobody -- "$pgbin/createdb" -h "$pgdir" -p "$port" -U postgres "$db"; done
  gw_row="$(graphile_noop "postgres://postgres@localhost/gw?host=$pgdir&port=$port" "$COUNT" "$CONCURRENCY")"
  gwq_row="$(graphile_noop "postgres://postgres@localhost/gwq?host=$pgdir&port=$port" "$COUNT" "$CONCURRENCY" "$BATCH")"
  graphile_cleanup
fi
rate_of() { awk -F': ' '{ sub("/s", "", $2); print $2 }' <<<"$1"; }
echo "load after the workers: $(cut -d' ' -f1-3 /proc/loadavg)"

# serve's accepted deliveries/s on a fresh store of the same kind (wrk for
# DURATION s on new, pre-signed 3 KiB events), unless wrk is missing.
serve_rate=""
if command -v wrk >/dev/null; then
  "$bin/sign_corpus" load --count "$SERVE_COUNT" --size 3072 --threads 2 --out "$out/corpus" >/dev/null
  serve_store="$(fresh serve)"
  timeout "$((DURATION + 120))" "$bin/boxhook" "${keys[@]}" serve --listen 127.0.0.1:0 --store "$serve_store" \
    >"$out/serve.stdout" 2>"$out/serve.stderr" &
  pids+=("$!")
  url=""
  for _ in $(seq 1 200); do
    sleep 0.1
    url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$out/serve.stdout" 2>/dev/null || true)"
    [[ -n "$url" ]] && break
  done
  [[ -n "$url" ]] || { echo "work.sh: serve did not start; see $out/serve.stderr" >&2; exit 1; }
  BOXHOOK_CORPUS="$out/corpus" BOXHOOK_THREADS=2 timeout "$((DURATION + 60))" \
    wrk -t2 -c32 -d"${DURATION}s" -s "$root/benches/load/deliveries.lua" "$url" >"$out/serve.wrk" 2>&1 || true
  result="$(grep '^BOXHOOK_RESULT' "$out/serve.wrk")"
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  if [[ "$(get non2xx)" == 0 && "$(get repeats)" == 0 ]]; then
    serve_rate="$(awk -v r="$(get requests)" -v d="$(get duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  else
    echo "work.sh: serve ran out of new events or failed, no serve row (raise SERVE_COUNT): $result" >&2
  fi
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "| run ($STORE, --concurrency $CONCURRENCY) | figure |"
echo "|---|---:|"
echo "| work --exec true | $exec_row |"
echo "| work --pipe (trivial Python handler) | $pipe_row |"
echo "| work --forward (local 200 server) | $forward_row |"
echo "| library worker, no-op in-process handler (worker_noop --batch 1) | $noop1_row |"
echo "| library worker, no-op in-process handler, batched (worker_noop --batch $BATCH) | $noop_row |"
if [[ -n "$gw_row" ]]; then
  echo "| graphile-worker, no-op task, concurrency $CONCURRENCY | $gw_row |"
  echo "| graphile-worker, no-op task, concurrency $CONCURRENCY, localQueue $BATCH | $gwq_row |"
  awk -v a="$(rate_of "$noop1_row")" -v b="$(rate_of "$gw_row")" -v c="$noop_rate" -v d="$(rate_of "$gwq_row")" \
    'BEGIN { printf "| library worker / graphile-worker: unbatched, batched (goal >= 1) | %.2f, %.2f |\n", a / b, c / d }'
fi
[[ -n "$serve_rate" ]] && echo "| serve, accepted (wrk -t2 -c32, ${DURATION} s) | $serve_rate deliveries/s |"
awk -v p="$pipe_rate" -v e="$exec_rate" 'BEGIN { printf "| pipe / exec (goal >= 10) | %.1f |\n", p / e }'
awk -v p="$pipe_rate" -v f="$forward_rate" -v c="$noop_rate" 'BEGIN { printf "| pipe / no-op worker, forward / no-op worker | %.2f, %.2f |\n", p / c, f / c }'
[[ -n "$serve_rate" ]] && awk -v f="$forward_rate" -v s="$serve_rate" 'BEGIN { printf "| forward / serve (goal >= 0.5) | %.2f |\n", f / s }'
exit 0
