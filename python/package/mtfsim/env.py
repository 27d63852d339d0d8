"""A vectorised environment over simulated users, with Gymnasium's VectorEnv
signatures (reset, step, the spaces), without importing gymnasium.

Every slot is one user of a scenario group: the group's first num_envs users in
user order. An episode is a session (the papers' session MDP): an observation
is the state of a request (core/state_features.h), an action the fusion action
in [-1, 1]^d, the reward Formula 2 of the request, and `terminated` says the
user left the session after it. Autoreset is Gymnasium's SAME_STEP mode: when a
slot's session ends, step() already returns the first observation of the user's
next session (a later day if need be) in `obs`, and the session's last state in
info["final_obs"] (info["_final_obs"] marks those slots). The simulated
calendar never ends, so `truncated` is always False.

Each slot is stepped by the simulator's own code for one user's requests
(Simulator::Stepper, sim/simulator.h): a slot that is given the actions a C++
policy would choose sees the states and rewards of `mtfsim run`, to the bit.
"""

import numpy as np

from . import _core
from .spaces import Box, batch_box


class VectorEnv:
    """VectorEnv(scenario, num_envs=None, group=None, seed=None)

    scenario: a path, JSON text or a dict (as mtfsim.run takes it).
    num_envs: how many users (default: every user of the group).
    group: the group's name (default: the first group).
    seed: overrides the scenario's master seed (the world and the users), as
    `mtfsim run --seed` does.
    """

    metadata = {"autoreset_mode": "same-step"}
    render_mode = None
    spec = None

    def __init__(self, scenario, num_envs=None, group=None, seed=None):
        from . import _scenario_arg  # the package's scenario argument rules
        self._scenario, self._is_path = _scenario_arg(scenario)
        self._seed = None if seed is None else int(seed)
        self._group = "" if group is None else str(group)
        self._num_envs = None if num_envs is None else int(num_envs)
        self._core = self._make_core(0)
        self._fresh = True     # the core has not stepped: reset(seed=None) may use it
        self._started = False  # reset() was called
        self.num_envs = self._core.num_envs
        self.group = self._core.group
        self.action_dim = self._core.action_dim
        lo = np.array([f[1] for f in _core.STATE_FEATURES], dtype=np.float32)
        hi = np.array([f[2] for f in _core.STATE_FEATURES], dtype=np.float32)
        self.single_observation_space = Box(lo, hi, (_core.STATE_DIM,), np.float32)
        self.single_action_space = Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self.observation_space = batch_box(self.single_observation_space, self.num_envs)
        self.action_space = batch_box(self.single_action_space, self.num_envs)
        self.state_features = [f[0] for f in _core.STATE_FEATURES]

    def _make_core(self, user_seed):
        return _core.StepperCore(self._scenario, self._is_path, self._seed, self._group, self._num_envs, user_seed)

    def reset(self, *, seed=None, options=None):
        """Starts every slot's user at its first request of day 0.

        seed=None: the same users as before, from the start (their streams are
        fixed by the seeds, so the episodes repeat for the same actions).
        seed=s (a positive integer): another sample of users in the same world
        (the simulator's user seed s; the slots are then the group's first users
        of that sample). options: unused (None or an empty dict).
        Returns (obs, info): obs (num_envs, 32) float32, info the requests'
        user, session, step, day and time arrays.
        """
        if options:
            raise ValueError("VectorEnv.reset: options are not used; got keys " + ", ".join(map(str, options)))
        if seed is not None and (int(seed) < 1 or int(seed) >= 2 ** 64):
            raise ValueError("VectorEnv.reset: seed must be in 1 .. 2**64-1 (None: the same users again), "
                             "got {}".format(seed))
        if seed is not None or not self._fresh:
            self._core = self._make_core(0 if seed is None else int(seed))
        self._fresh = False
        self._started = True
        return self._core.observations(), self._core.requests()

    def step(self, actions):
        """Answers every slot's request with its row of `actions`.

        actions: (num_envs, action_dim) floats in [-1, 1] (float32; float64 is
        rounded to float32). Returns (obs, rewards, terminated, truncated, info):
        rewards float64 (the simulator's own values; the run database stores
        them as float32), info as reset's plus final_obs (num_envs, 32): every
        slot's state after its request (the session's last where _final_obs).
        """
        if not self._started:
            raise RuntimeError("VectorEnv.step: call reset() first")
        rewards, terminated, final_obs = self._core.step(actions)
        info = self._core.requests()
        info["final_obs"] = final_obs
        info["_final_obs"] = terminated.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self._core.observations(), rewards, terminated, truncated, info

    def close(self):
        self._core = None
        self._started = False

    @property
    def unwrapped(self):
        return self

    def __repr__(self):
        return "mtfsim.VectorEnv(group={!r}, num_envs={}, action_dim={})".format(self.group, self.num_envs,
                                                                               self.action_dim)
