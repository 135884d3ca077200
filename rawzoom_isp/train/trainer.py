"""The training loop: any pair source, L1 / CoBi / contextual loss, Adam with the original's
decaying learning rate lr * decay^(step / decay_steps), atomic checkpoints, exact resume, metrics
as JSONL and CSV, tqdm progress, DistributedDataParallel under torchrun; optionally a held-out
loss on fixed fresh pairs, and a stop once it has flattened.

Samples are a deterministic stream: global position g = (step * world + rank) * batch + j takes pair
perm_epoch[g mod n] of epoch g div n (perm seeded by the data seed), so an interrupted run resumed
from its last checkpoint continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import time
from collections.abc import Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..atomic import atomic_path
from ..data.registry import pair_source
from ..errors import CheckpointError, ConfigError, OutputExistsError, TrainingError
from ..isp.functional import WB_GAMMA, apply_white_balance
from ..loss import CoBiLoss
from ..loss.options import CONTEXTUAL
from ..models.checkpoint import build_model, load_state, read_checkpoint, save_checkpoint
from ..models.registry import told_noise
from ..shift_tolerant import shift_tolerant_crop
from ..synth.unprocess import render_linear
from .config import load_config, model_config

log = logging.getLogger(__name__)


def build_dataset(data: dict, *, files=None, patch="config"):
    """The pair source a [data] section describes (``rz.data.registry``; ``files``/``patch`` override it)."""
    common = dict(scale=data["scale"], patch=data["patch"] if patch == "config" else patch, augment=data["augment"],
                  input_format=data["input"], seed=data["seed"], target_margin=data["target_margin"],
                  rgb_render=data["rgb_render"], jpeg_quality=data["jpeg_quality"])
    source = files if files is not None else (data["files"] or data["root"])
    return pair_source(data["source"]).from_config(data, source, **common)


def build_loss(loss: dict, scale: int):
    """(output, target) -> scalar loss for the [loss] section."""
    if loss["type"] == "l1":
        tolerance = loss["tolerance"]

        def l1(output, target):
            if tolerance:
                target, _ = shift_tolerant_crop(output, target, tolerance)
            return F.l1_loss(output, target)

        return l1
    options = {k: loss[k] for k in ("preset", "patch_size", "patch_stride", "patch_padding", "rgb_weight", "vgg_weight",
                                    "spatial_weight", "sample", "backend", "h", "eps", "kind")}
    if loss["type"] == "contextual":
        options.update(CONTEXTUAL)
    return CoBiLoss(scale=scale, tolerance=loss["tolerance"], **options)


def remove_white_balance(target: torch.Tensor, gains: torch.Tensor, balanced) -> torch.Tensor:
    """target / gains^(1/2.2) for the images whose target includes the camera white balance (the
    network learns un-balanced output; WB is applied after it, in gamma space, as the paper does)."""
    flags = torch.as_tensor(balanced, dtype=torch.bool).reshape(-1, 1, 1, 1)
    divided = apply_white_balance(target, 1.0 / gains, gamma=WB_GAMMA)
    return torch.where(flags, divided, target)


def restore_white_balance(target: torch.Tensor, gains: torch.Tensor, balanced) -> torch.Tensor:
    """target x gains^(1/2.2) for the images whose target lacks the camera white balance (the inverse
    of ``remove_white_balance``): every target white balanced."""
    flags = torch.as_tensor(balanced, dtype=torch.bool).reshape(-1, 1, 1, 1)
    return torch.where(flags, target, apply_white_balance(target, gains, gamma=WB_GAMMA))


def white_balanced_output(model: torch.nn.Module) -> bool:
    """Whether the network learns output that includes the camera white balance: an RGB-input
    network's does, since its input (a camera render) does and nothing in it tells the gains; a raw
    input is not balanced, and the raw network's output is linear camera RGB or un-balanced display
    RGB, balanced after it. Checkpoints record it ("white_balanced_output"; absent: False, as before)."""
    return model.config["in_channels"] == 3


def _render_of(batch: dict) -> str:
    renders = set(batch.get("render", []))
    if len(renders) != 1:
        raise ConfigError("[model] output = 'linear' needs pairs whose target render is known (emulated or "
                          "synthetic sources); use output = 'display' for SR-RAW")
    return renders.pop()


def _distributed() -> tuple[int, int, torch.device | None]:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


def _batch(dataset, step: int, batch_size: int, rank: int, world: int, seed: int) -> dict:
    n = len(dataset)
    samples = []
    for j in range(batch_size):
        position = (step * world + rank) * batch_size + j
        epoch, offset = divmod(position, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        samples.append(dataset.sample(int(order[offset]), epoch))
    return torch.utils.data.default_collate(samples)


HELD_OUT_EPOCH = 2**62  # the sampler's epoch of held-out pairs: no training step reaches it


def held_out_batches(dataset, batches: int, batch_size: int) -> list[dict]:
    """``batches`` fixed batches of fresh pairs: windows, flips and noise of an epoch training never
    draws (the same source files; not a held-out camera)."""
    n = len(dataset)
    samples = [dataset.sample(i % n, HELD_OUT_EPOCH + i // n) for i in range(batches * batch_size)]
    return [torch.utils.data.default_collate(samples[k:k + batch_size]) for k in range(0, len(samples), batch_size)]


def flattened(history: list[float], patience: int, min_delta: float) -> bool:
    """Whether a held-out loss has flattened: none of its last ``patience`` values beat the best before
    them by more than ``min_delta`` (relative). Never with ``patience`` 0."""
    if patience <= 0 or len(history) <= patience:
        return False
    return min(history[-patience:]) > min(history[:-patience]) * (1 - min_delta)


def read_metrics(run: str) -> list[dict]:
    """The rows of a run folder's metrics.jsonl ([] when there is none yet)."""
    path = os.path.join(run, "metrics.jsonl")
    return _MetricsLog._read(path) if os.path.exists(path) else []


def training_seconds(run: str) -> float | None:
    """Training time of a run folder, every segment of a resumed run included (None before any row):
    ``seconds`` counts on across resumes; where it starts again from zero (logs of runs resumed before
    it did), each segment's last value is added."""
    rows = read_metrics(run)
    return sum(training_time(rows)) if rows else None


def training_time(rows: list[dict]) -> list[float]:
    """The seconds of each segment of a metrics log (a segment ends where ``seconds`` starts again)."""
    seconds = [float(row["seconds"]) for row in rows]
    return [a for a, b in zip(seconds, seconds[1:]) if b < a] + seconds[-1:]


class _MetricsLog:
    """metrics.jsonl and metrics.csv in the run folder; on resume, rows past the checkpoint (logged
    by the interrupted run) are dropped so that each step appears once. ``seconds`` counts training
    time since the run began, across resumes (``elapsed``: what the kept rows had counted)."""

    FIELDS = ("step", "loss", "lr", "seconds", "val_loss")

    def __init__(self, out: str, resume_step: int | None):
        self.jsonl, self.csv = os.path.join(out, "metrics.jsonl"), os.path.join(out, "metrics.csv")
        rows = []
        if resume_step is not None and os.path.lexists(self.jsonl):
            rows = [r for r in self._read(self.jsonl) if r["step"] <= resume_step]
        self.elapsed = sum(training_time(rows)) if rows else 0.0
        # Rewritten whole, atomically: a failed or killed resume leaves the old rows as they were.
        with atomic_path(self.jsonl) as tmp, open(tmp, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        with atomic_path(self.csv) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.FIELDS)
            writer.writerows([r.get(k, "") for k in self.FIELDS] for r in rows)

    @staticmethod
    def _read(path: str) -> list[dict]:
        """The rows of a metrics.jsonl; a last line cut short (the run was killed while writing it)
        is dropped, any other damage names the file."""
        if not os.path.isfile(path):
            raise TrainingError(f"{path}: not a regular file; remove it to resume")
        with open(path) as fh:
            lines = [line for line in fh.read().split("\n") if line.strip()]
        rows = []
        for number, line in enumerate(lines):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines) - 1:
                    break
                raise TrainingError(f"{path}: line {number + 1} is not JSON; remove or repair it to resume") from None
            row = rows[-1]
            if not (isinstance(row, dict) and type(row.get("step")) is int
                    and all(type(row.get(k)) in (int, float) and math.isfinite(row[k]) for k in ("loss", "seconds"))):
                raise TrainingError(f"{path}: line {number + 1} is not a metrics row (step, loss, seconds); remove or "
                                    "repair it to resume")
        return rows

    def write(self, row: dict) -> None:
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        with open(self.csv, "a", newline="") as fh:
            csv.writer(fh).writerow([row.get(k, "") for k in self.FIELDS])


RUN_FILES = ("last.pt", "model.pt", "metrics.jsonl", "metrics.csv")


def resume_config(run: str) -> dict:
    """The training config a run folder's ``last.pt`` was written with (what ``--resume RUN`` takes)."""
    last = os.path.join(run, "last.pt")
    if not os.path.isfile(last):
        raise TrainingError(f"{run}: no last.pt to resume from (a run folder of `rawzoom train`?)")
    config = read_checkpoint(last).get("train_config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{last}: holds no training config to resume with")
    return config


def train(config, *, resume: bool = False, init: str | None = None, progress: bool = True,
          overrides: list[str] = (), force: bool = False) -> str:
    """Train as ``config`` (dict or TOML path) says; returns the final checkpoint's path.
    ``resume``: continue from ``<out>/last.pt`` (which must exist); ``init``: start from a checkpoint's
    weights (fine-tune), its network options under the config's [model]; ``overrides``:
    ``section.key=value`` settings over the config. A run folder that holds a run already is refused
    unless resumed, or replaced with ``force``. One process at a time trains into a run folder: a
    second one, while the first runs, fails at once (``run_folder_held``)."""
    base_model = None
    if init:
        base_model = {k: v for k, v in read_checkpoint(init)["config"].items()
                      if k not in ("scale", "in_channels", "output")}
    cfg = load_config(config, overrides, base_model=base_model)
    rank, world, dist_device = _distributed()
    device = dist_device or torch.device(
        cfg["train"]["device"] if cfg["train"]["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    out = cfg["train"]["out"]
    if resume and not os.path.lexists(os.path.join(out, "last.pt")):
        raise TrainingError(f"{out}: no last.pt to resume from; train without --resume to start the run")
    os.makedirs(out, exist_ok=True)
    with run_folder_held(out) if rank == 0 else contextlib.nullcontext():
        existing = [name for name in RUN_FILES if os.path.lexists(os.path.join(out, name))]
        if existing and not resume:
            if not force:
                raise OutputExistsError(f"{out}: holds a training run already ({', '.join(existing)}); --resume "
                                        "to continue it, --force to start it over, or another [train] out")
            if rank == 0:
                for name in existing:
                    os.remove(os.path.join(out, name))
        return _train_run(cfg, out, resume=resume, init=init, progress=progress, rank=rank, world=world,
                          device=device)


@contextlib.contextmanager
def run_folder_held(out: str) -> Iterator[None]:
    """Hold the run folder ``out`` for this process while it trains: an advisory lock (flock) on the
    folder, released when the block ends or the process dies. A second holder fails at once with a
    TrainingError rather than interleave checkpoints and metrics with the first. Where the system or
    the file system has no flock (Windows, some network mounts), nothing is held (logged)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    handle = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingError(f"{out}: another process is training into this run folder now; wait for it to "
                                "end (it resumes or finishes the run), or choose another [train] out") from None
        except OSError as exc:
            log.warning("%s: cannot lock the run folder (%s); not guarded against a second trainer", out, exc)
        yield
    finally:
        os.close(handle)


def _train_run(cfg: dict, out: str, *, resume: bool, init: str | None, progress: bool, rank: int, world: int,
               device: torch.device) -> str:
    """The training itself, in a run folder already held and checked (``train``)."""
    data, optim = cfg["data"], cfg["optim"]
    dataset = build_dataset(data)
    torch.manual_seed(cfg["train"]["seed"])
    if cfg["train"]["threads"]:
        torch.set_num_threads(cfg["train"]["threads"])
    model = build_model(model_config(cfg))
    if init:
        initialise(model, init)
    model.to(device, memory_format=torch.channels_last)
    frozen = tuple(cfg["train"]["freeze"])
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not name.startswith(frozen) if frozen else True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=optim["lr"])
    step, last, final = 0, os.path.join(out, "last.pt"), os.path.join(out, "model.pt")
    described = {"train_config": cfg, "white_balanced_output": white_balanced_output(model)}  # in every checkpoint
    run = cfg["train"]
    history = []  # the held-out loss so far
    if resume:
        step = _resume(model, optimizer, last)
        history = [r["val_loss"] for r in read_metrics(out) if "val_loss" in r and r["step"] <= step]
        if step >= optim["steps"] or flattened(history, run["patience"], run["min_delta"]):
            if os.path.isfile(final):
                return final  # finished (or stopped flat) earlier: nothing to do
            if step > optim["steps"]:
                raise TrainingError(f"{last}: at step {step}, beyond [optim] steps {optim['steps']}; raise the steps "
                                    "to go on")
    loss_fn = build_loss(cfg["loss"], data["scale"])
    noise_input = told_noise(model)
    if noise_input and "noise" not in dataset.sample(0, 0):
        raise ConfigError(f"[model] noise_input: the network is told the capture's noise, and {data['source']} pairs "
                          "carry none here (emulated pairs know it with noise_match = true)")
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn.to(device)
    network = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    held_out = held_out_batches(dataset, run["val_batches"], optim["batch_size"]) if run["val_every"] else []
    metrics = _MetricsLog(out, step if resume else None) if rank == 0 else None
    from tqdm.auto import tqdm

    bar = tqdm(total=optim["steps"], initial=step, desc="train", disable=not progress or rank != 0)
    started = time.time() - (metrics.elapsed if metrics else 0.0)
    while step < optim["steps"]:
        lr = lr_at(step, optim["lr"], optim["decay"], optim["decay_steps"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _batch(dataset, step, optim["batch_size"], rank, world, data["seed"])
        network.train()
        loss = batch_loss(network, loss_fn, batch, device, noise_input)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingError(f"{out}: the loss became {loss_value} at step {step}; lower [optim] lr and resume "
                                "from the last checkpoint")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        row = {"step": step, "loss": loss_value, "lr": lr, "seconds": round(time.time() - started, 3)}
        if run["val_every"] and (step % run["val_every"] == 0 or step == optim["steps"]):
            row["val_loss"] = held_out_loss(network, loss_fn, held_out, device, noise_input)
            history.append(row["val_loss"])
        stop = "val_loss" in row and flattened(history, run["patience"], run["min_delta"])
        if rank == 0:
            if "val_loss" in row or step % run["log_every"] == 0 or step == optim["steps"]:
                metrics.write(row)
                bar.set_postfix(loss=f"{loss_value:.4f}")
            if stop or step % run["checkpoint_every"] == 0 or step == optim["steps"]:
                save_checkpoint(last, model, optimizer=optimizer.state_dict(), step=step, **described)
        if stop:
            log.info("%s: the held-out loss flattened at step %d (best %.5f)", out, step, min(history))
            break
    bar.close()
    if rank == 0:
        save_checkpoint(final, model, step=step, **described)
    if world > 1:
        dist.barrier()
    return final


def batch_loss(network, loss_fn, batch: dict, device: torch.device, noise_input: bool) -> torch.Tensor:
    """The loss of the network's output for a batch of pairs, against its target: rendered to display
    RGB first for a network with linear output; for one with display output, against the target with
    the camera white balance for an RGB input (``white_balanced_output``), without it for a raw input
    (the paper's)."""
    gains = batch["wb_gains"].to(device)
    told = (batch["noise"].to(device),) if noise_input else ()
    output = network(batch["input"].to(device, memory_format=torch.channels_last), gains, *told)
    model = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
    if model.config["output"] == "linear":
        output = render_linear(output, gains, batch["cam_to_srgb"].to(device), _render_of(batch))
        target = batch["target"].to(device)
    else:
        balance = restore_white_balance if white_balanced_output(model) else remove_white_balance
        target = balance(batch["target"], batch["wb_gains"], batch["target_white_balanced"]).to(device)
    return loss_fn(output, target)


def held_out_loss(network, loss_fn, batches: list[dict], device: torch.device, noise_input: bool) -> float:
    """Mean loss over the held-out batches, in eval mode, with a fixed random state (a sampled loss
    such as CoBi's draws the same positions each time)."""
    network.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        total = sum(float(batch_loss(network, loss_fn, batch, device, noise_input)) for batch in batches)
    network.train()
    return total / len(batches)


def _resume(model: torch.nn.Module, optimizer: torch.optim.Optimizer, last: str) -> int:
    """Load a training checkpoint's network and optimizer; its step, checked."""
    checkpoint = read_checkpoint(last)
    if checkpoint["config"] != model.config:
        raise ConfigError(f"{last}: cannot resume, its network {checkpoint['config']} differs from the config's "
                          f"{model.config}")
    step = checkpoint.get("step")
    if type(step) is not int or not 0 <= step <= 10**9 or not isinstance(checkpoint.get("optimizer"), dict):
        raise CheckpointError(f"{last}: not a training checkpoint (its step is {str(step)[:40]}; it needs a step "
                              "count in [0, 1e9] and the optimizer)")
    stored = checkpoint.get("white_balanced_output", False)
    if stored != white_balanced_output(model):
        raise CheckpointError(f"{last}: trained towards targets {'with' if stored else 'without'} the camera white "
                              f"balance, and this version trains this network {'without' if stored else 'with'} it; "
                              "start the run again in a new folder")
    load_state(model, checkpoint["model"], last)
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise CheckpointError(f"{last}: its optimizer state does not fit the network ({str(exc)[:200]})") from None
    return step


def initialise(model: torch.nn.Module, path: str) -> None:
    """Start ``model`` from a checkpoint's weights: all of them for the same network (fine-tuning);
    for the same architecture and size with another zoom factor, extra layers or extra inputs, every
    tensor whose name and shape match, and a convolution that takes more input channels than the
    checkpoint's (a network now told the noise) with its weights for the first channels and zero for
    the rest (the output layer of another zoom factor, and layers the checkpoint lacks, keep their
    initialisation, which for PackedZoomNet leaves the checkpoint's output unchanged)."""
    checkpoint = read_checkpoint(path)
    theirs, ours = dict(checkpoint["config"]), dict(model.config)
    if theirs == ours:
        load_state(model, checkpoint["model"], path)
        return
    if any(theirs.get(key) != ours.get(key) for key in ("arch", "in_channels", "width", "blocks", "up_channels")):
        raise ConfigError(f"{path}: its network {theirs} differs from [model] {ours} beyond the zoom factor and "
                          "added layers")
    state = model.state_dict()
    shared = {}
    for name, tensor in checkpoint["model"].items():
        mine = state.get(name)
        if mine is None:
            continue
        if tensor.shape == mine.shape:
            shared[name] = tensor
        elif tensor.ndim == 4 and mine.ndim == 4 and tensor.shape[2:] == mine.shape[2:] \
                and tensor.shape[0] == mine.shape[0] and tensor.shape[1] < mine.shape[1]:
            widened = torch.zeros_like(mine)
            widened[:, :tensor.shape[1]] = tensor
            shared[name] = widened
    load_state(model, {**state, **shared}, path)
    log.info("initialised from %s: %d of %d tensors", path, len(shared), len(state))


def lr_at(step: int, lr: float, decay: float, decay_steps: int) -> float:
    """The original's schedule (TF exponential_decay, not staircase): lr * decay^(step / decay_steps)."""
    return lr * decay ** (step / decay_steps)
