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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
