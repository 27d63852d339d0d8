#!/usr/bin/env bash
# Builds the suite under a sanitizer and runs all of it (docs/sanitizers.md).
# Usage: tests/sanitize.sh asan|tsan [ctest arguments...]
#   asan  AddressSanitizer with leak checks and UBSan (GCC), build-asan/
#   tsan  ThreadSanitizer (clang with LLVM's OpenMP runtime), build-tsan/
# Exits non-zero when the build fails or any test fails; every sanitizer report
# fails its test. The paper scenarios run smaller (tests/paper_small_test.sh).
# Prints the build and test times.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  asan|tsan) preset=$1; shift ;;
  *) echo "usage: tests/sanitize.sh asan|tsan [ctest arguments...]" >&2; exit 2 ;;
esac
start=$(date +%s)
cmake --preset "$preset"
cmake --build --preset "$preset"
built=$(date +%s)
status=0
ctest --preset "$preset" "$@" || status=$?
done_at=$(date +%s)
echo "sanitize.sh $preset: build $((built - start)) s, tests $((done_at - built)) s, ctest exit $status"
exit "$status"
