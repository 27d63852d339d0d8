"""Box spaces described as Gymnasium describes them (low, high, shape, dtype,
sample, contains, seed), without importing gymnasium."""

import numpy as np


class Box:
    """A box [low, high] in R^shape, like gymnasium.spaces.Box."""

    def __init__(self, low, high, shape=None, dtype=np.float32, seed=None):
        self.dtype = np.dtype(dtype)
        if shape is None:
            shape = np.broadcast(np.asarray(low), np.asarray(high)).shape
        self.shape = tuple(int(s) for s in shape)
        self.low = np.broadcast_to(np.asarray(low, dtype=self.dtype), self.shape).copy()
        self.high = np.broadcast_to(np.asarray(high, dtype=self.dtype), self.shape).copy()
        if np.any(self.low > self.high):
            raise ValueError("Box: low must not exceed high")
        self.np_random = np.random.default_rng(seed)

    def seed(self, seed=None):
        """Reseeds sample()'s generator; returns [seed] as Gymnasium does."""
        self.np_random = np.random.default_rng(seed)
        return [seed]

    def sample(self):
        """A uniform draw from the box, of the box's shape and dtype."""
        return self.np_random.uniform(self.low, self.high).astype(self.dtype)

    def contains(self, x):
        x = np.asarray(x)
        return (x.shape == self.shape and np.can_cast(x.dtype, self.dtype)
                and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

    def __contains__(self, x):
        return self.contains(x)

    def is_bounded(self, manner="both"):
        return True

    def __eq__(self, other):
        return (isinstance(other, Box) and self.shape == other.shape and self.dtype == other.dtype
                and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high))

    def __repr__(self):
        return "Box({}, {}, {}, {})".format(self.low.min(), self.high.max(), self.shape, self.dtype)


def batch_box(space, n):
    """The space of n stacked samples of `space` (gymnasium.vector.utils.batch_space)."""
    return Box(np.broadcast_to(space.low, (n,) + space.shape), np.broadcast_to(space.high, (n,) + space.shape),
               (n,) + space.shape, space.dtype)
