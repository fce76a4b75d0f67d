"""Attention speed: the from-scratch path vs PyTorch's fused SDPA, across sequence lengths and batch sizes.

One command (from the repository root):

    python benchmarks/attention_speed.py

writes ``benchmarks/results/attention_speed.json`` and prints a table. It times
``course_lib.attention.scaled_dot_product_attention`` (materialises the (B, H, T, T)
score and weight matrices) and ``course_lib.attention.attend``
(``F.scaled_dot_product_attention``, fused kernels) on every available device
(CPU, and CUDA when present), forward and forward+backward, and records peak memory.

Options: ``--devices cpu cuda``, ``--lengths 128 256 ...``, ``--batch-sizes 1 8``,
``--heads 4``, ``--head-dim 64``, ``--dtype float32|bfloat16|float16``, ``--repeats 5``,
``--max-gb 1.5`` (skip from-scratch configs whose score matrices would exceed it),
``--out PATH``. Quick check: ``--lengths 64 128 --batch-sizes 1 --repeats 2``.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above the inputs. On Linux
CPUs, after all timings, a child process started with ``MALLOC_MMAP_THRESHOLD_=65536``
(glibc then serves every allocation over 64 KiB by its own ``mmap``, so freed tensors leave
the resident set at once) reads its peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``)
above the resident set before one call; kernels' internal buffers count too. ``null`` where
this is unavailable. Timings are medians after one warm-up call, with the normal allocator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_lib.attention import attend, scaled_dot_product_attention  # noqa: E402

PATHS = {"scratch": lambda q, k, v: scaled_dot_product_attention(q, k, v)[0],
         "sdpa": lambda q, k, v: attend(q, k, v)}


def _proc_kib(field: str) -> int | None:
    try:
        match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(B: int, H: int, T: int, d: int, device: torch.device, dtype: torch.dtype, backward: bool):
    g = torch.Generator(device=device).manual_seed(0)
    return [torch.randn(B, H, T, d, generator=g, device=device, dtype=dtype, requires_grad=backward)
            for _ in range(3)]


def _caller(path: str, qkv: list[torch.Tensor], backward: bool):
    fn = PATHS[path]

    def call() -> None:
        out = fn(*qkv)
        if backward:
            out.sum().backward()
            for t in qkv:
                t.grad = None
    return call


def measure_time(path: str, B: int, H: int, T: int, d: int, device: torch.device, dtype: torch.dtype,
                 repeats: int = 5, backward: bool = False) -> dict:
    """Median seconds per call (after a warm-up), plus CUDA peak extra memory in MiB."""
    call = _caller(path, _inputs(B, H, T, d, device, dtype, backward), backward)
    call()                                                         # warm-up (kernel selection, allocator)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak_mib = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        _sync(device)
        peak_mib = round((torch.cuda.max_memory_allocated(device) - base) / 2**20, 2)
    return {"seconds": statistics.median(times), "peak_mib": peak_mib}


def _cpu_peaks_in_child(rows: list[dict], dtype: torch.dtype) -> list[float | None]:
    """Measure CPU peaks in a fresh process whose allocator returns big frees to the OS at once."""
    if not Path("/proc/self/clear_refs").exists():
        return [None] * len(rows)
    jobs = [[r["path"], r["B"], r["H"], r["T"], r["d"], r["pass"] == "fwd+bwd"] for r in rows]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run([sys.executable, __file__, "--memory-pass", str(dtype).replace("torch.", "")],
                          input=json.dumps(jobs), capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(f"CPU memory pass failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return [None] * len(rows)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_cpu_peak(path: str, B: int, H: int, T: int, d: int, dtype: torch.dtype, backward: bool) -> float | None:
    """Peak extra resident memory (MiB) of one call on CPU; see the module docstring."""
    qkv = _inputs(B, H, T, d, torch.device("cpu"), dtype, backward)
    call = _caller(path, qkv, backward)
    call()                                                         # warm-up: lazy initialisation is not the cost
    if not _reset_cpu_peak():
        return None
    before = _proc_kib("VmRSS")
    call()
    after = _proc_kib("VmHWM")
    if before is None or after is None:
        return None
    return round(max(0, after - before) / 1024, 2)


def run(devices: list[str], lengths: list[int], batch_sizes: list[int], heads: int, head_dim: int,
        dtype: torch.dtype, repeats: int, max_gb: float) -> list[dict]:
    rows = []
    for dev_name in devices:
        device = torch.device(dev_name)
        for B in batch_sizes:
            for T in lengths:
                score_gb = 3 * B * heads * T * T * torch.finfo(dtype).bits / 8 / 1e9  # scores, weights, grad
                for path in PATHS:
                    for backward in (False, True):
                        row = {"device": dev_name, "path": path, "pass": "fwd+bwd" if backward else "fwd",
                               "B": B, "H": heads, "T": T, "d": head_dim, "dtype": str(dtype).replace("torch.", "")}
                        if path == "scratch" and score_gb > max_gb:
                            row.update(seconds=None, peak_mib=None, skipped=f"needs ~{score_gb:.1f} GB > --max-gb")
                        else:
                            row.update(measure_time(path, B, heads, T, head_dim, device, dtype, repeats, backward))
                        rows.append(row)
                        print(_fmt(row), flush=True)
    cpu_rows = [r for r in rows if r["device"] == "cpu" and r["seconds"] is not None]
    if cpu_rows:                                                   # second pass: CPU peak memory
        print("CPU peak-memory pass (child process) ...", flush=True)
        for r, peak in zip(cpu_rows, _cpu_peaks_in_child(cpu_rows, dtype)):
            r["peak_mib"] = peak
    return rows


def _fmt(r: dict) -> str:
    t = "skipped" if r["seconds"] is None else f"{r['seconds'] * 1e3:10.2f} ms"
    m = "-" if r["peak_mib"] is None else f"{r['peak_mib']:9.1f} MiB"
    return f"{r['device']:5s} {r['path']:8s} {r['pass']:8s} B={r['B']:<3d} T={r['T']:<6d} {t:>13s} {m:>13s}"


def _memory_pass(dtype_name: str) -> int:
    """Child process: read [[path, B, H, T, d, backward], ...] on stdin, print peaks (MiB) as JSON."""
    dtype = getattr(torch, dtype_name)
    jobs = json.loads(sys.stdin.read())
    print(json.dumps([measure_cpu_peak(p, B, H, T, d, dtype, bwd) for p, B, H, T, d, bwd in jobs]))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--memory-pass"]:
        return _memory_pass(argv[1])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda if available")
    p.add_argument("--lengths", nargs="+", type=int, default=[128, 256, 512, 1024, 2048])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-gb", type=float, default=1.5)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "attention_speed.json"))
    args = p.parse_args(argv)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    dtype = getattr(torch, args.dtype)
    t0 = time.perf_counter()
    rows = run(devices, args.lengths, args.batch_sizes, args.heads, args.head_dim, dtype, args.repeats, args.max_gb)
    print("\n".join(_fmt(r) for r in rows))
    result = {
        "benchmark": "attention_speed",
        "command": " ".join(["python", "benchmarks/attention_speed.py", *argv]),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "wall_s": round(time.perf_counter() - t0, 1), "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
