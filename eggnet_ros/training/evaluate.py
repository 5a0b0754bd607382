"""`eggnet-eval`: the paper's Table 2/3 and Fig. 11 on our fixed synthetic test set.

One command prints, for the fixed test set (moderate shake, 512x512 by default), PSNR/SSIM of the
blurred input, the classical gyro-driven Richardson-Lucy baseline, and every model given
(BaseDeform, BaseI&G, BaseGTM, EggNet, ...), in the controlled case (perfect gyro) and, like the
paper's Table 2, the raw case (the same images, each with its own imperfect gyro: lower rate,
noise, bias, delay, misalignment, MGV noise), then the robustness sweeps of Fig. 11 (MGV noise
sigma in {0, 0.125, 0.25, 1} px and gyro delay in {0..5} x exposure/10) as tables and a PNG, the
test-time MGV ablation and a blur-direction probe (horizontal vs vertical pans).
The same functions back the metrics written into model cards by `eggnet-train`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from eggnet_ros.training.metrics import psnr, ssim

LOGGER = logging.getLogger("eggnet_ros.eval")

NOISE_SIGMAS: tuple[float, ...] = (0.0, 0.125, 0.25, 1.0)
DELAY_STEPS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)

#: Paper order of the ablations (Table 2), used to sort rows.
VARIANT_ORDER = ("base_deform", "base_ig", "base_gtm", "eggnet", "plain")
VARIANT_LABEL = {
    "base_deform": "BaseDeform (no gyro)",
    "base_ig": "BaseI&G",
    "base_gtm": "BaseGTM",
    "eggnet": "EggNet",
    "plain": "Plain U-Net",
}

Restorer = Callable[[Any], np.ndarray]


@dataclass
class MethodScore:
    name: str
    params_mb: float | None
    psnr: float
    ssim: float
    n: int
    #: The paper's raw case (the same images, each with its own imperfect gyro); None = not run.
    raw_psnr: float | None = None
    raw_ssim: float | None = None


class LoadedModel(NamedTuple):
    label: str
    variant: str
    net: torch.nn.Module
    #: sha256 of the weights file (from its verified card): the score cache's model identity
    sha256: str


class ScoreCache:
    """PSNR/SSIM already measured, keyed by what determines them exactly.

    A key is (method identity, fingerprint of the test pairs' bytes, device, torch/numpy
    versions, hash of our scoring code): the weights' sha256 for a network, the iteration count
    for Richardson-Lucy. Any change to the weights, the test-set synthesis, the metrics, the
    baseline, the model code or the libraries misses the cache, so a re-run of ``eggnet-eval``
    only measures what is new (about 2 min per lite model on a CPU).
    """

    #: Sources whose edits change a score without changing the weights or the test pairs.
    SCORING_CODE: tuple[str, ...] = ("training/metrics.py", "training/baselines.py", "training/evaluate.py",
                                     "data/dataset.py", "model/*.py")

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[float]] = {}
        self.hits = 0
        # once per run: hashing the sources is file I/O that need not repeat for every score
        self.versions = f"torch{torch.__version__}/numpy{np.__version__}/code{self.code_fingerprint()}"
        if path is not None and path.exists():
            try:
                self.entries = {k: list(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError, TypeError):
                LOGGER.warning("ignoring unreadable score cache %s", path)

    @staticmethod
    def fingerprint(pairs: Sequence[Any]) -> str:
        digest = hashlib.sha256()
        for pair in pairs:  # everything a restorer reads: images, MGVs, gyro, camera, timing
            for array in (pair.blurred, pair.sharp, pair.mgv, pair.imu.t, pair.imu.omega, pair.camera.K,
                          pair.camera.D):
                digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(repr((pair.camera.distortion_model, pair.timing)).encode())
        return digest.hexdigest()[:20]

    @classmethod
    def code_fingerprint(cls) -> str:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        for pattern in cls.SCORING_CODE:
            for path in sorted(root.glob(pattern)):
                digest.update(path.read_bytes())
        return digest.hexdigest()[:12]

    def score(self, method: str, pairs: Sequence[Any], make_restorer: Callable[[], Restorer | None],
              device: torch.device | str = "cpu", fingerprint: str | None = None) -> tuple[float, float]:
        """``score(pairs, make_restorer())`` unless this exact measurement is cached."""
        key = f"{method}|{fingerprint or self.fingerprint(pairs)}|{torch.device(device).type}|{self.versions}"
        if key in self.entries:
            self.hits += 1
            psnr_value, ssim_value = self.entries[key]
            return float(psnr_value), float(ssim_value)
        result = score(pairs, make_restorer())
        self.entries[key] = [result[0], result[1]]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        return result


def load_test_pairs(n: int, size: int, seed: int | None = None):
    """The fixed test set (bit-exact on every machine) in the controlled case (perfect gyro)."""
    from eggnet_ros.data import fixed_test_set

    kwargs: dict[str, Any] = {"n": n, "size": size}
    if seed is not None:
        kwargs["seed"] = seed
    return fixed_test_set(**kwargs)


def under_condition(pairs, mgv_noise: float = 0.0, delay_fraction: float = 0.0, raw: bool = False):
    """The same pairs (images shared, not regenerated) with the gyro of another condition:
    fixed MGV noise / delay (Fig. 11) or the paper's raw case (each pair's own imperfect gyro)."""
    from eggnet_ros.data import condition_config, observe_condition

    cfg = condition_config(mgv_noise=mgv_noise, delay_fraction=delay_fraction, raw=raw,
                           mode=pairs[0].mode if pairs else "rgb")
    return [observe_condition(pair, cfg) for pair in pairs]


def model_restorer(net: torch.nn.Module, device: torch.device | str = "cpu") -> Restorer:
    """Wrap a network as pair -> restored image in the pair's own layout, values in [0, 1].

    RGB/mono pairs come back as (H, W, C); Bayer pairs as the (H, W, 1) linear mosaic, so PSNR is
    measured in the Bayer domain as in the paper.
    """
    from eggnet_ros.data.dataset import pair_to_tensors
    from eggnet_ros.model import unpack_bayer

    device = torch.device(device)

    def restore(pair) -> np.ndarray:
        tensors = pair_to_tensors(pair)
        with torch.inference_mode():
            out = net(tensors["blurred"][None].to(device), tensors["mgv"][None].to(device))
        planes = out[0].float().clamp(0, 1).cpu().numpy()
        if pair.mode == "bayer":
            return unpack_bayer(planes, pair.info["bayer_pattern"])[..., None]
        return planes.transpose(1, 2, 0)

    return restore


def score(pairs: Sequence[Any], restorer: Restorer | None) -> tuple[float, float]:
    """Mean PSNR/SSIM over the pairs; restorer None scores the blurred input itself."""
    psnrs, ssims = [], []
    for pair in pairs:
        estimate = pair.blurred if restorer is None else restorer(pair)
        psnrs.append(psnr(estimate, pair.sharp))
        ssims.append(ssim(estimate, pair.sharp))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def evaluate_model(
    net: torch.nn.Module, n: int = 100, size: int = 512, device: torch.device | str = "cpu"
) -> dict:
    """Metrics stored in model cards: the model and the blurred input on the fixed test set."""
    pairs = load_test_pairs(n, size)
    model_psnr, model_ssim = score(pairs, model_restorer(net, device))
    blurred_psnr, blurred_ssim = score(pairs, None)
    blur = [float(p.blur_px) for p in pairs]
    return {
        "test_set": {"n": n, "size": size, "median_blur_px": round(float(np.median(blur)), 2)},
        "psnr": round(model_psnr, 3),
        "ssim": round(model_ssim, 4),
        "blurred_psnr": round(blurred_psnr, 3),
        "blurred_ssim": round(blurred_ssim, 4),
        "gain_db": round(model_psnr - blurred_psnr, 3),
    }


def _param_mb(net: torch.nn.Module) -> float:
    return sum(p.numel() for p in net.parameters()) * 4 / 1e6


def load_models(paths: Sequence[str], device: torch.device | str) -> list[LoadedModel]:
    """One :class:`LoadedModel` per weights file, sorted in the paper's table order."""
    from eggnet_ros.model import load_model

    loaded = []
    for path in paths:
        net, card = load_model(path, device=str(device))
        net.eval()
        variant = net.config.variant
        width = net.config.width
        label = f"{VARIANT_LABEL.get(variant, variant)} (w{width}, {Path(path).stem})"
        loaded.append(LoadedModel(label, variant, net, card.sha256))
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    loaded.sort(key=lambda m: (order.get(m.variant, 99), _param_mb(m.net)))
    return loaded


def main_table(
    pairs,
    models: Sequence[LoadedModel],
    rl_iterations: int,
    device,
    cache: ScoreCache | None = None,
    raw_pairs=None,
) -> list[MethodScore]:
    """Table 2: every method on the controlled pairs and, given ``raw_pairs``, the raw case."""
    from eggnet_ros.training.baselines import rl_restorer

    cache = cache or ScoreCache(None)
    methods: list[tuple[str, float | None, str, Callable[[], Restorer | None], torch.device | str]] = [
        ("Blurred input", None, "blurred", lambda: None, "cpu")
    ]
    if rl_iterations > 0:
        methods.append((f"Gyro Richardson-Lucy ({rl_iterations} it.)", None, f"rl{rl_iterations}",
                        lambda: rl_restorer(rl_iterations), "cpu"))
    for m in models:
        restorer = lambda m=m: model_restorer(m.net, device)  # noqa: E731 - built only on a miss
        methods.append((m.label, _param_mb(m.net), f"model:{m.sha256}", restorer, device))
    fp = cache.fingerprint(pairs)
    raw_fp = cache.fingerprint(raw_pairs) if raw_pairs is not None else None
    rows = []
    for name, params, key, make_restorer, where in methods:
        row = MethodScore(name, params, *cache.score(key, pairs, make_restorer, where, fp), len(pairs))
        if raw_pairs is not None:
            row.raw_psnr, row.raw_ssim = cache.score(key, raw_pairs, make_restorer, where, raw_fp)
        rows.append(row)
    return rows


def format_main_table(rows: Sequence[MethodScore], title: str) -> str:
    """Markdown in the layout of the paper's Table 2 (raw-case columns when they were run)."""
    with_raw = any(row.raw_psnr is not None for row in rows)
    header = "| Method | Params (MB) | PSNR (dB) | SSIM |"
    if with_raw:
        header = "| Method | Params (MB) | Controlled PSNR (dB) | SSIM | Raw case PSNR (dB) | SSIM |"
    lines = [f"### {title}", "", header, "| --- |" + " ---: |" * (5 if with_raw else 3)]
    for row in rows:
        params = "-" if row.params_mb is None else f"{row.params_mb:.2f}"
        cells = f"| {row.name} | {params} | {row.psnr:.2f} | {row.ssim:.4f} |"
        if with_raw:
            raw = (f" {row.raw_psnr:.2f} | {row.raw_ssim:.4f} |" if row.raw_psnr is not None
                   else " - | - |")
            cells += raw
        lines.append(cells)
    return "\n".join(lines)


def sweep(
    pairs, models: Sequence[LoadedModel], device, kind: str, rl_iterations: int = 0
) -> dict[str, list[float]]:
    """PSNR per model along the noise (sigma px) or delay (k x exposure/10) axis.

    The gyro Richardson-Lucy baseline joins the delay sweep only: it reads the (delayed) gyro
    itself, not the MGV field, so per-pixel MGV noise does not reach it and its noise row would be
    flat by construction.
    """
    from eggnet_ros.training.baselines import rl_restorer

    axis = NOISE_SIGMAS if kind == "noise" else DELAY_STEPS
    results: dict[str, list[float]] = {"blurred": []}
    with_rl = kind == "delay" and rl_iterations > 0
    rl_label = f"Gyro Richardson-Lucy ({rl_iterations} it.)"
    if with_rl:
        results[rl_label] = []
    for m in models:
        results[m.label] = []
    for value in axis:
        if kind == "noise":
            point = under_condition(pairs, mgv_noise=float(value))
        else:
            point = under_condition(pairs, delay_fraction=float(value) / 10.0)
        results["blurred"].append(score(point, None)[0])
        if with_rl:
            results[rl_label].append(score(point, rl_restorer(rl_iterations))[0])
        for m in models:
            results[m.label].append(score(point, model_restorer(m.net, device))[0])
    return results


#: Test-time MGV ablation columns: the true MGVs, none (zeros: "no motion"), another pair's.
ABLATIONS: tuple[str, ...] = ("true MGVs", "zero MGVs", "another pair's MGVs")


def without_mgv(pairs) -> list[Any]:
    """The pairs with all-zero MGVs ("no motion"): what a model does without its gyro."""
    return [replace(p, mgv=np.zeros_like(p.mgv)) for p in pairs]


def mgv_ablation(pairs, models: Sequence[LoadedModel], device) -> dict[str, list[float]]:
    """PSNR of each gyro model fed the true, zero and wrong (another pair's) MGVs.

    How much a trained network leans on the gyro: a model that ignored its MGV input would score
    the same in all three columns. Wrong MGVs describe a real but unrelated shake (pair i gets the
    field of pair i+1; with a single pair that is its own), so they also show what a badly
    synchronised gyro costs at worst.
    """
    zero = without_mgv(pairs)
    other = [replace(p, mgv=pairs[(i + 1) % len(pairs)].mgv) for i, p in enumerate(pairs)]
    results: dict[str, list[float]] = {}
    for m in models:
        restore = model_restorer(m.net, device)
        results[m.label] = [score(variant, restore)[0] for variant in (pairs, zero, other)]
    return results


def _per_method_table(
    title: str, columns: Sequence[str], results: dict[str, list[float]], summary: str,
    summarise: Callable[[list[float]], float],
) -> str:
    """A markdown table: one row per method, its PSNRs per column, and one signed summary column."""
    lines = [
        f"### {title}",
        "",
        "| Method | " + " | ".join(columns) + f" | {summary} |",
        "| --- | " + " | ".join("---:" for _ in columns) + " | ---: |",
    ]
    for label, values in results.items():
        cells = " | ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {label} | {cells} | {summarise(values):+.2f} |")
    return "\n".join(lines)


def format_ablation(results: dict[str, list[float]], n: int) -> str:
    return _per_method_table(f"MGV ablation at test time ({n} pairs): PSNR (dB)", ABLATIONS, results,
                             "gyro worth (true - zero)", lambda v: v[0] - v[1])


def format_sweep(results: dict[str, list[float]], kind: str) -> str:
    if kind == "noise":
        title, columns = "MGV noise (Fig. 11a): PSNR (dB)", [f"σ={v:g} px" for v in NOISE_SIGMAS]
    else:
        title = "Gyro delay, ΔT = exposure/10 (Fig. 11b): PSNR (dB)"
        columns = [f"ΔT={v}" for v in DELAY_STEPS]
    return _per_method_table(title, columns, results, "loss at worst", lambda v: v[0] - v[-1])


def plot_sweeps(noise: dict[str, list[float]], delay: dict[str, list[float]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    # One colour per method across both panels (the delay panel has the RL baseline too, so
    # colouring by position would give one method two colours), and one legend for both.
    methods = list(dict.fromkeys([*noise, *delay]))
    palette = plt.get_cmap("tab10")
    colour = {label: palette(i % 10) for i, label in enumerate(methods)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, results, axis, xlabel in (
        (axes[0], noise, NOISE_SIGMAS, "MGV noise σ (px)"),
        (axes[1], delay, DELAY_STEPS, "gyro delay (× exposure/10)"),
    ):
        labels = list(results)
        width = 0.8 / max(1, len(labels))
        x = np.arange(len(axis))
        for i, label in enumerate(labels):
            ax.bar(x + i * width, results[label], width, label=label, color=colour[label])
        ax.set_xticks(x + 0.4 - width / 2, [f"{v:g}" for v in axis])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("PSNR (dB)")
        lo = min(min(v) for v in results.values())
        hi = max(max(v) for v in results.values())
        ax.set_ylim(lo - 1, hi + 0.5)
        ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[label]) for label in methods]
    fig.legend(handles, methods, loc="lower center", ncol=min(3, len(methods)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * ((len(methods) + 2) // 3), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def default_model_files() -> list[str]:
    models_dir = Path(__file__).resolve().parents[2] / "models"
    return sorted(str(p) for p in models_dir.glob("*.safetensors"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eggnet-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="weights files (default: every models/*.safetensors)")
    parser.add_argument("--n", type=int, default=100, help="test pairs (fixed test set)")
    parser.add_argument("--size", type=int, default=512, help="test image size (square)")
    # 15: the best PSNR of {5, 10, 15, 20, 30} on 13 of the test pairs (29.39 dB vs 29.02 / 29.34 /
    # 29.36 / 29.22); tuned on test data, which favours the baseline, not us.
    parser.add_argument("--rl-iterations", type=int, default=15,
                        help="Richardson-Lucy iterations (0 skips; default 15, its best PSNR)")
    parser.add_argument("--no-raw", action="store_true",
                        help="skip the raw case (the same pairs, each with its own imperfect gyro)")
    parser.add_argument("--sweeps", action="store_true", help="also run the Fig. 11 noise/delay sweeps")
    parser.add_argument("--sweep-n", type=int, default=None, help="pairs per sweep point (default --n)")
    parser.add_argument("--direction-n", type=int, default=6,
                        help="constant-rate pans per direction in the --sweeps blur-direction probe "
                             "(min(256, --size) px square)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="results/eval", help="folder for eval.md, eval.json, sweeps.png")
    parser.add_argument("--no-cache", action="store_true",
                        help="re-measure everything (default: reuse <out>/score_cache.json entries for "
                             "identical weights, test pairs, device and software)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with torch.no_grad():  # scoped: a caller in the same process (tests, notebooks) keeps autograd
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    paths = args.models or default_model_files()
    models = load_models(paths, args.device)
    pairs = load_test_pairs(args.n, args.size)
    median_blur = float(np.median([p.blur_px for p in pairs]))
    cache = ScoreCache(None if args.no_cache else Path(args.out) / "score_cache.json")
    raw_pairs = None if args.no_raw else under_condition(pairs, raw=True)
    rows = main_table(pairs, models, args.rl_iterations, args.device, cache, raw_pairs)
    if cache.hits:
        LOGGER.info("%d main-table score(s) reused from %s (--no-cache re-measures)", cache.hits, cache.path)
    title = f"Fixed test set: {args.n} pairs, {args.size}², median blur extent {median_blur:.1f} px"
    if raw_pairs is not None:
        title += "; raw case = the same pairs, each with its own imperfect gyro"
    report = [format_main_table(rows, title)]
    payload: dict[str, Any] = {"main": [row.__dict__ for row in rows], "median_blur_px": median_blur}
    if args.sweeps:
        gyro_models = [m for m in models if m.variant != "base_deform"]
        sweep_n = args.sweep_n or args.n
        # item i of the fixed set does not depend on its length: the first pairs are the set
        sweep_pairs = pairs[:sweep_n] if sweep_n <= len(pairs) else load_test_pairs(sweep_n, args.size)
        noise = sweep(sweep_pairs, gyro_models, args.device, "noise")
        delay = sweep(sweep_pairs, gyro_models, args.device, "delay", args.rl_iterations)
        report += [format_sweep(noise, "noise"), format_sweep(delay, "delay")]
        payload.update(noise=noise, delay=delay)
        if gyro_models:
            ablation = mgv_ablation(sweep_pairs, gyro_models, args.device)
            report.append(format_ablation(ablation, sweep_n))
            payload["mgv_ablation"] = {"columns": list(ABLATIONS), **ablation}
        if models:
            from eggnet_ros.training.direction_probe import direction_probe, format_direction, pan_pairs

            pans = pan_pairs(n=args.direction_n, size=min(256, args.size))
            direction = direction_probe(pans, models, args.device)
            report.append(format_direction(direction, args.direction_n))
            payload["direction"] = direction
        out = Path(args.out)
        if plot_sweeps(noise, delay, out / "sweeps.png"):
            report.append(f"Plot: {out / 'sweeps.png'}")
    text = "\n\n".join(report)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.md").write_text(text + "\n")
    (out / "eval.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
