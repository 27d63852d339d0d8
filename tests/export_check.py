#!/usr/bin/env python3
"""Checks an `mtfsim export` against the run database it came from.

Decodes the database's transitions itself (Python's sqlite3 and numpy, not
mtfsim's reader; the blob layout is in docs/export.md), reads the HDF5 file
with h5py and compares every dataset and attribute exactly: floats bit for
bit (NaN where the database holds NULL), counts, terminals, and timeouts
recomputed from the sessions. With --csv, also compares every column of the
CSV with the HDF5 file. Exits 1 with the first difference of each kind.

Usage: export_check.py RUN.sqlite FILE.h5 [--csv FILE.csv] [--groups A,B]
                       [--next-observations] [--min-timeouts N] [--source-dir DIR]
"""
import argparse
import csv
import json
import math
import re
import sqlite3
import sys

import h5py
import numpy as np

FORMAT_NAME = "mtfsim-transitions"
FORMAT_VERSION = 1

problems = []


def problem(text):
    problems.append(text)
    print("MISMATCH: " + text, file=sys.stderr)


def bits(a):
    """The bit patterns of a float array (so that -0.0 != 0.0 and NaN == NaN of the same payload)."""
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def same_floats(name, got, want):
    got = np.asarray(got)
    want = np.asarray(want)
    if got.dtype != want.dtype:
        problem(f"{name}: dtype {got.dtype}, expected {want.dtype}")
        return
    if got.shape != want.shape:
        problem(f"{name}: shape {got.shape}, expected {want.shape}")
        return
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    differ = (nan_got != nan_want) | (~nan_want & (bits(got) != bits(want)))
    if differ.any():
        i = np.argwhere(differ)[0]
        problem(f"{name}: {int(differ.sum())} values differ, first at {tuple(int(k) for k in i)}: "
                f"{got[tuple(i)]!r} instead of {want[tuple(i)]!r}")


def same_values(name, got, want):
    got = np.asarray(got)
    want = np.asarray(want)
    if got.dtype != want.dtype:
        problem(f"{name}: dtype {got.dtype}, expected {want.dtype}")
    elif got.shape != want.shape:
        problem(f"{name}: shape {got.shape}, expected {want.shape}")
    elif not np.array_equal(got, want):
        i = np.argwhere(got != want)[0]
        problem(f"{name}: {int((got != want).sum())} values differ, first at {tuple(int(k) for k in i)}: "
                f"{got[tuple(i)]!r} instead of {want[tuple(i)]!r}")


def floats(blob, n, what):
    """A float32 little-endian blob of n values; None (SQL NULL) gives n NaNs."""
    if blob is None:
        return np.full(n, np.nan, dtype=np.float32)
    v = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if v.size != n:
        problem(f"database: {what} holds {v.size} floats, expected {n}")
    return v


def read_database(path, groups):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    run = db.execute("SELECT * FROM run").fetchone()
    meta = {
        "schema_version": db.execute("PRAGMA user_version").fetchone()[0],
        "scenario_name": run["scenario_name"],
        "seed": run["seed"] % (1 << 64),  # stored as a signed 64-bit integer
        "code_version": run["code_version"],
        "state_dim": run["state_dim"],
        "action_dim": run["action_dim"],
        "state_features": json.loads(run["state_features"]),
        "action_names": json.loads(run["action_names"]),
        "started_at": run["started_at"],
        "finished_at": run["finished_at"] or "",
    }
    names = [r["name"] for r in db.execute("SELECT grp, name FROM groups ORDER BY grp")]
    meta["group_names"] = names
    wanted = [names.index(g) for g in groups] if groups else list(range(len(names)))
    meta["exported_groups"] = [names[g] for g in sorted(set(wanted))]
    S, A = meta["state_dim"], meta["action_dim"]
    cols = {k: [] for k in ("observations", "actions", "next_observations", "rewards", "terminals", "users",
                            "sessions", "steps", "groups", "times", "baseline_actions", "action_low",
                            "action_high", "log_densities")}
    for r in db.execute("SELECT * FROM transitions ORDER BY rowid"):
        if r["grp"] not in wanted:
            continue
        cols["observations"].append(floats(r["state"], S, "state"))
        cols["actions"].append(floats(r["action"], A, "action"))
        cols["next_observations"].append(floats(r["next_state"], S, "next_state"))
        reward = r["reward"]
        if float(np.float32(reward)) != reward:
            problem(f"database: reward {reward!r} is not a float32 value")
        cols["rewards"].append(np.float32(reward))
        cols["terminals"].append(r["done"] != 0)
        cols["users"].append(r["user"])
        cols["sessions"].append(r["session"])
        cols["steps"].append(r["step"])
        cols["groups"].append(r["grp"])
        cols["times"].append(r["time"])
        cols["baseline_actions"].append(floats(r["baseline"], A, "baseline"))
        cols["action_low"].append(floats(r["lower"], A, "lower"))
        cols["action_high"].append(floats(r["upper"], A, "upper"))
        cols["log_densities"].append(math.nan if r["log_density"] is None else r["log_density"])
    n = len(cols["rewards"])
    want = {}
    for k in ("observations", "next_observations"):
        want[k] = np.array(cols[k], dtype=np.float32).reshape(n, S)
    for k in ("actions", "baseline_actions", "action_low", "action_high"):
        want[k] = np.array(cols[k], dtype=np.float32).reshape(n, A)
    want["rewards"] = np.array(cols["rewards"], dtype=np.float32)
    want["terminals"] = np.array(cols["terminals"], dtype=bool)
    want["users"] = np.array(cols["users"], dtype=np.int64)
    for k in ("sessions", "steps", "groups"):
        want[k] = np.array(cols[k], dtype=np.int32)
    want["times"] = np.array(cols["times"], dtype=np.float64)
    want["log_densities"] = np.array(cols["log_densities"], dtype=np.float64)
    # Timeouts, by the documented rule: the row with the highest step of each
    # (user, session) is a timeout when it is not terminal.
    last = {}
    for i in range(n):
        key = (int(want["users"][i]), int(want["sessions"][i]))
        if key not in last or want["steps"][i] >= want["steps"][last[key]]:
            last[key] = i
    timeouts = np.zeros(n, dtype=bool)
    for i in last.values():
        timeouts[i] = not want["terminals"][i]
    want["timeouts"] = timeouts
    check_episodes(want, len(last))
    return meta, want


def check_episodes(want, sessions):
    """Episodes split where terminals | timeouts is set (as d3rlpy's MDPDataset
    splits them) must be the sessions: each a run of one (user, session) with
    consecutive steps."""
    ends = np.flatnonzero(want["terminals"] | want["timeouts"])
    n = len(want["rewards"])
    if n and (len(ends) == 0 or ends[-1] != n - 1):
        problem("the last row ends no episode (neither terminal nor timeout)")
    if len(ends) != sessions:
        problem(f"{len(ends)} episode ends for {sessions} sessions")
    start = 0
    for end in ends:
        users = want["users"][start:end + 1]
        sess = want["sessions"][start:end + 1]
        steps = want["steps"][start:end + 1]
        if (users != users[0]).any() or (sess != sess[0]).any() or (np.diff(steps) != 1).any():
            problem(f"rows {start}..{end}: an episode that is not one session with consecutive steps")
            return
        start = end + 1


def header_features(source_dir):
    """The feature names of core/state_features.h's kStateFeatures, in order."""
    with open(f"{source_dir}/core/state_features.h") as f:
        text = f.read()
    table = text[text.index("kStateFeatures = {{"):]
    table = table[:table.index("}};")]
    return re.findall(r'^\s*\{"([a-z0-9_]+)",', table, re.M)


def check_hdf5(path, meta, want, next_obs, source_dir):
    keys = set(want) - ({"next_observations"} if not next_obs else set())
    with h5py.File(path, "r") as f:
        got_keys = set(f.keys())
        if got_keys != keys:
            problem(f"{path}: datasets {sorted(got_keys)}, expected {sorted(keys)}")
        data = {k: f[k][()] for k in got_keys & keys}
        attrs = dict(f.attrs)
    for k, v in data.items():
        if want[k].dtype.kind == "f":
            same_floats(k, v, want[k])
        else:
            same_values(k, v, want[k])

    def attr(name, expected):
        if name not in attrs:
            problem(f"attribute {name}: missing")
            return
        v = attrs[name]
        v = [str(x) for x in v] if isinstance(expected, list) else v
        if isinstance(expected, int) and not isinstance(v, (int, np.integer)):
            problem(f"attribute {name}: {v!r} is not an integer")
        elif v != expected:
            problem(f"attribute {name}: {v!r}, expected {expected!r}")

    attr("format", FORMAT_NAME)
    attr("format_version", FORMAT_VERSION)
    attr("run_schema_version", meta["schema_version"])
    for k in ("scenario_name", "seed", "state_dim", "action_dim", "state_features", "action_names",
              "group_names", "exported_groups", "started_at", "finished_at"):
        attr(k, meta[k])
    attr("run_code_version", meta["code_version"])
    if source_dir:
        attr("state_features", header_features(source_dir))
    for k in ("exported_by", "source"):
        if not attrs.get(k):
            problem(f"attribute {k}: missing or empty")
    return data


def check_csv(path, meta, data, next_obs):
    S, A = meta["state_dim"], meta["action_dim"]
    feats = meta["state_features"]
    columns = ([f"obs_{x}" for x in feats] + [f"act_{a}" for a in range(A)] +
               ["reward", "terminal", "timeout", "user", "session", "step", "group", "time"] +
               [f"baseline_{a}" for a in range(A)] + [f"low_{a}" for a in range(A)] +
               [f"high_{a}" for a in range(A)] + ["log_density"] +
               ([f"next_obs_{x}" for x in feats] if next_obs else []))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != columns:
        problem(f"{path}: header {rows[0] if rows else None}, expected {columns}")
        return
    body = rows[1:]
    n = len(data["rewards"])
    if len(body) != n:
        problem(f"{path}: {len(body)} rows, expected {n} (the HDF5 file's)")
        return
    if any(len(r) != len(columns) for r in body):
        problem(f"{path}: a row without {len(columns)} fields")
        return
    table = list(zip(*body)) if body else [()] * len(columns)
    at = {c: i for i, c in enumerate(columns)}

    def f32(names):
        # float(), i.e. parsed as double and then rounded to float32, as most readers do.
        return np.array([[np.float32(float(x)) for x in table[at[c]]] for c in names], dtype=np.float32).T.reshape(n, len(names))

    same_floats("csv observations", f32([f"obs_{x}" for x in feats]), data["observations"])
    same_floats("csv actions", f32([f"act_{a}" for a in range(A)]), data["actions"])
    same_floats("csv rewards", f32(["reward"]).reshape(n), data["rewards"])
    same_values("csv terminals", np.array([x == "1" for x in table[at["terminal"]]], dtype=bool), data["terminals"])
    same_values("csv timeouts", np.array([x == "1" for x in table[at["timeout"]]], dtype=bool), data["timeouts"])
    same_values("csv users", np.array([int(x) for x in table[at["user"]]], dtype=np.int64), data["users"])
    same_values("csv sessions", np.array([int(x) for x in table[at["session"]]], dtype=np.int32), data["sessions"])
    same_values("csv steps", np.array([int(x) for x in table[at["step"]]], dtype=np.int32), data["steps"])
    names = meta["group_names"]
    same_values("csv groups", np.array([names.index(x) for x in table[at["group"]]], dtype=np.int32), data["groups"])
    same_floats("csv times", np.array([float(x) for x in table[at["time"]]], dtype=np.float64), data["times"])
    same_floats("csv baseline", f32([f"baseline_{a}" for a in range(A)]), data["baseline_actions"])
    same_floats("csv low", f32([f"low_{a}" for a in range(A)]), data["action_low"])
    same_floats("csv high", f32([f"high_{a}" for a in range(A)]), data["action_high"])
    same_floats("csv log_density", np.array([float(x) for x in table[at["log_density"]]], dtype=np.float64),
                data["log_densities"])
    if next_obs:
        same_floats("csv next_observations", f32([f"next_obs_{x}" for x in feats]), data["next_observations"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("db")
    p.add_argument("h5")
    p.add_argument("--csv")
    p.add_argument("--groups", default="")
    p.add_argument("--next-observations", action="store_true")
    p.add_argument("--min-timeouts", type=int, default=0)
    p.add_argument("--source-dir")
    a = p.parse_args()
    groups = [g for g in a.groups.split(",") if g]
    meta, want = read_database(a.db, groups)
    n = len(want["rewards"])
    if n == 0:
        problem(f"{a.db}: no transitions in the exported groups (the check needs some)")
    data = check_hdf5(a.h5, meta, want, a.next_observations, a.source_dir)
    if a.csv and not problems:
        check_csv(a.csv, meta, data, a.next_observations)
    cut = int(want["timeouts"].sum())
    if cut < a.min_timeouts:
        problem(f"{a.db}: {cut} timeouts, expected at least {a.min_timeouts}")
    if problems:
        print(f"export_check: {len(problems)} problems", file=sys.stderr)
        return 1
    print(f"export_check: {n} transitions, {int(want['terminals'].sum())} terminals, {cut} timeouts, "
          f"groups {', '.join(meta['exported_groups'])}: the same in the database, the HDF5 file"
          + (" and the CSV" if a.csv else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
