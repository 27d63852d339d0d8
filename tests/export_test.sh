#!/usr/bin/env bash
# mtfsim export end to end (run by ctest as export_tests): a small run with a
# constant group and two exploration groups (so bounds and log densities are
# there, and NULL where a policy does not have them) is exported
# to HDF5 and CSV; tests/export_check.py reads the HDF5 file with h5py and
# compares every dataset with the run database, decoded by Python's sqlite3,
# and with the CSV. Then the refusals and atomic outputs.
# Usage: export_test.sh MTFSIM SOURCE_DIR
# Needs Python 3 with h5py and numpy (Debian: python3-h5py python3-numpy);
# MTF_PYTHON names the interpreter when the first python3 on PATH lacks them.
set -u
mtfsim=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python=""
for p in ${MTF_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import h5py, numpy" 2>/dev/null; then python=$p; break; fi
done
if [ -z "$python" ]; then
  echo "export_tests: FAILED: needs Python 3 with h5py and numpy to read the exports back;" \
       "install them (apt-get install -y python3-h5py python3-numpy) or set MTF_PYTHON to an interpreter that has them"
  exit 1
fi
echo "export_tests: using $python ($("$python" -c 'import h5py, numpy; print("h5py", h5py.__version__, "numpy", numpy.__version__)'))"
checker=("$python" "$src/tests/export_check.py" --source-dir "$src")

. "$(dirname "$0")/lib.sh"

# The tiny world with three groups: a constant action (no bounds, no density:
# a point mass), bounded-uniform exploration (baseline, bounds and density) and
# Gaussian noise (baseline and density, no bounds).
"$python" - "$src/tests/data/tiny.json" "$work/explore.json" <<'EOF'
import json, sys
sc = json.load(open(sys.argv[1]))
sc["name"] = "export"
sc["population"]["size"] = 300
control = sc["groups"][0]
sc["groups"] = [control,
                {"name": "explore", "share": 0.5, "policy": {"type": "bounded_uniform", "bound": 0.2}},
                {"name": "noise", "share": 0.5, "policy": {"type": "gaussian", "sigma": 0.6}}]
json.dump(sc, open(sys.argv[2], "w"), indent=1)
sc["record"]["transitions"] = False
json.dump(sc, open(sys.argv[2].replace(".json", "_none.json"), "w"), indent=1)
EOF
run="$work/explore.sqlite"
check "a run with exploration groups" "$mtfsim" run "$work/explore.json" --out "$run" --quiet
check "  it has NULL and non-NULL bounds and log densities" test "$(sqlite3 "$run" \
  'SELECT count(DISTINCT log_density IS NULL) = 2 AND count(DISTINCT lower IS NULL) = 2 FROM transitions')" = 1

# Every dataset, attribute and CSV column against the database.
check "export hdf5 to the default path" "$mtfsim" export "$run" --format hdf5 --next-observations
check "  the default path is RUN.h5" test -s "$work/explore.h5"
check "export csv to a new folder" "$mtfsim" export "$run" --format csv --next-observations --out "$work/csv/x.csv"
check "the HDF5 file and the CSV hold the database's transitions exactly" \
  "${checker[@]}" "$run" "$work/explore.h5" --csv "$work/csv/x.csv" --next-observations
check "export csv to stdout" bash -c "'$mtfsim' export '$run' --format csv --next-observations --out - > '$work/stdout.csv' 2> '$work/stdout.err'"
check "  stdout holds the same CSV" cmp "$work/stdout.csv" "$work/csv/x.csv"
check "  the summary goes to stderr" grep -q "transitions" "$work/stdout.err"
check "export without next observations" "$mtfsim" export "$run" --format hdf5 --out "$work/plain.h5"
check "export csv without next observations" "$mtfsim" export "$run" --format csv --out "$work/plain.csv"
check "  neither has them (the key set is checked exactly)" \
  "${checker[@]}" "$run" "$work/plain.h5" --csv "$work/plain.csv"

# The group filter.
check "export two groups" "$mtfsim" export "$run" --format hdf5 --groups noise,control --out "$work/two.h5"
check "export two groups as csv" "$mtfsim" export "$run" --format csv --groups noise,control --out "$work/two.csv"
check "  only their rows, group indices and names kept" \
  "${checker[@]}" "$run" "$work/two.h5" --csv "$work/two.csv" --groups noise,control

# Timeouts: remove the terminal rows of a third of the users' sessions, so that
# those sessions are cut; the checker recomputes the timeouts from the database.
cp "$run" "$work/cut.sqlite"
sqlite3 "$work/cut.sqlite" "DELETE FROM transitions WHERE done = 1 AND user % 3 = 0"
check "export of a run with cut sessions" "$mtfsim" export "$work/cut.sqlite" --format hdf5 --out "$work/cut.h5"
check "export of a run with cut sessions as csv" "$mtfsim" export "$work/cut.sqlite" --format csv --out "$work/cut.csv"
check "  timeouts where the sessions were cut" \
  "${checker[@]}" "$work/cut.sqlite" "$work/cut.h5" --csv "$work/cut.csv" --min-timeouts 10

# The checker itself fails on one changed value, in the HDF5 file or the CSV.
cp "$work/two.h5" "$work/tampered.h5"
"$python" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); f['rewards'][3] = f['rewards'][3] + 1; f.close()" "$work/tampered.h5"
check "the checker catches one changed reward" bash -c "! ${checker[*]} '$run' '$work/tampered.h5' --groups noise,control"
"$python" - "$work/two.csv" "$work/tampered.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
k = rows[0].index("obs_session_requests")
rows[5][k] = repr(float(rows[5][k]) + 0.5)
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
EOF
check "the checker catches one changed CSV field" bash -c "! ${checker[*]} '$run' '$work/two.h5' --csv '$work/tampered.csv' --groups noise,control"
check "  (the CSV really was changed)" bash -c "! cmp -s '$work/two.csv' '$work/tampered.csv'"

# Flags: one message form, exit code 2.
fails_with "an unknown group names the run's groups" 2 \
  "mtfsim: export: --groups: expected names of the run's groups (control, explore, noise), got \"nope\"" \
  "$mtfsim" export "$run" --format csv --groups control,nope --out "$work/g.csv"
fails_with "an empty group name" 2 "mtfsim: export: --groups: expected group names separated by commas, got \"control,,noise\"" \
  "$mtfsim" export "$run" --format csv --groups control,,noise
fails_with "a bad format" 2 "mtfsim: export: --format: expected hdf5 or csv, got \"parquet\"" \
  "$mtfsim" export "$run" --format parquet
fails_with "a missing format" 2 "mtfsim: export: missing --format (hdf5 or csv)" "$mtfsim" export "$run"
fails_with "a missing run" 2 "mtfsim: export: missing RUN.sqlite" "$mtfsim" export --format csv
fails_with "hdf5 to stdout" 2 "mtfsim: export: --out: expected a file path (only csv goes to stdout), got -" \
  "$mtfsim" export "$run" --format hdf5 --out -
mkdir -p "$work/adir"
fails_with "--out of a directory" 2 "mtfsim: export: --out: expected a file path (missing folders are created), got $work/adir, a directory" \
  "$mtfsim" export "$run" --format csv --out "$work/adir"
cp "$run" "$work/keep.sqlite"
fails_with "--out onto the run database it reads" 2 "got $run, the run database itself" \
  "$mtfsim" export "$run" --format hdf5 --out "$run"
check "  the run database is intact" cmp "$run" "$work/keep.sqlite"
fails_with "--out onto another run database" 2 "got $work/keep.sqlite, a run database" \
  "$mtfsim" export "$run" --format csv --out "$work/keep.sqlite"
check "  that run database is intact" cmp "$run" "$work/keep.sqlite"
cp "$run" "$work/self.h5"
fails_with "a run database named .h5 is not overwritten by its default output" 2 "the run database itself" \
  "$mtfsim" export "$work/self.h5" --format hdf5
check "export --help" "$mtfsim" export --help

# Inputs: as every reader of run databases.
fails_with "a missing run database" 1 "$work/none.sqlite: no such run database" \
  "$mtfsim" export "$work/none.sqlite" --format csv
fails_with "a directory" 1 "$work/adir: is a directory, not a run database" "$mtfsim" export "$work/adir" --format csv
check "a run without transitions" "$mtfsim" run "$work/explore_none.json" --out "$work/none_rec.sqlite" --quiet
fails_with "  is refused with the fix" 1 "recorded no transitions" \
  "$mtfsim" export "$work/none_rec.sqlite" --format hdf5 --out "$work/none_rec.h5"

# An unfinished run: refused unless --allow-partial, whose file says it is unfinished.
cp "$run" "$work/unfinished.sqlite"
sqlite3 "$work/unfinished.sqlite" "UPDATE run SET finished_at = NULL, wall_seconds = NULL"
fails_with "an unfinished run is refused" 1 "the run did not finish" \
  "$mtfsim" export "$work/unfinished.sqlite" --format hdf5
fails_with "  naming --allow-partial" 1 "--allow-partial" "$mtfsim" export "$work/unfinished.sqlite" --format csv
check "  and nothing is written" test ! -e "$work/unfinished.h5"
check "export --allow-partial" "$mtfsim" export "$work/unfinished.sqlite" --format hdf5 --allow-partial
check "  holds the rows, finished_at empty" "${checker[@]}" "$work/unfinished.sqlite" "$work/unfinished.h5"

# Atomic outputs: a failed export leaves the earlier file; no temporary file stays behind.
echo "earlier export" > "$work/earlier.csv"
fails_with "a failed export" 2 "got \"nope\"" "$mtfsim" export "$run" --format csv --groups nope --out "$work/earlier.csv"
check "  leaves the earlier file" grep -qx "earlier export" "$work/earlier.csv"
check "  and the next one replaces it" "$mtfsim" export "$run" --format csv --out "$work/earlier.csv"
check "  with the export" cmp "$work/earlier.csv" "$work/plain.csv"
check "no temporary files are left" bash -c "! find '$work' -name '*.tmp-*' | grep -q ."

finish
