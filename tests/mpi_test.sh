#!/usr/bin/env bash
# mtfsim under mpirun (run by ctest as mpi_tests when the build has
# -DMTF_MPI=ON): a plain simulation sharded over 2 and 3 ranks, with 1 and 2
# threads per rank, writes a run database whose every table equals the one
# process's, row for row (the run table but its clock and thread fields);
# an experiment's protocol on 2 ranks writes one process's rows, and with
# --data-parallel the same rows on every rerun; killed and resumed, an
# experiment over ranks finishes with the uninterrupted run's rows; bench sim
# reports every rank; the commands that do not shard refuse to run under
# mpirun with more than one rank.
# Usage: mpi_test.sh MTFSIM SOURCE_DIR MPIEXEC
set -u
mtfsim=$1
src=$2
mpiexec=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
# As root in a container (CI) Open MPI needs --allow-run-as-root; --oversubscribe
# lets 3 ranks share 2 cores.
mpi=("$mpiexec" --oversubscribe --allow-run-as-root)

# tiny.json with more users, an exploring group (bounds, log densities) and impressions.
python3 - "$src/tests/data/tiny.json" "$work/sc.json" <<'PY'
import json, sys
sc = json.load(open(sys.argv[1]))
sc["population"]["size"] = 2500
sc["groups"].append({"name": "explore", "share": 0.3, "policy": {"type": "bounded_uniform", "bound": 0.15}})
sc["record"]["impressions"] = True
json.dump(sc, open(sys.argv[2], "w"))
PY

# sqlite3 -quote prints BLOBs in full, as hex (the default output stops a BLOB
# at its first zero byte: most of a state would go uncompared).
same_tables() {  # DB_A DB_B: every table equal, the run table but its clock and thread columns
  local a=$1 b=$2 t
  for t in $(sqlite3 "$a" "select name from sqlite_master where type = 'table' order by name"); do
    local q="select * from $t"
    [ "$t" = run ] && q="select scenario_name, scenario_json, seed, code_version, schema_version, state_dim,
      action_dim, state_features, action_names from run"
    if ! cmp -s <(sqlite3 -quote "$a" "$q") <(sqlite3 -quote "$b" "$q"); then echo "table $t differs"; return 1; fi
  done
  [ "$(sqlite3 "$a" "select count(*) from transitions")" -gt 1000 ] || { echo "too few transitions"; return 1; }
  [ "$(sqlite3 "$a" "select count(*) from impressions")" -gt 1000 ] || { echo "too few impressions"; return 1; }
}

check "one process" "$mtfsim" run "$work/sc.json" -q -t 1 --out "$work/one.sqlite"
check "2 ranks, 1 thread each" "${mpi[@]}" -np 2 "$mtfsim" run "$work/sc.json" -q -t 1 --out "$work/two.sqlite"
check "2 ranks: the tables equal one process's" same_tables "$work/one.sqlite" "$work/two.sqlite"
check "3 ranks, 2 threads each" "${mpi[@]}" -np 3 "$mtfsim" run "$work/sc.json" -q -t 2 --out "$work/three.sqlite"
check "3 ranks: the tables equal one process's" same_tables "$work/one.sqlite" "$work/three.sqlite"
# The printed summary (rank 0 alone prints) equals one process's.
check "summary printed once, as one process prints it" bash -c \
  "diff <('$mtfsim' run '$work/sc.json' -q -t 1 --no-record | grep -v ' s\$') \
        <(${mpi[*]} -np 2 '$mtfsim' run '$work/sc.json' -q -t 1 --no-record | grep -v ' s\$')"

check "bench sim on 2 ranks" "${mpi[@]}" -np 2 "$mtfsim" bench sim --users 600 --days 1 --threads 1
cp "$work/out" "$work/bench.out"
check "bench sim reports 2 ranks and each rank's peak memory" \
  grep -qE '"ranks":2,.*"peak_mb_per_rank":\[[0-9]+,[0-9]+\]' "$work/bench.out"

# An experiment (exploration, progressive rounds, training, online learners,
# offline evaluation, oracle, A/B): every row but the clock's equals one process's.
same_experiment() {
  local a=$1 b=$2 t
  for t in groups sessions transitions user_days impressions summary agents; do
    cmp -s <(sqlite3 -quote "$a" "select * from $t") <(sqlite3 -quote "$b" "select * from $t") ||
      { echo "table $t differs"; return 1; }
  done
  # The clock's rows, the "seconds" inside the details and the rank count differ.
  local q="select * from metrics where metric not in ('seconds', 'wall_seconds', 'ranks')" clock='s/"seconds":[-+.0-9eE]+//g'
  if ! cmp -s <(sqlite3 -quote "$a" "$q" | sed -E "$clock") <(sqlite3 -quote "$b" "$q" | sed -E "$clock"); then
    echo "table metrics differs"
    diff <(sqlite3 -quote "$a" "$q" | sed -E "$clock") <(sqlite3 -quote "$b" "$q" | sed -E "$clock") | head
    return 1
  fi
  for t in oracle ab curve; do
    [ "$(sqlite3 "$a" "select count(*) from metrics where section = '$t'")" -gt 0 ] || { echo "no $t rows"; return 1; }
  done
}
check "experiment, one process" "$mtfsim" run "$src/tests/data/tiny_experiment.json" -q -t 1 --out "$work/e1.sqlite"
check "experiment, 2 ranks" "${mpi[@]}" -np 2 "$mtfsim" run "$src/tests/data/tiny_experiment.json" -q -t 1 \
  --out "$work/e2.sqlite"
check "experiment: 2 ranks write one process's rows" same_experiment "$work/e1.sqlite" "$work/e2.sqlite"
check "  and the report says how many ranks ran it" bash -c \
  "'$mtfsim' report '$work/e2.sqlite' | grep -q '1 thread in each of 2 MPI ranks (results do not depend on it)'"

# The experiment with its rows sharded (--data-parallel): each rank holds its
# users' rows, and training (the training stage and the progressive rounds)
# and the offline evaluation run over the ranks' shards: deterministic for a
# rank count, and other agents than the replicated run's.
check "experiment, 2 ranks, data-parallel" "${mpi[@]}" -np 2 "$mtfsim" run "$src/tests/data/tiny_experiment.json" \
  -q -t 1 --data-parallel --out "$work/p1.sqlite"
check "experiment, 2 ranks, data-parallel again" "${mpi[@]}" -np 2 "$mtfsim" run \
  "$src/tests/data/tiny_experiment.json" -q -t 1 --data-parallel --out "$work/p2.sqlite"
check "  the same rows twice" same_experiment "$work/p1.sqlite" "$work/p2.sqlite"
check "experiment, 2 ranks, data-parallel, out of core" "${mpi[@]}" -np 2 "$mtfsim" run \
  "$src/tests/data/tiny_experiment.json" -q -t 1 --data-parallel --out "$work/p3.sqlite" --out-of-core "$work/pcols"
check "  each rank's shard mapped gives the in-memory rows" same_experiment "$work/p1.sqlite" "$work/p3.sqlite"
check "  and the ranks' column files are gone" bash -c "! ls -d '$work'/pcols* 2>/dev/null"
check "  every agent other bits than the replicated run's" bash -c "for n in BC IRL TD3; do
  q=\"select hex(data) from agents where name = '\$n'\"
  [ -n \"\$(sqlite3 '$work/p1.sqlite' \"\$q\")\" ] && [ \"\$(sqlite3 '$work/p1.sqlite' \"\$q\")\" != \"\$(sqlite3 '$work/e2.sqlite' \"\$q\")\" ] || exit 1
done"
check "  the training rows count every rank's shard" test \
  "$(sqlite3 "$work/p1.sqlite" "select value from metrics where section = 'training' and subject = 'BC' and metric = 'transitions'")" = \
  "$(sqlite3 "$work/p1.sqlite" "select count(*) || '.0' from transitions t join groups g on g.grp = t.grp
     where g.name in ('explore', 'gauss') and t.time < (select json_extract(scenario_json, '$.days') from run) * 86400")"
# Progressive rounds that keep the better policy: each round's acceptance
# check (FQE on the held-out users' rows) fits over the ranks' shards.
python3 - "$src/tests/data/tiny_experiment.json" "$work/ifb.json" <<'PY'
import json, sys
sc = json.load(open(sys.argv[1]))
sc["experiment"]["progressive"][0].update({"accept": "if_better", "holdout": 0.3})
json.dump(sc, open(sys.argv[2], "w"))
PY
check "if_better, 2 ranks, data-parallel" "${mpi[@]}" -np 2 "$mtfsim" run "$work/ifb.json" -q -t 1 --data-parallel \
  --out "$work/q1.sqlite"
check "  again" "${mpi[@]}" -np 2 "$mtfsim" run "$work/ifb.json" -q -t 1 --data-parallel --out "$work/q2.sqlite"
check "  the same rows twice" same_experiment "$work/q1.sqlite" "$work/q2.sqlite"
check "  each round's both estimates, finite, and its verdict" test "$(sqlite3 "$work/q1.sqlite" \
  "select count(*) from metrics where section = 'progressive' and metric in ('candidate_estimate', 'deployed_estimate',
   'accepted') and value is not null and (metric = 'accepted' or abs(value) < 1e6)")" = 6
check "experiment, one process, --data-parallel" "$mtfsim" run "$src/tests/data/tiny_experiment.json" -q -t 1 \
  --data-parallel --out "$work/p0.sqlite"
check "  on one rank it changes nothing" same_experiment "$work/e1.sqlite" "$work/p0.sqlite"
check "  the run says so" test "$(sqlite3 "$work/p1.sqlite" "select value from metrics where metric = 'data_parallel'")" = 1.0
check "  each rank held only its users' rows (the largest rank well under all of them)" test "$(sqlite3 "$work/p1.sqlite" \
  "select m.value > 0.3 * a.value and m.value < 0.7 * a.value from metrics m, metrics a
   where m.metric = 'transitions_largest_shard' and a.section = 'exploration' and a.subject = 'all' and a.metric = 'transitions'")" = 1
check "  every offline estimate of the replicated run is there, from the ranks' shards" test \
  "$(sqlite3 "$work/e2.sqlite" "select count(*) > 20 from metrics where section = 'offline' and value is not null")" = 1
check "  (as many)" test \
  "$(sqlite3 "$work/p1.sqlite" "select count(*) from metrics where section = 'offline' and value is not null")" = \
  "$(sqlite3 "$work/e2.sqlite" "select count(*) from metrics where section = 'offline' and value is not null")"
check "  and the report says so" bash -c \
  "'$mtfsim' report '$work/p1.sqlite' | grep -q 'in each of 2 MPI ranks, each rank holding its users.* rows and the agents trained and evaluated offline data-parallel'"

# Data-parallel training: deterministic for a rank count, and one file, from rank 0.
mkdir -p "$work/resume"
check "train on 2 ranks" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" --agent td3 --set "hidden=[16,16]" \
  --steps 60 -q -t 1 --out "$work/a.mtfa"
cp "$work/out" "$work/train.out"
check "train on 2 ranks says so" grep -q "data-parallel over 2 MPI ranks" "$work/train.out"
check "train on 2 ranks again" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" --agent td3 --set "hidden=[16,16]" \
  --steps 60 -q -t 1 --out "$work/b.mtfa"
check "2 ranks train the same agent twice" cmp "$work/a.mtfa" "$work/b.mtfa"
# Each rank's minibatch streams follow from the step, so 30 steps and 30 more
# from the file are the 60 steps at once, to the bit.
check "train 30 steps on 2 ranks" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" --agent td3 \
  --set "hidden=[16,16]" --steps 30 -q -t 1 --out "$work/resume/half.mtfa"
check "  and 30 more from the file" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" \
  --from "$work/resume/half.mtfa" --steps 30 -q -t 1 --out "$work/resume/whole.mtfa"
check "  give the agent of 60 steps at once" cmp "$work/a.mtfa" "$work/resume/whole.mtfa"
check "train on 2 ranks out of core" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" --agent td3 \
  --set "hidden=[16,16]" --steps 60 -q -t 1 --out "$work/d.mtfa" --out-of-core "$work/cols" --chunk-rows 50
cp "$work/out" "$work/ooc.out"
check "  says so" grep -q "^out of core: the transitions were read in chunks of 50" "$work/ooc.out"
check "  each rank's shard mapped gives the in-memory agent" cmp "$work/a.mtfa" "$work/d.mtfa"
check "  and the ranks' column files are gone" bash -c "! ls -d '$work'/cols* 2>/dev/null"
check "train in one process" "$mtfsim" train "$work/one.sqlite" --agent td3 --set "hidden=[16,16]" --steps 60 -q -t 1 \
  --out "$work/c.mtfa"
check "one process trains on other minibatches: other bits" bash -c "! cmp -s '$work/a.mtfa' '$work/c.mtfa'"
check "the agent trained on 2 ranks acts in a simulation" "$mtfsim" evaluate "$work/sc.json" --policy baseline \
  --policy "$work/a.mtfa" --users 200 --days 1

fails_with "data-parallel on 3 ranks refuses, before simulating, a batch that does not split" 1 \
  "agent BC: batch_size 256 is not a multiple of the 3 ranks --data-parallel trains over" \
  "${mpi[@]}" -np 3 "$mtfsim" run "$src/tests/data/tiny_experiment.json" -q -t 1 --data-parallel --out "$work/p4.sqlite"
check "  and leaves no run behind" bash -c "! ls '$work'/p4.sqlite* 2>/dev/null"

# Resumed over ranks: rank 0 reads the killed run's checkpoint and hands it,
# the metric rows and the recorded rows to the others. Killed (SIGKILL, every
# rank, mtfsim's MTFSIM_TEST_KILL_ON hook) and resumed, a run ends with the
# uninterrupted run's tables: a replicated run on any number of ranks (2 ranks
# killed, resumed as 2 or as one process; one process killed, resumed on 2),
# a data-parallel one on its ranks (each rank's minibatch streams follow from
# the step, so rank 0's checkpoint of the agents resumes every rank).
exp=$src/tests/data/tiny_experiment.json
killed() {  # KILL_POINT NP ARGS...: a run killed at the log line KILL_POINT
  local point=$1 np=$2
  shift 2
  if [ "$np" = 1 ]; then
    MTFSIM_TEST_KILL_ON="$point" "$mtfsim" run "$exp" -q -t 1 --checkpoint-every 0 "$@" >/dev/null 2>&1
  else
    MTFSIM_TEST_KILL_ON="$point" "${mpi[@]}" -x MTFSIM_TEST_KILL_ON -np "$np" "$mtfsim" run "$exp" -q -t 1 \
      --checkpoint-every 0 "$@" >/dev/null 2>&1
  fi
  local rc=$?
  [ "$rc" != 0 ] || { echo "the run was not killed at '$point'"; return 1; }
}
resumed() {  # COMMAND...: runs it, and it said it resumed from a checkpoint
  "$@" >/dev/null 2>"$work/resume/log" || { cat "$work/resume/log"; return 1; }
  grep -q "resumed after: " "$work/resume/log" || { echo "did not resume from a checkpoint"; return 1; }
}
k=0
# The rows go to the other ranks in chunks of --chunk-rows: 7 rows for the last kill point.
for spec in "2 2|exploration: days 1-1" "2 1|checkpoint: TD3 at step 12 of 30" "1 2|learner ES: round 1/2" \
            "2 2|oracle: "; do
  np=${spec%% *} rest=${spec#* } np2=${rest%%|*} point=${spec#*|}
  chunks=()
  [ "$point" = "oracle: " ] && chunks=(--chunk-rows 7)
  k=$((k + 1))
  out=$work/resume/r$k.sqlite
  check "replicated, killed on $np rank(s) at [$point]" killed "$point" "$np" --out "$out"
  check "  left an unfinished run" test -s "$out.partial"
  if [ "$np2" = 1 ]; then
    check "  resumed as one process" resumed "$mtfsim" run "$exp" -t 1 --resume --out "$out"
  else
    check "  resumed on $np2 ranks" resumed "${mpi[@]}" -np "$np2" "$mtfsim" run "$exp" -t 1 --resume --out "$out" \
      "${chunks[@]}"
  fi
  check "  equals the uninterrupted run" same_experiment "$work/e1.sqlite" "$out"
done
for point in "exploration: days 1-1" "checkpoint: TD3 at step 12 of 30" "learner ES: round 2/2"; do
  k=$((k + 1))
  out=$work/resume/r$k.sqlite
  check "data-parallel, killed at [$point]" killed "$point" 2 --data-parallel --out "$out"
  check "  resumed on its 2 ranks" resumed "${mpi[@]}" -np 2 "$mtfsim" run "$exp" -t 1 --data-parallel --resume \
    --out "$out"
  check "  equals the uninterrupted data-parallel run" same_experiment "$work/p1.sqlite" "$out"
done
out=$work/resume/ooc.sqlite
check "data-parallel, out of core, killed in the exploration" killed "exploration: days 1-1" 2 --data-parallel \
  --out "$out" --out-of-core "$work/resume/cols"
check "  resumed out of core (read back in chunks of 50)" resumed "${mpi[@]}" -np 2 "$mtfsim" run "$exp" -t 1 \
  --data-parallel --resume --out "$out" --out-of-core "$work/resume/cols2" --chunk-rows 50
check "  equals the in-memory run" same_experiment "$work/p1.sqlite" "$out"
out=$work/resume/mode.sqlite
check "data-parallel, killed after the exploration" killed "trained BC" 2 --data-parallel --out "$out"
fails_with "  resumed without --data-parallel: refused" 1 "resume it as it was started (mpirun -np 2" \
  "${mpi[@]}" -np 2 "$mtfsim" run "$exp" -q -t 1 --resume --out "$out"
fails_with "  resumed as one process: refused" 1 "was started with --data-parallel on 2 MPI ranks" \
  "$mtfsim" run "$exp" -q -t 1 --resume --out "$out"
check "  the unfinished run is still there" test -s "$out.partial"
check "  resumed as it was started" resumed "${mpi[@]}" -np 2 "$mtfsim" run "$exp" -t 1 --data-parallel --resume \
  --out "$out"
check "  equals the uninterrupted data-parallel run" same_experiment "$work/p1.sqlite" "$out"
check "the resumed runs left no scratch files (the run databases; the killed run's column files)" bash -c \
  "! ls '$work/resume' | grep -qv -E '^(r[0-9]+\.sqlite|ooc\.sqlite|mode\.sqlite|half\.mtfa|whole\.mtfa|log|cols\.rank[01])\$'"
fails_with "export refuses to run on 2 ranks" 2 "runs as one process" \
  "${mpi[@]}" -np 2 "$mtfsim" export "$work/one.sqlite" --format csv --out "$work/one.csv"
check "nothing was written by the refused commands" test ! -e "$work/one.csv"
check "only rank 0 wrote files" bash -c "! ls '$work' | grep -qv -E '^(sc.json|one.sqlite|two.sqlite|three.sqlite|e1.sqlite|e2.sqlite|p0.sqlite|p1.sqlite|p2.sqlite|p3.sqlite|ifb.json|q1.sqlite|q2.sqlite|out|err|bench.out|a.mtfa|b.mtfa|c.mtfa|d.mtfa|train.out|ooc.out|resume)\$'"
finish mpi_tests
