"""The Python module mtfsim, end to end (ctest python_tests): run() against the
command line, Python callables against the built-in policies, the vectorised
environment against a C++ run's transitions, and the run database's arrays
against `mtfsim export`'s CSV. Run with Debian's python3 and numpy:

  PYTHONPATH=build/python MTFSIM=build/mtfsim MTF_SOURCE_DIR=. /usr/bin/python3 tests/python/test_mtfsim.py
"""

import csv
import json
import os
import sqlite3
import subprocess
import tempfile
import unittest

import numpy as np

import mtfsim

SOURCE = os.environ.get("MTF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MTFSIM = os.environ.get("MTFSIM", os.path.join(SOURCE, "build", "mtfsim"))
TINY = os.path.join(SOURCE, "tests", "data", "tiny.json")
with open(TINY) as f:
    TINY_JSON = json.load(f)
CONTROL_ACTION = np.array(TINY_JSON["groups"][0]["policy"]["action"], dtype=np.float32)  # group "control"


def constant_policy(action):
    def act(states):
        return np.tile(action, (states.shape[0], 1))
    return act


class Fixture:
    """One C++ run of tiny.json through the command line, shared by the tests."""
    tmp = tempfile.TemporaryDirectory(prefix="mtfsim_py_")
    cli_db = os.path.join(tmp.name, "cli.sqlite")
    subprocess.run([MTFSIM, "run", TINY, "--out", cli_db, "--threads", "2", "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)


class RunTest(unittest.TestCase):
    def test_the_module_imports_with_its_constants(self):
        self.assertEqual(mtfsim.STATE_DIM, 32)
        self.assertEqual(len(mtfsim.STATE_FEATURES), 32)
        names = [f[0] for f in mtfsim.STATE_FEATURES]
        self.assertEqual(names[:2], ["age_group", "male"])
        self.assertEqual(names[-1], "bias")
        self.assertEqual(len(mtfsim.action_names(TINY)), 10)

    def test_run_gives_the_command_lines_summary_to_the_bit(self):
        cli = mtfsim.read_run(Fixture.cli_db)
        out = os.path.join(Fixture.tmp.name, "py.sqlite")
        res = mtfsim.run(TINY, out=out, threads=1)
        self.assertEqual(sorted(res["summary"]), ["baseline", "control"])
        self.assertEqual(res["summary"], cli["summary"])  # floats compared exactly
        self.assertEqual(mtfsim.read_run(out)["summary"], cli["summary"])
        self.assertGreater(res["summary"]["control"]["requests_per_session"], 0)
        self.assertEqual(len(res["lifts"]), 7)
        # The same scenario as text and as a dict; another seed moves the numbers.
        self.assertEqual(mtfsim.run(json.dumps(TINY_JSON))["summary"], cli["summary"])
        self.assertEqual(mtfsim.run(TINY_JSON, threads=3)["summary"], cli["summary"])
        self.assertNotEqual(mtfsim.run(TINY_JSON, seed=7)["summary"], cli["summary"])

    def test_read_run_gives_the_runs_metadata(self):
        run = mtfsim.read_run(Fixture.cli_db)
        self.assertEqual(run["info"]["scenario_name"], "tiny")
        self.assertEqual(run["info"]["seed"], TINY_JSON["seed"])
        self.assertEqual(run["info"]["scenario"]["population"]["size"], 400)
        self.assertEqual([g["name"] for g in run["groups"]], ["control", "baseline"])
        self.assertEqual(run["groups"][0]["policy"], "constant")
        self.assertEqual(sum(g["users"] for g in run["groups"]), 400)
        self.assertIsNotNone(run["finished_at"])
        self.assertEqual(run["metrics"], [])
        with self.assertRaises(mtfsim.RecordError):
            mtfsim.read_run(os.path.join(Fixture.tmp.name, "missing.sqlite"))


class PythonPolicyTest(unittest.TestCase):
    def test_a_numpy_constant_policy_reproduces_the_cpp_constant_policy(self):
        reference = mtfsim.run(TINY)["summary"]
        batches = []

        def policy(states):
            self.assertEqual(states.dtype, np.float32)
            self.assertEqual(states.shape[1], 32)
            batches.append(states.shape[0])
            return np.tile(CONTROL_ACTION, (states.shape[0], 1))

        res = mtfsim.run(TINY, policies={"control": policy}, threads=1)
        self.assertEqual(res["summary"], reference)
        self.assertTrue(res["policies"]["control"].startswith("python:"))
        self.assertEqual(res["policies"]["baseline"], "baseline")
        # Once per batch of requests, never once per request.
        requests = int(np.sum(mtfsim.read_transitions(Fixture.cli_db)["group"] == 0))
        self.assertEqual(sum(batches), requests)
        self.assertLess(len(batches), sum(batches) / 4)
        # Any thread count, the same numbers; float64 results are rounded to float32.
        res3 = mtfsim.run(TINY, policies={"control": lambda s: np.tile(CONTROL_ACTION.astype(np.float64),
                                                                       (len(s), 1))}, threads=3)
        self.assertEqual(res3["summary"], reference)
        # The test can fail: another action gives other numbers.
        other = mtfsim.run(TINY, policies={"control": constant_policy(np.zeros(10, np.float32))})
        self.assertNotEqual(other["summary"]["control"], reference["control"])
        self.assertEqual(other["summary"]["baseline"], reference["baseline"])

    def test_a_linear_policy_is_the_same_for_any_thread_count(self):
        w = np.random.default_rng(3).normal(0, 0.3, (32, 10)).astype(np.float32)

        def linear(states):
            return np.tanh(states @ w)

        one = mtfsim.run(TINY, policies={"baseline": linear}, threads=1)["summary"]
        three = mtfsim.run(TINY, policies={"baseline": linear}, threads=3)["summary"]
        self.assertEqual(one, three)

    def test_bad_policies_are_named_with_the_fix(self):
        with self.assertRaisesRegex(ValueError, r'policies\["control"\]\'s result: expected shape \(\d+, 10\)'):
            mtfsim.run(TINY, policies={"control": lambda s: np.zeros((len(s), 3), np.float32)})
        with self.assertRaisesRegex(TypeError, "expected float32 actions, got dtype int64"):
            mtfsim.run(TINY, policies={"control": lambda s: np.zeros((len(s), 10), np.int64)})
        with self.assertRaisesRegex(ValueError, r"row 0, column 0 is 2.*in \[-1, 1\]"):
            mtfsim.run(TINY, policies={"control": lambda s: np.full((len(s), 10), 2.0, np.float32)})
        with self.assertRaisesRegex(KeyError, 'not a group of scenario tiny.*"control", "baseline"'):
            mtfsim.run(TINY, policies={"treatment": lambda s: s})
        with self.assertRaisesRegex(TypeError, "expected a callable"):
            mtfsim.run(TINY, policies={"control": 3})

        def broken(states):
            raise ZeroDivisionError("no")
        with self.assertRaisesRegex(RuntimeError, r'policies\["control"\]: the policy raised') as caught:
            mtfsim.run(TINY, policies={"control": broken}, threads=2)
        self.assertIsInstance(caught.exception.__cause__, ZeroDivisionError)


class VectorEnvTest(unittest.TestCase):
    def test_spaces_shapes_and_dtypes(self):
        env = mtfsim.VectorEnv(TINY, num_envs=5, group="baseline")
        self.assertEqual(env.num_envs, 5)
        self.assertEqual(env.single_observation_space.shape, (32,))
        self.assertEqual(env.single_observation_space.dtype, np.float32)
        self.assertEqual(env.observation_space.shape, (5, 32))
        self.assertEqual(env.single_action_space.shape, (10,))
        self.assertEqual(env.action_space.shape, (5, 10))
        self.assertTrue(np.all(env.single_action_space.low == -1) and np.all(env.single_action_space.high == 1))
        a = env.action_space.sample()
        self.assertEqual((a.shape, a.dtype), ((5, 10), np.float32))
        self.assertTrue(env.action_space.contains(a))
        obs, info = env.reset()
        self.assertEqual((obs.shape, obs.dtype), ((5, 32), np.float32))
        self.assertTrue(env.observation_space.contains(obs))
        self.assertTrue(np.all(info["step"] == 0))
        obs2, rew, term, trunc, info2 = env.step(a)
        self.assertEqual((obs2.shape, obs2.dtype), ((5, 32), np.float32))
        self.assertEqual((rew.shape, rew.dtype), ((5,), np.float64))
        self.assertEqual((term.dtype, trunc.dtype), (np.dtype(bool), np.dtype(bool)))
        self.assertEqual(info2["final_obs"].shape, (5, 32))
        # Another reset without a seed repeats the same users from the start.
        again, info3 = env.reset()
        np.testing.assert_array_equal(again, obs)
        np.testing.assert_array_equal(info3["user"], info["user"])
        other, info4 = env.reset(seed=99)
        self.assertFalse(np.array_equal(info4["user"], info["user"]) and np.array_equal(other, obs))

    def test_bad_actions_are_named_with_the_fix(self):
        env = mtfsim.VectorEnv(TINY, num_envs=3)
        with self.assertRaisesRegex(RuntimeError, "reset"):
            env.step(np.zeros((3, 10), np.float32))
        env.reset()
        with self.assertRaisesRegex(ValueError, r"actions: expected shape \(3, 10\).*got \(2, 10\)"):
            env.step(np.zeros((2, 10), np.float32))
        with self.assertRaisesRegex(TypeError, "expected float32 actions, got dtype int32"):
            env.step(np.zeros((3, 10), np.int32))
        with self.assertRaisesRegex(ValueError, r"row 1, column 4 is nan"):
            bad = np.zeros((3, 10), np.float32)
            bad[1, 4] = np.nan
            env.step(bad)
        with self.assertRaisesRegex(ValueError, r"row 2, column 9 is -1.5"):
            bad = np.zeros((3, 10), np.float32)
            bad[2, 9] = -1.5
            env.step(bad)
        with self.assertRaisesRegex(ValueError, "num_envs=9999: group \"control\" has \\d+ users"):
            mtfsim.VectorEnv(TINY, num_envs=9999)
        with self.assertRaisesRegex(KeyError, "not a group"):
            mtfsim.VectorEnv(TINY, group="treatment")
        with self.assertRaisesRegex(ValueError, "num_envs=0: expected at least 1"):
            mtfsim.VectorEnv(TINY, num_envs=0)
        with self.assertRaisesRegex(ValueError, "seed must be in 1"):
            env.reset(seed=0)
        with self.assertRaisesRegex(ValueError, "options are not used"):
            env.reset(options={"users": 3})

    def test_the_env_with_the_constant_action_replays_the_cpp_run_to_the_bit(self):
        # Slots are the first users of group "control", whose C++ policy is the
        # constant CONTROL_ACTION: stepping them with that action must give the
        # states, rewards and session ends the run database holds for them.
        n, days = 12, TINY_JSON["days"]
        env = mtfsim.VectorEnv(TINY, num_envs=n, group="control")
        obs, info = env.reset()
        actions = np.tile(CONTROL_ACTION, (n, 1))
        traj = {int(u): [] for u in info["user"]}  # user -> (day, obs, reward, done, next obs)
        while np.any(info["day"] < days):
            users, req_day = info["user"].copy(), info["day"].copy()
            nxt, rew, term, trunc, info = env.step(actions)
            self.assertFalse(np.any(trunc))
            for k in range(n):
                if req_day[k] < days:
                    traj[int(users[k])].append((int(req_day[k]), obs[k], rew[k], bool(term[k]),
                                                info["final_obs"][k]))
            # After a session's end the slot is at the first request of the user's next one.
            self.assertTrue(np.all(info["step"][term] == 0))
            np.testing.assert_array_equal(info["final_obs"][~term], nxt[~term])
            obs = nxt

        data = mtfsim.read_transitions(Fixture.cli_db)
        con = sqlite3.connect(Fixture.cli_db)
        user_days = {(u, d): r for u, d, r in con.execute("SELECT user, day, reward FROM user_days")}
        con.close()
        steps = terminals = 0
        for u, rows in traj.items():
            sel = np.flatnonzero(data["user"] == u)
            self.assertEqual(len(sel), len(rows), "user {}".format(u))
            self.assertTrue(np.all(data["group"][sel] == 0))
            for j, (day, o, r, done, o2) in zip(sel, rows):
                self.assertEqual(o.tobytes(), data["observations"][j].tobytes())
                self.assertEqual(np.float32(r), data["rewards"][j])
                self.assertEqual(done, bool(data["terminals"][j]))
                self.assertEqual(o2.tobytes(), data["next_observations"][j].tobytes())
                np.testing.assert_array_equal(data["actions"][j], CONTROL_ACTION)
            # Rewards summed per day in request order: the run's double totals, to the bit.
            for day in range(days):
                total, active = 0.0, False
                for d, _, r, _, _ in rows:
                    if d == day:
                        total += float(r)
                        active = True
                if active:
                    self.assertEqual(total, user_days[(u, day)], "user {} day {}".format(u, day))
                else:
                    self.assertNotIn((u, day), user_days)
            steps += len(rows)
            terminals += sum(1 for row in rows if row[3])
        self.assertGreater(steps, 100)
        self.assertGreater(terminals, n)
        # The test can fail: other actions give other rewards.
        env.reset()
        _, rew_zero, _, _, _ = env.step(np.zeros((n, 10), np.float32))
        env.reset()
        _, rew_const, _, _, _ = env.step(actions)
        self.assertFalse(np.array_equal(rew_zero, rew_const))


class ReadTransitionsTest(unittest.TestCase):
    def export_csv(self, *flags):
        out = os.path.join(Fixture.tmp.name, "export{}.csv".format(len(flags)))
        subprocess.run([MTFSIM, "export", Fixture.cli_db, "--format", "csv", "--out", out] + list(flags),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
        return rows[0], rows[1:]

    def check_against_csv(self, data, header, rows):
        self.assertEqual(len(rows), len(data["rewards"]))
        self.assertGreater(len(rows), 0)
        col = {name: i for i, name in enumerate(header)}
        cols = list(zip(*rows))
        f32 = lambda name: np.array(cols[col[name]], dtype=np.float64).astype(np.float32)
        f64 = lambda name: np.array(cols[col[name]], dtype=np.float64)
        same = lambda a, b: np.testing.assert_array_equal(a, b)  # NaN equals NaN here
        for i, feature in enumerate(data["state_features"]):
            same(data["observations"][:, i], f32("obs_" + feature))
            same(data["next_observations"][:, i], f32("next_obs_" + feature))
        for i in range(data["actions"].shape[1]):
            same(data["actions"][:, i], f32("act_{}".format(i)))
            same(data["baseline"][:, i], f32("baseline_{}".format(i)))
            same(data["lower"][:, i], f32("low_{}".format(i)))
            same(data["upper"][:, i], f32("high_{}".format(i)))
        same(data["rewards"], f32("reward"))
        same(data["terminals"], f64("terminal") == 1)
        same(data["timeouts"], f64("timeout") == 1)
        for key in ("user", "session", "step"):
            same(data[key], np.array(cols[col[key]], dtype=np.int64))
        same([data["group_names"][g] for g in data["group"]], list(cols[col["group"]]))
        same(data["time"], f64("time"))
        same(data["log_density"], f64("log_density"))
        self.assertEqual(data["observations"].dtype, np.float32)
        self.assertEqual(data["user"].dtype, np.int64)

    def test_read_transitions_equals_the_csv_export(self):
        data = mtfsim.read_transitions(Fixture.cli_db)
        header, rows = self.export_csv("--next-observations")
        self.check_against_csv(data, header, rows)
        self.assertTrue(np.isnan(data["lower"]).all())     # constant and baseline: no bounds
        self.assertFalse(np.isnan(data["observations"]).any())

    def test_read_transitions_of_one_group_equals_its_csv_export(self):
        data = mtfsim.read_transitions(Fixture.cli_db, groups=["baseline"])
        header, rows = self.export_csv("--next-observations", "--groups", "baseline")
        self.check_against_csv(data, header, rows)
        self.assertTrue(np.all(data["group"] == 1))
        with self.assertRaisesRegex(mtfsim.RecordError, "treatment"):
            mtfsim.read_transitions(Fixture.cli_db, groups=["treatment"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
