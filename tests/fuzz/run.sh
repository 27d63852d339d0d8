#!/usr/bin/env bash
# Runs every fuzz target of a fuzz build for a bounded time (docs/fuzzing.md):
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS [RUNS]]
#
# SECONDS per target (default 60); RUNS, when given, also stops each target
# after that many inputs (a long run: `tests/fuzz/run.sh build-fuzz 7200 1000000`).
# FUZZ_TARGETS="scenario run_db" runs only those targets (default: all four).
#
# BUILD_DIR is a build configured with -DMTF_FUZZ=ON (clang) and built with
# `--target mtf_fuzz`. Each target starts from a copy of its seed corpus in a
# scratch folder (the shipped scenarios, agent files and small run databases
# made here with the build's own tools; the repository is never written) and
# runs with hang detection (-timeout=10 s per input), a memory limit
# (-rss_limit_mb=2048) and leak detection on. Exit status 0: every target ran
# clean; otherwise the failing targets are named with their reproducer files,
# and the scratch folder is kept.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "usage: $0 BUILD_DIR [SECONDS [RUNS]]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=${2:-60}
runs=${3:+-runs=$3}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$build/fuzz
targets=${FUZZ_TARGETS:-scenario experiment agent_file run_db}
for t in $targets; do
  [ -x "$bin/fuzz_$t" ] || { echo "fuzz: $bin/fuzz_$t missing: configure with -DMTF_FUZZ=ON and build --target mtf_fuzz" >&2; exit 2; }
done
command -v sqlite3 >/dev/null || { echo "fuzz: the sqlite3 command line tool is needed to make the run database seeds" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mtf-fuzz.XXXXXX")
keep=0
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT
mkdir -p "$work/tmp"
export TMPDIR=$work/tmp
# Stack traces with every report (undefined behaviour aborts: the build has
# -fno-sanitize-recover); leaks are found by LeakSanitizer at each input's end.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# --- Seeds
corpus=$work/corpus
mkdir -p "$corpus/scenario" "$corpus/experiment" "$corpus/agent_file" "$corpus/run_db"
for t in scenario experiment; do
  cp "$src"/scenarios/*.json "$src"/tests/data/*.json "$src"/tests/fuzz/seed_experiment.json "$corpus/$t/"
done
"$bin/mtf_fuzz_agent_seeds" "$corpus/agent_file"
# Run databases: a plain run and an experiment, cut to a few rows of each table
# and to 512-byte pages, so that each seed is tens of kilobytes.
"$build/mtfsim" run "$src/tests/data/tiny.json" --out "$work/plain.sqlite" --quiet >/dev/null
"$build/mtfsim" run "$src/tests/fuzz/seed_experiment.json" --out "$work/experiment.sqlite" --quiet >/dev/null
for db in plain experiment; do
  sqlite3 "$work/$db.sqlite" "DELETE FROM transitions WHERE rowid > 6; DELETE FROM sessions WHERE rowid > 4;
    DELETE FROM user_days WHERE rowid > 4; DELETE FROM impressions WHERE rowid > 6;
    PRAGMA page_size = 512; VACUUM;"
  cp "$work/$db.sqlite" "$corpus/run_db/$db.sqlite"
done

# --- Runs
failed=""
for t in $targets; do
  dict=""
  case $t in scenario|experiment) dict="-dict=$src/tests/fuzz/json.dict" ;; esac
  mkdir -p "$work/artifacts/$t"
  echo "fuzz: $t for $seconds s${runs:+ or ${runs#-runs=} inputs}"
  rc=0
  start=$(date +%s)
  "$bin/fuzz_$t" -max_total_time="$seconds" $runs -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" $dict "$corpus/$t" \
    >"$work/$t.log" 2>&1 || rc=$?
  echo "  wall: $(( $(date +%s) - start )) s"
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$work/$t.log" | sed "s/^/  /" || true
  if [ "$rc" != 0 ]; then
    keep=1
    reproducer=$(ls "$work/artifacts/$t/" 2>/dev/null | head -1)
    echo "fuzz: $t FAILED (exit $rc); reproducer: $work/artifacts/$t/$reproducer" >&2
    echo "fuzz: log $work/$t.log; reproduce: $bin/fuzz_$t $work/artifacts/$t/$reproducer" >&2
    grep -E "ERROR|SUMMARY|terminate|what\(\)" "$work/$t.log" | head -5 | sed "s/^/  /" >&2 || true
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: failed:$failed (scratch folder kept: $work)" >&2
  exit 1
fi
echo "fuzz: every target ran clean for $seconds s"
