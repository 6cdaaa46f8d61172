"""Evaluate the body model on held-out ANSUR II subjects; print markdown tables and write figures.

``python -m tryon.services.body.evaluate --out var/body-eval [--epochs N] [--gan-epochs N] [--seed S ...]
[--calibration-folds K]`` trains the body model on the train split of each split seed (interval scales
fitted on the validation split) and, on the test split:

1. Inference MAE (mm; kg for weight) per measurement from (stature, weight, sex) and from (stature,
   weight, sex, chest, waist, hips), for the CVAE, a per-sex linear regression on the same inputs
   (least squares on the train split) and the per-sex population mean of the train split.
2. Coverage of the CVAE's 90% intervals per measurement within each sex, for both input sets.
3. Sampling quality per sex for VAE samples (the chain rule the service draws with, and one latent
   draw with diagonal decoder noise for reference) and GAN samples against the real test bodies:
   MMD^2 (RBF kernel, median-heuristic bandwidth, permutation p-value) and a classifier two-sample
   test (held-out accuracy of an MLP telling real from generated; 0.5 = indistinguishable), with the
   same statistics for validation-vs-test real bodies and a per-sex Gaussian fitted on the train
   split as the references. A summary table gives the C2ST accuracies of every seed side by side.

Writes, per seed under ``seed-S/`` of the output folder, ``report.md``, ``metrics.json``,
``training_curves.png``, ``samples.png`` and the trained model (``model/``), and the whole report as
``report.md``; with ``--results docs/results.md`` also the report and
its pictures into that document's ``evaluate_body`` section.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from tryon.services.body.body_model import Z_90, BodyModel, BodyModelConfig  # noqa: E402
from tryon.services.body.dataset import Split, load_subset, split_subjects  # noqa: E402
from tryon.services.body.measurements import BY_NAME, NAMES, SEXES  # noqa: E402
from tryon.shared.results import add_results_option, command_line, record  # noqa: E402

SCENARIOS = {
    "stature+weight+sex": ("stature", "weight"),
    "+chest+waist+hips": ("stature", "weight", "chest_circumference", "waist_circumference", "hip_circumference"),
}
PERMUTATIONS = 200
# The sampling table's name for VAE draws made the way the service drew them before the chain rule.
ONE_DRAW = "vae, one latent draw (diagonal decoder noise)"
# Columns of the summary table: sample source and its heading.
SUMMARY_COLUMNS = {
    "vae": "VAE (chain rule, served)", ONE_DRAW: "VAE, one latent draw", "gan": "GAN",
    "gaussian (per sex, fit on train)": "Gaussian (per sex)", "real (validation)": "real (validation)",
}


def linear_regression_predictions(train: pd.DataFrame, test: pd.DataFrame, inputs: tuple[str, ...]) -> np.ndarray:
    """Per-sex least-squares predictions of every measurement from ``inputs`` (with intercept)."""
    predictions = np.zeros((len(test), len(NAMES)))
    for sex in SEXES:
        fit_rows, test_rows = train["sex"] == sex, (test["sex"] == sex).to_numpy()
        design = np.c_[train.loc[fit_rows, list(inputs)].to_numpy(float), np.ones(fit_rows.sum())]
        weights, *_ = np.linalg.lstsq(design, train.loc[fit_rows, list(NAMES)].to_numpy(float), rcond=None)
        predictions[test_rows] = np.c_[test.loc[test_rows, list(inputs)].to_numpy(float), np.ones(test_rows.sum())] @ weights
    return predictions


def population_mean_predictions(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The train split's per-sex mean of every measurement."""
    means = train.groupby("sex")[list(NAMES)].mean()
    return means.loc[test["sex"]].to_numpy(float)


def evaluate_inference(model: BodyModel, split: Split) -> dict:
    """MAE per method and measurement, and 90% coverage per sex, for every scenario."""
    test = split.test
    truth = test[list(NAMES)].to_numpy(float)
    results = {}
    for scenario, inputs in SCENARIOS.items():
        mask = np.zeros_like(truth)
        mask[:, [NAMES.index(name) for name in inputs]] = 1.0
        mean, stddev = model.predict_arrays(truth, mask, test["sex"].tolist())
        predictions = {
            "cvae": mean,
            "linear": linear_regression_predictions(split.train, test, inputs),
            "population_mean": population_mean_predictions(split.train, test),
        }
        covered = np.abs(mean - truth) <= Z_90 * stddev
        results[scenario] = {
            "inputs": list(inputs),
            "mae": {
                method: dict(zip(NAMES, np.abs(prediction - truth).mean(axis=0).tolist()))
                for method, prediction in predictions.items()
            },
            "mae_difference_stderr": dict(
                zip(
                    NAMES,
                    (
                        (np.abs(predictions["cvae"] - truth) - np.abs(predictions["linear"] - truth)).std(axis=0)
                        / np.sqrt(len(truth))
                    ).tolist(),
                )
            ),
            "coverage_90": {
                sex: dict(zip(NAMES, covered[(test["sex"] == sex).to_numpy()].mean(axis=0).tolist())) for sex in SEXES
            },
        }
    return results


def _squared_distances(points: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances."""
    norms = (points**2).sum(axis=1)
    return np.maximum(norms[:, None] + norms[None, :] - 2.0 * points @ points.T, 0.0)


def mmd_test(first: np.ndarray, second: np.ndarray, seed: int, permutations: int = PERMUTATIONS) -> tuple[float, float]:
    """Unbiased MMD^2 with an RBF kernel (median-heuristic bandwidth) and its permutation p-value."""
    pooled = np.vstack([first, second])
    distances = _squared_distances(pooled)
    bandwidth = np.median(distances[np.triu_indices(len(pooled), k=1)])
    kernel = np.exp(-distances / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    count_first = len(first)

    def statistic(in_first: np.ndarray) -> float:
        a, b = in_first, ~in_first
        n, m = a.sum(), b.sum()
        within_first = kernel[np.ix_(a, a)].sum() / (n * (n - 1))
        within_second = kernel[np.ix_(b, b)].sum() / (m * (m - 1))
        across = kernel[np.ix_(a, b)].sum() / (n * m)
        return float(within_first + within_second - 2.0 * across)

    labels = np.zeros(len(pooled), dtype=bool)
    labels[:count_first] = True
    observed = statistic(labels)
    rng = np.random.default_rng(seed)
    exceed = sum(statistic(rng.permutation(labels)) >= observed for _ in range(permutations))
    return observed, (exceed + 1) / (permutations + 1)


def classifier_two_sample_accuracy(real: np.ndarray, generated: np.ndarray, seed: int) -> float:
    """Held-out accuracy of a small MLP telling real from generated vectors (balanced classes)."""
    rng = np.random.default_rng(seed)
    count = min(len(real), len(generated))
    real = real[rng.permutation(len(real))[:count]]
    generated = generated[rng.permutation(len(generated))[:count]]
    features = np.vstack([real, generated]).astype(np.float32)
    labels = np.r_[np.ones(count), np.zeros(count)].astype(np.float32)
    order = rng.permutation(len(features))
    fit, held_out = order[: len(order) // 2], order[len(order) // 2 :]
    torch.manual_seed(seed)
    classifier = torch.nn.Sequential(
        torch.nn.Linear(features.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3, weight_decay=1e-4)
    x_fit, y_fit = torch.from_numpy(features[fit]), torch.from_numpy(labels[fit])
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(classifier(x_fit).squeeze(-1), y_fit)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        guesses = classifier(torch.from_numpy(features[held_out])).squeeze(-1) > 0
    return float((guesses.numpy() == labels[held_out].astype(bool)).mean())


def _gaussian_samples(model: BodyModel, split: Split, sex: str, count: int, seed: int) -> np.ndarray:
    """Standardized draws from the train split's Gaussian for one sex: the simplest generator to beat."""
    train = (split.train[split.train["sex"] == sex][list(NAMES)].to_numpy(float) - model.mean) / model.scale
    return np.random.default_rng(seed).multivariate_normal(train.mean(axis=0), np.cov(train.T), size=count)


def _one_latent_draw_samples(model: BodyModel, sex: str, count: int, seed: int) -> np.ndarray:
    """Standardized VAE draws from one latent draw and the decoder's diagonal noise, nothing observed."""
    sex_one_hot = torch.zeros(count, len(SEXES))
    sex_one_hot[:, SEXES.index(sex)] = 1.0
    empty = torch.zeros(count, len(NAMES))
    return model.cvae.sample(empty, empty, sex_one_hot, torch.Generator().manual_seed(seed)).double().numpy()


def evaluate_sampling(model: BodyModel, split: Split, seed: int) -> dict:
    """MMD and classifier two-sample test per sex for VAE and GAN samples, with a real-vs-real reference."""
    results: dict[str, dict] = {}
    for sex in SEXES:
        test = (split.test[split.test["sex"] == sex][list(NAMES)].to_numpy(float) - model.mean) / model.scale
        reference = (split.validation[split.validation["sex"] == sex][list(NAMES)].to_numpy(float) - model.mean) / model.scale
        candidates = {"real (validation)": reference, "gaussian (per sex, fit on train)": _gaussian_samples(model, split, sex, len(test), seed)}
        for generator in ("vae", "gan"):
            _, values = model.sample_arrays(len(test), seed + 17, sex, generator)
            candidates[generator] = (values - model.mean) / model.scale
        candidates[ONE_DRAW] = _one_latent_draw_samples(model, sex, len(test), seed + 17)
        results[sex] = {}
        for name, values in candidates.items():
            mmd, p_value = mmd_test(test, values, seed)
            results[sex][name] = {
                "mmd2": mmd,
                "p_value": p_value,
                "c2st_accuracy": classifier_two_sample_accuracy(test, values, seed),
                "count": len(values),
            }
    return results


def format_report(inference: dict, sampling: dict, test_counts: dict[str, int]) -> str:
    """Markdown tables of the evaluation."""
    lines = []
    for scenario, result in inference.items():
        hidden = [name for name in NAMES if name not in result["inputs"]]
        lines += [f"### MAE on test subjects from {scenario} ({', '.join(result['inputs'])})", ""]
        lines += [
            "| measurement | unit | CVAE | linear (per sex) | population mean (per sex) | CVAE - linear (paired SE) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for name in hidden:
            row = [result["mae"][method][name] for method in ("cvae", "linear", "population_mean")]
            difference = f"{row[0] - row[1]:+.2f} ({result['mae_difference_stderr'][name]:.2f})"
            lines.append(f"| {name} | {BY_NAME[name].unit} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.2f} | {difference} |")
        mm_names = [name for name in hidden if BY_NAME[name].unit == "mm"]
        means = [np.mean([result["mae"][method][name] for name in mm_names]) for method in ("cvae", "linear", "population_mean")]
        lines.append(
            f"| **mean over {len(mm_names)} mm measurements** | mm | **{means[0]:.2f}** | **{means[1]:.2f}** "
            f"| **{means[2]:.2f}** | {means[0] - means[1]:+.2f} |"
        )
        lines += ["", f"### 90% interval coverage from {scenario}", ""]
        lines += ["| measurement | " + " | ".join(f"{sex} (n={test_counts[sex]})" for sex in SEXES) + " |", "|---|" + "---:|" * len(SEXES)]
        for name in hidden:
            lines.append(f"| {name} | " + " | ".join(f"{result['coverage_90'][sex][name]:.3f}" for sex in SEXES) + " |")
        lines.append("")
    lines += ["### Sampling quality against held-out real bodies (per sex)", ""]
    lines += ["| sex | samples | n | MMD^2 | permutation p | C2ST accuracy |", "|---|---|---:|---:|---:|---:|"]
    for sex, rows in sampling.items():
        for name, row in rows.items():
            lines.append(
                f"| {sex} | {name} | {row['count']} | {row['mmd2']:.4f} | {row['p_value']:.3f} | {row['c2st_accuracy']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot_training_curves(history: dict[str, list[float]], path: pathlib.Path) -> None:
    """CVAE train/validation loss and GAN Wasserstein estimate per epoch."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("cvae_train_loss", "cvae_validation_loss"):
        if name in history:
            left.plot(history[name], label=name.replace("cvae_", "").replace("_", " "))
    left.set(title="Conditional VAE: negative ELBO per subject", xlabel="epoch", ylabel="loss")
    left.legend()
    if "gan_wasserstein" in history:
        right.plot(history["gan_wasserstein"], label="critic's Wasserstein estimate")
    right.set(title="Conditional WGAN-GP", xlabel="epoch")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_samples(model: BodyModel, split: Split, seed: int, path: pathlib.Path) -> None:
    """Stature against weight and waist against hips for real test bodies, VAE and GAN samples."""
    pairs = [("stature", "weight"), ("waist_circumference", "hip_circumference")]
    figure, axes = plt.subplots(len(pairs), 3, figsize=(13, 8), sharex="row", sharey="row")
    sources = {"real (test)": (split.test["sex"].tolist(), split.test[list(NAMES)].to_numpy(float))}
    for generator in ("vae", "gan"):
        sources[f"{generator} samples"] = model.sample_arrays(len(split.test), seed, None, generator)
    for column, (title, (sexes, values)) in enumerate(sources.items()):
        for row, (x_name, y_name) in enumerate(pairs):
            axis = axes[row, column]
            for sex, colour in zip(SEXES, ("tab:red", "tab:blue")):
                rows = np.array(sexes) == sex
                axis.scatter(values[rows, NAMES.index(x_name)], values[rows, NAMES.index(y_name)], s=4, alpha=0.4, c=colour, label=sex)
            axis.set(title=title if row == 0 else None, xlabel=f"{x_name} ({BY_NAME[x_name].unit})", ylabel=f"{y_name} ({BY_NAME[y_name].unit})")
    axes[0, 0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def format_summary(sampling_by_seed: dict[int, dict]) -> str:
    """C2ST accuracy per seed and sex for every sample source (0.5 = indistinguishable from real)."""
    lines = [
        "### Classifier two-sample accuracy per split seed and sex (held-out test bodies; 0.5 = indistinguishable)",
        "",
        "| seed | sex | " + " | ".join(SUMMARY_COLUMNS.values()) + " |",
        "|---|---|" + "---:|" * len(SUMMARY_COLUMNS),
    ]
    for seed, sampling in sampling_by_seed.items():
        for sex, rows in sampling.items():
            cells = " | ".join(f"{rows[name]['c2st_accuracy']:.3f}" for name in SUMMARY_COLUMNS)
            lines.append(f"| {seed} | {sex} | {cells} |")
    return "\n".join(lines) + "\n"


def evaluate_seed(arguments: argparse.Namespace, seed: int) -> tuple[str, dict]:
    """Train and evaluate on one split seed; write its files under ``seed-S/``; return its report and sampling."""
    out = arguments.out / f"seed-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    split = split_subjects(load_subset(), seed=seed)
    config = BodyModelConfig(calibration_folds=arguments.calibration_folds)
    started = time.perf_counter()
    model = BodyModel.train(
        split.train, config, arguments.epochs, seed, not arguments.quiet, split.validation,
        gan_epochs=arguments.gan_epochs,
    )
    training_seconds = time.perf_counter() - started
    model.save(out / "model")
    inference = evaluate_inference(model, split)
    sampling = evaluate_sampling(model, split, seed)
    test_counts = split.test["sex"].value_counts().to_dict()
    header = (
        f"## Split seed {seed}\n\ntrain {len(split.train)}, validation {len(split.validation)}, test "
        f"{len(split.test)} subjects; CVAE {arguments.epochs} epochs, GAN {arguments.gan_epochs} epochs, "
        f"{arguments.calibration_folds} calibration fold(s), training {training_seconds:.0f} s on "
        f"{torch.get_num_threads()} threads\n\n"
    )
    report = header + format_report(inference, sampling, test_counts)
    (out / "report.md").write_text(report)
    metrics = {
        "training_seconds": training_seconds, "epochs": arguments.epochs, "gan_epochs": arguments.gan_epochs,
        "calibration_folds": arguments.calibration_folds, "inference": inference, "sampling": sampling,
        "interval_scale": model.interval_scale.tolist(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot_training_curves(model.history, out / "training_curves.png")
    plot_samples(model, split, seed, out / "samples.png")
    return report, sampling


def main(argv: list[str] | None = None) -> int:
    """Train on the train split of each seed, evaluate on its test split, print and write the report."""
    parser = argparse.ArgumentParser(prog="python -m tryon.services.body.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("var/body-eval"), help="output folder")
    parser.add_argument("--epochs", type=int, default=300, help="CVAE epochs")
    parser.add_argument("--gan-epochs", type=int, default=60, help="GAN epochs")
    parser.add_argument(
        "--seed", type=int, nargs="+", default=[0], help="seeds of the splits, the training and the samples"
    )
    parser.add_argument(
        "--calibration-folds", type=int, default=BodyModelConfig().calibration_folds,
        help="folds of out-of-fold answers for the interval scales (1: validation subjects only, fastest)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_results_option(parser)
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    reports, sampling_by_seed = [], {}
    for seed in arguments.seed:
        report, sampling_by_seed[seed] = evaluate_seed(arguments, seed)
        reports.append(report)
    report = "## Body model evaluation\n\n" + format_summary(sampling_by_seed) + "\n" + "\n".join(reports)
    (arguments.out / "report.md").write_text(report)
    print(report)
    first = arguments.out / f"seed-{arguments.seed[0]}"
    record(
        arguments.results, "evaluate_body", "Body model evaluation on held-out ANSUR II subjects", report,
        command=command_line(argv, module="tryon.services.body.evaluate"),
        pictures=[first / "samples.png", first / "training_curves.png"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
