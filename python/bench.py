#!/usr/bin/env python3
"""Requests per second of mtfsim.run with Python policies against the built-in
ones (BENCHMARKS.md has the numbers and the command):

  PYTHONPATH=build/python /usr/bin/python3 python/bench.py --policy linear [--scenario F] [--threads N]

--policy builtin: the scenario's own policies (quickstart: a constant action
and the production baseline); constant: group "control" answered by a numpy
callable returning the scenario's constant action (the same numbers as
builtin); linear: every group answered by a numpy linear policy
tanh(states @ W). No run database is written. Prints one line: the policy,
requests, simulated seconds of wall time and requests per second.
"""

import argparse
import json
import os
import sys

import numpy as np

import mtfsim


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", choices=["builtin", "constant", "linear"], required=True)
    p.add_argument("--scenario", default=os.path.join(here, "..", "scenarios", "quickstart.json"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    with open(args.scenario) as f:
        scenario = json.load(f)
    policies = {}
    if args.policy == "constant":
        group = next(g for g in scenario["groups"] if g["policy"]["type"] == "constant")
        action = np.array(group["policy"]["action"], dtype=np.float32)
        policies[group["name"]] = lambda states: np.tile(action, (states.shape[0], 1))
    elif args.policy == "linear":
        d = len(mtfsim.action_names(scenario))
        w = np.random.default_rng(1).normal(0.0, 0.2, (mtfsim.STATE_DIM, d)).astype(np.float32)
        for g in scenario["groups"]:
            policies[g["name"]] = lambda states: np.tanh(states @ w)
    res = mtfsim.run(scenario, threads=args.threads, policies=policies)
    print("{}: {} requests in {:.3f} s: {:.0f} requests/s".format(
        args.policy, res["requests"], res["wall_seconds"], res["requests"] / res["wall_seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
