"""Evaluate the body mesh fit on held-out ANSUR II subjects: dimension errors and fit time.

Usage: python -m tryon.services.body.mesh_evaluate [--subjects 300] [--results docs/results.md]

Subjects drawn (seeded) from the project's test split (``dataset.split_subjects``, seed 0; the
regressor never saw a real subject) are fitted from the subject's own measurement set and sex, as BodyService fits
a stored body from its measurements. The fitted mesh is measured as ``mesh.MeshModel.measure``
does and compared with the subject's values for stature, chest, waist and hip girths, inseam and
shoulder breadth: median and 90th percentile of the absolute error in mm, overall and per sex,
and the share of subjects within the goal (median at most 10 mm for stature, 20 mm for girths).
Fit time is the wall time of one ``MeshModel.fit`` (regressor, refinement and the whole mesh) on
one torch thread after start-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tryon.services.body.dataset import load_subset, split_subjects
from tryon.services.body.mesh import DIMENSIONS, PARAMETER_HIGH, PARAMETER_LOW, PARAMETERS, MeshModel
from tryon.services.body.mesh_fit import FITTED
from tryon.shared.results import add_results_option, command_line, record

GOAL_MM = {
    "stature": 10.0,
    "chest_circumference": 20.0,
    "waist_circumference": 20.0,
    "hip_circumference": 20.0,
}
"""The issue's goals for the median error; inseam and shoulder breadth have none."""


def evaluate(model: MeshModel, subjects: int) -> tuple[str, dict]:
    """Fit ``subjects`` held-out subjects; the markdown report and its figures."""
    test = split_subjects(load_subset()).test
    test = test.sample(n=min(subjects, len(test)), random_state=0) if subjects < len(test) else test
    errors, start_errors, seconds, cpu_seconds, at_bound = [], [], [], [], []
    fitted = [PARAMETERS.index(name) for name in FITTED]
    model.fit(test.iloc[0].to_dict(), test.iloc[0]["sex"])  # first call pays lazy set-up, not counted
    for _, subject in test.iterrows():
        values = subject.to_dict()
        started, started_cpu = time.perf_counter(), time.process_time()
        mesh = model.fit(values, subject["sex"])
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - started_cpu)
        errors.append([mesh.measured_mm[name] - values[name] for name in DIMENSIONS])
        at_bound.append(bool(np.any(np.isclose(mesh.parameters[fitted], PARAMETER_LOW[fitted], atol=1e-3)
                                    | np.isclose(mesh.parameters[fitted], PARAMETER_HIGH[fitted], atol=1e-3))))
        start = model.regressor.predict(values, subject["sex"])
        start_errors.append(model.measure(start[None])[0] - [values[name] for name in DIMENSIONS])
    errors, start_errors = np.abs(np.array(errors)), np.abs(np.array(start_errors))
    at_bound = np.array(at_bound)
    large = (errors[:, [DIMENSIONS.index(n) for n in DIMENSIONS if n.endswith("circumference")]] > 20).any(axis=1)
    sexes = test["sex"].to_numpy()
    milliseconds, cpu_milliseconds = np.array(seconds) * 1000, np.array(cpu_seconds) * 1000
    lines = [
        f"{len(test)} held-out subjects ({(sexes == 'female').sum()} women, {(sexes == 'male').sum()} men), "
        "absolute error of the fitted mesh's dimension against the subject's own value, mm:",
        "",
        "| dimension | median | p90 | median women | median men | goal (median) | regressor alone: median, p90 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    figures: dict = {"subjects": len(test)}
    for column, name in enumerate(DIMENSIONS):
        median, p90 = np.median(errors[:, column]), np.percentile(errors[:, column], 90)
        by_sex = [np.median(errors[sexes == sex, column]) for sex in ("female", "male")]
        goal = GOAL_MM.get(name)
        verdict = "-" if goal is None else f"<= {goal:.0f}: {'met' if median <= goal else 'missed'}"
        alone = f"{np.median(start_errors[:, column]):.1f}, {np.percentile(start_errors[:, column], 90):.1f}"
        lines.append(f"| {name} | {median:.1f} | {p90:.1f} | {by_sex[0]:.1f} | {by_sex[1]:.1f} | {verdict} | {alone} |")
        figures[name] = {"median": float(median), "p90": float(p90)}
    lines += [
        "",
        "The dimensions are read on the mesh by `mesh.MeshModel.measure` (convex-hull girths at the bust "
        "point, navel and buttocks, crotch height, acromion breadth), the same measuring the fit aims at; "
        "how closely these mesh definitions reproduce the survey's own tape measurements is not measured "
        "here (the survey has no scans).",
        "",
        f"Subjects with a girth off by more than 20 mm: {int(large.sum())}; of them {int(at_bound[large].sum())} "
        "were fitted with a parameter at a bound of Anny's range (bodies its shape space does not reach).",
        "",
        f"Fit time on one thread (goal: p99 at most 200 ms): wall p50 {np.percentile(milliseconds, 50):.0f} ms, "
        f"p99 {np.percentile(milliseconds, 99):.0f} ms, max {milliseconds.max():.0f} ms; CPU time of the process "
        f"p50 {np.percentile(cpu_milliseconds, 50):.0f} ms, p99 {np.percentile(cpu_milliseconds, 99):.0f} ms "
        "(the wall time includes waiting for a core when the machine is shared; the load average is above).",
    ]
    figures["fit_ms"] = {"p50": float(np.percentile(milliseconds, 50)), "p99": float(np.percentile(milliseconds, 99))}
    return "\n".join(lines) + "\n", figures


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation, print the report and record it when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300, help="held-out subjects to fit (at most the split's)")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache/mesh"), help="the mesh shape space's cache")
    add_results_option(parser)
    options = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = MeshModel.load(options.cache_dir)
    report, _ = evaluate(model, options.subjects)
    sys.stdout.write(report)
    command = command_line(module="tryon.services.body.mesh_evaluate")
    record(options.results, "body_mesh", "Body mesh fitted to held-out ANSUR II subjects", report, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
