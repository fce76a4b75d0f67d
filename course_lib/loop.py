"""The one training loop of the course: :func:`fit`.

A chapter supplies a :class:`~course_lib.task.Task` and a :class:`~course_lib.task.TrainConfig`;
:func:`fit` owns the rest: device, mixed precision that fits it (bf16 autocast, or fp16 autocast with a
gradient scaler on a GPU without bf16; :func:`course_lib.runtime.pick_precision`), the learning-rate
schedule (:mod:`course_lib.schedules`), gradient clipping, the history, a ``tqdm.auto`` progress bar, a
clear error on a NaN loss, atomic checkpoints and exact resume, optional ``torch.compile``, and data
parallelism under ``torchrun`` (:mod:`course_lib.distributed`).

One hook, :meth:`Task.train_step`, is the optimisation step. Its default is
loss -> backward -> sync -> clip -> step; a task that owns several optimizers (the
GAN's D and G) overrides it and gets the same tools (:class:`~course_lib.step_tools.StepTools`).

Batches are a pure function of the step number, which is what makes resume exact
and N processes equal to one process with the same global batch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoints, distributed, runtime, test_run
from .checkpoints import writable_folder
from .schedules import warmup_cosine, warmup_cosine_timed, warmup_stable_decay_timed
from .step_tools import StepTools, move_to
from .task import RunOptions, Task, TrainConfig, TrainResult

__all__ = ["fit"]


def _owns_step(task: Task) -> bool:
    return type(task).train_step is not Task.train_step


def _step_record(done: int, lr: float, scalars: Mapping[str, Any], due: bool, stop: bool, elapsed: float,
                 device: torch.device) -> tuple[dict[str, float], bool, bool]:
    """(history record, checkpoint now?, stop now?) for a finished step, agreed by every process.

    Logged values are means over the processes; so are the two flags, which every process must
    agree on: rank 0's clock decides a periodic checkpoint, a signal to any process stops them all.
    So is the elapsed training time (``record["time_s"]``), which a time budget's schedule reads:
    every process then sets the same learning rate and stops at the same step.
    A non-finite loss stops training with the step and the likely cause.
    """
    names = list(scalars)
    values = distributed.mean_over_processes(torch.tensor(
        [float(scalars[k]) for k in names] + [elapsed, float(due), float(stop)], dtype=torch.float64),
        device).tolist()
    stop_now, save_now, elapsed = values.pop() > 0, values.pop() > 0, values.pop()
    record = {"step": done, **dict(zip(names, values)), "lr": lr, "time_s": round(elapsed, 3)}
    if not math.isfinite(record["loss"]):
        raise FloatingPointError(f"loss is {record['loss']} at step {done - 1}: training diverged. Lower the "
                                 f"learning rate (now {lr:g}), keep grad_clip on, and check the inputs for NaN/inf.")
    return record, save_now, stop_now


def _checkpoint(step: int, model: nn.Module, optimizers: Mapping[str, torch.optim.Optimizer],
                schedulers: Mapping[str, Any], ranks: list[dict[str, Any]], history: dict[str, list],
                identity: dict[str, Any], finished: bool, elapsed: float) -> dict[str, Any]:
    """Everything an exact resume needs, with the run's fingerprint and provenance.

    ``finished``: the budget is spent (all steps, or a time budget's seconds); ``elapsed``: the
    training seconds so far, from which a time-budgeted run resumes its schedule.
    """
    return {"step": step, "finished": finished, "elapsed_s": elapsed, "model": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
            "ranks": ranks, "history": history, "config": identity,
            "provenance": checkpoints.make_provenance(identity, history["eval"][-1] if history["eval"] else {})}


def _restore(status: checkpoints.CheckpointStatus, model: nn.Module, task: Task,
             optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
             rank: int) -> tuple[dict[str, list], int, float]:
    """Load a resumable checkpoint into the run's objects; return (history, step to continue from, seconds so far)."""
    state = status.state
    model.load_state_dict(state["model"])
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    for name, sch in schedulers.items():
        sch.load_state_dict(state["schedulers"][name])
    per_rank = state["ranks"][rank] if rank < len(state["ranks"]) else state["ranks"][0]
    task.load_state_dict(per_rank["task"])
    runtime.set_rng_state(per_rank["rng"])
    return state["history"], status.step, float(state.get("elapsed_s", 0.0))


def _parallel(model: nn.Module, task: Task, device: torch.device, world: int, backend: str | None) -> nn.Module:
    """The module the step runs: DDP-wrapped for a default step under torchrun, compiled if asked."""
    if world > 1:
        if device.type == "cuda":                        # BatchNorm statistics over the global batch
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if _owns_step(task):                             # the task averages its own gradients
            distributed.broadcast_weights(model)
        else:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model, backend=backend) if backend else model


class _StopRequests:
    """Ctrl-C (SIGINT) or SIGTERM while training: finish the step, checkpoint, then stop. A second Ctrl-C stops at once.

    Handlers are installed only in the main thread (Python delivers signals there) and restored afterwards.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt("interrupted twice: stopped at once, without a checkpoint of this step")
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def fit(model: nn.Module, task: Task, cfg: TrainConfig, *, device: torch.device | str | None = None,
        run: RunOptions = RunOptions()) -> TrainResult:
    """Train ``model`` on ``task`` for ``cfg.steps`` steps (or ``cfg.seconds``); see the module docstring.

    ``device`` (None: the best available, or this process's GPU under ``torchrun``) and ``run``
    (:class:`RunOptions`: output folder, resume, progress bar, time cap, compile, checkpoint interval,
    callbacks) say how; ``cfg`` says what is trained. Inside the test command, a run without a checkpoint
    folder or callbacks is trained once per test run (:mod:`course_lib.test_run`): the same call later in
    that run gets the same weights, task state, history and result back.
    """
    device, rank, world = distributed.setup(device)
    runtime.configure_device(device)
    precision = runtime.pick_precision(device)          # $COURSE_PRECISION, else what fits the device
    # each process draws its own training randomness (augmentations, masks, dropout); the weights are
    # made before fit and synchronised from rank 0, and rank 0 alone is exactly a single process
    runtime.seed_everything(cfg.seed + rank, cfg.deterministic)
    backend = runtime.compile_backend(run.compile_backend) if run.compile_backend else None
    is_main = rank == 0
    out = Path(run.out_dir) if run.out_dir is not None else None
    if out is not None and is_main and not writable_folder(out):     # before any work, not at the first save
        raise OSError(errno.EACCES, f"cannot write checkpoints to {out} (read-only, or not a folder); choose "
                                    f"another output folder", str(out))
    model.to(device)
    identity = checkpoints.fingerprint(model, task, cfg)
    # a test run trains a checkpoint-less run once: the Chinese notebook replays what the English one trained
    replay = (test_run.fit_key(model, task, cfg, device, precision, run)
              if test_run.in_test_run() and out is None and world == 1 and not run.resume
              and run.on_eval is None and run.on_step is None else None)
    if replay is not None and (stored := test_run.replayed_fit(replay, model, task, device)) is not None:
        return TrainResult(**stored)
    optimizers = task.optimizers(model, cfg, device)
    clock = {"elapsed": 0.0}        # training seconds, agreed by every process after each step

    def lr_factor(s: int) -> float:
        if cfg.seconds is None:
            return warmup_cosine(s, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
        if cfg.time_schedule == "cosine":
            return warmup_cosine_timed(s, cfg.steps, clock["elapsed"], cfg.seconds, cfg.warmup_steps,
                                       cfg.min_lr_ratio)
        return warmup_stable_decay_timed(s, cfg.steps, clock["elapsed"], cfg.seconds, cfg.warmup_steps,
                                         cfg.min_lr_ratio, cfg.warmup_frac, cfg.decay_frac)

    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, lr_factor) for name, opt in optimizers.items()}
    history: dict[str, list[dict[str, float]]] = {"train": [], "eval": []}
    start, resumed_scaler = 0, None

    if run.resume and out is not None:
        status = checkpoints.inspect(out, identity, cfg.steps, map_location=device)
        if status.kind != "missing" and not status.resumable:
            raise ValueError(f"cannot resume from {status.path}: {status.reason}. Use a fresh --out folder, "
                             f"or the same settings that made this checkpoint.")
        if status.resumable:
            history, start, clock["elapsed"] = _restore(status, model, task, optimizers, schedulers, rank)
            resumed_scaler = status.state.get("scaler")
        if is_main:
            print(f"resuming from {status.path} at step {start}" if status.resumable
                  else f"nothing to resume: no checkpoint in {out}; training from step 0", file=sys.stderr)

    train_model = _parallel(model, task, device, world, backend)
    tools = StepTools(device, optimizers, cfg.grad_clip, average_gradients=world > 1 and _owns_step(task),
                      precision=precision, scaler=runtime.grad_scaler(device, precision))
    if tools.scaler is not None and resumed_scaler is not None:
        tools.scaler.load_state_dict(resumed_scaler)
    t0, before = time.perf_counter(), clock["elapsed"]     # a resumed run's clock continues from its checkpoint

    def elapsed() -> float:
        return before + time.perf_counter() - t0

    def evaluate(step: int) -> dict[str, float]:
        if not is_main:
            return {}
        model.eval()
        with torch.no_grad(), runtime.autocast(device, precision):
            metrics = {k: float(v) for k, v in task.evaluate(model, step).items()}
        model.train()
        history["eval"].append({"step": step, "time_s": round(elapsed(), 3), **metrics})
        if run.on_eval is not None:
            run.on_eval(step, metrics)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "history.json").write_text(json.dumps(history))
        return metrics

    def save(step: int, finished: bool) -> Path | None:
        ranks = distributed.gather_objects({"task": task.state_dict(), "rng": runtime.rng_state()})
        if not is_main or out is None:
            return None
        state = _checkpoint(step, model, optimizers, schedulers, ranks, history, identity, finished, clock["elapsed"])
        if tools.scaler is not None:
            state["scaler"] = tools.scaler.state_dict()
        return checkpoints.save_checkpoint(out / checkpoints.CHECKPOINT_NAME, state)

    from tqdm.auto import tqdm                           # $TQDM_DISABLE still turns the bar off
    timed = cfg.seconds is not None                      # a time budget: the bar counts steps without a total
    bar = tqdm(total=None if timed else cfg.steps, initial=start, desc=run.desc or "train", dynamic_ncols=True,
               leave=True,
               **({} if run.progress and is_main else {"disable": True}))
    model.train()
    items, done, finished, stopped_early, last_save = 0, start, False, False, time.perf_counter()
    sharing = device.type == "cpu"                       # share the cores with other course runs (runtime.cpu_budget)
    threads_checked = time.perf_counter()
    try:
        with _StopRequests() as stops, runtime.training_slot() if sharing else contextlib.nullcontext():
            if sharing:
                runtime.configure_threads()
            for step in range(start, cfg.steps):
                if sharing and time.perf_counter() - threads_checked > 2.0:
                    runtime.configure_threads()             # another run started or stopped: take a fair share
                    threads_checked = time.perf_counter()
                if timed and clock["elapsed"] >= cfg.seconds:     # resumed after the budget was spent
                    break
                batch = move_to(distributed.shard_batch(task.batch(step), rank, world), device)
                items += task.items(batch) * world
                lr = next(iter(optimizers.values())).param_groups[0]["lr"]
                scalars = task.train_step(train_model, batch, tools)
                done = step + 1
                by_steps = bool(cfg.checkpoint_every) and done % cfg.checkpoint_every == 0
                every = run.checkpoint_seconds
                by_time = every is not None and time.perf_counter() - last_save >= every
                due = out is not None and is_main and (by_steps or by_time)
                record, save_now, stop_now = _step_record(done, lr, scalars, due, stops.signal is not None,
                                                          elapsed(), device)
                clock["elapsed"] = record["time_s"]
                for sch in schedulers.values():          # the next step's rate (a time budget reads the clock)
                    sch.step()
                finished = done == cfg.steps or (timed and clock["elapsed"] >= cfg.seconds)
                history["train"].append(record)
                bar.update(1)
                if done % 10 == 1 or finished:
                    bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                if run.on_step is not None:
                    run.on_step(done)
                if cfg.eval_every and done % cfg.eval_every == 0 and not finished:
                    evaluate(done)
                if (save_now or stop_now) and not finished:
                    save(done, finished=False)
                    last_save = time.perf_counter()
                if stop_now and not finished:
                    where = f"checkpoint saved in {out}: resume it (--resume)" if out else "no checkpoint folder"
                    raise KeyboardInterrupt(f"stopped by {signal.Signals(stops.signal).name} after step {done} "
                                            f"of {cfg.steps}; {where}")
                if finished:
                    break
                if run.max_seconds is not None and time.perf_counter() - t0 > run.max_seconds:
                    stopped_early = True
                    break
            else:
                finished = True
        wall = time.perf_counter() - t0
        finished = finished or (timed and clock["elapsed"] >= cfg.seconds)
        final = distributed.share_from_rank0(evaluate(done))   # every rank returns rank 0's metrics
        path = save(done, finished=finished)
    finally:
        bar.close()
    result = TrainResult(history=history, final=final, steps=done, wall_s=wall,
                         items_per_s=items / wall if wall > 0 else 0.0, stopped_early=stopped_early,
                         checkpoint=path, precision=precision)
    if replay is not None:
        test_run.keep_fit(replay, model, task, {k: v for k, v in vars(result).items() if k != "checkpoint"})
    return result
