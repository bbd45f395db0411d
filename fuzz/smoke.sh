#!/usr/bin/env bash
# Builds every fuzz target and runs each for a short smoke (docs/FUZZING.md).
#
#   bash fuzz/smoke.sh [SECONDS]      # default 30 s per target
#
# First replays every input under fuzz/regressions/<target>/ (each must pass),
# then fuzzes from fuzz/seeds/<target>/ (and, for the targets that take a raw
# body, crates/boxhook-core/fixtures/) into fuzz/corpus/<target>/ (ignored by
# git). Exits non-zero on the first crash; libFuzzer leaves the input in
# fuzz/artifacts/<target>/. Only stable Rust exists here, hence RUSTC_BOOTSTRAP.
set -euo pipefail

secs="${1:-30}"
targets="${FUZZ_TARGETS:-verify escaped_form parse stack v1 diagnose}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "smoke: building targets: $targets"
for target in $targets; do
    cargo fuzz build "$target"
done

summary=()
for target in $targets; do
    regressions=(fuzz/regressions/"$target"/*)
    if [ -e "${regressions[0]}" ]; then
        echo "smoke: $target: replaying ${#regressions[@]} regression input(s)"
        cargo fuzz run "$target" "${regressions[@]}"
    fi

    mkdir -p "fuzz/corpus/$target"
    # escaped_form and parse take raw bodies: the fixture corpus itself is
    # a seed directory for them (read only; new inputs go to the first dir).
    case "$target" in
        verify) dict=(-dict=fuzz/dicts/verify.dict) extra=() ;;
        v1) dict=(-dict=fuzz/dicts/v1.dict) extra=() ;;
        escaped_form | parse)
            dict=(-dict=fuzz/dicts/json.dict)
            extra=(crates/boxhook-core/fixtures)
            ;;
        # diagnose: a slow input (a body over the repair cap) must still
        # finish well within 10 s.
        diagnose)
            dict=(-dict=fuzz/dicts/json.dict -timeout=10)
            extra=(crates/boxhook-core/fixtures)
            ;;
        *) dict=() extra=() ;;
    esac
    log="$(mktemp)"
    echo "smoke: $target: fuzzing for ${secs} s"
    if ! cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" "${extra[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "smoke: $target FAILED; crash input under fuzz/artifacts/$target/"
        exit 1
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    summary+=("$target: ${secs} s, ${execs:-?} executions, no crash")
    rm -f "$log"
done

printf 'smoke: %s\n' "${summary[@]}"
