#!/usr/bin/env bash
# mtfsim under mpirun (run by ctest as mpi_tests when the build has
# -DMTF_MPI=ON): a plain simulation sharded over 2 and 3 ranks, with 1 and 2
# threads per rank, writes a run database whose every table equals the one
# process's, row for row (the run table but its clock and thread fields);
# an experiment's protocol on 2 ranks writes one process's rows, and with
# --data-parallel the same rows on every rerun; bench sim
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
check "train on 2 ranks" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" --agent td3 --set "hidden=[16,16]" \
  --steps 60 -q -t 1 --out "$work/a.mtfa"
cp "$work/out" "$work/train.out"
check "train on 2 ranks says so" grep -q "data-parallel over 2 MPI ranks" "$work/train.out"
check "train on 2 ranks again" "${mpi[@]}" -np 2 "$mtfsim" train "$work/one.sqlite" --agent td3 --set "hidden=[16,16]" \
  --steps 60 -q -t 1 --out "$work/b.mtfa"
check "2 ranks train the same agent twice" cmp "$work/a.mtfa" "$work/b.mtfa"
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
fails_with "an experiment does not resume on 2 ranks" 2 "does not resume" \
  "${mpi[@]}" -np 2 "$mtfsim" run "$src/tests/data/tiny_experiment.json" -q --resume --out "$work/e2.sqlite"
fails_with "export refuses to run on 2 ranks" 2 "runs as one process" \
  "${mpi[@]}" -np 2 "$mtfsim" export "$work/one.sqlite" --format csv --out "$work/one.csv"
check "nothing was written by the refused commands" test ! -e "$work/one.csv"
check "only rank 0 wrote files" bash -c "! ls '$work' | grep -qv -E '^(sc.json|one.sqlite|two.sqlite|three.sqlite|e1.sqlite|e2.sqlite|p0.sqlite|p1.sqlite|p2.sqlite|p3.sqlite|ifb.json|q1.sqlite|q2.sqlite|out|err|bench.out|a.mtfa|b.mtfa|c.mtfa|d.mtfa|train.out|ooc.out)\$'"
finish mpi_tests
