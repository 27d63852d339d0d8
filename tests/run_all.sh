#!/usr/bin/env bash
# The whole test suite, as README's quick start and .ci/run run it:
#   1. the ctest suite of the Release build (build/), with MPI (-DMTF_MPI=ON:
#      the sharded runs under mpirun, tests/mpi_test.sh);
#   2. every fuzz target for about a minute (clang, libFuzzer with ASan and
#      UBSan; build-fuzz/; docs/fuzzing.md), failing on a crash, hang or leak;
#   3. the suite but its three longest tests under ASan and UBSan (GCC;
#      build-asan/; docs/sanitizers.md says what runs there and records the
#      full runs).
# MTF_FUZZ_SECONDS sets the seconds per fuzz target (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMTF_MPI=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2
t1=$(date +%s)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DMTF_FUZZ=ON -DMTF_NATIVE=OFF -DMTF_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-fuzz --target mtf_fuzz -j2
tests/fuzz/run.sh build-fuzz "${MTF_FUZZ_SECONDS:-60}"
t2=$(date +%s)

# Every test but the three longest under ASan (agents_tests, tension_tests and
# the larger paper scenario; docs/sanitizers.md records the full runs): every
# floor's own tests, the command line, the experiment engine end to end and
# the killed-and-resumed runs. The agents' code also runs under the same
# sanitizers in the fuzz targets above (agent files loaded, acting, cloned).
asan_tests="core_tests results_tests users_tests stats_tests scenario_tests sim_tests online_tests experiment_tests"
asan_scripts="cli_tests export_tests resume_tests regress_integratedrl_mtf_small layer_check layer_check_catches_violations"
cmake --preset asan
# shellcheck disable=SC2086
cmake --build --preset asan --target $asan_tests mtfsim
# shellcheck disable=SC2086
ctest --preset asan -R "^($(echo $asan_tests $asan_scripts | tr ' ' '|'))\$"
t3=$(date +%s)
echo "run_all.sh: suite $((t1 - t0)) s, fuzzing $((t2 - t1)) s, ASan and UBSan $((t3 - t2)) s"
