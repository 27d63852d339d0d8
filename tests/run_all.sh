#!/usr/bin/env bash
# The whole test suite, as README's quick start and .ci/run run it:
#   1. the ctest suite of the Release build (build/);
#   2. every fuzz target for about a minute (clang, libFuzzer with ASan and
#      UBSan; build-fuzz/; docs/fuzzing.md), failing on a crash, hang or leak;
#   3. a stated subset of the suite under ASan and UBSan (GCC; build-asan/;
#      docs/sanitizers.md says what runs there and records the full runs).
# MTF_FUZZ_SECONDS sets the seconds per fuzz target (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2
t1=$(date +%s)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DMTF_FUZZ=ON -DMTF_NATIVE=OFF -DMTF_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-fuzz --target mtf_fuzz -j2
tests/fuzz/run.sh build-fuzz "${MTF_FUZZ_SECONDS:-60}"
t2=$(date +%s)

# The tests of core/, results/, users/, metrics/, sim/ and the online learners:
# every floor below experiments/ (whose code the fuzz targets above run under
# the same sanitizers: experiment blocks, agent files, run databases, reports).
asan_tests="core_tests results_tests users_tests stats_tests scenario_tests sim_tests online_tests"
cmake --preset asan
# shellcheck disable=SC2086
cmake --build --preset asan --target $asan_tests
ctest --preset asan -R "^($(echo $asan_tests | tr ' ' '|'))\$"
t3=$(date +%s)
echo "run_all.sh: suite $((t1 - t0)) s, fuzzing $((t2 - t1)) s, ASan and UBSan subset $((t3 - t2)) s"
