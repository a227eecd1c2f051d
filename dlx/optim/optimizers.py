"""Optimizers with torch.optim's update rules and defaults (torch 2.x, single-tensor path).

Every optimizer takes a list of :class:`~dlx.nn.Parameter`, keeps its state per parameter
(created at the first step, as torch does, except Adagrad's accumulator), reads ``p.grad`` and
updates ``p.data`` in place. ``lr`` is a plain attribute: a schedule sets it before each step.
Arithmetic is in place on preallocated scratch buffers, so a step allocates nothing.
``state_bytes()`` counts the state an optimizer must keep (not the scratch).
"""

from __future__ import annotations

import math

import numpy as np

from dlx.nn.core import Parameter


def _check(name: str, value: float, low: float, high: float | None = None,
           high_open: bool = True) -> None:
    ok = value >= low and (high is None or (value < high if high_open else value <= high))
    if not ok:
        bound = "" if high is None else (f", < {high}" if high_open else f", <= {high}")
        raise ValueError(f"{name} must be >= {low}{bound}, got {value}")


class Optimizer:
    r"""The optimizer contract: a learner's optimizer writes ``__init__`` and :meth:`update`.

    Example (plain SGD)::

        class SGD(dlx.optim.Optimizer):
            def __init__(self, params, lr=0.01):
                super().__init__(params, lr)

            def update(self, p, g, state):
                p -= self.lr * g

    The framework keeps the rest: the loop over parameters, ``zero_grad``, the per-parameter
    ``state`` dicts (checkpointed with the run, counted in ``state_bytes``), ``self.lr`` (set by
    the schedule before each step), ``self.t`` (the step count, from 1) and weight decay
    (``weight_decay * p`` is already in ``g``).

    Args:
        params: the model's :class:`~dlx.nn.Parameter` list.
        lr: the learning rate (a schedule overwrites ``self.lr`` before each step).
        weight_decay: coupled L2 decay, folded into the gradient before ``update``.
    """

    SCALARS: tuple[str, ...] = ()  # state kept as attributes, beside the per-parameter buffers

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        _check("weight_decay", weight_decay, 0.0)
        self.params: list[Parameter] = list(params)
        self.lr, self.weight_decay = lr, weight_decay
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        self._scratch = [np.empty_like(p.data) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.fill(0)

    @property
    def t(self) -> int:
        """The number of the step being made, from 1 (torch's ``state["step"]``)."""
        return self.steps

    def step(self) -> None:
        self.steps += 1
        first = self.steps == 1 and type(self)._update is Optimizer._update
        before = [p.data.copy() for p in self.params] if first else None
        for p, state, tmp in zip(self.params, self.state, self._scratch):
            self._update(p, p.grad, state, tmp)
        if first:
            self._check_first_step(before)

    def update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        """Change ``p`` (the parameter's array, shape as ``g``) in place, one step along ``g``
        (its gradient, weight decay included); ``state`` is this parameter's dict, kept from
        step to step (empty at the first). The one method a learner's optimizer writes."""
        raise NotImplementedError(f"{type(self).__name__} must define update(self, p, g, state)")

    def _update(self, p: Parameter, g: np.ndarray, state: dict, tmp: np.ndarray) -> None:
        returned = self.update(p.data, self._l2(p, g), state)
        if returned is not None:
            raise TypeError(f"{type(self).__name__}.update returned a value for {p.name or 'a '}"
                            f"parameter: it must change p in place (p -= ..., p[...] = ...); "
                            f"dlx keeps the array p it passed, not what update returns")

    def _check_first_step(self, before: list[np.ndarray]) -> None:
        """After a learner's first step: a parameter that lost its shape or dtype, or no
        parameter moved although some gradient is not zero (``p = p - lr * g`` rebinds the
        local name and leaves the parameter as it was)."""
        for p, old in zip(self.params, before):
            if p.data.shape != old.shape or p.data.dtype != old.dtype:
                raise TypeError(f"{type(self).__name__}.update changed parameter {p.name!r} "
                                f"from {old.dtype}{list(old.shape)} to "
                                f"{p.data.dtype}{list(p.data.shape)}")
        moved = any(not np.array_equal(p.data, old) for p, old in zip(self.params, before))
        if not moved and any(np.any(p.grad) for p in self.params):
            raise TypeError(f"{type(self).__name__}.update left every parameter as it was after "
                            f"the first step, although the gradients are not zero: change p in "
                            f"place (p -= lr * g, p[...] = ...); p = p - lr * g makes a new "
                            f"array and rebinds the local name only")

    def step_scale(self, index: int) -> float | np.ndarray:
        r"""The diagonal step size D of the last step for ``self.params[index]``.

        The last step was p <- p - D * g_hat (times the decay factor, for decoupled weight
        decay), where g_hat is the optimizer's running estimate of the gradient, normalized so
        that g_hat = g once g is held constant: D is the step in the metric the optimizer
        preconditions with (lr for SGD, lr / (1 - momentum) for heavy ball, lr / (sqrt(v_hat) +
        eps) for Adam). A proximal step for a penalty h after the update, p <- prox_{D h}(p),
        then has the fixed points of 0 in g + dh(p): see :mod:`dlx.optim.regularizers`.
        A float (the same for every coordinate) or an array shaped like the parameter.
        """
        return self.diagonal_step(self.state[index], self.steps, self.lr)

    def diagonal_step(self, state: dict, t: int, lr: float):
        """D from one parameter's state buffers (named as torch.optim names them, so that
        backend=torch passes torch's own state), the step count t and the step's lr.
        Arithmetic is generic: NumPy arrays or torch tensors in, the same kind out."""
        raise NotImplementedError

    def prox_unsupported(self) -> str | None:
        """Why a proximal step cannot be made exact with this optimizer, or None (config
        validation refuses ``regularizer.method=proximal`` with the reason)."""
        if type(self).diagonal_step is Optimizer.diagonal_step:
            return f"{type(self).__name__} does not state its diagonal step size (diagonal_step)"
        return None

    def _l2(self, p: Parameter, g: np.ndarray) -> np.ndarray:
        """g + weight_decay * p: L2 regularization folded into the gradient (coupled decay)."""
        return g + self.weight_decay * p.data if self.weight_decay else g

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        """All the state a resumed run needs: the per-parameter buffers as arrays named
        ``"{index}.{buffer}"``, and the step count and scalar state as JSON-able values."""
        arrays = {f"{i}.{k}": np.array(v, copy=True) for i, s in enumerate(self.state)
                  for k, v in s.items() if isinstance(v, np.ndarray)}
        # a learner's state may hold numbers too (a step count): JSON, beside the arrays
        scalars = {f"{i}.{k}": _plain(v) for i, s in enumerate(self.state)
                   for k, v in s.items() if not isinstance(v, np.ndarray)}
        meta = {"steps": self.steps, **{k: getattr(self, k) for k in self.SCALARS}}
        if scalars:
            meta["state_scalars"] = scalars
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken (same parameters, same order)."""
        for i, state in enumerate(self.state):
            prefix = f"{i}."
            state.clear()
            state.update({k[len(prefix):]: np.array(v, copy=True) for k, v in arrays.items()
                          if k.startswith(prefix)})
            state.update({k[len(prefix):]: v for k, v in meta.get("state_scalars", {}).items()
                          if k.startswith(prefix)})
        self.steps = meta["steps"]
        for k in self.SCALARS:
            setattr(self, k, meta[k])

    def state_bytes(self) -> int:
        """Bytes of optimizer state (buffers kept across steps beyond parameters and grads)."""
        return sum(v.nbytes for s in self.state for v in s.values() if isinstance(v, np.ndarray))


def _plain(value):
    """A learner's non-array state value as JSON (numbers, strings, lists of them)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise TypeError(f"optimizer state holds a {type(value).__name__}: keep arrays and numbers "
                    f"in state (a resumed run must restore it)")


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum, as torch.optim.SGD.

    For each parameter p with gradient g, at step t::

        g <- g + weight_decay * p
        if momentum != 0:
            b <- g                                      at t = 1 (no dampening on the first step)
            b <- momentum * b + (1 - dampening) * g     for t > 1
            g <- g + momentum * b   if nesterov   else   b
        p <- p - lr * g

    With ``ema`` the buffer is instead an exponentially weighted average of the gradients,
    the form of Ng's course (v_0 = 0)::

        v <- momentum * v + (1 - momentum) * g;   p <- p - lr * v

    Unrolled, v_t = (1 - momentum) b_t at every t (torch's b_1 = g = v_1 / (1 - momentum)), so
    it is torch's form with lr scaled by (1 - momentum): the same trajectory needs a learning
    rate 1 / (1 - momentum) times larger. (torch's ``dampening = momentum`` is not this: it
    skips the (1 - dampening) on the first step, so its b_1 = g.)

    Defaults: lr=1e-3, momentum=0, dampening=0, nesterov=False, weight_decay=0, ema=False.
    State: the momentum buffer b (1x the parameters) when momentum != 0, else nothing.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, ema: bool = False):
        super().__init__(params, lr, weight_decay)
        _check("momentum", momentum, 0.0, 1.0)
        _check("dampening", dampening, 0.0, 1.0, high_open=False)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        if ema and (momentum == 0 or dampening != 0 or nesterov):
            raise ValueError("ema needs momentum > 0, dampening = 0 and nesterov = false")
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov
        self.ema = bool(ema)

    def _update(self, p, g, state, tmp):
        g = self._l2(p, g)
        if self.momentum:
            buf = state.get("momentum_buffer")
            if self.ema:  # v <- m v + (1 - m) g from v = 0: the exponentially weighted average
                if buf is None:
                    buf = state["momentum_buffer"] = np.zeros_like(g)
                buf *= self.momentum
                buf += (1.0 - self.momentum) * g
            elif buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                if self.dampening:
                    buf += (1.0 - self.dampening) * g
                else:
                    buf += g
            if self.nesterov:
                np.multiply(buf, self.momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, self.lr, out=tmp)
        p.data -= tmp

    def diagonal_step(self, state, t, lr):
        # a constant g makes b -> (1 - dampening) g / (1 - momentum); Nesterov steps along
        # g + momentum * b -> g / (1 - momentum) (it needs dampening = 0)
        mu, d = self.momentum, self.dampening
        if self.ema:  # v -> g
            return lr
        if self.nesterov:
            return lr * (1.0 + mu * (1.0 - d) / (1.0 - mu))
        return lr * (1.0 - d) / (1.0 - mu) if mu else lr


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi et al. 2011), as torch.optim.Adagrad.

    For each parameter p with gradient g, at step t (from 1)::

        g <- g + weight_decay * p
        s <- s + g^2                                    (s starts at initial_accumulator_value)
        p <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Defaults: lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10.
    State: the sum of squares s (1x).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, lr, weight_decay)
        _check("lr_decay", lr_decay, 0.0)
        _check("initial_accumulator_value", initial_accumulator_value, 0.0)
        _check("eps", eps, 0.0)
        self.lr_decay, self.eps = lr_decay, eps
        for p, state in zip(self.params, self.state):
            state["sum"] = np.full_like(p.data, initial_accumulator_value)

    def _update(self, p, g, state, tmp):
        g = self._l2(p, g)
        s = state["sum"]
        np.multiply(g, g, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr / (1.0 + (self.steps - 1) * self.lr_decay)
        p.data -= tmp

    def diagonal_step(self, state, t, lr):
        return lr / (1.0 + (t - 1) * self.lr_decay) / (state["sum"] ** 0.5 + self.eps)


class RMSprop(Optimizer):
    r"""RMSProp (Hinton 2012), as torch.optim.RMSprop: eps is added *outside* the square root.

    For each parameter p with gradient g::

        g <- g + weight_decay * p
        v <- alpha * v + (1 - alpha) * g^2
        if centered:  a <- alpha * a + (1 - alpha) * g;   d <- sqrt(v - a^2) + eps
        else:         d <- sqrt(v) + eps
        if momentum > 0:  b <- momentum * b + g / d;   p <- p - lr * b
        else:             p <- p - lr * g / d

    Defaults: lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False.
    State: v (1x), plus a if centered, plus b if momentum > 0.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, lr, weight_decay)
        _check("alpha", alpha, 0.0, 1.0, high_open=False)
        _check("eps", eps, 0.0)
        _check("momentum", momentum, 0.0, 1.0)
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered

    def _update(self, p, g, state, tmp):
        g = self._l2(p, g)
        if not state:
            state["square_avg"] = np.zeros_like(p.data)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p.data)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
        v = state["square_avg"]
        v *= self.alpha
        v += (1.0 - self.alpha) * g * g
        if self.centered:
            a = state["grad_avg"]
            a += (1.0 - self.alpha) * (g - a)  # torch's lerp
            np.subtract(v, a * a, out=tmp)
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(v, out=tmp)
        tmp += self.eps
        if self.momentum > 0:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += g / tmp
            p.data -= self.lr * b
        else:
            np.divide(g, tmp, out=tmp)
            tmp *= self.lr
            p.data -= tmp

    def diagonal_step(self, state, t, lr):
        # with momentum, b -> g / (d (1 - momentum)) for a constant g
        return lr / ((state["square_avg"] ** 0.5 + self.eps) * (1.0 - self.momentum))

    def prox_unsupported(self) -> str | None:
        if self.centered:
            return ("centered RMSprop divides by sqrt(v - a^2) + eps, which falls to eps as the "
                    "gradient settles, so its proximal step has no stable limit")
        return None


def _check_betas(betas: tuple[float, float]) -> None:
    for i, b in enumerate(betas):
        _check(f"betas[{i}]", b, 0.0, 1.0)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015), optionally AMSGrad (Reddi et al. 2018), as torch.optim.Adam.

    For each parameter p with gradient g, at step t (from 1)::

        p <- p * (1 - lr * weight_decay)                if decoupled (AdamW)
        g <- g + weight_decay * p                       otherwise (L2 in the gradient)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v) and v <- v_max           if amsgrad
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    m and v start at 0, so early on they are biased towards 0: m_t estimates
    (1 - beta1^t) E[g], v_t (1 - beta2^t) E[g^2]; the two divisions undo that (bias
    correction). ``bias_correction=False`` leaves them out, p <- p - lr * m / (sqrt(v) + eps):
    the first step is then lr (1 - beta1) / sqrt(1 - beta2) ~ 3.2 lr per coordinate for the
    defaults (sign(g) times that), not lr. In torch's terms it is Adam at step t with
    lr_t = lr (1 - beta1^t) / sqrt(1 - beta2^t) and eps_t = eps / sqrt(1 - beta2^t).

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    bias_correction=True. State: m and v (2x the parameters; 3x with amsgrad).
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 bias_correction: bool = True):
        super().__init__(params, lr, weight_decay)
        _check_betas(betas)
        _check("eps", eps, 0.0)
        self.betas, self.eps, self.amsgrad = tuple(betas), eps, amsgrad
        self.bias_correction = bool(bias_correction)

    def _update(self, p, g, state, tmp):
        b1, b2 = self.betas
        if self.decoupled:
            p.data *= 1.0 - self._decay()
        elif self.weight_decay:
            g = self._l2(p, g)
        if not state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        np.subtract(g, m, out=tmp)  # m <- m + (1 - b1)(g - m): torch's lerp
        tmp *= 1.0 - b1
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        t = self.steps
        c1, c2 = (1.0 - b1**t, math.sqrt(1.0 - b2**t)) if self.bias_correction else (1.0, 1.0)
        np.sqrt(v, out=tmp)
        tmp /= c2
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / c1
        p.data -= tmp

    def _decay(self) -> float:
        return self.lr * self.weight_decay

    def diagonal_step(self, state, t, lr):
        v = state["max_exp_avg_sq"] if self.amsgrad else state["exp_avg_sq"]
        if not self.bias_correction:
            return lr / (v**0.5 + self.eps)
        return lr / ((v / (1.0 - self.betas[1] ** t)) ** 0.5 + self.eps)


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with *decoupled* weight decay, applied to p before
    the Adam step (see :class:`Adam`)::

        p <- p * (1 - lr_t * weight_decay)                     decouple_lr=False (torch.optim.AdamW)
        p <- p * (1 - (lr_t / lr) * weight_decay)              decouple_lr=True (the paper)

    The paper's Algorithm 2 writes the step as eta_t * (alpha * adam_step + weight_decay * p):
    the decay follows the schedule multiplier eta_t = lr_t / lr but not the base rate alpha = lr.
    torch multiplies it by lr_t = alpha * eta_t, so changing lr changes the decay too. The two
    are the same update when torch's weight_decay = weight_decay / lr, at every step and under
    any schedule that scales the base rate (warmup included); they differ as soon as lr changes
    with weight_decay held fixed (an lr sweep, or an lr tuned after the decay was).

    Args:
        params: the parameters to optimize.
        lr: base learning rate alpha (a schedule sets ``self.lr`` = lr_t before each step).
        betas, eps, amsgrad: as :class:`Adam`.
        weight_decay: decay coefficient (default 1e-2).
        decouple_lr: decay by (lr_t / lr) * weight_decay per step instead of lr_t * weight_decay.
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 decouple_lr: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
        self.base_lr, self.decouple_lr = lr, decouple_lr

    def _decay(self) -> float:
        return (self.lr / self.base_lr if self.decouple_lr else self.lr) * self.weight_decay


class Adamax(Optimizer):
    r"""AdaMax (Kingma & Ba 2015, section 7: Adam with the infinity norm), as torch.optim.Adamax.

    For each parameter p with gradient g, at step t (from 1)::

        g <- g + weight_decay * p
        m <- beta1 * m + (1 - beta1) * g
        u <- max(beta2 * u, |g| + eps)
        p <- p - lr / (1 - beta1^t) * m / u

    Defaults: lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.  State: m and u (2x).
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        _check_betas(betas)
        _check("eps", eps, 0.0)
        self.betas, self.eps = tuple(betas), eps

    def _update(self, p, g, state, tmp):
        b1, b2 = self.betas
        g = self._l2(p, g)
        if not state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_inf"] = np.zeros_like(p.data)
        m, u = state["exp_avg"], state["exp_inf"]
        m += (1.0 - b1) * (g - m)
        u *= b2
        np.abs(g, out=tmp)
        tmp += self.eps
        np.maximum(u, tmp, out=u)
        np.divide(m, u, out=tmp)
        tmp *= self.lr / (1.0 - b1**self.steps)
        p.data -= tmp

    def diagonal_step(self, state, t, lr):
        return lr / state["exp_inf"]


def _decayed_moments(opt, p, g, state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NAdam's and RAdam's shared first part (torch's order): weight decay, decoupled
    (p *= 1 - lr * wd) or coupled (g + wd * p); then m <- lerp(m, g, 1 - b1) and
    v <- b2 v + (1 - b2) g^2. Returns (g with any coupled decay, m, v)."""
    b1, b2 = opt.betas
    if opt.weight_decay:
        if opt.decoupled:
            p.data *= 1.0 - opt.lr * opt.weight_decay
        else:
            g = opt._l2(p, g)
    if not state:
        state["exp_avg"] = np.zeros_like(p.data)
        state["exp_avg_sq"] = np.zeros_like(p.data)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m += (1.0 - b1) * (g - m)
    v *= b2
    v += (1.0 - b2) * g * g
    return g, m, v


class NAdam(Optimizer):
    r"""NAdam (Dozat 2016): Adam with Nesterov momentum, as torch.optim.NAdam, including its
    momentum-decay schedule mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)).

    For each parameter p with gradient g, at step t (from 1)::

        g <- g + weight_decay * p                       (or p <- p (1 - lr wd) if decoupled)
        P_t = prod_{i<=t} mu_i
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        p <- p - lr (1 - mu_t) / (1 - P_t) * g / d - lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d

    Defaults: lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
    decoupled_weight_decay=False.  State: m and v (2x; the scalar P_t is negligible).
    """

    SCALARS = ("mu_product",)  # the running product of mu_t, part of its state

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, lr, weight_decay)
        _check_betas(betas)
        _check("eps", eps, 0.0)
        _check("momentum_decay", momentum_decay, 0.0)
        self.betas, self.eps = tuple(betas), eps
        self.momentum_decay, self.decoupled = momentum_decay, decoupled_weight_decay
        self.mu_product = 1.0

    def _mu_at(self, t: int) -> float:
        return self.betas[0] * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def step(self) -> None:
        t = self.steps + 1
        self._mu, self._mu_next = self._mu_at(t), self._mu_at(t + 1)
        self.mu_product *= self._mu
        super().step()

    def _update(self, p, g, state, tmp):
        b1, b2 = self.betas
        g, m, v = _decayed_moments(self, p, g, state)
        np.divide(v, 1.0 - b2**self.steps, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += self.eps
        mu, mu_next = self._mu, self._mu_next
        p.data -= (self.lr * (1.0 - mu) / (1.0 - self.mu_product)) * g / tmp
        p.data -= (self.lr * mu_next / (1.0 - self.mu_product * mu_next)) * m / tmp

    def diagonal_step(self, state, t, lr):
        # g_hat = (c1 g + c2 m) / (c1 + c2): both g and m tend to g for a constant g.
        # torch keeps P_t per parameter in its state, we keep one scalar.
        prod = float(state["mu_product"]) if "mu_product" in state else self.mu_product
        mu, mu_next = self._mu_at(t), self._mu_at(t + 1)
        c = lr * ((1.0 - mu) / (1.0 - prod) + mu_next / (1.0 - prod * mu_next))
        return c / ((state["exp_avg_sq"] / (1.0 - self.betas[1] ** t)) ** 0.5 + self.eps)


# Config option -> class. momentum and nesterov are SGD with their own defaults (conf/optimizer/).
OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "nesterov": SGD, "adagrad": Adagrad,
              "rmsprop": RMSprop, "adam": Adam, "adamax": Adamax, "nadam": NAdam, "adamw": AdamW}


class RAdam(Optimizer):
    r"""RAdam (Liu et al. 2020): Adam whose adaptive step is switched on only once the variance
    of the second-moment estimate is tractable, and then rectified; as torch.optim.RAdam.

    For each parameter p with gradient g, at step t (from 1)::

        p <- p * (1 - lr * weight_decay)                if decoupled_weight_decay
        g <- g + weight_decay * p                       otherwise (L2 in the gradient)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p <- p - lr * m / (1 - beta1^t) * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)
        else:                                           (the first ~5 steps: SGD with momentum)
            p <- p - lr * m / (1 - beta1^t)

    Args:
        params: the parameters to optimize.
        lr: learning rate (default 1e-3).
        betas: coefficients of the running averages of g and g^2 (default (0.9, 0.999)).
        eps: added to sqrt(v) for numerical stability (default 1e-8).
        weight_decay: L2 penalty coefficient (default 0).
        decoupled_weight_decay: decay the weights directly, as AdamW does (default False).

    State: m and v (2x the parameters).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, lr, weight_decay)
        _check_betas(betas)
        _check("eps", eps, 0.0)
        self.betas, self.eps, self.decoupled = tuple(betas), eps, decoupled_weight_decay

    def _update(self, p, g, state, tmp):
        b1, b2 = self.betas
        g, m, v = _decayed_moments(self, p, g, state)
        t = self.steps
        bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2**t / bc2
        # the same association of products as torch's, so that float64 agrees to the last bits
        if rho_t > 5.0:
            rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
            np.sqrt(v, out=tmp)
            tmp += self.eps
            np.divide(bc2**0.5, tmp, out=tmp)  # the adaptive lr
            p.data -= m / bc1 * self.lr * tmp * rect
        else:
            p.data -= m / bc1 * self.lr


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler 2012): steps scaled by the ratio of running RMS of past updates to the
    running RMS of gradients, so that the update has the units of the parameter; as
    torch.optim.Adadelta (with its lr factor, 1.0 in the paper).

    For each parameter p with gradient g::

        g <- g + weight_decay * p
        v <- rho * v + (1 - rho) * g^2
        d = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho * u + (1 - rho) * d^2
        p <- p - lr * d

    Args:
        params: the parameters to optimize.
        lr: factor on the update (default 1.0).
        rho: decay of the running averages of g^2 and d^2 (default 0.9).
        eps: added inside both square roots; it also sets the size of the first steps
            (default 1e-6).
        weight_decay: L2 penalty coefficient (default 0).

    State: v and u (2x the parameters).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        _check("rho", rho, 0.0, 1.0, high_open=False)
        _check("eps", eps, 0.0)
        self.rho, self.eps = rho, eps

    def _update(self, p, g, state, tmp):
        g = self._l2(p, g)
        if not state:
            state["square_avg"] = np.zeros_like(p.data)
            state["acc_delta"] = np.zeros_like(p.data)
        v, u = state["square_avg"], state["acc_delta"]
        v *= self.rho
        v += (1.0 - self.rho) * g * g
        np.add(u, self.eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp /= np.sqrt(v + self.eps)
        tmp *= g
        u *= self.rho
        u += (1.0 - self.rho) * tmp * tmp
        tmp *= self.lr
        p.data -= tmp


OPTIMIZERS.update(radam=RAdam, adadelta=Adadelta)
