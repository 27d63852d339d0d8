#!/usr/bin/env python3
"""Writes an MLP policy trained in PyTorch (or built from numpy arrays) in the
testbed's foreign-policy format, so that it runs in the simulator
(docs/policy-format.md): `mtfsim evaluate SCENARIO.json --policy policy.json`,
`mtfsim act policy.json --states S.csv`, or a scenario group
{"type": "agent", "path": "policy.json"}.

As a library (numpy only; torch is needed only to load a saved model):

    from export_torch_policy import export_sequential, write_policy
    export_sequential(model, "policy.json", mean=state_mean, std=state_std)

As a command (needs torch):

    python3 tools/export_torch_policy.py model.pt policy.json [--normalisation stats.npz]

where model.pt holds a whole nn.Sequential saved with torch.save(model, ...)
and stats.npz (optional) holds arrays `mean` and `std` of the states.

The network must be a sequence of nn.Linear layers, each optionally followed by
one activation: ReLU, Tanh, Sigmoid, ELU (alpha 1), LeakyReLU (slope 0.01),
GELU (exact), SiLU or Identity; Dropout is skipped (inference). A final Tanh
becomes the format's "tanh" output squashing; without one the outputs are
clipped to [-1, 1] ("clip"), or pass output="tanh" to squash them. The state
the policy reads is the simulator's 32 features in core/state_features.h's
order (a run database's `run.state_features` lists them).
"""
import argparse
import json
import sys

import numpy as np

FORMAT = "mtf-mlp-policy"
VERSION = 1
STATE_DIM = 32

# Module class names and the format's activation names.
ACTIVATIONS = {
    "ReLU": "relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "ELU": "elu",
    "LeakyReLU": "leaky_relu",
    "GELU": "gelu",
    "SiLU": "silu",
    "Identity": "identity",
}


def _array(x):
    """A float32 numpy array from a numpy array, a list or a torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _check_activation(module):
    name = type(module).__name__
    if name == "ELU" and float(getattr(module, "alpha", 1.0)) != 1.0:
        raise ValueError("ELU with alpha %s: the format's elu has alpha 1" % module.alpha)
    if name == "LeakyReLU" and float(getattr(module, "negative_slope", 0.01)) != 0.01:
        raise ValueError("LeakyReLU with slope %s: the format's leaky_relu has slope 0.01" % module.negative_slope)
    if name == "GELU" and getattr(module, "approximate", "none") != "none":
        raise ValueError("GELU(approximate=%r): the format's gelu is the exact one" % module.approximate)
    return ACTIVATIONS[name]


def layers_from_sequential(modules):
    """[(weight, bias, activation)] and the output squashing of a sequence of
    modules (an nn.Sequential, or any iterable of module-like objects: a
    Linear has .weight (out x in) and .bias)."""
    modules = list(modules.children() if hasattr(modules, "children") else modules)
    layers, output = [], "clip"
    for i, m in enumerate(modules):
        name = type(m).__name__
        if name == "Linear":
            bias = m.bias if getattr(m, "bias", None) is not None else np.zeros(_array(m.weight).shape[0])
            layers.append([_array(m.weight), _array(bias), "identity"])
        elif name == "Dropout":
            continue
        elif name in ACTIVATIONS:
            if not layers or layers[-1][2] != "identity":
                raise ValueError("module %d (%s): an activation must follow a Linear layer" % (i, name))
            if name == "Tanh" and i == len(modules) - 1:
                output = "tanh"  # the final Tanh squashes into the action box
            else:
                layers[-1][2] = _check_activation(m)
        else:
            raise ValueError("module %d (%s): not a Linear layer or a supported activation (%s)"
                             % (i, name, ", ".join(sorted(ACTIVATIONS))))
    if not layers:
        raise ValueError("the network has no Linear layer")
    return [tuple(l) for l in layers], output


def write_policy(path, layers, output="clip", mean=None, std=None, state_features=None, metadata=None):
    """Writes the policy file. layers: [(weight (out x in), bias (out), activation)]."""
    if output not in ("tanh", "clip"):
        raise ValueError("output must be 'tanh' or 'clip', got %r" % (output,))
    ins = STATE_DIM
    body = []
    for k, (w, b, act) in enumerate(layers):
        w, b = _array(w), _array(b)
        if w.ndim != 2 or w.shape[1] != ins or b.shape != (w.shape[0],):
            raise ValueError("layer %d: weight %s and bias %s do not take %d inputs"
                             % (k, w.shape, b.shape, ins))
        if act not in ACTIVATIONS.values():
            raise ValueError("layer %d: unknown activation %r" % (k, act))
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError("layer %d: a weight or bias is not finite" % k)
        # float(np.float32) is exact as a double; json writes its shortest repr.
        body.append({"weight": [[float(x) for x in row] for row in w],
                     "bias": [float(x) for x in b], "activation": act})
        ins = w.shape[0]
    doc = {"format": FORMAT, "version": VERSION, "state_dim": STATE_DIM, "action_dim": ins}
    if state_features is not None:
        doc["state_features"] = list(state_features)
    if mean is not None or std is not None:
        if mean is None or std is None:
            raise ValueError("normalisation needs both mean and std")
        mean, std = _array(mean), _array(std)
        if mean.shape != (STATE_DIM,) or std.shape != (STATE_DIM,) or not np.all(std > 0):
            raise ValueError("mean and std must hold %d numbers, std > 0" % STATE_DIM)
        doc["normalisation"] = {"mean": [float(x) for x in mean], "std": [float(x) for x in std]}
    doc["layers"] = body
    doc["output"] = output
    if metadata:
        doc["metadata"] = metadata
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    import os
    os.replace(tmp, path)  # readers never see a half-written file


def export_sequential(model, path, output=None, mean=None, std=None, state_features=None, metadata=None):
    """Writes an nn.Sequential-like model; `output` overrides the squashing
    read off the model (a final Tanh gives "tanh", otherwise "clip")."""
    layers, found = layers_from_sequential(model)
    write_policy(path, layers, output or found, mean, std, state_features, metadata)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a whole nn.Sequential saved with torch.save")
    p.add_argument("out", help="the policy file to write (JSON)")
    p.add_argument("--normalisation", help=".npz with arrays mean and std of the states")
    p.add_argument("--output", choices=["tanh", "clip"], help="override the output squashing")
    a = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("export_torch_policy: loading a .pt model needs PyTorch (pip install torch); "
                 "export_sequential() and write_policy() work with numpy alone")
    model = torch.load(a.model, map_location="cpu")
    mean = std = None
    if a.normalisation:
        stats = np.load(a.normalisation)
        mean, std = stats["mean"], stats["std"]
    export_sequential(model, a.out, a.output, mean, std, metadata={"exported_from": a.model})
    print("wrote %s" % a.out)


if __name__ == "__main__":
    main()
