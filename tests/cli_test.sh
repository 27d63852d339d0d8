#!/usr/bin/env bash
# End-to-end checks of the mtfsim command line (run by ctest as cli_tests).
# Usage: cli_test.sh MTFSIM SOURCE_DIR
set -u
mtfsim=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() {  # check NAME COMMAND...: the command must succeed
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAILED: $name"; cat "$work/out"; fi
}

# A valid scenario runs, prints the summary table and writes its database.
check "run writes a database" bash -c "'$mtfsim' run '$src/tests/data/tiny.json' --out '$work/tiny.sqlite' --quiet > '$work/run.txt'"
check "the summary table is printed" grep -q "valid_per_user_day" "$work/run.txt"
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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
