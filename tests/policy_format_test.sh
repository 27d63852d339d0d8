#!/usr/bin/env bash
# The foreign-policy format end to end (run by ctest as policy_format_tests):
# small MLPs exported with tools/export_torch_policy.py act in mtfsim as the
# float64 reference computes (tests/policy_format_check.py states the
# tolerance), run in a scenario group and in evaluate, and malformed files are
# refused with the JSON path. Needs Python 3 with numpy (Debian: python3-numpy);
# MTF_PYTHON names the interpreter when the first python3 on PATH lacks it.
# Usage: policy_format_test.sh MTFSIM SOURCE_DIR
set -u
mtfsim=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python=""
for p in ${MTF_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null; then python=$p; break; fi
done
if [ -z "$python" ]; then
  echo "policy_format_tests: FAILED: needs Python 3 with numpy (apt-get install -y python3-numpy), or MTF_PYTHON"
  exit 1
fi

. "$(dirname "$0")/lib.sh"

check "the networks are exported" "$python" "$src/tests/policy_format_check.py" make "$work" "$src/tools"
for n in tanh_out clip_out every_activation; do
  check "mtfsim act runs $n" "$mtfsim" act "$work/$n.json" --states "$work/states.csv" --out "$work/$n.actions.csv"
done
check "the actions match the reference" "$python" "$src/tests/policy_format_check.py" check "$work"
"$python" "$src/tests/policy_format_check.py" check "$work" | sed "s/^/  /"

# A header naming the features is accepted; one in another order is refused.
features=$("$mtfsim" run "$src/tests/data/tiny.json" --out "$work/tiny.sqlite" --quiet >/dev/null && \
  sqlite3 "$work/tiny.sqlite" "SELECT state_features FROM run" | "$python" -c "import json,sys; print(','.join(json.load(sys.stdin)))")
{ echo "$features"; cat "$work/states.csv"; } > "$work/headed.csv"
check "a states file with the features' header" "$mtfsim" act "$work/tanh_out.json" --states "$work/headed.csv" --out "$work/headed.actions.csv"
check "  gives the same actions" cmp "$work/headed.actions.csv" "$work/tanh_out.actions.csv"
{ echo "$features" | awk -F, '{t=$1; $1=$2; $2=t; print}' OFS=,; cat "$work/states.csv"; } > "$work/swapped.csv"
fails_with "a header in another order" 1 "column 1 is" "$mtfsim" act "$work/tanh_out.json" --states "$work/swapped.csv"

# Deployed: a scenario group and the oracle run the policy (the tiny world has
# 10 action dimensions: tanh_out and every_activation; clip_out acts in 3).
"$python" -c "
import json
s = json.load(open('$src/tests/data/tiny.json'))
s['groups'][1]['policy'] = {'type': 'agent', 'path': 'tanh_out.json'}
json.dump(s, open('$work/dep.json', 'w'))"
check "a scenario group runs the policy file" "$mtfsim" run "$work/dep.json" --out "$work/dep.sqlite" --quiet
check "  and keeps it" test "$(sqlite3 "$work/dep.sqlite" "SELECT type FROM agents")" = mlp
check "evaluate runs it" "$mtfsim" evaluate "$src/tests/data/tiny.json" --policy "$work/every_activation.json" --users 100 --days 1
fails_with "evaluate refuses a policy of another action dimension" 1 "acts in 3 dimensions, the scenario's fusion block has 10" \
  "$mtfsim" evaluate "$src/tests/data/tiny.json" --policy "$work/clip_out.json" --users 100 --days 1
fails_with "train --from refuses a policy file" 1 "an MLP policy file" \
  "$mtfsim" train "$work/tiny.sqlite" --from "$work/tanh_out.json" --steps 1 --out "$work/x.mtfa"

# Malformed files name the JSON path.
edit() {  # edit OUT PYTHON-STATEMENT: a copy of tanh_out.json changed by the statement on d
  "$python" -c "
import json
d = json.load(open('$work/tanh_out.json'))
$2
json.dump(d, open('$work/$1', 'w'))"
}
edit v2.json "d['version'] = 2"
fails_with "a newer version" 1 "version: expected a format version this build reads (up to 1)" \
  "$mtfsim" act "$work/v2.json" --states "$work/states.csv"
edit act.json "d['layers'][1]['activation'] = 'tahn'"
fails_with "an unknown activation" 1 'layers[1].activation: expected an activation: "identity", "relu", "tanh"' \
  "$mtfsim" act "$work/act.json" --states "$work/states.csv"
edit shape.json "d['layers'][1]['weight'][3] = d['layers'][1]['weight'][3][:-1]"
fails_with "a weight row of the wrong length" 1 "layers[1].weight[3]: expected an array of 24 numbers" \
  "$mtfsim" act "$work/shape.json" --states "$work/states.csv"
edit nan.json "d['layers'][0]['bias'][2] = 'nan'"
fails_with "a weight that is not a number" 1 "layers[0].bias[2]: expected a finite float32 number" \
  "$mtfsim" act "$work/nan.json" --states "$work/states.csv"
edit sd.json "d['state_dim'] = 31"
fails_with "another state dimension" 1 "state_dim: expected 32, the simulator's state dimension" \
  "$mtfsim" act "$work/sd.json" --states "$work/states.csv"
edit names.json "d['state_features'] = ['x%d' % i for i in range(32)]"
fails_with "state features of another order" 1 "state_features[0]: expected \"age_group\"" \
  "$mtfsim" act "$work/names.json" --states "$work/states.csv"
edit std.json "d['normalisation']['std'][5] = 0"
fails_with "a zero standard deviation" 1 "normalisation.std[5]: expected a number > 0" \
  "$mtfsim" act "$work/std.json" --states "$work/states.csv"

finish
