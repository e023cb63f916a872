#!/usr/bin/env bash
# `make fuzz` (README "Reliability"): every fuzz target of fuzz/ for a fixed number of
# executions on the nightly toolchain with cargo-fuzz, then a table of executions and
# crashes per target and in all. Not part of `make test`.
#
# FUZZ_RUNS executions per target (default 700,000: 15 targets, 10.5 million in all).
# FUZZ_TARGETS limits the run to some targets (space-separated names).
# The corpus of each target is committed as one archive, fuzz/corpus/<target>.tar.gz
# (thousands of small inputs; one file in git each), unpacked into a scratch directory.
# FUZZ_CMIN=1 merges what the run found into it, minimised with `cargo fuzz cmin`, and
# writes the archive again (how the committed corpus was made). Every target uses the JSON
# dictionary fuzz/dict/json.dict (tokens and boundary numbers).
#
# Built without a sanitizer (`-s none`): Offramp has no `unsafe` code, so what the fuzzer
# looks for is a panic (an `unwrap`, an index, an overflow: debug assertions and overflow
# checks are on), an abort, a hang (`-timeout`) or runaway memory (`-rss_limit_mb`); an
# AddressSanitizer build would only add checks of the dependencies' `unsafe` code, at half
# the speed. `FUZZ_SANITIZER=address make fuzz` builds with it.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${FUZZ_RUNS:-700000}"
SANITIZER="${FUZZ_SANITIZER:-none}"
TOOLCHAIN=nightly
export CARGO_INCREMENTAL=0

rustup toolchain list | grep -q "^${TOOLCHAIN}" || rustup toolchain install "$TOOLCHAIN" --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cd fuzz
targets="${FUZZ_TARGETS:-$(cargo +"$TOOLCHAIN" fuzz list)}"
build=(-s "$SANITIZER" --codegen-units 16)
cargo +"$TOOLCHAIN" fuzz build "${build[@]}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
total_runs=0
total_crashes=0
results=()
for target in $targets; do
    # The committed corpus is read, never written: new inputs go to a scratch directory.
    corpus="$logs/$target.corpus"
    mkdir -p "$corpus" "$logs/$target.new"
    [ -f "corpus/$target.tar.gz" ] && tar -xzf "corpus/$target.tar.gz" -C "$corpus"
    # Seeds written by scripts/fuzz_seeds.py (fuzz/corpus/<target>/, not committed) join in.
    cp "corpus/$target"/* "$corpus/" 2>/dev/null || true
    before=$(find "artifacts/$target" -type f 2>/dev/null | wc -l || true)
    echo "== $target: $RUNS executions"
    status=0
    cargo +"$TOOLCHAIN" fuzz run "${build[@]}" "$target" "$logs/$target.new" "$corpus" -- \
        -runs="$RUNS" -dict=dict/json.dict -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1 || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' | tail -1 || true)
    after=$(find "artifacts/$target" -type f 2>/dev/null | wc -l || true)
    crashes=$((after - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # stopped by a crash whose input was not written (see the log below)
    fi
    if [ "$crashes" -ne 0 ]; then
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$logs/$target.log" | head -20 || true
    fi
    if [ "${FUZZ_CMIN:-0}" = 1 ]; then
        cp -n "$logs/$target.new"/* "$corpus/" 2>/dev/null || true
        cargo +"$TOOLCHAIN" fuzz cmin "${build[@]}" "$target" "$corpus" >"$logs/$target.cmin" 2>&1
        # Reproducible archives: sorted, no times, no owners.
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$corpus" -cf - . | gzip -n -9 \
            >"corpus/$target.tar.gz"
    fi
    total_runs=$((total_runs + ${runs:-0}))
    total_crashes=$((total_crashes + crashes))
    results+=("$(printf '%-28s %12s %8s' "$target" "${runs:-0}" "$crashes")")
done

printf '\n%-28s %12s %8s\n' target executions crashes
printf '%s\n' "${results[@]}"
printf '%-28s %12s %8s\n' total "$total_runs" "$total_crashes"
[ "$total_crashes" -eq 0 ]
