#!/usr/bin/env python3
"""Requests per second of mtfsim.run with Python policies against the built-in
ones (BENCHMARKS.md has the numbers and the command):

  PYTHONPATH=build/python /usr/bin/python3 python/bench.py --policy linear [--scenario F] [--threads N]

--policy builtin: the scenario's own policies (quickstart: a constant action
and the production baseline); constant: group "control" answered by a numpy
callable returning the scenario's constant action (the same numbers as
builtin); linear: every group answered by a numpy linear policy
tanh(states @ W); env: mtfsim.VectorEnv over the first 1,000 users of group
"control", stepped 300 times with the constant action (one request per slot
and step). No run database is written. Prints one line: the policy,
requests, seconds of wall time (the simulation alone) and requests per
second, and for Python policies the calls and their mean batch size.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import mtfsim


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", choices=["builtin", "constant", "linear", "env"], required=True)
    p.add_argument("--scenario", default=os.path.join(here, "..", "scenarios", "quickstart.json"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    with open(args.scenario) as f:
        scenario = json.load(f)
    policies, calls = {}, []

    def counted(fn):
        def policy(states):
            calls.append(states.shape[0])
            return fn(states)
        return policy

    if args.policy == "env":
        group = next(g for g in scenario["groups"] if g["policy"]["type"] == "constant")
        env = mtfsim.VectorEnv(scenario, num_envs=1000, group=group["name"])
        actions = np.tile(np.array(group["policy"]["action"], dtype=np.float32), (env.num_envs, 1))
        env.reset()
        t0 = time.perf_counter()
        for _ in range(300):
            env.step(actions)
        wall = time.perf_counter() - t0
        print("env: {} requests in {:.3f} s: {:.0f} requests/s".format(300 * env.num_envs, wall,
                                                                    300 * env.num_envs / wall))
        return 0
    if args.policy == "constant":
        group = next(g for g in scenario["groups"] if g["policy"]["type"] == "constant")
        action = np.array(group["policy"]["action"], dtype=np.float32)
        policies[group["name"]] = counted(lambda states: np.tile(action, (states.shape[0], 1)))
    elif args.policy == "linear":
        d = len(mtfsim.action_names(scenario))
        w = np.random.default_rng(1).normal(0.0, 0.2, (mtfsim.STATE_DIM, d)).astype(np.float32)
        for g in scenario["groups"]:
            policies[g["name"]] = counted(lambda states: np.tanh(states @ w))
    res = mtfsim.run(scenario, threads=args.threads, policies=policies)
    line = "{}: {} requests in {:.3f} s: {:.0f} requests/s".format(
        args.policy, res["requests"], res["wall_seconds"], res["requests"] / res["wall_seconds"])
    if calls:
        line += "; {} Python calls, {:.1f} requests per call".format(len(calls), sum(calls) / len(calls))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
