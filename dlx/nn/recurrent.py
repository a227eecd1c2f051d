"""Recurrent layers with hand-written backpropagation through time (BPTT): Elman RNN (tanh or
ReLU), LSTM and GRU, as single-step cells and as multi-layer, batch-first sequence layers.

Parameters are laid out exactly as torch's, so weights copy into torch.nn.RNN / LSTM / GRU
(and RNNCell / LSTMCell / GRUCell) as they are: per layer k, ``weight_ih_l{k}`` (G*H, I),
``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), G the number of gate
blocks stacked along the rows (RNN 1; LSTM 4: i, f, g, o; GRU 3: r, z, n). The equations, with
a = x W_ih^T + b_ih and b = h W_hh^T + b_hh split into the gate blocks:

* RNN:  h' = act(a + b), act = tanh or relu
* LSTM: i, f, o = sigmoid(a_i + b_i), ...;  g = tanh(a_g + b_g);  c' = f * c + i * g;
  h' = o * tanh(c')
* GRU:  r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z);  n = tanh(a_n + r * b_n);
  h' = (1 - z) * n + z * h   (torch's form: r multiplies W_hn h + b_hn, bias included)

Backward is BPTT: the forward keeps every step's state and gates; backward walks t = T-1 .. 0
carrying dL/dh (and dL/dc), and the weight gradients are summed over time with one matmul per
weight at the end (sum_t da_t^T x_t). It also returns the gradient with respect to the initial
state (``dstate0``), so a caller can check it or chain truncated-BPTT segments.

Shapes: x (B, T, I) batch-first; a state is (L, B, H) (torch's layout, also with batch_first),
an LSTM's a pair (h, c) of those.
"""

from __future__ import annotations

import math

import numpy as np

from dlx.nn.core import Module, Parameter

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # sigmoid(x) = (1 + tanh(x/2)) / 2: one ufunc pass, and no exp to overflow
    out = np.tanh(0.5 * x)
    out += 1
    out *= 0.5
    return out


class _Cell(Module):
    """One layer's weights and one time step, forward and backward.

    ``_step(ax, hx, state) -> (new state, cache)`` takes the input's part a = x W_ih^T + b_ih
    (precomputed for all steps by the sequence layer: one matmul instead of T) and the
    recurrent part hx = h W_hh^T + b_hh; ``_step_back(dstate, cache) -> (da, dhx, dstate_prev)``
    returns the gradients of a and of hx, and the part of d state_prev that does not go through
    W_hh (the caller adds dhx W_hh).
    """

    gates = 1
    mode = "rnn_tanh"

    def __init__(self, input_size: int, hidden_size: int, *, dtype=np.float32, name: str = "",
                 suffix: str = "", rng: np.random.Generator | None = None):
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, "
                             f"{hidden_size}")
        G, H, p = self.gates, hidden_size, f"{name}." if name else ""
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = Parameter(np.zeros((G * H, input_size), dtype=dtype), f"{p}weight_ih{suffix}")
        self.weight_hh = Parameter(np.zeros((G * H, H), dtype=dtype), f"{p}weight_hh{suffix}")
        self.bias_ih = Parameter(np.zeros(G * H, dtype=dtype), f"{p}bias_ih{suffix}", decay=False)
        self.bias_hh = Parameter(np.zeros(G * H, dtype=dtype), f"{p}bias_hh{suffix}", decay=False)
        if rng is not None:
            self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """torch's initialization: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            p.data[...] = rng.uniform(-k, k, p.data.shape)

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        return (np.zeros((batch, self.hidden_size), dtype=self.weight_hh.data.dtype),)

    def recurrent(self, h: np.ndarray) -> np.ndarray:
        return h @ self.weight_hh.data.T + self.bias_hh.data  # (B, G*H)

    # --- single-step interface, as torch.nn.RNNCell / LSTMCell / GRUCell -------------------

    def forward(self, x: np.ndarray, state=None):
        """One step: x (B, I), state h (B, H) (LSTM: (h, c)) or None for zeros -> the new
        state, in the same form."""
        st = self.zero_state(len(x)) if state is None else \
            (tuple(state) if isinstance(state, (tuple, list)) else (state,))
        new, cache = self._step(x @ self.weight_ih.data.T + self.bias_ih.data,
                                self.recurrent(st[0]), st)
        self._one = (x, st[0], cache)
        return new if len(new) > 1 else new[0]

    def backward(self, dstate) -> np.ndarray:
        """d new state (h, or (dh, dc)) -> dx (B, I); accumulates the weight gradients and
        sets ``dstate0``, the gradient of the state given to forward."""
        x, h, cache = self._one
        ds = tuple(dstate) if isinstance(dstate, (tuple, list)) else (dstate,)
        da, dhx, dprev = self._step_back(ds, cache)
        self.weight_ih.grad += da.T @ x
        self.bias_ih.grad += da.sum(axis=0)
        self.weight_hh.grad += dhx.T @ h
        self.bias_hh.grad += dhx.sum(axis=0)
        dprev = (dprev[0] + dhx @ self.weight_hh.data, *dprev[1:])
        self.dstate0 = dprev if len(dprev) > 1 else dprev[0]
        return da @ self.weight_ih.data

    def _step(self, ax, hx, state):
        raise NotImplementedError

    def _step_back(self, dstate, cache):
        raise NotImplementedError


class RNNCell(_Cell):
    """Elman RNN step: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.

    Args:
        input_size: features per step of the input (I).
        hidden_size: the state's width (H).
        nonlinearity: ``tanh`` or ``relu``.
        dtype, name, suffix: the arrays' dtype; parameter names are
            ``{name}.weight_ih{suffix}`` etc.
        rng: if given, torch's initialization U(-1/sqrt(H), 1/sqrt(H)); else zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", **kw):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be tanh or relu, got {nonlinearity!r}")
        self.mode = f"rnn_{nonlinearity}"
        super().__init__(input_size, hidden_size, **kw)

    def _step(self, ax, hx, state):
        z = ax + hx
        h = np.tanh(z) if self.mode == "rnn_tanh" else np.maximum(z, 0)
        return (h,), h

    def _step_back(self, dstate, h):
        # tanh' = 1 - h^2; relu' = [h > 0] (the pre-activation's sign, read off h)
        da = dstate[0] * ((1 - h * h) if self.mode == "rnn_tanh" else (h > 0))
        return da, da, (np.zeros_like(h),)


class LSTMCell(_Cell):
    """LSTM step (Hochreiter & Schmidhuber 1997, with a forget gate; torch's gate order):

        [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh    (each (B, H))
        i, f, o = sigmoid(.);  g = tanh(.);  c' = f * c + i * g;  h' = o * tanh(c')

    Args: as :class:`RNNCell` (no nonlinearity). The state is the pair (h, c).
    """

    gates, mode = 4, "lstm"

    def zero_state(self, batch):
        h = super().zero_state(batch)[0]
        return h, np.zeros_like(h)

    def _step(self, ax, hx, state):
        _, c = state
        H = self.hidden_size
        z = ax + hx  # (B, 4H)
        s = _sigmoid(z)  # one pass over all four blocks; the g block's is not used
        i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
        g = np.tanh(z[:, 2 * H:3 * H])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        h_new = o * tc
        return (h_new, c_new), (i, f, g, o, c, tc)

    def _step_back(self, dstate, cache):
        i, f, g, o, c, tc = cache
        dh, dc = dstate if len(dstate) > 1 else (dstate[0], np.zeros_like(c))
        dc = dc + dh * o * (1 - tc * tc)  # through h' = o tanh(c')
        da = np.concatenate([dc * g * i * (1 - i),        # d pre-activation of i
                             dc * c * f * (1 - f),        # f
                             dc * i * (1 - g * g),        # g
                             dh * tc * o * (1 - o)], axis=1)  # o
        return da, da, (np.zeros_like(dh), dc * f)


class GRUCell(_Cell):
    """GRU step (Cho et al. 2014) in torch's form, gate order r, z, n:

        r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z);  n = tanh(a_n + r * b_n)
        h' = (1 - z) * n + z * h

    with a = x W_ih^T + b_ih and b = h W_hh^T + b_hh (b_n = W_hn h + b_hn: the reset gate
    multiplies the recurrent bias too). Args: as :class:`RNNCell` (no nonlinearity).
    """

    gates, mode = 3, "gru"

    def _step(self, ax, hx, state):
        h = state[0]
        H = self.hidden_size
        rz = _sigmoid(ax[:, :2 * H] + hx[:, :2 * H])
        r, z = rz[:, :H], rz[:, H:]
        bn = hx[:, 2 * H:]
        n = np.tanh(ax[:, 2 * H:] + r * bn)
        return ((1 - z) * n + z * h,), (r, z, n, bn, h)

    def _step_back(self, dstate, cache):
        r, z, n, bn, h = cache
        dh = dstate[0]
        dan = dh * (1 - z) * (1 - n * n)        # d (a_n + r * b_n)
        dar = dan * bn * r * (1 - r)
        daz = dh * (h - n) * z * (1 - z)
        da = np.concatenate([dar, daz, dan], axis=1)
        dhx = np.concatenate([dar, daz, dan * r], axis=1)  # b_n enters times r
        return da, dhx, (dh * z,)


CELLS = {"rnn_tanh": RNNCell, "rnn_relu": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


class _Recurrent(Module):
    """A stack of ``num_layers`` cells over a batch-first sequence (torch's multi-layer RNN /
    LSTM / GRU with batch_first=True, no dropout between layers, one direction).

    ``forward(x, state=None) -> out`` (B, T, H): the last layer's h at every step; the final
    state is kept in ``final_state`` ((L, B, H), LSTM: (h_n, c_n)), so a trainer can pass it as
    the next batch's ``state`` (truncated BPTT: the carried state is a constant there, its
    gradient is not followed back). ``backward(dout, dstate=None) -> dx`` (B, T, I): BPTT
    through the last forward; ``dstate`` is an optional gradient of the final state; the
    gradient of the initial state is left in ``dstate0`` (same layout as ``state``).

    With ``keep_hidden_grads = True`` the backward also keeps, per layer, the total gradient of
    every hidden state, ``hidden_grads[k]`` (B, T+1, H): dL/dh_t for t = 0 .. T (h_0 the
    initial state) — the quantity whose vanishing or explosion BPTT is about.
    """

    mode = "rnn_tanh"
    keep_hidden_grads = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 dtype=np.float32, name: str = "", rng: np.random.Generator | None = None,
                 **cell_options):
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.cells = [CELLS[self.mode](input_size if k == 0 else hidden_size, hidden_size,
                                       dtype=dtype, name=name, suffix=f"_l{k}", rng=rng,
                                       **cell_options) for k in range(num_layers)]
        self.final_state = None

    def _states(self, state, batch: int) -> list[tuple[np.ndarray, ...]]:
        """(L, B, H) / (h, c) of those -> one state tuple per layer."""
        if state is None:
            return [cell.zero_state(batch) for cell in self.cells]
        parts = tuple(state) if isinstance(state, (tuple, list)) else (state,)
        want = (self.num_layers, batch, self.hidden_size)
        if len(parts) != len(self.cells[0].zero_state(1)) or any(p.shape != want for p in parts):
            raise ValueError(f"state must be {len(self.cells[0].zero_state(1))} array(s) of "
                             f"shape {want}")
        return [tuple(p[k] for p in parts) for k in range(self.num_layers)]

    @staticmethod
    def _stack(per_layer: list[tuple[np.ndarray, ...]]):
        parts = tuple(np.stack(s) for s in zip(*per_layer))  # each (L, B, H)
        return parts if len(parts) > 1 else parts[0]

    def forward(self, x: np.ndarray, state=None) -> np.ndarray:
        B, T, _ = x.shape
        states = self._states(state, B)
        self._caches, finals = [], []
        for cell, st in zip(self.cells, states):
            ax = (x.reshape(B * T, -1) @ cell.weight_ih.data.T + cell.bias_ih.data
                  ).reshape(B, T, -1)  # (B, T, G*H): the input's part of every step at once
            hs = np.empty((B, T + 1, self.hidden_size), dtype=ax.dtype)  # h_0 .. h_T
            hs[:, 0] = st[0]
            steps = []
            for t in range(T):
                st, cache = cell._step(ax[:, t], cell.recurrent(hs[:, t]), st)
                hs[:, t + 1] = st[0]
                steps.append(cache)
            self._caches.append((x, hs, steps))
            finals.append(st)
            x = hs[:, 1:]  # (B, T, H): the next layer's input
        self.final_state = self._stack(finals)
        return x

    def backward(self, dout: np.ndarray, dstate=None) -> np.ndarray:
        final = self._states(dstate, dout.shape[0]) if dstate is not None else None
        dstate0, kept = [], []
        for k in reversed(range(self.num_layers)):
            cell = self.cells[k]
            x, hs, steps = self._caches[k]
            B, T, _ = dout.shape
            W_hh = cell.weight_hh.data
            da = np.empty((B, T, W_hh.shape[0]), dtype=dout.dtype)   # d (x W_ih^T + b_ih)
            dhx = np.empty_like(da)                                    # d (h W_hh^T + b_hh)
            carry = final[k] if final is not None else \
                tuple(np.zeros_like(s) for s in cell.zero_state(B))
            dh = np.empty_like(hs) if self.keep_hidden_grads else None  # (B, T+1, H)
            for t in reversed(range(T)):
                ds = (carry[0] + dout[:, t], *carry[1:])  # ds[0] = dL/dh_{t+1}, all of it
                if dh is not None:
                    dh[:, t + 1] = ds[0]
                da[:, t], dhx[:, t], prev = cell._step_back(ds, steps[t])
                carry = (prev[0] + dhx[:, t] @ W_hh, *prev[1:])
            if dh is not None:
                dh[:, 0] = carry[0]
                kept.append(dh)
            dstate0.append(carry)
            # weights: sum over time and batch, one matmul each
            cell.weight_ih.grad += da.reshape(B * T, -1).T @ x.reshape(B * T, -1)
            cell.bias_ih.grad += da.sum(axis=(0, 1))
            cell.weight_hh.grad += dhx.reshape(B * T, -1).T @ hs[:, :-1].reshape(B * T, -1)
            cell.bias_hh.grad += dhx.sum(axis=(0, 1))
            dout = (da.reshape(B * T, -1) @ cell.weight_ih.data).reshape(B, T, -1)
        self.dstate0 = self._stack(dstate0[::-1])
        if self.keep_hidden_grads:
            self.hidden_grads = kept[::-1]
        return dout


class RNN(_Recurrent):
    """Elman RNN over a sequence, ``num_layers`` deep: torch.nn.RNN(batch_first=True).

    Args:
        input_size: features per step (I).
        hidden_size: state width (H).
        num_layers: stacked layers; layer k > 0 reads layer k-1's h at every step.
        nonlinearity: ``tanh`` or ``relu``.
        dtype, name: the arrays' dtype and the parameter names' prefix
            (``{name}.weight_ih_l0``, ...).
        rng: if given, torch's initialization U(-1/sqrt(H), 1/sqrt(H)); else zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", **kw):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be tanh or relu, got {nonlinearity!r}")
        self.mode = f"rnn_{nonlinearity}"
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, **kw)


class LSTM(_Recurrent):
    """LSTM over a sequence: torch.nn.LSTM(batch_first=True); the state is (h, c), each
    (L, B, H). Args: as :class:`RNN` (no nonlinearity)."""

    mode = "lstm"


class GRU(_Recurrent):
    """GRU over a sequence: torch.nn.GRU(batch_first=True). Args: as :class:`RNN` (no
    nonlinearity)."""

    mode = "gru"


RECURRENT = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
