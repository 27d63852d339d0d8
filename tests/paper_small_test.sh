#!/usr/bin/env bash
# A paper scenario's small variant end to end: the whole protocol runs, its
# figures stay inside the recorded bands (mtfsim regress), and the report has
# every table. Run by ctest as regress_<paper>_small.
#
# In a sanitizer build (ctest sets MTF_SANITIZER, docs/sanitizers.md) the small
# variant would take too long, so a smaller copy of it runs instead: a tenth of
# the users, items and gradient steps, at most two days and two rounds anywhere.
# The recorded bands do not hold for that copy, so the bands are not checked
# there: the test then shows that the whole protocol runs clean under the
# sanitizer and writes every table, nothing about the figures.
# Usage: paper_small_test.sh MTFSIM SOURCE_DIR PAPER
set -u
mtfsim=$1
src=$2
paper=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scenario="$src/scenarios/${paper}_small.json"
status=0
if [ -n "${MTF_SANITIZER:-}" ]; then
  # The scenario files hold one key per line ("users": 4000,), which the
  # rewrite relies on; a copy that comes out unchanged fails below.
  awk '
    function scaled(line, v) { sub(/[0-9]+/, v, line); return line }
    match($0, /"(size|users|items|steps)": [0-9]+/) {
      n = substr($0, RSTART, RLENGTH); sub(/.*: /, "", n)
      $0 = scaled($0, int(n / 10) > 0 ? int(n / 10) : 1)
    }
    match($0, /"(days|rounds)": [0-9]+/) {
      n = substr($0, RSTART, RLENGTH); sub(/.*: /, "", n)
      if (n + 0 > 2) $0 = scaled($0, 2)
    }
    { print }' "$scenario" > "$work/scenario.json"
  if cmp -s "$scenario" "$work/scenario.json"; then
    echo "FAILED: the smaller copy of $scenario came out unchanged (has its layout changed?)"
    exit 1
  fi
  echo "under $MTF_SANITIZER: a smaller copy of ${paper}_small, the bands are not checked"
  "$mtfsim" run "$work/scenario.json" --out "$work/run.sqlite" --threads 2 --quiet > /dev/null || status=$?
  what="mtfsim run (smaller copy)"
else
  "$mtfsim" regress "$scenario" --baseline "$src/tests/data/regress/${paper}_small.json" \
    --out "$work/run.sqlite" --threads 2 --quiet || status=$?
  what="mtfsim regress"
fi
if [ "$status" -ne 0 ]; then
  echo "FAILED: $what exited with $status"
  exit 1
fi
"$mtfsim" report "$work/run.sqlite" --out "$work/report.md" || { echo "FAILED: mtfsim report"; exit 1; }
missing=0
for heading in "## Exploration: what each group cost" "## Training" "## Online learners" \
               "## Offline evaluation (Table 1)" "## Online A/B test (Table 2)" "## Ground truth" \
               "## Where the testbed agrees with the paper"; do
  if ! grep -qF "$heading" "$work/report.md"; then
    echo "FAILED: the report has no '$heading'"
    missing=1
  fi
done
if [ "$paper" = integratedrl_mtf ] && ! grep -qF "## Exploration density" "$work/report.md"; then
  echo "FAILED: the report has no exploration density section"
  missing=1
fi
[ "$missing" -eq 0 ] || exit 1
if [ -n "${MTF_SANITIZER:-}" ]; then
  echo "passed: $paper small, smaller copy under $MTF_SANITIZER: the whole protocol and every table (bands not checked)"
else
  echo "passed: $paper small: regress and every table"
fi
