#!/usr/bin/env python3
"""The foreign-policy round trip (run by tests/policy_format_test.sh):

  make  DIR   builds small MLPs as PyTorch-like module lists (classes named as
              torch.nn's, holding numpy arrays: what the exporter reads off a
              real nn.Sequential), exports them with tools/export_torch_policy.py,
              writes random states, and the expected actions computed here in
              float64 from the float32 weights;
  check DIR   compares the actions `mtfsim act` wrote with the expected ones.

The stated tolerance: every action within 2e-6 of the float64 reference (the
simulator computes in float32, unit roundoff 6e-8; through these layers the
rounding measured about 2.5e-7, so 2e-6 leaves room for other compilers
while a wrong weight, bias or activation of 1e-5 would fail)."""
import json
import math
import os
import sys

import numpy as np

TOL = 2e-6


class Module:
    pass


def module(name, **attrs):
    cls = type(name, (Module,), {})
    m = cls()
    for k, v in attrs.items():
        setattr(m, k, v)
    return m


def linear(rng, n_in, n_out):
    return module("Linear", weight=rng.normal(0, 1 / math.sqrt(n_in), (n_out, n_in)).astype(np.float32),
                  bias=rng.normal(0, 0.1, n_out).astype(np.float32))


def reference(layers, output, mean, std, states):
    x = (states.astype(np.float64) - mean) / std if mean is not None else states.astype(np.float64)
    acts = {
        "identity": lambda v: v,
        "relu": lambda v: np.maximum(v, 0),
        "tanh": np.tanh,
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))),
        "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
        "gelu": lambda v: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2))),
        "silu": lambda v: v / (1 + np.exp(-v)),
    }
    for w, b, act in layers:
        x = acts[act](x @ w.astype(np.float64).T + b.astype(np.float64))
    return np.tanh(x) if output == "tanh" else np.clip(x, -1, 1)


def networks(rng):
    """(name, modules, expected layer activations, output, normalised) of each test network."""
    yield ("tanh_out", [linear(rng, 32, 24), module("ReLU"), linear(rng, 24, 16), module("Tanh"),
                        linear(rng, 16, 10), module("Tanh")], ["relu", "tanh", "identity"], "tanh", True)
    yield ("clip_out", [linear(rng, 32, 20), module("GELU", approximate="none"), module("Dropout"),
                        linear(rng, 20, 20), module("SiLU"), linear(rng, 20, 3)],
           ["gelu", "silu", "identity"], "clip", False)
    yield ("every_activation", [linear(rng, 32, 12), module("ELU", alpha=1.0), linear(rng, 12, 12),
                                module("LeakyReLU", negative_slope=0.01), linear(rng, 12, 12), module("Sigmoid"),
                                linear(rng, 12, 12), module("Identity"), linear(rng, 12, 10)],
           ["elu", "leaky_relu", "sigmoid", "identity", "identity"], "clip", True)


def make(d, tools):
    sys.path.insert(0, tools)
    import export_torch_policy as ex
    rng = np.random.default_rng(20261202)
    states = rng.normal(0.3, 0.6, (200, 32)).astype(np.float32)
    np.savetxt(os.path.join(d, "states.csv"), states, delimiter=",", fmt="%.9g")
    for name, mods, acts, output, normalised in networks(rng):
        layers, found = ex.layers_from_sequential(mods)
        assert [a for _, _, a in layers] == acts, (name, [a for _, _, a in layers])
        assert found == output, (name, found)
        mean = rng.normal(0, 0.2, 32).astype(np.float32) if normalised else None
        std = rng.uniform(0.5, 2.0, 32).astype(np.float32) if normalised else None
        ex.export_sequential(mods, os.path.join(d, name + ".json"), mean=mean, std=std)
        expected = reference(layers, output, None if mean is None else mean.astype(np.float64),
                             None if std is None else std.astype(np.float64), states)
        np.save(os.path.join(d, name + ".expected.npy"), expected)
        # The file holds the float32 values exactly.
        doc = json.load(open(os.path.join(d, name + ".json")))
        w0 = np.asarray(doc["layers"][0]["weight"], dtype=np.float32)
        assert np.array_equal(w0, layers[0][0]), name
    # The exporter refuses what the format cannot hold.
    for bad, text in ([linear(rng, 32, 4), module("Softmax")], "not a Linear layer or a supported activation"), \
                     ([linear(rng, 32, 4), module("LeakyReLU", negative_slope=0.2)], "slope 0.01"), \
                     ([linear(rng, 31, 4)], "do not take 32 inputs"), \
                     ([module("ReLU")], "must follow a Linear"):
        try:
            ex.export_sequential(bad, os.path.join(d, "bad.json"))
        except ValueError as e:
            assert text in str(e), (text, str(e))
        else:
            raise AssertionError("exported: " + text)
    print("made %d networks" % 3)


def check(d):
    worst = 0.0
    for name in ("tanh_out", "clip_out", "every_activation"):
        got = np.loadtxt(os.path.join(d, name + ".actions.csv"), delimiter=",", skiprows=1, ndmin=2)
        expected = np.load(os.path.join(d, name + ".expected.npy"))
        if got.shape != expected.shape:
            print("%s: %s actions, expected %s" % (name, got.shape, expected.shape))
            return 1
        err = float(np.max(np.abs(got - expected)))
        worst = max(worst, err)
        print("%s: max |action - reference| = %.3g" % (name, err))
        if not err <= TOL:
            print("%s: over the tolerance %g" % (name, TOL))
            return 1
        if np.std(got) < 0.05:
            print("%s: the actions hardly vary; the test would not see a wrong layer" % name)
            return 1
    print("worst %.3g <= %g" % (worst, TOL))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        sys.exit(check(sys.argv[2]))
