#!/usr/bin/env bash
# A paper scenario's small variant end to end: the whole protocol runs, its
# figures stay inside the recorded bands (mtfsim regress), and the report has
# every table. Run by ctest as regress_<paper>_small.
# Usage: paper_small_test.sh MTFSIM SOURCE_DIR PAPER
set -u
mtfsim=$1
src=$2
paper=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
"$mtfsim" regress "$src/scenarios/${paper}_small.json" --baseline "$src/tests/data/regress/${paper}_small.json" \
  --out "$work/run.sqlite" --threads 2 --quiet || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAILED: mtfsim regress exited with $status"
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
echo "passed: $paper small: regress and every table"
