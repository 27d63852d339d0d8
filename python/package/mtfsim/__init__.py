"""mtfsim: the multi-task fusion testbed from Python.

- run(scenario, out=None, threads=1, seed=None, policies=None): simulate a
  scenario's groups (Python callables may act for groups), get the summary.
- read_transitions(path) / read_run(path): a run database as numpy arrays /
  Python objects.
- VectorEnv(scenario, num_envs, group): a Gymnasium-style vectorised
  environment over simulated users (an episode is a session).

A scenario is a path to a JSON file, JSON text, or a dict.
"""

import json
import os

import numpy as np  # noqa: F401  (the compiled part returns numpy arrays)

from . import _core
from ._core import STATE_DIM, RecordError, ScenarioError
from .env import VectorEnv
from .spaces import Box

__all__ = ["run", "action_names", "read_transitions", "read_run", "VectorEnv", "Box", "STATE_DIM", "STATE_FEATURES",
           "ScenarioError", "RecordError"]
__version__ = _core.__version__

#: The state features, in column order: (name, low, high) (core/state_features.h).
STATE_FEATURES = list(_core.STATE_FEATURES)


def _scenario_arg(scenario):
    """(text or path, is_path) for a scenario given as a dict, JSON text or a path."""
    if isinstance(scenario, dict):
        return json.dumps(scenario), False
    if isinstance(scenario, (str, os.PathLike)):
        text = os.fspath(scenario)
        if text.lstrip().startswith("{"):
            return text, False
        return text, True
    raise TypeError("scenario: expected a path, JSON text or a dict, got " + type(scenario).__name__)


def run(scenario, *, out=None, threads=1, seed=None, policies=None, force=False):
    """Simulates the scenario's groups for its days; returns the summary.

    out: write the run database there (as `mtfsim run --out`: through
    FILE.partial, renamed when finished; an existing run database is
    replaced, another file only with force=True). threads: never changes
    the results. seed: overrides the scenario's master seed.
    policies: {group name: fn} where fn(states) gets a (n, 32) float32 array of
    the states of a batch of requests and returns an (n, d) array of actions in
    [-1, 1] (float32; float64 is rounded to float32). It is called once per
    batch (Policy::act_batch), from one thread at a time, with the GIL; keep it
    a function of its argument for results that do not depend on `threads`.

    Returns a dict: summary ({group: {metric: value}}, the run database's table
    summary), policies ({group: policy name}), lifts (each group over the
    first, over users, as `mtfsim run` prints them), requests, sessions,
    wall_seconds, scenario, seed, users, days, out.
    """
    text, is_path = _scenario_arg(scenario)
    return _core.run(text, is_path, "" if out is None else os.fspath(out), int(threads),
                     None if seed is None else int(seed), dict(policies or {}), bool(force))


def action_names(scenario):
    """The names of the scenario's action dimensions (term_task), in order."""
    text, is_path = _scenario_arg(scenario)
    return _core.action_names(text, is_path)


def read_transitions(path, allow_partial=False, groups=None):
    """The transitions of a run database as a dict of numpy arrays, one row per
    request in recorded order (what `mtfsim export` writes; docs/export.md):
    observations, next_observations (N, 32) float32; actions, baseline, lower,
    upper (N, d) float32 (NaN where the run has none); rewards float32;
    terminals, timeouts bool; user int64; session, step, group int32; time,
    log_density float64 (NaN: none); and group_names, state_features,
    action_names (lists). groups: only these groups' rows (names)."""
    return _core.read_transitions(os.fspath(path), bool(allow_partial), list(groups or []))


def read_run(path, allow_partial=False):
    """A run database's metadata as Python objects: schema_version, info (the
    scenario as run, seed, dimensions, feature and action names...),
    started_at, finished_at, wall_seconds, groups, summary ({group: {metric:
    value}}), metrics (an experiment's figures) and agents (without bytes)."""
    return _core.read_run(os.fspath(path), bool(allow_partial))
