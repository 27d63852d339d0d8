#!/usr/bin/env bash
# The HTML report end to end (run by ctest as html_report_tests): a tiny
# experiment, its report written with mtfsim report --html, opened offline in
# headless Chromium, and every chart checked twice: in the DOM after the
# page's scripts ran (an SVG with a drawn mark per row of its data) and in a
# screenshot (coloured pixels inside the chart's box). A page whose chart
# cannot be drawn must fail the same checks.
# Usage: html_report_test.sh MTFSIM SOURCE_DIR
# Needs Debian's chromium and python3-pil (README, quick start).
set -u
mtfsim=$1
src=$2
check=$src/tests/html_report_check.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ] || ! /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
  echo "FAILED: html_report_test.sh needs headless Chromium and Python's PIL: apt-get install -y chromium python3-pil"
  echo "0 passed, 1 failed"
  exit 1
fi
# Headless, offline (every host name fails to resolve), no profile of the user's.
browse() {
  timeout 180 "$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars --force-device-scale-factor=1 \
    --user-data-dir="$work/profile" --host-resolver-rules='MAP * ~NOTFOUND' --virtual-time-budget=20000 "$@" \
    2>>"$work/chromium.log"
}
charts="learning-curves ab-forest offline-online actions daily exploration"

# check_page NAME REPORT.html: every chart drawn, in the DOM and in pixels.
check_page() {
  local name=$1 page=$2
  if ! browse --dump-dom "file://$page" >"$work/$name.dom.html"; then
    bad "$name: chromium --dump-dom failed"; tail -5 "$work/chromium.log"; return 1
  fi
  local boxes
  if ! boxes=$(/usr/bin/python3 "$check" dom "$page" "$work/$name.dom.html" $charts); then
    echo "$boxes" | grep '^FAILED' ; return 1
  fi
  local height=${boxes%% *}
  boxes=${boxes#* }
  if ! browse --window-size=1300,"$height" --screenshot="$work/$name.png" "file://$page" >/dev/null; then
    bad "$name: chromium --screenshot failed"; tail -5 "$work/chromium.log"; return 1
  fi
  # shellcheck disable=SC2086
  /usr/bin/python3 "$check" pixels "$work/$name.png" $boxes
}

# The tiny experiment has every chart's data (tests/data/tiny_experiment.json).
if "$mtfsim" run "$src/tests/data/tiny_experiment.json" --out "$work/tiny.sqlite" --quiet >/dev/null 2>"$work/run.err"; then
  ok
else
  bad "the tiny experiment did not run"; cat "$work/run.err"
fi
if "$mtfsim" report "$work/tiny.sqlite" --html "$work/report.html" >"$work/stdout" 2>"$work/err" && [ -s "$work/report.html" ]; then
  ok
else
  bad "report --html did not write the report"; cat "$work/err"
fi
if [ ! -s "$work/stdout" ]; then ok; else bad "report --html printed the markdown too"; fi
if /usr/bin/python3 "$check" offline "$work/report.html"; then ok; else bad "the report is not self-contained"; fi
if check_page report "$work/report.html"; then ok; else bad "the report's charts did not all render"; fi

# --out with --html writes both; the markdown is what report alone prints.
"$mtfsim" report "$work/tiny.sqlite" >"$work/plain.md"
if "$mtfsim" report "$work/tiny.sqlite" --html "$work/both.html" --out "$work/both.md" &&
   cmp -s "$work/plain.md" "$work/both.md" && cmp -s "$work/report.html" "$work/both.html"; then ok; else
  bad "--html with --out did not write the same two reports"; fi
if ! "$mtfsim" report "$work/tiny.sqlite" --html "$work/tiny.sqlite" 2>"$work/err" &&
   grep -q -- "--html: expected a path other than the run database" "$work/err"; then ok; else
  bad "--html accepted the run database as its output"; cat "$work/err"; fi

# The checks can fail: the same page with one chart's spec broken (a mark
# type Vega-Lite does not know) must fail them, naming that chart.
sed 's/"type":"rect"/"type":"no-such-mark"/' "$work/report.html" >"$work/broken.html"
if cmp -s "$work/report.html" "$work/broken.html"; then
  bad "could not break the actions chart (its spec has no rect mark any more?)"
elif out=$(check_page broken "$work/broken.html" 2>&1); then
  bad "a page whose actions chart cannot be drawn passed the checks"
elif echo "$out" | grep -q "^FAILED: actions: the page says it could not be drawn"; then
  ok
else
  bad "a broken page failed for another reason than its chart:"; echo "$out"
fi

echo "html_report_test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
