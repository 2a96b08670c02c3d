"""Stochastic optimizers: each one only says how to turn gradients into updates.

Parameter names as in ``sklearn.neural_network`` (``momentum``,
``nesterovs_momentum``, ``beta_1``...), update rules as in ``torch.optim``, so the
NumPy and torch backends train alike step for step.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np

#: arrays with fewer values are not cut into parts (``Optimizer.parts``): the first
#: part updates them whole
PART_VALUES = 2**14


class Optimizer:
    """Holds references to the parameter arrays and updates them in place."""

    def __init__(self, params: list[np.ndarray], learning_rate_init: float):
        self.params = params
        self.learning_rate = float(learning_rate_init)

    def update_params(self, grads: list[np.ndarray]) -> None:
        for param, update in zip(self.params, self._get_updates(grads), strict=True):
            param += update

    def _get_updates(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def parts(self, grads: list[np.ndarray], count: int
              ) -> list[tuple[Optimizer, list[np.ndarray]]]:
        """One ``update_params(grads)`` cut into ``count`` parts that can run side by
        side on threads: for each, an optimizer over one part of every parameter
        (views of the parameters' and their state's values) and that part of every
        gradient. Every value's update depends on that value alone, so the parts
        together make the whole step; :meth:`join` takes their step count back.
        Arrays under :data:`PART_VALUES` values go whole to the first part, and
        arrays of fewer than that many values on average are not cut at all (one
        part): their NumPy calls are too short for threads, which hand Python's GIL
        to each other at every call.

        On 2 cores, Adam's step of the simple net's 404,000 parameters (8 arrays)
        took 1.9 ms whole and 0.7 ms in two parts on two threads (each part's arrays
        stay in its core's cache); ResNet20's 272,000 (65 arrays) 0.86 ms whole and
        1.54 ms in two parts.
        """
        if sum(grad.size for grad in grads) < PART_VALUES * len(grads):
            count = 1
        lists = [self.params, grads, *(getattr(self, name) for name in self._arrays)]
        cuts = [[[] for _ in lists] for _ in range(count)]       # part -> list -> arrays
        for arrays in zip(*lists, strict=True):
            if arrays[0].size < PART_VALUES or not all(a.flags.c_contiguous for a in arrays):
                shares = [arrays] + [()] * (count - 1)            # whole, in the first part
            else:
                bounds = np.linspace(0, arrays[0].size, count + 1).astype(int)
                shares = [[a.reshape(-1)[begin:end] for a in arrays]  # views
                          for begin, end in itertools.pairwise(bounds)]
            for part, share in zip(cuts, shares, strict=True):
                for column, array in zip(part, share, strict=False):
                    column.append(array)
        parts = []
        for params, part_grads, *state in cuts:
            part = copy.copy(self)
            part.params = params
            for name, arrays in zip(self._arrays, state, strict=True):
                setattr(part, name, arrays)
            parts.append((part, part_grads))
        return parts

    def join(self, parts: list[tuple[Optimizer, list[np.ndarray]]]) -> None:
        """After the parts of :meth:`parts` have updated: their scalar state (Adam's
        step count) is this optimizer's."""
        for name in self._scalars:
            setattr(self, name, getattr(parts[0][0], name))

    #: names of the per-parameter state lists, and of the scalar state
    _arrays: tuple[str, ...] = ()
    _scalars: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """A copy of the optimizer's state (momentum buffers, moments, step count)."""
        state = {name: [a.copy() for a in getattr(self, name)] for name in self._arrays}
        return {**state, **{name: getattr(self, name) for name in self._scalars}}

    def load_state_dict(self, state: dict) -> None:
        """Put the state of :meth:`state_dict` back, in place."""
        for name in self._arrays:
            for mine, saved in zip(getattr(self, name), state[name], strict=True):
                mine[...] = saved
        for name in self._scalars:
            setattr(self, name, state[name])


class SGDOptimizer(Optimizer):
    """SGD with (Nesterov) momentum, as PyTorch implements it.

    ``b <- momentum * b + g`` accumulates gradients; the update is ``-lr * b``, or
    with Nesterov's look-ahead ``-lr * (g + momentum * b)``. (scikit-learn's MLP keeps
    ``lr`` inside the velocity instead, ``v <- momentum * v - lr * g``: the same while
    the learning rate is constant, different once a schedule changes it, and this
    backend must train like the torch one.)
    """

    _arrays = ("buffers",)

    def __init__(self, params, learning_rate_init=0.1, momentum=0.9, nesterov=True):
        super().__init__(params, learning_rate_init)
        self.momentum, self.nesterov = momentum, nesterov
        self.buffers = [np.zeros_like(p) for p in params]

    def _get_updates(self, grads):
        updates = []
        for buffer, grad in zip(self.buffers, grads, strict=True):
            buffer *= self.momentum
            buffer += grad
            if self.nesterov:                      # grad + momentum * buffer
                update = np.multiply(buffer, self.momentum)
                update += grad
            else:
                update = buffer.copy()
            update *= -self.learning_rate
            updates.append(update)
        return updates


class AdamOptimizer(Optimizer):
    """Adam (Kingma & Ba, 2014, Algorithm 1), as PyTorch implements it.

    ``m`` and ``v`` are running means of the gradient and its square; both start at
    zero, so they are divided by ``1 - beta^t`` (bias correction) before use:
    ``update = -lr * m_hat / (sqrt(v_hat) + epsilon)``. (scikit-learn's MLP adds
    ``epsilon`` before the correction instead; with tiny gradients the two differ,
    and this backend must train like the torch one.)
    """

    _arrays, _scalars = ("ms", "vs"), ("t",)

    def __init__(self, params, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        super().__init__(params, learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.ms = [np.zeros_like(p) for p in params]
        self.vs = [np.zeros_like(p) for p in params]

    def _get_updates(self, grads):
        self.t += 1
        step = self.learning_rate / (1 - self.beta_1 ** self.t)
        # a Python float, so float32 moments are divided in float32 (as torch does)
        v_correction = math.sqrt(1 - self.beta_2 ** self.t)
        updates = []
        for m, v, grad in zip(self.ms, self.vs, grads, strict=True):
            # in place, one scratch array per parameter: the same operations in the
            # same order as the formulas, so the same rounding, without the
            # temporaries of each sub-expression (a step of the simple net's 404,000
            # parameters took 4.4 ms with them, 1.6 ms without, on 2 cores)
            scratch = np.multiply(grad, 1 - self.beta_1)
            m *= self.beta_1
            m += scratch                           # m = b1 m + (1 - b1) g
            np.multiply(grad, 1 - self.beta_2, out=scratch)
            scratch *= grad
            v *= self.beta_2
            v += scratch                           # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=scratch)
            scratch /= v_correction
            scratch += self.epsilon                # sqrt(v_hat) + epsilon
            update = np.multiply(m, -step)
            update /= scratch                      # -step * m_hat / (...)
            updates.append(update)
        return updates


OPTIMIZERS = {"sgd": SGDOptimizer, "adam": AdamOptimizer}
