#!/usr/bin/env bash
# Nothing lost: atomic run databases and resumed experiments (run by ctest as
# resume_tests). A tiny experiment (tests/data/tiny_experiment.json: progressive
# rounds, three agents, ES and BO, offline evaluation, two A/B replicates) is
# run once uninterrupted; then, for each kill point, a run is killed with SIGKILL
# when it logs that line (mtfsim's MTFSIM_TEST_KILL_ON hook), the earlier
# database must be untouched, the killed run must be refused by `report`, and
# `run --resume` must finish with tables identical to the uninterrupted run's
# (every table, every row, every value; only timings are left out).
# Usage: resume_test.sh MTFSIM SOURCE_DIR
set -u
mtfsim=$1
src=$2
scenario=$src/tests/data/tiny_experiment.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

# Rows of table $1 (columns $2) in one database and not in the other, either way,
# plus the difference of their row counts: 0 when the tables are identical.
# EXCEPT compares values exactly (reals to the bit, blobs byte by byte).
differing_rows() {
  local table=$1 cols=$2 a=$3 b=$4
  sqlite3 "$a" "ATTACH '$b' AS b;
    SELECT (SELECT count(*) FROM (SELECT $cols FROM main.$table EXCEPT SELECT $cols FROM b.$table))
         + (SELECT count(*) FROM (SELECT $cols FROM b.$table EXCEPT SELECT $cols FROM main.$table))
         + abs((SELECT count(*) FROM main.$table) - (SELECT count(*) FROM b.$table));"
}

# Every table of the two runs, timings left out: the run row's clock times and
# thread count, the seconds figures and the seconds inside OPE rows' details.
same_run() {
  local a=$1 b=$2 total=0 n
  local metrics_cols="rowid, section, subject, metric,
    CASE WHEN metric IN ('seconds', 'wall_seconds') THEN NULL ELSE value END,
    ci_low, ci_high, p_value, rep, n, json_remove(details, '$.seconds')"
  for spec in \
      "run|scenario_name, scenario_json, seed, code_version, schema_version, state_dim, action_dim, state_features, action_names" \
      "groups|rowid, *" "sessions|rowid, *" "transitions|rowid, *" "user_days|rowid, *" \
      "impressions|rowid, *" "summary|rowid, *" "metrics|$metrics_cols" "agents|rowid, *" \
      "sqlite_master|type, name, sql"; do
    n=$(differing_rows "${spec%%|*}" "${spec#*|}" "$a" "$b")
    if [ "$n" != 0 ]; then echo "table ${spec%%|*}: $n rows differ"; total=1; fi
  done
  return $total
}

if ! command -v sqlite3 >/dev/null; then echo "resume_test: needs sqlite3"; exit 1; fi

check "the uninterrupted run" "$mtfsim" run "$scenario" --out "$work/whole.sqlite" --quiet
check "a finished run leaves no .partial file" test ! -e "$work/whole.sqlite.partial"
check "a finished run has no checkpoint tables" \
  test "$(sqlite3 "$work/whole.sqlite" "SELECT count(*) FROM sqlite_master WHERE name LIKE 'resume%'")" = 0
check "a second run gives the same tables" "$mtfsim" run "$scenario" --out "$work/again.sqlite" --quiet --threads 1
check "  (identical to the first)" same_run "$work/whole.sqlite" "$work/again.sqlite"
# The convergence block: the progressive agent's checkpoints after each of its
# two rounds of 20 steps and its verdict; TD3's checkpoints at 8, 16 and its cap 30.
check "the progressive agent's convergence checkpoints are its rounds" test \
  "$(sqlite3 "$work/whole.sqlite" "SELECT group_concat(rep) FROM (SELECT rep FROM metrics WHERE section = 'curve'
     AND subject = 'IRL' AND metric = 'oracle/vs_baseline' ORDER BY rep)")" = "20,40"
check "  with a verdict" test \
  "$(sqlite3 "$work/whole.sqlite" "SELECT count(*) FROM metrics WHERE section = 'training' AND subject = 'IRL' AND metric = 'converged'")" = 1
check "TD3's checkpoints double up to its cap" test \
  "$(sqlite3 "$work/whole.sqlite" "SELECT group_concat(rep) FROM (SELECT rep FROM metrics WHERE section = 'curve'
     AND subject = 'TD3' AND metric = 'oracle/vs_baseline' ORDER BY rep)")" = "8,16,30"

# Kill points, one per stage: inside the exploration (before any checkpoint,
# and in its second progressive round, after the first round's checkpoint of
# the simulator's users and the deployed agent), inside training (between agents, inside TD3's training after a
# checkpoint taken at every step, and after TD3's convergence checkpoint at step 16, whose oracle rows the
# resumed run must write again alike), the online learners (before any round's
# checkpoint; after ES's first round, so ES replays it; after BO's first
# round, with ES finished), the offline
# evaluation, the oracle (done, before its checkpoint) and the A/B test
# (after its first replicate's checkpoint).
i=0
for point in "exploration: days 0-0" "exploration: days 1-1" "trained BC" "checkpoint: TD3 at step 12 of 30" \
             "convergence: TD3 at step 16" "learner ES: round 1/2" \
             "learner ES: round 2/2" "learner BO: round 2/2" \
             "offline: BO evaluated" "oracle: " "A/B replicate 2/2"; do
  i=$((i + 1))
  out=$work/k$i.sqlite
  cp "$work/again.sqlite" "$out"  # an earlier run at the path must survive the kill
  before=$(md5sum < "$out")
  MTFSIM_TEST_KILL_ON="$point" "$mtfsim" run "$scenario" --out "$out" --quiet --checkpoint-every 0 >/dev/null 2>&1
  rc=$?
  check "[$point] the run was killed (SIGKILL: exit 137)" test "$rc" = 137
  check "[$point] the earlier database is untouched" test "$(md5sum < "$out")" = "$before"
  check "[$point] the killed run is in .partial" test -s "$out.partial"
  check "[$point] report refuses the unfinished run" \
    bash -c "! '$mtfsim' report '$out.partial' 2> '$work/err' && grep -q 'did not finish' '$work/err' && grep -q -- '--resume' '$work/err'"
  check "[$point] report --allow-partial reads it" "$mtfsim" report "$out.partial" --allow-partial
  check "[$point] a fresh run refuses to discard it" \
    bash -c "! '$mtfsim' run '$scenario' --out '$out' --quiet 2> '$work/err' && grep -q 'unfinished run' '$work/err'"
  check "[$point] run --resume finishes" "$mtfsim" run "$scenario" --out "$out" --quiet --resume --threads 1
  check "[$point] and leaves no .partial file" test ! -e "$out.partial"
  check "[$point] the resumed run equals the uninterrupted one" same_run "$work/whole.sqlite" "$out"
done

# Killed twice: the resumed run is killed again, later, and resumed again.
out=$work/twice.sqlite
MTFSIM_TEST_KILL_ON="trained TD3" "$mtfsim" run "$scenario" --out "$out" --quiet >/dev/null 2>&1
MTFSIM_TEST_KILL_ON="A/B replicate 1/2" "$mtfsim" run "$scenario" --out "$out" --quiet --resume >/dev/null 2>&1
check "killed twice: the second kill left the run unfinished" test -s "$out.partial"
check "killed twice: resume finishes" "$mtfsim" run "$scenario" --out "$out" --quiet --resume
check "killed twice: equal to the uninterrupted run" same_run "$work/whole.sqlite" "$out"

# Out of core: the transitions in memory-mapped column files give every table of
# the in-memory run; killed in the second progressive round and resumed, the
# database's transitions read back into new column files in chunks of 7 rows, too.
check "out of core" "$mtfsim" run "$scenario" --out "$work/ooc.sqlite" --quiet --out-of-core "$work/cols"
check "  equals the in-memory run" same_run "$work/whole.sqlite" "$work/ooc.sqlite"
check "  and removed its column files" test ! -e "$work/cols"
MTFSIM_TEST_KILL_ON="exploration: days 1-1" "$mtfsim" run "$scenario" --out "$work/ooc2.sqlite" --quiet \
  --out-of-core "$work/cols2" >/dev/null 2>&1
check "out of core, killed: the column files of the killed process stay" test -e "$work/cols2/rows.bin"
fails_with "  and are not overwritten" 2 "run: --out-of-core: expected a new (or empty) directory" \
  "$mtfsim" run "$scenario" --out "$work/ooc2.sqlite" --quiet --resume --out-of-core "$work/cols2"
check "out of core, resumed (read back in chunks of 7)" "$mtfsim" run "$scenario" --out "$work/ooc2.sqlite" --quiet \
  --resume --out-of-core "$work/cols3" --chunk-rows 7
check "  equals the in-memory run" same_run "$work/whole.sqlite" "$work/ooc2.sqlite"
# Killed after the exploration: the resumed run reads the transitions and the
# impressions (the weighted GAUC's, in their own scratch file) back at once.
MTFSIM_TEST_KILL_ON="trained BC" "$mtfsim" run "$scenario" --out "$work/ooc3.sqlite" --quiet \
  --out-of-core "$work/cols5" >/dev/null 2>&1
check "out of core, killed after the exploration: its impressions file stays" test -e "$work/cols5/impressions.bin"
check "  resumed" "$mtfsim" run "$scenario" --out "$work/ooc3.sqlite" --quiet --resume --out-of-core "$work/cols6"
check "  equals the in-memory run" same_run "$work/whole.sqlite" "$work/ooc3.sqlite"
check "  and removed its scratch files" test ! -e "$work/cols6"
fails_with "--out-of-core of a plain simulation" 2 "a plain simulation holds no transitions in memory" \
  "$mtfsim" run "$src/tests/data/tiny.json" --out "$work/plain.sqlite" --quiet --out-of-core "$work/cols4"

# --resume of another scenario (another seed) is refused; --force starts again.
MTFSIM_TEST_KILL_ON="trained BC" "$mtfsim" run "$scenario" --out "$work/s.sqlite" --quiet >/dev/null 2>&1
check "resume with another seed is refused" \
  bash -c "! '$mtfsim' run '$scenario' --out '$work/s.sqlite' --seed 7 --resume --quiet 2> '$work/err' && grep -q 'another scenario or seed' '$work/err'"
check "--force discards the unfinished run and starts again" "$mtfsim" run "$scenario" --out "$work/s.sqlite" --quiet --force
check "  (and finishes)" test ! -e "$work/s.sqlite.partial"
check "--resume without a .partial file runs from the start" "$mtfsim" run "$scenario" --out "$work/fresh.sqlite" --quiet --resume
check "  (equal to the uninterrupted run)" same_run "$work/whole.sqlite" "$work/fresh.sqlite"

finish resume_test
