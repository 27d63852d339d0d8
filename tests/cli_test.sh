#!/usr/bin/env bash
# End-to-end checks of the mtfsim command line (run by ctest as cli_tests).
# Usage: cli_test.sh MTFSIM SOURCE_DIR
set -u
mtfsim=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

# A valid scenario runs, prints the summary table and writes its database.
check "run writes a database" bash -c "'$mtfsim' run '$src/tests/data/tiny.json' --out '$work/tiny.sqlite' --quiet > '$work/run.txt'"
check "the summary table is printed" grep -q "valid_per_user_day" "$work/run.txt"
# ...and below it each group's lift over the first group, with its interval and p-value
# (the numbers are checked against stats.h in tests/metrics/user_metrics_test.cpp).
check "the lift table is printed" grep -q "^Lifts against control, over users" "$work/run.txt"
check "a lift row has levels, lift, interval and p" grep -Eq \
  '^valid_per_user_day +[0-9.]+ +[0-9.]+ +[-+][0-9.]+% +\[[-+][0-9.]+%, [-+][0-9.]+%\] +[0-9.e+-]+$' "$work/run.txt"
check "the output fits in 100 columns" test -z "$(awk 'length > 100' "$work/run.txt")"
check "the database exists" test -s "$work/tiny.sqlite"
if command -v sqlite3 >/dev/null; then
  check "the database has transitions" test "$(sqlite3 "$work/tiny.sqlite" 'SELECT count(*) > 0 FROM transitions')" = 1
  schema=$(sed -n 's/.*kSchemaVersion = \([0-9]*\);.*/\1/p' "$src/results/recorder.h")
  check "the schema version is set" test "$(sqlite3 "$work/tiny.sqlite" 'PRAGMA user_version')" = "$schema"
fi

# An invalid scenario is rejected with the JSON path, and nothing is written.
sed 's/"days": 2/"days": "two"/' "$src/tests/data/tiny.json" > "$work/bad.json"
check "a bad scenario fails" bash -c "! '$mtfsim' run '$work/bad.json' --out '$work/bad.sqlite' --quiet 2> '$work/err'"
check "the error names the path" grep -q "days" "$work/err"
check "nothing is written for a bad scenario" test ! -e "$work/bad.sqlite"

# Help and bad flags.
check "help works" "$mtfsim" --help
check "run --help works" "$mtfsim" run --help
check "an unknown command fails" bash -c "! '$mtfsim' frobnicate 2>/dev/null"
check "a bad thread count fails" bash -c "! '$mtfsim' run '$src/tests/data/tiny.json' --threads 0 --no-record 2>/dev/null"

# report and regress: clear errors for the wrong kind of input.
check "report of a plain run fails" bash -c "! '$mtfsim' report '$work/tiny.sqlite' 2> '$work/err'"
check "report says what is missing" grep -q "no experiment metrics" "$work/err"
check "report of a missing file fails" bash -c "! '$mtfsim' report '$work/none.sqlite' 2>/dev/null"
check "regress of a plain scenario fails" bash -c "! '$mtfsim' regress '$src/tests/data/tiny.json' --baseline '$work/b.json' 2> '$work/err'"
check "regress says the scenario has no experiment" grep -q "no experiment block" "$work/err"
check "regress without a baseline file fails" bash -c "! '$mtfsim' regress '$src/scenarios/integratedrl_mtf_small.json' --baseline '$work/none.json' 2> '$work/err'"
check "regress says how to create the baseline" grep -q -- "--update" "$work/err"
check "report --help works" "$mtfsim" report --help
check "regress --help works" "$mtfsim" regress --help

# fails_with NAME CODE TEXT COMMAND...: the command must exit with CODE and say TEXT on stderr.
tiny="$src/tests/data/tiny.json"

fails_with "run --data-parallel of a plain simulation" 2 "run: --data-parallel: a plain simulation trains no agents" \
  "$mtfsim" run "$tiny" --data-parallel --no-record

# Numeric flags: one check per flag, one message form, exit code 2.
fails_with "run --threads 0" 2 "mtfsim: run: --threads: expected an integer in [1, 256], got 0" \
  "$mtfsim" run "$tiny" --threads 0 --no-record
fails_with "run --threads abc" 2 'mtfsim: run: --threads: expected an integer in [1, 256], got "abc"' \
  "$mtfsim" run "$tiny" --threads abc --no-record
fails_with "run --seed -1 (as \"seed\": -1 in JSON)" 2 "mtfsim: run: --seed: expected an integer in [0, 18446744073709551615], got -1" \
  "$mtfsim" run "$tiny" --seed -1 --no-record
fails_with "run --seed 1.5" 2 "run: --seed: expected an integer in [0, 18446744073709551615], got 1.5" \
  "$mtfsim" run "$tiny" --seed 1.5 --no-record
fails_with "run --seed 2^64" 2 "run: --seed: expected an integer in [0, 18446744073709551615], got 18446744073709551616" \
  "$mtfsim" run "$tiny" --seed 18446744073709551616 --no-record
check "run --seed 2^64-1 is accepted" "$mtfsim" run "$tiny" --seed 18446744073709551615 --no-record --quiet
fails_with "bench sim --threads 0" 2 "mtfsim: bench sim: --threads: expected an integer in [1, 256], got 0" \
  "$mtfsim" bench sim --threads 0 --scenario "$tiny"
fails_with "bench sim --users 0" 2 "mtfsim: bench sim: --users: expected an integer in [1, 1000000000], got 0" \
  "$mtfsim" bench sim --users 0 --scenario "$tiny"
fails_with "bench sim --days 0" 2 "mtfsim: bench sim: --days: expected an integer in [1, 3650], got 0" \
  "$mtfsim" bench sim --days 0 --scenario "$tiny"
fails_with "bench sim --train-steps -1" 2 "mtfsim: bench sim: --train-steps: expected an integer in [0, 100000000], got -1" \
  "$mtfsim" bench sim --train-steps -1 --scenario "$tiny"
fails_with "bench train --hidden 0" 2 "mtfsim: bench train: --hidden: expected an integer in [1, 4096], got 0" \
  "$mtfsim" bench train --hidden 0
fails_with "bench train --threads 0" 2 "mtfsim: bench train: --threads: expected an integer in [1, 256], got 0" \
  "$mtfsim" bench train --threads 0
fails_with "regress --threads 0" 2 "mtfsim: regress: --threads: expected an integer in [1, 256], got 0" \
  "$mtfsim" regress "$src/scenarios/integratedrl_mtf_small.json" --baseline "$work/b.json" --threads 0

# Input files: a directory, an empty file, a file that is not a run database.
mkdir -p "$work/adir"
: > "$work/empty.json"
echo "not a database" > "$work/text.sqlite"
fails_with "run of a directory" 1 "$work/adir: is a directory, not a scenario file" "$mtfsim" run "$work/adir" --no-record
fails_with "run of an empty file" 1 "$work/empty.json: the scenario file is empty" "$mtfsim" run "$work/empty.json" --no-record
fails_with "regress of a directory" 1 "is a directory, not a scenario file" \
  "$mtfsim" regress "$work/adir" --baseline "$work/b.json"
fails_with "bench sim --scenario of a directory" 1 "is a directory, not a scenario file" \
  "$mtfsim" bench sim --scenario "$work/adir"
fails_with "report of a directory" 1 "$work/adir: is a directory, not a run database" "$mtfsim" report "$work/adir"
fails_with "report of an empty file" 1 "$work/empty.json: the file is empty, not a run database" \
  "$mtfsim" report "$work/empty.json"
fails_with "report of a text file" 1 "$work/text.sqlite: not an SQLite database, so not a run database" \
  "$mtfsim" report "$work/text.sqlite"
fails_with "regress against a directory as baseline" 1 "$work/adir: is a directory, not a baseline file" \
  "$mtfsim" regress "$src/scenarios/integratedrl_mtf_small.json" --baseline "$work/adir"
fails_with "regress against an empty baseline" 1 "$work/empty.json: the file is empty, not a baseline file" \
  "$mtfsim" regress "$src/scenarios/integratedrl_mtf_small.json" --baseline "$work/empty.json"

# Output files: every command creates missing folders and refuses a directory.
check "run --out creates missing folders" "$mtfsim" run "$tiny" --out "$work/new/deeper/tiny.sqlite" --quiet
check "the database is in the new folder" test -s "$work/new/deeper/tiny.sqlite"
fails_with "run --out of a directory" 2 "mtfsim: run: --out: expected a file path (missing folders are created), got $work/adir, a directory" \
  "$mtfsim" run "$tiny" --out "$work/adir" --quiet
fails_with "report --out of a directory" 2 "mtfsim: report: --out: expected a file path (missing folders are created), got $work/adir, a directory" \
  "$mtfsim" report "$work/tiny.sqlite" --out "$work/adir"
fails_with "regress --out of a directory" 2 "mtfsim: regress: --out: expected a file path" \
  "$mtfsim" regress "$src/scenarios/integratedrl_mtf_small.json" --baseline "$work/b.json" --update --out "$work/adir"
fails_with "bench sim --record --out of a directory" 2 "mtfsim: bench sim: --out: expected a file path" \
  "$mtfsim" bench sim --record --out "$work/adir" --scenario "$tiny"
# report --out makes its folder before reading the database (here a plain run:
# no report, but the folder is there as for run --out).
fails_with "report of a plain run with --out in a new folder" 1 "no experiment metrics" \
  "$mtfsim" report "$work/tiny.sqlite" --out "$work/rep/new/r.md"
check "report --out created the missing folders" test -d "$work/rep/new"

# The summary counts capped sessions (none in a realistic scenario).
check "the summary has sessions_capped" grep -q "sessions_capped" "$work/run.txt"

# evaluate: the oracle on the tiny world; each --policy is checked before anything runs.
# A policy against itself: the paired difference is exactly 0 (no python needed to build the spec).
check "evaluate runs and writes JSON" "$mtfsim" evaluate "$tiny" --policy baseline --policy baseline --users 50 \
  --days 2 --json "$work/eval/o.json"
check "evaluate's JSON has the paired differences" grep -q "variance_reduction" "$work/eval/o.json"
fails_with "evaluate with a bad --policy" 2 "mtfsim: evaluate: --policy: expected baseline, constant:a1,...,a" \
  "$mtfsim" evaluate "$tiny" --policy nonsense
fails_with "evaluate with a constant out of range" 2 "got \"constant:2\"" "$mtfsim" evaluate "$tiny" --policy constant:2
fails_with "evaluate with a missing agent file" 2 "got \"$work/none.mtfa\", no such file" \
  "$mtfsim" evaluate "$tiny" --policy "$work/none.mtfa"
fails_with "evaluate --users 1" 2 "mtfsim: evaluate: --users: expected an integer in [2, 1000000000], got 1" \
  "$mtfsim" evaluate "$tiny" --policy baseline --users 1
fails_with "evaluate without --policy" 2 "evaluate: missing --policy (baseline, constant:a1,...,ad, an agent file *.mtfa, an MLP policy file *.json or RUN.sqlite:NAME)" "$mtfsim" evaluate "$tiny"

# Outputs never replace what they should not: the scenario itself, a file that is
# not a run database (unless --force), the run database a report reads.
cp "$tiny" "$work/self.json"
fails_with "run --out onto its own scenario" 2 "got $work/self.json, the scenario file itself" \
  "$mtfsim" run "$work/self.json" --out "$work/self.json" --quiet
fails_with "  even with --force" 2 "the scenario file itself" \
  "$mtfsim" run "$work/self.json" --out "$work/self.json" --quiet --force
check "  the scenario is intact" cmp "$tiny" "$work/self.json"
echo "my notes" > "$work/notes.txt"
fails_with "run --out onto a file that is not a run database" 1 "is not an mtfsim run database" \
  "$mtfsim" run "$tiny" --out "$work/notes.txt" --quiet
check "  the file is intact" grep -q "my notes" "$work/notes.txt"
check "  --force replaces it" "$mtfsim" run "$tiny" --out "$work/notes.txt" --quiet --force
check "  with a run database" test "$(sqlite3 "$work/notes.txt" 'PRAGMA application_id')" = 1297368690
check "run --out replaces an earlier run database" "$mtfsim" run "$tiny" --out "$work/tiny.sqlite" --quiet
fails_with "report --out onto the database it reads" 2 "the run database itself" \
  "$mtfsim" report "$work/tiny.sqlite" --out "$work/tiny.sqlite"
fails_with "evaluate --json onto its scenario" 2 "the scenario file itself" \
  "$mtfsim" evaluate "$work/self.json" --policy baseline --users 10 --json "$work/self.json"
fails_with "run --resume of a plain simulation" 2 "only an experiment" "$mtfsim" run "$tiny" --resume --quiet --no-record

# Keep, train, deploy: an agent trained on a run, deployed by a scenario group,
# kept in that run's database, and evaluated from the file and from the run
# (the same agent, so the same values to the bit).
mkdir -p "$work/deploy"
check "train writes an agent file and its curve" "$mtfsim" train "$work/tiny.sqlite" --agent bc --set 'hidden=[16,16]' \
  --steps 40 --out "$work/deploy/bc.mtfa" --curve "$work/deploy/curve.csv" --quiet
check "  the curve has its header and a point per 1/50 of the steps" \
  test "$(head -1 "$work/deploy/curve.csv" | cut -d, -f1),$(($(wc -l < "$work/deploy/curve.csv") - 1))" = "step,40"
check "train --from trains the file further" "$mtfsim" train "$work/tiny.sqlite" --from "$work/deploy/bc.mtfa" \
  --steps 10 --out "$work/deploy/bc50.mtfa" --quiet
python3 -c "
import json
s = json.load(open('$tiny'))
s['groups'][1]['policy'] = {'type': 'agent', 'path': 'bc.mtfa'}
json.dump(s, open('$work/deploy/dep.json', 'w'), indent=1)"
check "  the scenario names the agent" grep -q '"type": "agent"' "$work/deploy/dep.json"
check "a scenario group runs an agent file (relative to the scenario)" \
  bash -c "cd / && '$mtfsim' run '$work/deploy/dep.json' --out '$work/deploy/dep.sqlite' --quiet"
check "  the run keeps the agent it deployed" \
  test "$(sqlite3 "$work/deploy/dep.sqlite" "SELECT name || ' ' || type || ' ' || steps FROM agents")" = "group:baseline bc 40"
check "  byte for byte" test "$(sqlite3 "$work/deploy/dep.sqlite" "SELECT hex(data) FROM agents")" = \
  "$(od -An -v -tx1 "$work/deploy/bc.mtfa" | tr -d ' \n' | tr a-f A-F)"
check "evaluate takes the file and the kept agent" "$mtfsim" evaluate "$tiny" --policy "$work/deploy/bc.mtfa" \
  --policy "$work/deploy/dep.sqlite:group:baseline" --users 200 --days 1 --json "$work/deploy/eval.json"
check "  and they are the same policy (the same values to the bit, unlike the baseline's)" python3 -c "
import json, sys
p = {x['name']: x['metrics'] for x in json.load(open('$work/deploy/eval.json'))['policies']}
sys.exit(0 if p['bc'] == p['group:baseline'] and p['bc'] != p['baseline'] else 1)"
# Out of core: the transitions read in chunks into mapped column files give the
# in-memory training's agent byte for byte (TD3 reads s', which the chunks
# renumber); the scratch files are removed.
check "train td3 in memory" "$mtfsim" train "$work/tiny.sqlite" --agent td3 --set 'hidden=[16,16]' --steps 40 \
  --out "$work/deploy/td3.mtfa" --quiet
check "train --out-of-core (chunks of 37 rows) writes an agent" "$mtfsim" train "$work/tiny.sqlite" --agent td3 \
  --set 'hidden=[16,16]' --steps 40 --out "$work/deploy/td3_ooc.mtfa" --out-of-core "$work/deploy/columns" \
  --chunk-rows 37 --quiet
cp "$work/out" "$work/ooc.out"
check "  and says it trained out of core" grep -q "^out of core: the transitions were read in chunks of 37" "$work/ooc.out"
check "  the same file as in memory" cmp "$work/deploy/td3.mtfa" "$work/deploy/td3_ooc.mtfa"
check "  and the column files are gone" test ! -e "$work/deploy/columns"
check "train --out-of-core into the directory of --out keeps the agent and the directory" "$mtfsim" train \
  "$work/tiny.sqlite" --agent td3 --set 'hidden=[16,16]' --steps 40 --out "$work/deploy/oc/td3.mtfa" \
  --out-of-core "$work/deploy/oc" --quiet
check "  (the same agent, only it left there)" bash -c "cmp '$work/deploy/td3.mtfa' '$work/deploy/oc/td3.mtfa' && test \"\$(ls '$work/deploy/oc')\" = td3.mtfa"
# The cross-session formulation and discounting by elapsed time: other
# episodes, so other bits than the session MDP's; the same out of core.
check "train --formulation cross_session --discount-seconds 3600" "$mtfsim" train "$work/tiny.sqlite" --agent td3 \
  --set 'hidden=[16,16]' --steps 40 --formulation cross_session --discount-seconds 3600 \
  --out "$work/deploy/td3_chained.mtfa"
cp "$work/out" "$work/chained.out"
check "  says how it chained and discounted" \
  grep -qF "(cross_session formulation, discount by elapsed time, a step every 3600 s)" "$work/chained.out"
check "  and trains another agent than the session MDP" bash -c "! cmp -s '$work/deploy/td3.mtfa' '$work/deploy/td3_chained.mtfa'"
check "  the same out of core" "$mtfsim" train "$work/tiny.sqlite" --agent td3 --set 'hidden=[16,16]' --steps 40 \
  --formulation cross_session --discount-seconds 3600 --out "$work/deploy/td3_chained_ooc.mtfa" \
  --out-of-core "$work/deploy/columns" --chunk-rows 37 --quiet
check "  (byte for byte)" cmp "$work/deploy/td3_chained.mtfa" "$work/deploy/td3_chained_ooc.mtfa"
# One group: out of core only its rows go into the column files (each row with its s').
check "train --groups baseline" "$mtfsim" train "$work/tiny.sqlite" --agent td3 --set 'hidden=[16,16]' --steps 40 \
  --groups baseline --out "$work/deploy/td3_group.mtfa" --quiet
check "  the same out of core" "$mtfsim" train "$work/tiny.sqlite" --agent td3 --set 'hidden=[16,16]' --steps 40 \
  --groups baseline --out "$work/deploy/td3_group_ooc.mtfa" --out-of-core "$work/deploy/columns" --chunk-rows 37 --quiet
check "  (byte for byte, and not the agent of every group)" bash -c "cmp '$work/deploy/td3_group.mtfa' '$work/deploy/td3_group_ooc.mtfa' && ! cmp -s '$work/deploy/td3.mtfa' '$work/deploy/td3_group.mtfa'"
fails_with "train --formulation days" 2 "train: --formulation: expected session or cross_session, got \"days\"" \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --steps 5 --out "$work/x.mtfa" --formulation days
fails_with "train --discount-seconds 0" 2 "train: --discount-seconds: expected a number in [1, " \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --steps 5 --out "$work/x.mtfa" --discount-seconds 0
mkdir -p "$work/deploy/full" && touch "$work/deploy/full/keep"
fails_with "train --out-of-core into a directory that holds files" 2 \
  "train: --out-of-core: expected a new (or empty) directory for the column files" \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --steps 5 --out "$work/x.mtfa" --out-of-core "$work/deploy/full"
check "  (and leaves them)" test -e "$work/deploy/full/keep"
fails_with "train --chunk-rows without --out-of-core" 2 "--chunk-rows applies to --out-of-core" \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --steps 5 --out "$work/x.mtfa" --chunk-rows 10
fails_with "train without --agent or --from" 2 "give --agent TYPE" "$mtfsim" train "$work/tiny.sqlite" --steps 5 --out "$work/x.mtfa"
fails_with "train with an unknown agent type" 2 "train: --agent: expected an agent type: integratedrl_mtf, bcq," \
  "$mtfsim" train "$work/tiny.sqlite" --agent dqn --steps 5 --out "$work/x.mtfa"
fails_with "train with an unknown hyperparameter" 1 "bc.hiden: expected a known key (did you mean \"hidden\"?)" \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --set hiden=3 --steps 5 --out "$work/x.mtfa"
fails_with "train --groups with a group the run lacks" 2 \
  "mtfsim: train: --groups: expected names of the run's groups (control, baseline), got \"nope\"" \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --groups control,nope --steps 5 --out "$work/x.mtfa"
check "  (and writes nothing)" test ! -e "$work/x.mtfa"
fails_with "train --out onto a run database" 2 "a run database" \
  "$mtfsim" train "$work/tiny.sqlite" --agent bc --steps 5 --out "$work/deploy/dep.sqlite"
sed 's/"bc.mtfa"/"none.mtfa"/' "$work/deploy/dep.json" > "$work/deploy/bad.json"
fails_with "a scenario naming a missing agent file" 1 "none.mtfa: no such file" \
  "$mtfsim" run "$work/deploy/bad.json" --out "$work/deploy/bad.sqlite" --quiet
fails_with "evaluate with an agent a run does not keep" 1 "keeps no agent \"nope\" (it keeps group:baseline)" \
  "$mtfsim" evaluate "$tiny" --policy "$work/deploy/dep.sqlite:nope"

finish
