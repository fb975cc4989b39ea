"""Production inference of the recurrent models over every sliding window of a ``(days, pixels, features)`` array.

Stage 04 predicts, for each pixel, one window per output day, and consecutive windows overlap in all but one day:
day ``d`` is read by the ``L`` windows ending on days ``d .. d + L - 1``. Calling the module's ``forward`` on
gathered windows recomputes everything per window. :class:`WindowEngine` computes the same function (the module's
forward, the reference, see ``tests/unit/production/test_inference.py``) with four changes that do not change
the arithmetic of any single window beyond fp32 rounding:

* **The first layer's input projection once per pixel-day.** ``W_ih x_d + b`` depends on the day only, not on
  the window, so it is computed once for the ``T`` days of a pixel block (one GEMM) and read by the ``L``
  windows that contain the day: ``(L - 1) / L`` of that term's FLOPs are not spent again.
* **Time-major, day-block batches.** A batch is ``K`` consecutive output days x ``P_b`` pixels; with the
  projection stored ``(day, pixel, gate)``, the inputs of step ``t`` of all the batch's windows are the
  contiguous slice ``proj[k0 + t : k0 + t + K]`` (no gather, no copy).
* **Fused layer steps.** Above the first layer, the input and recurrent products of a step are one GEMM with
  ``K = 2h`` (``[h_below; h] @ [W_ih; W_hh]``) instead of two with ``K = h``; the gates are reordered
  ``(i, f, o, g)`` so one operator covers them; every step writes into buffers allocated once per batch shape
  and thread (no allocator traffic inside the recurrence; Dask threads share the engine).
* **tanh as a sigmoid.** ``tanh(x) = 2 sigmoid(2x) - 1``, the factor 2 folded into the weights (a power of two,
  exact; the identity itself costs a few fp32 ulps of absolute error): ATen's
  AVX2 tanh costs about 4 ns per element against 1 ns for its sigmoid (measured on the 2-core EPYC of issue 18),
  and the attention's ``v . tanh(.)`` becomes ``2v . sigmoid(.)`` up to a constant the softmax ignores.

The analytic FLOPs per window (:func:`glass_sm.models.count_flops`) stay those of the module: the benchmark's
FLOP/s are "module-equivalent" FLOP/s, and the saving of the first point shows as a higher rate.

Precision ``'bf16'`` runs the recurrent GEMMs with bf16 operands (weights converted once; gates, the state ``c``
and the hidden states stay fp32) and the attention and head under ``torch.autocast('cpu', dtype=torch.bfloat16)``.
It pays only on CPUs with native bf16 dot products (AVX512-BF16, AMX) or on GPUs. On the AVX2-only 2-core EPYC
of issue 18 oneDNN has no bf16 kernels: the bf16 engine ran 8x slower than fp32 and the product differed by RMSE
5e-4 m3 m-3 (target 1e-4), so ``production.precision`` stays ``'fp32'`` (``tools/bench.py`` rows ``f``).

Supported: :class:`~glass_sm.models.lstm.AtLSTMRegressor` (both heads, any number of layers) and
:class:`~glass_sm.models.lstm.LSTMRegressor`; any other model falls back to its own ``forward``
(:func:`supports`).
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import torch
from torch import nn

from glass_sm.models.lstm import AtLSTMRegressor, LSTMRegressor

__all__ = ["PRECISIONS", "WindowEngine", "supports", "window_blocks"]

PRECISIONS = ("fp32", "bf16")
"""Arithmetic of production inference: ``'fp32'`` (the reference) or ``'bf16'`` (autocast GEMMs)."""


def supports(model: nn.Module) -> bool:
    """Whether :class:`WindowEngine` computes ``model``'s forward (a unidirectional, batch-first LSTM with biases
    and no projection, under an LSTM or AtLSTM head); other models are predicted with their own ``forward``."""
    if not isinstance(model, (AtLSTMRegressor, LSTMRegressor)):
        return False
    lstm = getattr(model, "lstm", None)
    return (isinstance(lstm, nn.LSTM) and lstm.batch_first and not lstm.bidirectional and lstm.bias
            and getattr(lstm, "proj_size", 0) == 0)


def head_mode(model: nn.Module) -> str:
    """What the output MLP of ``model`` reads: ``'last'`` (LSTM), ``'context'`` or ``'context_last'`` (AtLSTM;
    the attribute ``head_input``, absent on modules older than the setting, which read ``[c; h_L]``)."""
    if isinstance(model, AtLSTMRegressor):
        return getattr(model, "head_input", "context_last")
    return "last"


def window_blocks(n_pixels: int, n_out: int, batch_size: int, model_batch: int) -> tuple[int, int]:
    """Pixels per block ``P_b`` and output days per batch ``K`` of :meth:`WindowEngine.predict`.

    A block holds about ``batch_size`` windows (``P_b = batch_size // n_out`` pixels, at least 1, at most
    ``model_batch`` and ``n_pixels``): its first-layer projection, ``(n_out + L - 1) x P_b x 4h`` floats, is
    computed once. A batch holds about ``model_batch`` windows (``K = model_batch // P_b`` days, at least 1): the
    working set of a recurrent step (``K P_b`` rows of ``4h`` gates) is what the CPU caches must hold.
    """
    pb = max(1, min(n_pixels, model_batch, batch_size // max(n_out, 1)))
    k = max(1, min(n_out, model_batch // pb))
    return pb, k


class WindowEngine:
    """Inference of an LSTM / AtLSTM regressor over all sliding windows, equal to its forward up to fp32 rounding.

    Parameters
    ----------
    model : torch.nn.Module
        An eval-mode model for which :func:`supports` is true; its weights are copied (later changes to the
        module are not seen).
    precision : {'fp32', 'bf16'}
        Arithmetic (module docstring).

    Raises
    ------
    ValueError
        ``model`` is not supported, or ``precision`` is unknown (both named).
    """

    def __init__(self, model: nn.Module, precision: str = "fp32"):
        if not supports(model):
            raise ValueError(f"WindowEngine does not support {type(model).__name__}; predict with its forward")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.head_mode = head_mode(model)
        lstm = model.lstm
        h = self.hidden = lstm.hidden_size
        self.num_layers = lstm.num_layers
        order = torch.cat([torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)])
        scale = torch.ones(4 * h, 1)
        scale[3 * h:] = 2.0  # g rows doubled: tanh(g) = 2 sigmoid(2 g) - 1 (see _cell)
        with torch.no_grad():
            self.w_in, self.w_hh, self.w_cat, self.bias = [], [], [], []
            for k in range(self.num_layers):
                w_ih = getattr(lstm, f"weight_ih_l{k}").detach().float()[order] * scale
                w_hh = getattr(lstm, f"weight_hh_l{k}").detach().float()[order] * scale
                b = (getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")).detach().float()[order]
                b = b * scale[:, 0]
                self.w_in.append(w_ih.t().contiguous())  # (in, 4h)
                self.w_hh.append(w_hh.t().contiguous())  # (h, 4h)
                self.w_cat.append(torch.cat([w_ih, w_hh], dim=1).t().contiguous())  # (in + h, 4h)
                self.bias.append(b.contiguous())
            self.attention = isinstance(model, AtLSTMRegressor)
            if self.attention:
                # doubled: v tanh(z) = 2 v sigmoid(2 z) - sum(v), and the softmax ignores the constant
                self.w_key = 2 * model.key.weight.detach().float().t().contiguous()  # (h, a)
                self.b_key = 2 * model.key.bias.detach().float()
                self.w_query = 2 * model.query.weight.detach().float().t().contiguous()  # (h, a)
                self.v = 2 * model.score.weight.detach().float().reshape(-1)  # (a,)
            first, last = model.head.net[0], model.head.net[-1]
            self.w_h1 = first.weight.detach().float().t().contiguous()
            self.b_h1 = first.bias.detach().float().clone()
            self.w_h2 = last.weight.detach().float().t().contiguous()  # (hid, 1)
            self.b_h2 = last.bias.detach().float().clone()
            # bf16 copies of the recurrent GEMMs' weights, looked up by the fp32 tensor's id
            self._lo = {id(w): w.to(torch.bfloat16) for w in self.w_hh + self.w_in + self.w_cat}
        self.timings: dict | None = None  # set to {} to accumulate seconds per part (tools/bench.py's profile)
        self._local = threading.local()  # work buffers per thread: Dask runs tasks in threads sharing the model

    # ---- the pieces ---------------------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """First-layer input projection ``x W_ih^T + b_ih + b_hh`` of ``(T, P, F)`` inputs: ``(T, P, 4h)``
        float32, gates ordered ``(i, f, o, g)``; once per pixel-day."""
        T, P, F = x.shape
        out = torch.empty(T * P, self.w_in[0].shape[1])
        return self._addmm(self.bias[0], x.reshape(T * P, F), self.w_in[0], out).reshape(T, P, -1)

    def _buffers(self, L: int, M: int) -> dict:
        """This thread's work buffers for ``M`` windows of ``L`` steps (kept for the next call of that shape)."""
        key = (L, M)
        shapes = self._local.__dict__.setdefault("buf", {})
        if key not in shapes:
            if len(shapes) >= 4:  # a full and a partial batch of two window lengths, at most
                shapes.clear()
            h, n = self.hidden, self.num_layers
            shapes[key] = {
                "gates": torch.empty(M, 4 * h), "sg": torch.empty(M, 4 * h), "tc": torch.empty(M, h),
                "c": [torch.empty(M, h) for _ in range(n)],
                # layer k >= 1 reads [h_{k-1, t}; h_{k, t-1}]: one (M, 2h) buffer per layer and step parity
                "cat": [[torch.empty(M, 2 * h) for _ in range(2)] for _ in range(n)],
                "top": torch.empty(L, M, h),  # top layer's hidden states, time-major
            }
        return shapes[key]

    def _cell(self, gates: torch.Tensor, c: torch.Tensor, h_out: torch.Tensor, b: dict, first: bool) -> None:
        """LSTM cell from pre-activations ``gates`` ``(i, f, o, 2 g)``: ``c = f c + i g``, ``h = o tanh(c)``
        (written into ``h_out``; ``c`` holds ``2 c``); ``first``: the state before was zero.

        ``tanh(x) = 2 sigmoid(2 x) - 1``: one sigmoid covers the four gates (the ``g`` rows of the weights and
        bias are doubled at load, an exact scaling by a power of two), and ``tanh(c)`` is a sigmoid too. ATen's
        vectorised sigmoid is about 3x faster than its tanh on AVX2 CPUs; the identity costs at most a few fp32
        ulps of absolute error (measured against the module in the tests).
        """
        h = self.hidden
        M = len(c)
        s, tc = b["sg"][:M], b["tc"][:M]
        i, f, o, sg = s[:, :h], s[:, h:2 * h], s[:, 2 * h:3 * h], s[:, 3 * h:]
        torch.sigmoid(gates, out=s)
        # the state is kept doubled (c2 = 2c), so tanh(c) = 2 sigmoid(c2) - 1 needs no scaling, and
        # c2 = f c2 + 2 i tanh(g) = f c2 - 2 i + 4 i sigmoid(2g) (no Python-scalar operands: ATen would wrap
        # each in a tensor per call)
        if first:
            c.zero_()
        else:
            c.mul_(f)
        c.sub_(i, alpha=2).addcmul_(i, sg, value=4)
        torch.sigmoid(c, out=tc)
        torch.neg(o, out=h_out)
        h_out.addcmul_(o, tc, value=2)  # o tanh(c) = 2 o sigmoid(2c) - o

    def _addmm(self, bias: torch.Tensor, a: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = bias + a @ w`` in the engine's precision (bf16: bf16 operands, fp32 result)."""
        if self.precision == "fp32":
            return torch.addmm(bias, a, w, out=out)
        lo = torch.bfloat16
        return out.copy_(torch.addmm(bias.to(lo), a.to(lo), self._lo[id(w)]))

    def recur(self, pre: torch.Tensor) -> torch.Tensor:
        """Run the stacked LSTM over windows from their first-layer projections.

        Parameters
        ----------
        pre : torch.Tensor
            ``(L, M, 4h)`` float32: step ``t`` of window ``m``, gates ``(i, f, o, g)`` (may be a strided view
            whose every step slice ``pre[t]`` is contiguous).

        Returns
        -------
        torch.Tensor
            The top layer's hidden states ``(L, M, h)`` (a buffer reused by the next call of the same shape).

        Notes
        -----
        Layer ``k >= 1`` reads ``[h_{k-1,t}; h_{k,t-1}]`` from one ``(M, 2h)`` buffer per step parity: layer
        ``k - 1`` writes its state straight into the first half, the second half is a copy of the layer's own
        previous state (``M h`` floats; the GEMM with ``K = 2h`` it enables is cheaper than two with ``K = h``).
        """
        L, M, _ = pre.shape
        h, n = self.hidden, self.num_layers
        b = self._buffers(L, M)
        top, gates, cat = b["top"], b["gates"], b["cat"]

        def state(k: int, t: int) -> torch.Tensor:  # where h_{k,t} is written
            return cat[k + 1][t % 2][:, :h] if k + 1 < n else top[t]

        clock = self.timings is not None
        for t in range(L):
            for k in range(n):
                if clock:
                    t0 = time.perf_counter()
                if k == 0:
                    g = pre[0] if t == 0 else self._addmm(pre[t], state(0, t - 1), self.w_hh[0], gates)
                elif t == 0:  # h_{k,-1} = 0: the input half only
                    g = self._addmm(self.bias[k], cat[k][0][:, :h], self.w_in[k], gates)
                else:
                    buf = cat[k][t % 2]
                    buf[:, h:].copy_(state(k, t - 1))
                    g = self._addmm(self.bias[k], buf, self.w_cat[k], gates)
                self._cell(g, b["c"][k], state(k, t), b, first=(t == 0))
                if clock:
                    self._tick(f"layer {k + 1}: recurrent steps" if k == 0 else
                               f"layer {k + 1}: input + recurrent steps", t0)
        return top

    def _tick(self, part: str, t0: float) -> None:
        self.timings[part] = self.timings.get(part, 0.0) + time.perf_counter() - t0

    def finish(self, top: torch.Tensor) -> torch.Tensor:
        """Attention (AtLSTM) and head from the top hidden states ``(L, M, h)``: predictions ``(M,)``, m3 m-3."""
        with self._autocast():
            return self._finish(top).float()

    def _finish(self, top: torch.Tensor) -> torch.Tensor:
        L, M, h = top.shape
        last = top[L - 1]
        t0 = time.perf_counter()
        if self.attention:
            keys = torch.addmm(self.b_key, top.reshape(L * M, h), self.w_key).reshape(L, M, -1)
            q = torch.mm(last, self.w_query)
            e = torch.sigmoid(keys.add_(q), out=keys)  # (L, M, a): (tanh + 1) / 2 of the module's
            energy = torch.mv(e.reshape(L * M, -1).float(), self.v).reshape(L, M)
            att = torch.softmax(energy, dim=0)
            context = (top * att.unsqueeze(-1)).sum(0)  # (M, h)
            z = context if self.head_mode == "context" else torch.cat([context, last], dim=1)
        else:
            z = last
        if self.timings is not None:
            self._tick("attention", t0)
            t0 = time.perf_counter()
        hid = torch.relu(torch.addmm(self.b_h1, z, self.w_h1))
        y = torch.addmm(self.b_h2, hid, self.w_h2).reshape(M)
        if self.timings is not None:
            self._tick("head", t0)
        return y

    # ---- the entry points -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward_windows(self, x: torch.Tensor) -> torch.Tensor:
        """The module's forward on gathered windows ``(B, L, F)``: predictions ``(B,)`` (no sharing across
        windows; for tests and for windows that are not consecutive days)."""
        pre = self.project(x.transpose(0, 1).contiguous().float())  # (L, B, 4h)
        return self.finish(self.recur(pre))

    @torch.inference_mode()
    def predict(self, x: np.ndarray, n_out: int, batch_size: int = 8192, model_batch: int = 1024) -> np.ndarray:
        """Predict every window of a normalised ``(T, P, F)`` array (``T = n_out + L - 1``): ``(n_out, P)``
        float32, m3 m-3; output day ``k`` of pixel ``p`` is the model on ``x[k : k + L, p]``.

        Parameters
        ----------
        x : numpy.ndarray
            ``(T, P, F)`` float32, finite (missing inputs already replaced).
        n_out : int
            Output days.
        batch_size, model_batch : int
            Windows per pixel block and per batch (:func:`window_blocks`).
        """
        T, P, F = x.shape
        L = T - n_out + 1
        out = np.empty((n_out, P), np.float32)
        if P == 0 or n_out == 0:
            return out
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        pb, kd = window_blocks(P, n_out, batch_size, model_batch)
        res = torch.from_numpy(out)
        for p0 in range(0, P, pb):
            p1 = min(P, p0 + pb)
            t0 = time.perf_counter()
            proj = self.project(xt[:, p0:p1].contiguous())  # (T, pb', 4h), once per pixel-day
            if self.timings is not None:
                self._tick("layer 1: input projection (once per pixel-day)", t0)
            n = p1 - p0
            for k0 in range(0, n_out, kd):
                k1 = min(n_out, k0 + kd)
                m = (k1 - k0) * n
                # step t of window (k, p) reads day k + t: rows k0 + t .. k1 + t - 1 of proj, contiguous
                pre = proj.as_strided((L, m, proj.shape[2]), (n * proj.shape[2], proj.shape[2], 1),
                                      proj.storage_offset() + k0 * n * proj.shape[2])
                y = self.finish(self.recur(pre))
                res[k0:k1, p0:p1] = y.float().reshape(k1 - k0, n)
        return out
