#!/usr/bin/env bash
# Per-verification time of Box's official SDKs against boxhook's verifier:
# same deliveries (1 KiB and 8 KiB FILE.UPLOADED bodies, both keys, signed
# seconds before), same machine, one run, same method (a warm-up batch, then
# REPEAT batches of NUMBER calls; the median batch's per-call time).
#
#   bash benches/peers/run.sh
#   NUMBER=2000 REPEAT=11 bash benches/peers/run.sh
#
# Installs the SDKs with .ci/install-oracles (PyPI and npm, pinned).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
NUMBER="${NUMBER:-5000}"
REPEAT="${REPEAT:-21}"
SIZES="${SIZES:-1024,8192}"
out="$root/target/peers"
mkdir -p "$out"

bash .ci/install-oracles
cargo build --release --quiet -p boxhook-benches --bin sign_corpus --bin verify_timing
bin="$root/target/release"
python="${BOXHOOK_ORACLE_DIR:-$root/target/oracles}/venv/bin/python"

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "$(rustc --version); $("$python" --version); node $(node --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

"$bin/sign_corpus" peers --sizes "$SIZES" --out "$out/corpus.jsonl"
: >"$out/results.jsonl"
timeout 600 "$bin/verify_timing" --corpus "$out/corpus.jsonl" --number "$NUMBER" --repeat "$REPEAT" \
  | tee -a "$out/results.jsonl"
timeout 600 "$python" benches/peers/time_python.py "$out/corpus.jsonl" "$NUMBER" "$REPEAT" \
  | tee -a "$out/results.jsonl"
timeout 600 node benches/peers/time_node.js "$out/corpus.jsonl" "$NUMBER" "$REPEAT" \
  | tee -a "$out/results.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["impl"], r["size"]): r["median_ns"] for r in rows}
sizes = sorted({r["size"] for r in rows})
def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print()
print("| body | boxhook | Python box-sdk-gen | Node box-node-sdk | vs Python | vs Node |")
print("|---|---:|---:|---:|---:|---:|")
for s in sizes:
    b = by[("boxhook", s)]
    p = by[("python box-sdk-gen", s)]
    n = by[("node box-node-sdk", s)]
    label = f"{s // 1024} KiB" if s % 1024 == 0 else f"{s} B"
    print(f"| {label} | {fmt(b)} | {fmt(p)} | {fmt(n)} | {p / b:.1f}x | {n / b:.1f}x |")
PY
