# Shared by the shell tests (sourced, after `work` is set to the test's
# scratch folder): counters and the two kinds of check, each printing what
# failed with the command's output.
#   check NAME COMMAND...                 the command must succeed
#   fails_with NAME CODE TEXT COMMAND...  it must exit CODE with TEXT on stderr
#   finish [LABEL]                        prints the counts; returns 1 on any failure
passed=0
failed=0
check() {
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAILED: $name"; cat "$work/out"; fi
}
fails_with() {
  local name=$1 code=$2 text=$3; shift 3
  local rc=0
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  if [ "$rc" -eq "$code" ] && grep -qF -- "$text" "$work/err"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAILED: $name (exit $rc, expected $code and: $text)"; cat "$work/err"; fi
}
finish() {
  echo "${1:+$1: }$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
