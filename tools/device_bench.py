"""Throughput of the production AtLSTM on an accelerator (CUDA), for the paper-scale GPU-hour estimate.

``python tools/device_bench.py --out gpu_bench.json [--hidden 32 --layers 2 --window 30 --features 12]``

Self-contained on purpose: it needs only ``torch`` (and loads ``src/glass_sm/models/lstm.py`` by path), so it runs
on a GPU machine that has PyTorch but not the compendium's environment. Measured in one run, on one device:

(a) dense GEMM peaks (8192^3): fp32 (TF32 off), TF32, bf16 — FLOP/s;
(b) the bare AtLSTM (demo architecture, random weights: throughput does not depend on the weights) in fp32 and in
    bf16 autocast, windows/s for several batch sizes, and as a fraction of the matching GEMM peak (analytic FLOPs
    of :meth:`AtLSTMRegressor.forward_flops`);
(c) the bf16 - fp32 difference of the predictions on the same inputs (max |d| and RMSE, model output units);
(d) the paper-scale estimate: 1.25e11 pixel-days (all land, 0.05 deg, 1982-2021) / best rate = GPU-hours.

Every rate is the median of ``--repeats`` timed passes after warm-up, with ``torch.cuda.synchronize()`` around
each pass. Without CUDA it exits with a message (the CPU rows are measured by ``make bench``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

PAPER_PIXEL_DAYS = 1.25e11  #: land pixels of the 0.05 deg grid x days 1982-2021 (see stage 04's estimate)
HERE = Path(__file__).resolve().parent


def _load_lstm_module():
    path = HERE.parent / "src" / "glass_sm" / "models" / "lstm.py"
    spec = importlib.util.spec_from_file_location("glass_sm_models_lstm", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _timed(fn, repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``fn()`` over ``repeats`` synchronised passes."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gemm_peak(dtype: torch.dtype, tf32: bool, n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of an ``n^3`` matrix product (2 n^3 FLOPs)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    s = _timed(lambda: a @ b, repeats)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n ** 3 / s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_bench.json")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--window", type=int, default=30)
    ap.add_argument("--features", type=int, default=9)
    ap.add_argument("--batches", type=int, nargs="+", default=[4096, 16384, 65536, 262144])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("device_bench: no CUDA device; the CPU rows are measured by `make bench`")
        return 0
    lstm = _load_lstm_module()
    torch.manual_seed(0)
    model = lstm.AtLSTMRegressor(args.features, args.window, hidden_size=args.hidden, num_layers=args.layers,
                                 dropout=0.0).cuda().eval()
    flops = model.forward_flops(args.window, args.features)
    info = {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0),
        "device_capability": list(torch.cuda.get_device_capability(0)),
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "python": platform.python_version(), "host_cpu": platform.processor() or platform.machine(),
        "model": {"class": "AtLSTMRegressor", "hidden_size": args.hidden, "num_layers": args.layers,
                  "window": args.window, "n_features": args.features, "flops_per_window": flops,
                  "weights": "random (throughput does not depend on them)"},
    }
    rows = []

    def row(key, quantity, value, unit, note=""):
        rows.append({"key": key, "quantity": quantity, "value": value, "unit": unit, "note": note})
        print(f"{key:>6}  {quantity:<52} {value:>14,.4g} {unit:<14} {note}", flush=True)

    peaks = {"fp32": gemm_peak(torch.float32, False), "tf32": gemm_peak(torch.float32, True),
             "bf16": gemm_peak(torch.bfloat16, False)}
    for k, v in peaks.items():
        row("a", f"GEMM 8192^3 {k}", v / 1e12, "TFLOP/s")

    best = {}
    with torch.inference_mode():
        for prec in ("fp32", "bf16"):
            for bs in args.batches:
                x = torch.randn(bs, args.window, args.features, device="cuda")
                if prec == "fp32":
                    fn = lambda x=x: model(x)  # noqa: E731
                else:
                    def fn(x=x):
                        with torch.autocast("cuda", dtype=torch.bfloat16):
                            return model(x)
                s = _timed(fn, args.repeats)
                rate = bs / s
                row("b", f"AtLSTM {prec}, batch {bs}", rate, "windows/s",
                    f"{rate * flops / 1e12:.2f} TFLOP/s = {rate * flops / peaks[prec]:.3f} of {prec} GEMM")
                best[prec] = max(best.get(prec, 0.0), rate)
        x = torch.randn(65536, args.window, args.features, device="cuda")
        y32 = model(x).float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y16 = model(x).float()
        d = (y16 - y32)
        row("c", "bf16 - fp32 prediction, max |d|", d.abs().max().item(), "model units",
            "random weights: a bound on the arithmetic, not the product's difference")
        row("c", "bf16 - fp32 prediction, RMSE", d.pow(2).mean().sqrt().item(), "model units")
    for prec, rate in best.items():
        row("d", f"paper scale ({PAPER_PIXEL_DAYS:.3g} pixel-days), {prec}", PAPER_PIXEL_DAYS / rate / 3600,
            "GPU-hours", "bare model only: input I/O and window assembly not included")
    Path(args.out).write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
