"""`eggnet-train`: train EggNet (or an ablation) on synthetic gyro-image pairs.

One entry point for every machine: the 2-core CPU box (lite model, hours), a bare GPU machine
(`PYTHONPATH=. python -m eggnet_ros.training.train ...`, nothing installed, a wall-clock deadline)
and multi-GPU (`torchrun --nproc_per_node=N -m eggnet_ros.training.train ...`, DDP picked up from
the environment without code changes).

Schedule: the paper trains 2e5 iterations with Adam and halves the learning rate after 1e5. We
keep that shape scaled to the budget: the learning rate halves when half of the iterations *or*
half of the wall-clock budget is spent, whichever comes first, and is cosine-annealed to 10% over
the last fifth so short CPU runs still end on a low learning rate.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from eggnet_ros.training.checkpoint import TrainState, load_checkpoint, save_checkpoint

LOGGER = logging.getLogger("eggnet_ros.train")


@dataclass
class TrainConfig:
    """Every training knob with its default; a JSON/YAML file and `--set key=value` override it."""

    name: str = "eggnet_lite"
    variant: str = "eggnet"
    width: int = 16
    input_mode: str = "rgb"
    patch: int = 128
    batch_size: int = 4
    iterations: int = 20000
    #: Wall-clock budget in seconds (None = no deadline); the run stops, evaluates and exports then.
    budget_s: float | None = None
    lr: float = 3e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    num_workers: int = 1
    #: Shake preset of the synthetic data (eggnet_ros.data.ShakeConfig.preset).
    data_preset: str = "moderate"
    #: Image sources spec (eggnet_ros.data.image_sources): "builtin" or a folder of your own frames.
    data_sources: str = "builtin"
    #: Fraction of training pairs whose MGVs come from a corrupted gyro (noise, delay, lower rate,
    #: misalignment); None = SynthConfig's default (0.5). 0 trains on perfect MGVs only, which
    #: real gyros never deliver.
    mgv_corrupt_prob: float | None = None
    out_dir: str = "runs/eggnet_lite"
    checkpoint_every: int = 250
    checkpoint_every_s: float = 300.0
    log_every: int = 25
    #: "auto" = bf16 autocast on CUDA, fp32 on CPU.
    amp: str = "auto"
    deform_backend: str = "auto"
    #: Start of the gyro branches of a fresh network: "small", "motion" or "motion_grid" (OFFSET_INITS);
    #: None = EggNetConfig's default, so the default lives in one place.
    offset_init: str | None = None
    #: Resume from out_dir/checkpoint.safetensors when present.
    resume: bool = True
    #: Initialise from released weights (e.g. models/eggnet_full.safetensors) when no checkpoint exists.
    init_from: str | None = None
    #: Final evaluation on the fixed test set (0 disables).
    eval_pairs: int = 100
    eval_size: int = 512
    #: Where the final fp16 safetensors + JSON card go (None = out_dir/<name>.safetensors).
    export: str | None = None
    #: Stop after this many iterations in *this* invocation (CI rehearsals); None = no limit.
    max_steps_this_run: int | None = None


# --------------------------------------------------------------------------------------------
# configuration plumbing


def _coerce(value: str, current: Any, name: str) -> Any:
    field_types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    type_text = str(field_types[name])
    if value.lower() in {"none", "null"} and "None" in type_text:
        return None
    if isinstance(current, bool) or type_text.startswith("bool"):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int) or type_text.startswith("int"):
        return int(value)
    if isinstance(current, float) or type_text.startswith("float"):
        return float(value)
    return value


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """Defaults <- config file (JSON, or YAML when PyYAML is installed) <- `key=value` overrides."""
    values: dict[str, Any] = {}
    if path:
        text = Path(path).read_text()
        if path.endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown training options in {path}: {sorted(unknown)}")
    config = TrainConfig(**values)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        if key not in known:
            raise ValueError(f"unknown training option {key!r}; known: {sorted(known)}")
        setattr(config, key, _coerce(value, getattr(config, key), key))
    return config


# --------------------------------------------------------------------------------------------
# distributed helpers (no-ops in a single process)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group that `torchrun` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return DistInfo(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank)


class StreamSampler(Sampler[int]):
    """Endless, resumable index stream: rank r of w takes start + k*w + r.

    Each index seeds one synthetic pair, so resuming at `samples_seen` continues the exact data
    stream and no two ranks ever see the same pair.
    """

    def __init__(self, start: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self):  # type: ignore[override]
        k = 0
        while True:
            yield self.start + k * self.world + self.rank
            k += 1


# --------------------------------------------------------------------------------------------
# the loop


def learning_rate(config: TrainConfig, iteration: int, elapsed_s: float) -> float:
    """Paper schedule (halve at the midpoint) scaled to the budget, with a short cosine tail."""
    progress = iteration / max(1, config.iterations)
    if config.budget_s:
        progress = max(progress, elapsed_s / config.budget_s)
    progress = min(progress, 1.0)
    lr = config.lr if progress < 0.5 else config.lr * 0.5
    if progress > 0.8:
        tail = (progress - 0.8) / 0.2
        lr *= 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * tail))
    return lr


def pick_device(info: DistInfo) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def build_model(config: TrainConfig):
    from eggnet_ros.model import EggNet, EggNetConfig

    in_channels = {"rgb": 3, "mono": 1, "bayer": 4}[config.input_mode]
    optional = {} if config.offset_init is None else {"offset_init": config.offset_init}
    model_config = EggNetConfig(
        variant=config.variant,
        width=config.width,
        in_channels=in_channels,
        input_mode=config.input_mode,
        deform_backend=config.deform_backend,
        **optional,
    )
    return EggNet(model_config), model_config


def build_loader(config: TrainConfig, start: int, info: DistInfo) -> DataLoader:
    from eggnet_ros.data import SynthConfig, SyntheticDeblurDataset
    from eggnet_ros.data.dataset import worker_init

    overrides = {} if config.mgv_corrupt_prob is None else {"corrupt_prob": float(config.mgv_corrupt_prob)}
    # One endless epoch: item i is a pure function of (seed, i), so the stream resumes exactly.
    dataset = SyntheticDeblurDataset(
        split="train",
        patch=config.patch,
        seed=config.seed,
        length=2**40,
        mode=config.input_mode,
        synth=SynthConfig.train(config.data_preset, mode=config.input_mode, **overrides),
        sources=config.data_sources,
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=StreamSampler(start, info.rank, info.world),
        num_workers=config.num_workers,
        worker_init_fn=worker_init if config.num_workers > 0 else None,
        # spawn, not fork: a forked child of a process whose OpenCV/OpenMP thread pools already
        # ran can deadlock on their locks.
        multiprocessing_context="spawn" if config.num_workers > 0 else None,
        persistent_workers=config.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
    )


def _autocast(config: TrainConfig, device: torch.device):
    use_bf16 = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)


def _write_loss_plot(csv_path: Path, png_path: Path) -> None:
    """PNG loss curve when matplotlib is around (not on bare GPU machines: CSV is the record)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        LOGGER.info("matplotlib missing: loss curve left as CSV only (%s)", csv_path)
        return
    rows = list(csv.DictReader(csv_path.open()))
    if not rows:
        return
    it = [int(r["iteration"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(it, loss, lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("L1 loss (running mean)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


class _GracefulStop:
    """SIGTERM/SIGINT end the run after the current step with a checkpoint, not mid-write.

    Why: background CPU runs and cluster jobs are stopped by signals; without this, up to
    ``checkpoint_every`` iterations are lost and the loss CSV runs ahead of the checkpoint.
    A second signal restores the default behaviour (immediate stop).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        LOGGER.warning("signal %d: stopping after this step (send again to stop now)", signum)
        self.requested = True
        self.restore()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _open_loss_csv(csv_path: Path, iteration: int):
    """Append to the loss CSV of the run we resume (cut back to its checkpoint) or start one."""
    new_csv = not csv_path.exists() or iteration == 0
    if not new_csv:
        _truncate_loss_csv(csv_path, iteration)
    csv_file = csv_path.open("w" if new_csv else "a", newline="")
    if new_csv:
        csv.writer(csv_file).writerow(["iteration", "samples", "elapsed_s", "loss", "lr"])
    return csv_file


def _truncate_loss_csv(csv_path: Path, iteration: int) -> None:
    """Drop rows logged after the checkpoint we resume from (they will be logged again)."""
    with csv_path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= iteration]
    if len(kept) != len(rows):
        with csv_path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)


def train(config: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training; returns a summary dict (also written into the model card)."""
    # Import what the final evaluation and export use now, not hours later: a CPU run imported
    # them lazily at its end while the checkout had been edited meanwhile, mixed a new
    # evaluation module with the old data module, and crashed after its last checkpoint.
    import eggnet_ros.training.evaluate  # noqa: F401
    from eggnet_ros.model import save_weights  # noqa: F401

    info = init_distributed()
    torch.manual_seed(config.seed + info.rank)
    device = pick_device(info)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.safetensors"

    model, model_config = build_model(config)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state = TrainState()
    if config.resume and ckpt_path.exists():
        state, _ = load_checkpoint(ckpt_path, model, optimizer)
    elif config.init_from and Path(config.init_from).exists():
        from eggnet_ros.model import load_model

        released, _card = load_model(config.init_from, device="cpu")
        _check_fits(config.init_from, released.config, model_config)
        model.load_state_dict(released.state_dict())
        LOGGER.info("initialised from %s", config.init_from)
    if info.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if device.type == "cuda" else None
        )

    loader = build_loader(config, state.samples_seen, info)
    csv_path = out_dir / "loss.csv"
    csv_file = _open_loss_csv(csv_path, state.iteration) if info.main else None  # rank 0 writes
    writer = csv.writer(csv_file) if csv_file is not None else None

    progress = None
    if info.main:
        try:
            from tqdm import tqdm

            progress = tqdm(
                total=config.iterations, initial=state.iteration, desc=config.name, smoothing=0.05
            )
        except ImportError:
            progress = None

    started = time.monotonic()
    base_elapsed = state.elapsed_s
    last_ckpt_time = started
    run_steps = 0
    running = None
    reported_rate = 0
    model.train()
    data_iter = iter(loader)
    stop = _GracefulStop()
    while state.iteration < config.iterations:
        # Under DDP the ranks' clocks and signals differ; they must agree on the elapsed time
        # (it sets the learning rate, or the replicas drift apart) and on when to stop (a rank
        # that leaves early leaves the others hanging in the next gradient all-reduce).
        signalled, elapsed = _agree_across_ranks(
            stop.requested, base_elapsed + (time.monotonic() - started), info, device
        )
        over_budget = config.budget_s is not None and elapsed >= config.budget_s
        steps_done = config.max_steps_this_run is not None and run_steps >= config.max_steps_this_run
        if signalled or over_budget or steps_done:
            stop.requested = signalled  # a signal on any rank: checkpoint only, no export
            if over_budget:
                LOGGER.info(
                    "wall-clock budget of %.0f s reached at iteration %d", config.budget_s, state.iteration
                )
            break
        batch = next(data_iter)
        blurred = batch["blurred"].to(device, non_blocking=True)
        sharp = batch["sharp"].to(device, non_blocking=True)
        mgv = batch["mgv"].to(device, non_blocking=True)
        lr = learning_rate(config, state.iteration, elapsed)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with _autocast(config, device):
            restored = model(blurred, mgv)
            loss = torch.nn.functional.l1_loss(restored.float(), sharp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()

        state.iteration += 1
        state.samples_seen += config.batch_size * info.world
        run_steps += 1
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        now = time.monotonic()
        state.elapsed_s = base_elapsed + (now - started)
        if info.main:
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{running:.4f}", lr=f"{lr:.1e}")
            if writer is not None and state.iteration % config.log_every == 0:
                writer.writerow(
                    [state.iteration, state.samples_seen, f"{state.elapsed_s:.1f}", f"{running:.6f}", lr]
                )
                csv_file.flush()
            # Throughput early (step 10 or 30 s) and again at one minute, so a slow setup is visible.
            first_due = reported_rate == 0 and (run_steps >= 10 or now - started > 30)
            if first_due or (reported_rate == 1 and now - started > 60):
                rate = run_steps * config.batch_size * info.world / (now - started)
                LOGGER.warning("throughput: %.2f samples/s on %s (%d steps)", rate, device, run_steps)
                state.extra["samples_per_s"] = rate
                reported_rate += 1
            due = (
                state.iteration % config.checkpoint_every == 0
                or now - last_ckpt_time > config.checkpoint_every_s
            )
            if due:
                save_checkpoint(ckpt_path, model, optimizer, state, dataclasses.asdict(config))
                last_ckpt_time = now
    stop.restore()
    if progress is not None:
        progress.close()
    if csv_file is not None:
        csv_file.close()

    if info.world > 1:
        # Only rank 0 checkpoints, evaluates and exports; the others leave now instead of
        # waiting in a barrier for minutes (NCCL's watchdog would kill them).
        dist.barrier()
    summary: dict[str, Any] = {}
    if info.main and stop.requested:
        # Interrupted: keep the exact state to resume from, skip the (long) evaluation and export.
        save_checkpoint(ckpt_path, model, optimizer, state, dataclasses.asdict(config))
        LOGGER.warning("stopped by signal at iteration %d; checkpoint in %s", state.iteration, ckpt_path)
        summary = {"iterations": state.iteration, "interrupted": True}
    elif info.main:
        if run_steps and "samples_per_s" not in state.extra:
            state.extra["samples_per_s"] = (
                run_steps * config.batch_size * info.world / max(1e-9, time.monotonic() - started)
            )
        save_checkpoint(ckpt_path, model, optimizer, state, dataclasses.asdict(config))
        _write_loss_plot(csv_path, out_dir / "loss.png")
        summary = finish(config, model, model_config, state, device)
    if info.world > 1:
        dist.destroy_process_group()
    return summary


def _check_fits(path: str, released: Any, wanted: Any) -> None:
    """A clear error instead of a page of load_state_dict size mismatches (e.g. a tiny rehearsal
    of the GPU config meeting the shipped width-64 weights that config continues from)."""
    keys = ("variant", "width", "in_channels", "input_mode")
    diff = [f"{k} {getattr(released, k)!r} there, {getattr(wanted, k)!r} here"
            for k in keys if getattr(released, k) != getattr(wanted, k)]
    if diff:
        raise ValueError(f"init_from {path} does not fit this configuration ({'; '.join(diff)}); "
                         "use matching settings or --set init_from=none to start fresh")


def _agree_across_ranks(
    signalled: bool, elapsed_s: float, info: DistInfo, device: torch.device
) -> tuple[bool, float]:
    """(signal on any rank, the longest elapsed time): one tiny all-reduce per step under DDP."""
    if info.world <= 1:
        return signalled, elapsed_s
    votes = torch.tensor([1.0 if signalled else 0.0, elapsed_s], dtype=torch.float64, device=device)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX)
    return bool(votes[0].item() > 0), float(votes[1].item())


def finish(
    config: TrainConfig, model, model_config, state: TrainState, device: torch.device
) -> dict[str, Any]:
    """Evaluate on the fixed test set and export fp16 safetensors + model card."""
    from eggnet_ros.model import save_weights
    from eggnet_ros.training.evaluate import evaluate_model

    net = model.module if hasattr(model, "module") else model
    net.eval()
    metrics: dict[str, Any] = {}
    if config.eval_pairs > 0:
        metrics = evaluate_model(net, n=config.eval_pairs, size=config.eval_size, device=device)
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    )
    summary = {
        "iterations": state.iteration,
        "schedule_iterations": config.iterations,
        "samples_seen": state.samples_seen,
        "wall_time_s": round(state.elapsed_s, 1),
        "samples_per_s": round(float(state.extra.get("samples_per_s", 0.0)), 2),
        "device": device_name,
        "train_config": dataclasses.asdict(config),
        "metrics": metrics,
    }
    export = Path(config.export) if config.export else Path(config.out_dir) / f"{config.name}.safetensors"
    card_extra = {
        "name": config.name,
        "training_data": (
            "synthetic gyro-image pairs (eggnet_ros.data): built-in CC0 photos + procedural "
            "dead-leaves images, hand-shake gyro, eq. 20 blur in linear light, "
            f"shake preset {config.data_preset!r}, "
            f"{_corrupt_share(config):.0%} of the MGVs corrupted (noise, delay, rate, misalignment)"
        ),
        "training": {k: v for k, v in summary.items() if k != "metrics"},
        "metrics": metrics,
    }
    save_weights(net.to("cpu"), export, card_extra)
    LOGGER.info("exported %s (%s)", export, json.dumps(metrics))
    return summary


def export_checkpoint(config: TrainConfig) -> dict[str, Any]:
    """Evaluate and export the run's current checkpoint without training (``--export-checkpoint``).

    Why: a schedule takes hours on a CPU and is resumed across sessions; a mid-schedule model can
    be worth shipping (or comparing) before it ends. The card says how far the run was, and a
    later resume of the same run is unaffected (the checkpoint is only read).
    """
    ckpt_path = Path(config.out_dir) / "checkpoint.safetensors"
    if not ckpt_path.exists():
        raise FileNotFoundError(f"no checkpoint to export: {ckpt_path}")
    model, model_config = build_model(config)
    state, _ = load_checkpoint(ckpt_path, model)
    device = pick_device(DistInfo())
    return finish(config, model.to(device), model_config, state, device)


def _corrupt_share(config: TrainConfig) -> float:
    from eggnet_ros.data import SynthConfig

    if config.mgv_corrupt_prob is not None:
        return float(config.mgv_corrupt_prob)
    return SynthConfig.train(config.data_preset, mode=config.input_mode).corrupt_prob


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eggnet-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="JSON or YAML file with TrainConfig fields")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one TrainConfig field (repeatable)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "--export-checkpoint",
        action="store_true",
        help="evaluate and export out_dir/checkpoint.safetensors now, without training (mid-schedule models)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config, args.overrides)
    if args.print_config:
        print(json.dumps(dataclasses.asdict(config), indent=2))
        return 0
    summary = export_checkpoint(config) if args.export_checkpoint else train(config)
    if summary:
        print(json.dumps({k: v for k, v in summary.items() if k != "train_config"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
