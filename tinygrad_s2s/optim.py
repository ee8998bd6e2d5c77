"""Optimizers (SGD, Adam), gradient clipping and learning-rate schedules; updates run in place on the
parameters' arrays."""
from __future__ import annotations

import math

import numpy as np

from . import backend


class Optimizer:
    """Holds a list of parameters; `step()` updates those that have a gradient (the base of SGD and Adam).

    Args:
        params: an iterable of Tensors, usually `model.parameters()`.
        lr: the learning rate, a finite number >= 0.

    Raises:
        ValueError: `params` is empty, or `lr` is negative, NaN or infinite.
    """

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        _check_hyper(type(self).__name__, "lr", lr, "a finite number >= 0")
        self.lr = lr

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to None (PyTorch's `zero_grad(set_to_none=True)`)."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        """The optimizer's state, for a checkpoint.

        Returns:
            dict: `{"hyper": {...}, "slots": {...}}`: JSON-able hyper-parameters (lr, step counts) and, per
                slot (Adam's `m`, `v`; SGD's `velocity`), one NumPy array per parameter (copies).
        """
        return {"hyper": self._hyper(), "slots": {k: [backend.to_numpy(a).copy() for a in v]
                                                  for k, v in self._slots().items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned, into this optimizer's own arrays.

        Args:
            state: a dict from `state_dict` of an optimizer of the same class over parameters of the
                same shapes, in the same order.

        Raises:
            ValueError: a slot holds another number of arrays than there are parameters, or an array of
                another shape than its parameter.
        """
        for k, v in state["hyper"].items():
            setattr(self, k, v)
        for k, arrays in state["slots"].items():
            own = self._slots()[k]
            if len(arrays) != len(own):
                raise ValueError(f"{type(self).__name__}.load_state_dict: slot '{k}' has {len(arrays)} "
                                 f"arrays for {len(own)} parameters")
            for i, (a, p) in enumerate(zip(arrays, self.params)):
                if tuple(a.shape) != p.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: slot '{k}'[{i}] has shape "
                                     f"{tuple(a.shape)}, parameter has {p.shape}")
                own[i][...] = backend.to_device(a.astype(own[i].dtype), p.device)

    def _hyper(self) -> dict:
        return {"lr": self.lr}

    def _slots(self) -> dict:
        return {}


def _check_hyper(owner: str, name: str, value, want: str, low=0.0, high=math.inf, high_open=False) -> None:
    """A hyper-parameter out of range (a negative or NaN lr) is refused, as torch.optim does, instead of
    updating every weight the wrong way or to NaN."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value) \
        and low <= value and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{owner}: {name} must be {want}, got {value!r}")


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum as in `torch.optim.SGD`.

    Without momentum: `p -= lr * grad`; with momentum mu: `v = mu * v + grad`, `p -= lr * v`.

    Args:
        params: an iterable of Tensors, usually `model.parameters()`.
        lr: the learning rate, a finite number >= 0; default 0.01.
        momentum: mu, a finite number >= 0; default 0 (none).

    Raises:
        ValueError: `params` is empty, or `lr` or `momentum` is out of range.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        _check_hyper("SGD", "momentum", momentum, "a finite number >= 0")
        self.momentum = momentum
        self.velocity = [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        """Update every parameter that has a `.grad` (those without one are left alone)."""
        for p, v in zip(self.params, self.velocity):
            if p.grad is None:
                continue
            if self.momentum:
                v *= self.momentum
                v += p.grad.data
                p.data -= self.lr * v
            else:
                p.data -= self.lr * p.grad.data

    def _hyper(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def _slots(self):
        return {"velocity": self.velocity}


def _slot_dtype(dtype):
    """The dtype Adam keeps a parameter's moments and does its arithmetic in: float32 for float16
    parameters, as mixed-precision training does (in float16, eps = 1e-8 rounds to 0 and the squared
    gradients under- and overflow, so a parameter whose gradient is 0 would become 0 / 0 = NaN)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as `torch.optim.Adam`.

    Each parameter counts its own steps, the ones it had a gradient in (a parameter left out of some
    steps, a frozen layer thawed later, gets the bias correction of its own updates). float16
    parameters keep float32 moments and are updated from float32 arithmetic.

    Args:
        params: an iterable of Tensors, usually `model.parameters()`.
        lr: the learning rate, a finite number >= 0; default 0.001 (the book's).
        betas: the decay rates (beta1, beta2) of the first and second moments, each in [0, 1);
            default (0.9, 0.999).
        eps: added to the denominator, a finite number >= 0; default 1e-8 (outside the corrected
            square root, as PyTorch's).

    Raises:
        ValueError: `params` is empty, or `lr`, a beta or `eps` is out of range.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        for i, beta in enumerate(betas):
            _check_hyper("Adam", f"betas[{i}]", beta, "in [0, 1)", high=1.0, high_open=True)
        _check_hyper("Adam", "eps", eps, "a finite number >= 0")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0                           # step() calls
        self.steps = [0] * len(self.params)  # per parameter, the updates it had
        self.m = [self._zeros(p) for p in self.params]
        self.v = [self._zeros(p) for p in self.params]

    @staticmethod
    def _zeros(p):
        return backend.get_array_module(p.data).zeros(p.shape, _slot_dtype(p.dtype))

    def step(self) -> None:
        """Update every parameter that has a `.grad` (those without one are left alone, and keep their step count)."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for i, (p, m, v) in enumerate(zip(self.params, self.m, self.v)):
            if p.grad is None:
                continue
            dtype = _slot_dtype(p.data.dtype)
            if m.dtype != dtype:            # the model was converted (model.to(np.float64)) after this was made
                m = self.m[i] = m.astype(dtype)
                v = self.v[i] = v.astype(dtype)
            self.steps[i] = k = self.steps[i] + 1
            lr_t = self.lr * math.sqrt(1 - b2 ** k) / (1 - b1 ** k)
            eps_t = self.eps * math.sqrt(1 - b2 ** k)   # torch's eps sits outside the corrected sqrt(v)
            g = p.grad.data if p.grad.data.dtype == dtype else p.grad.data.astype(dtype)
            xp = backend.get_array_module(g)
            tmp = xp.multiply(g, 1 - b1)        # one scratch array, every pass in place
            m *= b1
            m += tmp
            xp.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v *= b2
            v += tmp
            xp.sqrt(v, out=tmp)
            tmp += eps_t
            xp.divide(m, tmp, out=tmp)
            tmp *= lr_t
            p.data -= tmp if tmp.dtype == p.data.dtype else tmp.astype(p.data.dtype)

    def _hyper(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "t": self.t,
                "steps": list(self.steps)}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned, with each parameter's own step count.

        Args:
            state: a dict from `Adam.state_dict` over parameters of the same shapes, in the same order
                (one saved before per-parameter counts gives every parameter the optimizer's count).

        Raises:
            ValueError: the slots or the step counts do not match the parameters in number or shape.
        """
        super().load_state_dict(state)
        steps = state["hyper"].get("steps")
        if steps is None:                   # saved before per-parameter counts: every one had t updates
            steps = [self.t] * len(self.params)
        if len(steps) != len(self.params):
            raise ValueError(f"Adam.load_state_dict: 'steps' holds {len(steps)} counts for {len(self.params)} "
                             "parameters")
        self.steps = [int(k) for k in steps]

    def _slots(self):
        return {"m": self.m, "v": self.v}


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most `max_norm`, in place.

    As `torch.nn.utils.clip_grad_norm_`: the direction of the whole gradient is kept.

    Args:
        params: an iterable of Tensors; those whose `.grad` is None are skipped.
        max_norm: the largest global norm allowed.

    Returns:
        float: the global norm before clipping (watch it for exploding gradients).
    """
    grads = [p.grad for p in params if p.grad is not None]
    total = math.sqrt(sum(float(backend.get_array_module(g.data).vdot(g.data, g.data)) for g in grads))
    rate = max_norm / (total + 1e-6)
    if rate < 1:
        for g in grads:
            g.data *= rate      # assigns .data: a version bump, like every in-place change
    return total


LR_SCHEDULES = {
    # name: the factor on the base learning rate at `progress` = step / total steps (0 -> 1)
    "constant": lambda progress: 1.0,
    "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))),   # anneals to 0
}
"""Learning-rate schedules by name; a new schedule is one entry (the `--lr-schedule` choices follow)."""


def scheduled_lr(base_lr: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of update number `step` of `total_steps` under a named schedule.

    A function of the step count alone, so a resumed run follows the same curve.

    Args:
        base_lr: the learning rate the schedule starts from.
        schedule: a key of `LR_SCHEDULES`: `"constant"` or `"cosine"` (anneals from `base_lr` to 0).
        step: the update's number, counted from 0.
        total_steps: the number of updates in the whole run.

    Returns:
        float: the learning rate for that update.

    Raises:
        ValueError: an unknown schedule (the message lists the known ones).
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: {', '.join(LR_SCHEDULES)}")
    return base_lr * LR_SCHEDULES[schedule](step / max(total_steps, 1))
