"""Returns and NDCG@20 with and without fit-aware ranking, on simulated outfit sessions.

THESE DATA ARE SIMULATED (``simulator.OutfitSessionSimulator``): shoppers with ANSUR II bodies buy
outfits by hidden style rules and send back what does not fit their real body; a storefront
measures this on its own event log. The command:

    python -m tryon.services.recommendation.fit_evaluation [--garments 2000] [--shoppers 400] \
        [--sessions 3] [--samples 200] [--fit-weights 1,0.25] [--seed 0] [--results docs/results.md]

1. simulates ``--sessions`` sessions per shopper and trains the recommender on them (Mult-VAE
   and the compatibility space, as ``train`` does), then feeds it the same log as live history;
2. gives BodyService's body model what each shopper would type in (sex, stature and weight, with
   or without chest, waist and hip girths as the shopper measures them, each off by about 3%), draws
   ``--samples`` posterior samples and computes the fit profile BodyService publishes in
   BodyUpdated (``sizing.fit_profile``): the recommender never sees a measurement;
3. in one more session per shopper, the storefront shows the shopper's 20 best garments of each
   outfit role (RecommendGarments by role, with or without the body) and the shopper buys an
   outfit among them, weighing garments by their own hidden taste; with fit the shopper takes the
   advised size, else the size they pick themselves. Returns per 100 purchases come from the
   simulator's truth (the size bought against the real body);
4. NDCG@20 of RecommendGarments (all categories, with or without the body) against the garments
   the shopper bought in three held-out sessions simulated without any recommender.

It also measures what the fit profiles cost: bytes of BodyUpdated with and without the profile,
and milliseconds to compute a profile from posterior samples.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from importlib import resources

import numpy as np

from tryon.services.recommendation.catalogue import Catalogue, synthetic_catalogue
from tryon.services.recommendation.fit import ChartFit
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.outfits import OUTFIT_FORMS, ROLE_CATEGORIES, ROLES
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.simulator import OutfitSessionSimulator, SessionShopper
from tryon.services.recommendation.train import SERVING_CONFIG, train_artifacts

HELD_OUT_SESSIONS = 3
"""Sessions per shopper, simulated without a recommender, whose purchases are NDCG@20's relevant garments."""
SHOWN_PER_ROLE = 20
"""Garments of each outfit role the storefront shows a shopper."""
TOLD = ("chest_circumference", "waist_circumference", "hip_circumference")
"""Girths a shopper measures and types in besides stature and weight."""


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 20) -> float:
    """Binary-relevance NDCG@k of a ranking."""
    gains = sum(1.0 / np.log2(rank + 2) for rank, g in enumerate(ranked[:k]) if g in relevant)
    ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return gains / ideal if ideal else 0.0


def _body_model():
    from tryon.services.body.body_model import BodyModel

    with resources.as_file(resources.files("tryon.services.body").joinpath("weights", "model")) as folder:
        return BodyModel.load(folder)


TOLD_MODES = {
    "girths": "sex, stature, weight and chest, waist and hip girths as measured by themselves (about 3% off)",
    "basic": "sex, stature and weight only",
}
"""What a shopper types into BodyService, by mode."""


def _told(simulator: OutfitSessionSimulator, shopper: SessionShopper, mode: str) -> dict[str, float]:
    perceived = simulator.perceived(shopper)
    girths = {name: perceived[name] for name in TOLD} if mode == "girths" else {}
    return {"stature": shopper.body["stature"], "weight": shopper.body["weight"], **girths}


def _profile_message(profile: dict[str, ChartFit]):
    from tryon.shared.proto import common_pb2

    return [
        common_pb2.ChartFit(
            chart_id=chart, size_labels=fit.labels, probabilities=fit.probabilities, recommended_size=fit.recommended
        )
        for chart, fit in profile.items()
    ]


def _create_body_cost(model, repeats: int = 10) -> tuple[float, float, float, float]:
    """Median CreateBody and first-AdviseSize milliseconds in BodyService's domain, without and with fit profiles.

    With events, CreateBody draws the service's default 2,000 posterior samples for the profile and
    keeps them, so the first AdviseSize reuses them; without, the first AdviseSize draws them.
    """
    import tempfile
    from pathlib import Path

    from tryon.services.body.domain import BodyDomain
    from tryon.services.body.settings import BodySettings
    from tryon.services.body.store import BodyStore

    class Discard:
        def body_updated(self, *arguments, **options):
            pass

        def body_deleted(self, body_id):
            pass

    figures = []
    with tempfile.TemporaryDirectory() as folder:
        for events in (None, Discard()):
            domain = BodyDomain(model, BodyStore(Path(folder) / str(len(figures))), events,
                                advice_samples=BodySettings.advice_samples)
            creates, advices = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                record = domain.create_body([("stature", 1700.0), ("weight", 70.0)], "female")
                creates.append(1e3 * (time.perf_counter() - started))
                started = time.perf_counter()
                domain.advise_size(record.body_id, "eu_womens_tops", ())
                advices.append(1e3 * (time.perf_counter() - started))
            figures += [float(np.median(creates)), float(np.median(advices))]
    return tuple(figures)


def _choose(simulator, shopper, shown: dict[str, list[str]], taste: np.ndarray, catalogue: Catalogue) -> list[int]:
    """The outfit the shopper buys among the garments shown, by their own hidden taste."""
    rng = simulator.rng
    has_dress = bool(shown["dress"])
    form = OUTFIT_FORMS[1] if has_dress and shopper.sex == "female" and rng.random() < 0.3 else OUTFIT_FORMS[0]
    chosen = []
    for role in form:
        pool = np.array([catalogue.position[g] for g in shown[role]], dtype=np.int64)
        if len(pool) == 0:
            continue
        weights = taste[pool] * simulator._cut_weight[shopper.sex][pool]
        chosen.append(int(rng.choice(pool, p=weights / weights.sum())))
    return chosen


def evaluate(arguments: argparse.Namespace) -> str:
    """Simulate, train, measure both arms; returns the markdown report."""
    from tryon.services.body.sizing import fit_profile
    from tryon.shared.proto import events_pb2

    base = synthetic_catalogue(arguments.garments, 16, seed=arguments.seed)
    simulator = OutfitSessionSimulator(base, seed=arguments.seed)
    catalogue = Catalogue(
        [replace(g, size_chart_id=str(chart)) for g, chart in zip(base.garments, simulator.chart_ids)]
    )
    simulator.catalogue = catalogue
    shoppers = simulator.make_shoppers(arguments.shoppers)
    log, _ = simulator.sessions(shoppers, arguments.sessions)
    held_out, _ = simulator.sessions(shoppers, HELD_OUT_SESSIONS)
    started = time.perf_counter()
    config = replace(SERVING_CONFIG, epochs=30)
    recommender = Recommender(train_artifacts(log, catalogue, config, progress=not arguments.quiet))
    training_seconds = time.perf_counter() - started
    for user, garment, kind in zip(log["user_id"], log["garment_id"], log["type"]):
        recommender.apply_interaction(user, garment, InteractionKind[kind])

    model = _body_model()
    profile_ms, sample_ms, sizes = [], [], []
    for mode in TOLD_MODES:
        for number, shopper in enumerate(shoppers):
            observed = _told(simulator, shopper, mode)
            started = time.perf_counter()
            samples = model.posterior_samples(observed, shopper.sex, arguments.samples, arguments.seed + number)
            sample_ms.append(1e3 * (time.perf_counter() - started))
            started = time.perf_counter()
            profile = {chart: ChartFit(*entry) for chart, entry in fit_profile(samples).items()}
            profile_ms.append(1e3 * (time.perf_counter() - started))
            recommender.set_body(f"body-{mode}-{shopper.shopper.user_id}", 0, [0.0] * 16, profile)
            bare = events_pb2.BodyUpdated(event_id="0" * 32, body_id="0" * 36, sex=1, body_latent=[0.5] * 16)
            sizes.append((len(bare.SerializeToString()), len(replace_profile(bare, _profile_message(profile)))))

    arms = {"taste only (no body), own size": ("", 0.0, False)}
    for mode in TOLD_MODES:
        for weight in arguments.fit_weights:
            arms[f"{mode}: taste + {weight:g} x ln(fit), advised size"] = (mode, weight, True)
            arms[f"{mode}: taste + {weight:g} x ln(fit), own size"] = (mode, weight, False)
    rows = []
    relevant = {
        user: set(group["garment_id"])
        for user, group in held_out[held_out["type"] == "PURCHASE"].groupby("user_id")
    }
    for name, (mode, weight, advised) in arms.items():
        with_fit = weight > 0
        recommender.fit_weight = weight
        simulator.rng = np.random.default_rng(arguments.seed + 101)
        purchases = returns = 0
        ndcgs = []
        for shopper in shoppers:
            user = shopper.shopper.user_id
            body_id = f"body-{mode}-{user}" if with_fit else ""
            ranked = recommender.recommend(user, 20, body_id=body_id)
            ndcgs.append(ndcg_at([item.garment_id for item in ranked.garments], relevant.get(user, set())))
            shown, advice = {}, {}
            for role in ROLES:
                items = recommender.recommend(user, SHOWN_PER_ROLE, ROLE_CATEGORIES[role], body_id=body_id).garments
                shown[role] = [item.garment_id for item in items]
                advice.update({item.garment_id: item.advised_size for item in items})
            taste = simulator.browsing.view_probabilities(shopper.shopper)
            for position in _choose(simulator, shopper, shown, taste, catalogue):
                size = (advice.get(catalogue.garment_ids[position]) or None) if advised else None
                bought = simulator.buy(shopper, f"{user}/eval", position, size)
                purchases += 1
                returns += bought.returned
        rows.append((name, 100.0 * returns / purchases, float(np.mean(ndcgs)), purchases))
    create_plain, advise_plain, create_fit, advise_fit = _create_body_cost(model)
    base_returns, base_ndcg = rows[0][1], rows[0][2]
    bare_bytes, full_bytes = np.mean([s[0] for s in sizes]), np.mean([s[1] for s in sizes])
    lines = [
        "SIMULATED data (`OutfitSessionSimulator`; a storefront measures this on its own event log). "
        f"{arguments.garments} garments ({', '.join(sorted(set(map(str, simulator.chart_ids)) - {''}))} charts; "
        f"shoes none), {arguments.shoppers} shoppers with ANSUR II bodies, {arguments.sessions} training sessions "
        f"each; recommender trained in {training_seconds:.0f} s. Each shopper tells BodyService's model either "
        + " or ".join(f"{description} ({mode})" for mode, description in TOLD_MODES.items())
        + f"; {arguments.samples} posterior samples give the fit profile. One evaluation session per shopper: the "
        f"storefront shows the {SHOWN_PER_ROLE} best garments of each role and the shopper buys an outfit among "
        f"them by their hidden taste. NDCG@20: RecommendGarments against the purchases of {HELD_OUT_SESSIONS} held-out sessions.",
        "",
        "| ranking, size bought | purchases | returns per 100 purchases | change | NDCG@20 | change |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {count} | {returns:.1f} | {100 * (returns - base_returns) / base_returns:+.0f}% | "
            f"{ndcg:.4f} | {100 * (ndcg - base_ndcg) / base_ndcg if base_ndcg else 0.0:+.1f}% |"
            for name, returns, ndcg, count in rows
        ),
        "",
        f"Goal: at least 30% fewer returns for at most 2% less NDCG@20. Cost of carrying the profile: "
        f"BodyUpdated grows from {bare_bytes:.0f} to {full_bytes:.0f} bytes ({len(fit_profile_charts())} charts, "
        f"{sum(len(c.sizes) for c in fit_profile_charts())} sizes); BodyService computes a profile from posterior "
        f"samples in {np.median(profile_ms):.1f} ms (median), after drawing {arguments.samples} samples in "
        f"{np.median(sample_ms):.0f} ms (median). In BodyService's domain with its default 2,000 samples, CreateBody "
        f"takes {create_plain:.0f} ms without the profile and {create_fit:.0f} ms with it, and the first "
        f"AdviseSize after it {advise_plain:.0f} ms and {advise_fit:.1f} ms (the samples drawn for the profile are "
        "kept for it; medians of 10). The recommender adds no call on the request path: a dictionary lookup per "
        "garment.",
    ]
    return "\n".join(lines)


def replace_profile(event, profile) -> bytes:
    """``event`` serialised with ``profile`` as its fit_profile."""
    copy = type(event)()
    copy.CopyFrom(event)
    copy.fit_profile.extend(profile)
    return copy.SerializeToString()


def fit_profile_charts():
    """The shipped charts a fit profile covers."""
    from tryon.services.body.sizing import shipped_charts

    return list(shipped_charts().values())


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: the returns / NDCG@20 table with and without fit."""
    from tryon.shared.results import add_results_option, record

    parser = argparse.ArgumentParser(description="Returns and NDCG@20 with and without fit-aware ranking (simulated).")
    parser.add_argument("--garments", type=int, default=2000)
    parser.add_argument("--shoppers", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=3, help="training sessions per shopper")
    parser.add_argument("--samples", type=int, default=200, help="posterior samples per body")
    parser.add_argument(
        "--fit-weights", type=lambda text: [float(w) for w in text.split(",")], default=[1.0, 0.25],
        help="weights of ln(fit probability) to compare, comma-separated (the service uses fit.FIT_WEIGHT)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_results_option(parser)
    arguments = parser.parse_args(argv)
    report = evaluate(arguments)
    print(report)
    record(arguments.results, "fit_ranking", "Fit-aware ranking: returns and NDCG@20 on simulated sessions", report, command=None)


if __name__ == "__main__":
    main()
