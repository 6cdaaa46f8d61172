"""Returns and NDCG@20 with and without fit-aware ranking, on simulated outfit sessions.

THESE DATA ARE SIMULATED (``simulator.OutfitSessionSimulator``): shoppers with ANSUR II bodies buy
outfits by hidden style rules and send back what does not fit their real body, saying whether it
was too small or too large; a share of garments runs one size small or large against its chart,
hidden from everyone. A storefront measures this on its own event log. The command:

    python -m tryon.services.recommendation.fit_evaluation [--garments 1000] [--shoppers 200] \
        [--sessions 10] [--samples 200] [--eval-sessions 5] [--offset-shares 0,0.25,0.5] [--thresholds 0.01] \
        [--fit-weights 0.1] [--seed 0] [--results docs/results.md]

1. gives BodyService's body model what each shopper would type in (sex, stature and weight, with
   or without chest, waist and hip girths as the shopper measures them, each off by about 3%), draws
   ``--samples`` posterior samples and computes the fit profile BodyService publishes in
   BodyUpdated (``sizing.fit_profile``): the recommender never sees a measurement;
2. for every share of off-size garments, simulates ``--sessions`` sessions per shopper and trains
   the recommender on them (Mult-VAE and the compatibility space, as ``train`` does), feeds it the
   same log as live history, and lets it learn each garment's size offset and the size each body
   wears per chart from that log's sized purchases and returns with their reasons
   (``fit.SizeOffsets``, the body id of each buyer known);
3. in ``--eval-sessions`` more sessions per shopper, the storefront shows the shopper's 20 best garments of each
   outfit role (RecommendGarments by role, with or without the body) and the shopper buys an
   outfit among them, weighing garments by their own hidden taste; with a body the shopper takes
   the advised size, else the size they pick themselves. Returns per 100 purchases come from the
   simulator's truth (the size bought, as the garment is really cut, against the real body);
4. NDCG@20 of RecommendGarments (all categories, with or without the body) against the garments
   the shopper bought in three held-out sessions simulated without any recommender, and against
   those of them the shopper kept (a garment sent back is a purchase the storefront loses).

It also measures what the fit profiles cost: bytes of BodyUpdated with and without the profile,
milliseconds to compute a profile from posterior samples, and microseconds to learn from one event.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from importlib import resources

import numpy as np

from tryon.services.recommendation.catalogue import Catalogue, synthetic_catalogue
from tryon.services.recommendation.fit import OFFSETS, SIZE_STEPS, ChartFit, SizeOffsets
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.outfits import OUTFIT_FORMS, ROLE_CATEGORIES, ROLES
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.simulator import OutfitSessionSimulator, SessionShopper, self_chosen_size
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


def _told(shopper: SessionShopper, mode: str, rng: np.random.Generator, error: float) -> dict[str, float]:
    """What the shopper types in: stature and weight, and in mode "girths" their own measure of the girths."""
    girths = {name: shopper.body[name] * (1.0 + error * rng.normal()) for name in TOLD} if mode == "girths" else {}
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


def _profiles(arguments, simulator, shoppers, model) -> tuple[dict, dict]:
    """Each shopper's fit profile per told mode, as BodyService computes it, and what that cost."""
    from tryon.services.body.sizing import fit_profile
    from tryon.shared.proto import events_pb2

    rng = np.random.default_rng(arguments.seed + 55)
    profiles, sample_ms, profile_ms, sizes = {}, [], [], []
    for mode in TOLD_MODES:
        for number, shopper in enumerate(shoppers):
            observed = _told(shopper, mode, rng, simulator.self_error)
            started = time.perf_counter()
            samples = model.posterior_samples(observed, shopper.sex, arguments.samples, arguments.seed + number)
            sample_ms.append(1e3 * (time.perf_counter() - started))
            started = time.perf_counter()
            profile = {chart: ChartFit(*entry) for chart, entry in fit_profile(samples).items()}
            profile_ms.append(1e3 * (time.perf_counter() - started))
            profiles[mode, shopper.shopper.user_id] = profile
            bare = events_pb2.BodyUpdated(event_id="0" * 32, body_id="0" * 36, sex=1, body_latent=[0.5] * 16)
            sizes.append((len(bare.SerializeToString()), len(replace_profile(bare, _profile_message(profile)))))
    cost = {
        "sample_ms": float(np.median(sample_ms)), "profile_ms": float(np.median(profile_ms)),
        "bare_bytes": float(np.mean([b for b, _ in sizes])), "full_bytes": float(np.mean([f for _, f in sizes])),
    }
    return profiles, cost


def _learn_offsets(recommender: Recommender, log, mode: str) -> tuple[SizeOffsets, float]:
    """The size offsets the recommender learns from the log's sized purchases and returns, and microseconds per event."""
    from tryon.shared.proto import common_pb2

    recommender.size_offsets = SizeOffsets()
    sized = log[log["type"].isin(["PURCHASE", "RETURN"])]
    started = time.perf_counter()
    for user, garment, kind, size, reason in zip(
        sized["user_id"], sized["garment_id"], sized["type"], sized["size"], sized["return_reason"]
    ):
        reason_value = common_pb2.ReturnReason.Value(f"RETURN_REASON_{reason}") if reason else 0
        recommender.learn_fit(user, garment, InteractionKind[kind], size, reason_value, f"body-{mode}-{user}")
    return recommender.size_offsets, 1e6 * (time.perf_counter() - started) / max(len(sized), 1)


def _true_offsets(simulator) -> SizeOffsets:
    """Offsets known for certain: the simulator's hidden truth, for the ceiling of what learning them can give."""
    certain = {
        garment: [0.0 if offset == truth else -1e9 for offset in OFFSETS]
        for garment, truth, chart in zip(simulator.catalogue.garment_ids, simulator.size_offsets, simulator.chart_ids)
        if chart
    }
    return SizeOffsets.from_state({"log_likelihood": certain})


def _offset_accuracy(offsets: SizeOffsets, simulator, log) -> str:
    """How many of the off-size garments bought in the log were found, and how many true ones were flagged."""
    bought = set(log.loc[(log["type"] == "PURCHASE") & (log["size"] != ""), "garment_id"])
    truth = {g: int(simulator.size_offsets[simulator.catalogue.position[g]]) for g in bought}
    off = [g for g, d in truth.items() if d]
    true = [g for g, d in truth.items() if not d]
    found = sum(offsets.offset(g) == truth[g] for g in off)
    flagged = sum(offsets.offset(g) != 0 for g in true)
    return (
        f"{found} of {len(off)} off-size garments bought with a size learned right, "
        f"{flagged} of {len(true)} true-size ones flagged"
    )


def _flagged_size(simulator, shopper, position: int, size_offset: int) -> str | None:
    """The size the shopper picks alone, moved by the garment's learned offset ("runs small: one size up")."""
    chart_id = simulator.chart_ids[position]
    if not chart_id:
        return None
    chart = simulator.charts[chart_id]
    own = chart.sizes.index(self_chosen_size(chart, simulator.perceived(shopper)))
    moved = min(max(own - size_offset * SIZE_STEPS.get(chart_id, 1), 0), len(chart.sizes) - 1)
    return chart.sizes[moved].label


def _arm(recommender, simulator, shoppers, catalogue, relevant, arguments, body_prefix: str, sizing: str):
    """Returns per 100 purchases, NDCG@20 against all and against kept purchases, and purchases of one arm.

    ``sizing``: "own" (the shopper's own pick), "advised" (the advised size) or "flagged" (the
    shopper's own pick moved by the garment's learned size offset). ``relevant`` maps a shopper to
    the held-out garments bought and to those of them kept.
    """
    simulator.rng = np.random.default_rng(arguments.seed + 101)
    purchases = returns = 0
    ndcgs: list[tuple[float, float]] = []
    for shopper in shoppers:
        user = shopper.shopper.user_id
        body_id = f"{body_prefix}{user}" if body_prefix else ""
        ranked = [item.garment_id for item in recommender.recommend(user, 20, body_id=body_id).garments]
        bought_ids, kept_ids = relevant.get(user, (set(), set()))
        ndcgs.append((ndcg_at(ranked, bought_ids), ndcg_at(ranked, kept_ids)))
        shown, advice = {}, {}
        for role in ROLES:
            items = recommender.recommend(user, SHOWN_PER_ROLE, ROLE_CATEGORIES[role], body_id=body_id).garments
            shown[role] = [item.garment_id for item in items]
            advice.update({item.garment_id: item for item in items})
        taste = simulator.browsing.view_probabilities(shopper.shopper)
        for session in range(arguments.eval_sessions):
            for position in _choose(simulator, shopper, shown, taste, catalogue):
                item = advice[catalogue.garment_ids[position]]
                size = None
                if sizing == "advised":
                    size = item.advised_size or None
                elif sizing == "flagged":
                    size = _flagged_size(simulator, shopper, position, item.size_offset)
                bought = simulator.buy(shopper, f"{user}/eval{session}", position, size)
                purchases += 1
                returns += bought.returned
    all_ndcg, kept_ndcg = np.mean(ndcgs, axis=0)
    return 100.0 * returns / purchases, float(all_ndcg), float(kept_ndcg), purchases


def _evaluate_share(arguments, share: float, profiles: dict) -> tuple[list[str], float, float]:
    """The table of one share of off-size garments, the training seconds and microseconds per learned event."""
    base = synthetic_catalogue(arguments.garments, 16, seed=arguments.seed)
    simulator = OutfitSessionSimulator(base, seed=arguments.seed, size_offset_share=share)
    catalogue = Catalogue(
        [replace(g, size_chart_id=str(chart)) for g, chart in zip(base.garments, simulator.chart_ids)]
    )
    simulator.catalogue = catalogue
    shoppers = simulator.make_shoppers(arguments.shoppers)
    log, truth = simulator.sessions(shoppers, arguments.sessions)
    held_out, held_out_truth = simulator.sessions(shoppers, HELD_OUT_SESSIONS)
    started = time.perf_counter()
    # RecommendGarments alone is measured: the log goes in without sessions, so no compatibility space is trained.
    recommender = Recommender(
        train_artifacts(
            log.drop(columns=["session_id"]), catalogue, replace(SERVING_CONFIG, epochs=30), progress=not arguments.quiet
        )
    )
    training_seconds = time.perf_counter() - started
    for user, garment, kind in zip(log["user_id"], log["garment_id"], log["type"]):
        recommender.apply_interaction(user, garment, InteractionKind[kind])
    for (mode, user), profile in profiles.items():
        recommender.set_body(f"body-{mode}-{user}", 0, [0.0] * 16, profile)
    held_out_kept = held_out_truth[~held_out_truth["returned"]]
    kept = {user: set(group["garment_id"]) for user, group in held_out_kept.groupby("user_id")}
    relevant = {
        user: (set(group["garment_id"]), kept.get(user, set()))
        for user, group in held_out[held_out["type"] == "PURCHASE"].groupby("user_id")
    }

    def run(name, body_prefix, sizing, offsets, threshold=-1.0, weight=0.0):
        recommender.size_offsets, recommender.fit_threshold, recommender.fit_weight = offsets, threshold, weight
        rows.append((name, *_arm(recommender, simulator, shoppers, catalogue, relevant, arguments, body_prefix, sizing)))

    rows: list[tuple] = []
    learned, notes, learn_us = {}, [], []
    for mode in TOLD_MODES:
        learned[mode], microseconds = _learn_offsets(recommender, log, mode)
        learn_us.append(microseconds)
        notes.append(f"{mode}: {_offset_accuracy(learned[mode], simulator, log)}")
    run("taste only (no body), own size", "", "own", SizeOffsets())
    for mode in TOLD_MODES:
        prefix = f"body-{mode}-"
        run(f"{mode}: taste only, the profile's size (nothing learned)", prefix, "advised", SizeOffsets())
        run(f"{mode}: taste only, size corrected for the true garment offsets", prefix, "advised", _true_offsets(simulator))
        garments_only = SizeOffsets.from_state({**learned[mode].state(), "size_log_likelihood": []})
        run(f"{mode}: taste only, size corrected for learned garment offsets", prefix, "advised", garments_only)
        run(f"{mode}: taste only, size corrected for learned offsets and bodies", prefix, "advised", learned[mode])
        run(f"{mode}: taste only, own size moved by the learned size_offset", prefix, "flagged", learned[mode])
        for threshold in arguments.thresholds:
            run(f"{mode}: demote p < {threshold:g}, own size moved by size_offset", prefix, "flagged", learned[mode], threshold)
            run(f"{mode}: demote p < {threshold:g}, size corrected for offsets and bodies", prefix, "advised", learned[mode], threshold)
        for weight in arguments.fit_weights:
            run(f"{mode}: taste + {weight:g} x ln(fit), corrected size", prefix, "advised", learned[mode], -1.0, weight)
    base_returns, base_all, base_kept = rows[0][1], rows[0][2], rows[0][3]

    def change(value: float, base: float) -> str:
        return f"{100 * (value - base) / base if base else 0.0:+.1f}%"

    lines = [
        f"**{share:.0%} of garments with a chart run one size small or large** "
        f"({int(np.count_nonzero(simulator.size_offsets))} garments; training log: {len(truth)} purchases, "
        f"{100 * truth['returned'].mean():.1f} returns per 100, "
        f"{(log['type'] == 'RETURN').sum()} returns with a reason; held-out sessions: "
        f"{len(held_out_truth)} purchases, {100 * held_out_truth['returned'].mean():.1f} returned). "
        "Offsets learned from the training log: " + "; ".join(notes) + ".",
        "",
        "| ranking, size bought | purchases | returns per 100 purchases | change | NDCG@20, all purchases | change "
        "| NDCG@20, kept purchases | change |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {count} | {returns:.1f} | {100 * (returns - base_returns) / base_returns:+.0f}% | "
            f"{all_ndcg:.4f} | {change(all_ndcg, base_all)} | {kept_ndcg:.4f} | {change(kept_ndcg, base_kept)} |"
            for name, returns, all_ndcg, kept_ndcg, count in rows
        ),
        "",
    ]
    return lines, training_seconds, float(np.mean(learn_us))


def evaluate(arguments: argparse.Namespace) -> str:
    """Simulate, train and measure every arm for every share of off-size garments; returns the markdown report."""
    model = _body_model()
    base = synthetic_catalogue(arguments.garments, 16, seed=arguments.seed)
    simulator = OutfitSessionSimulator(base, seed=arguments.seed)
    shoppers = simulator.make_shoppers(arguments.shoppers)
    profiles, cost = _profiles(arguments, simulator, shoppers, model)
    tables, trainings, learning = [], [], []
    for share in arguments.offset_shares:
        lines, seconds, microseconds = _evaluate_share(arguments, share, profiles)
        tables += lines
        trainings.append(seconds)
        learning.append(microseconds)
    create_plain, advise_plain, create_fit, advise_fit = _create_body_cost(model)
    charts = sorted(set(map(str, simulator.chart_ids)) - {""})
    lines = [
        "SIMULATED data (`OutfitSessionSimulator`; a storefront measures this on its own event log). "
        f"{arguments.garments} garments ({', '.join(charts)} charts; shoes none), {arguments.shoppers} shoppers "
        f"with ANSUR II bodies, {arguments.sessions} training sessions each; the recommender trained in "
        f"{np.median(trainings):.0f} s (median). Each shopper tells BodyService's model either "
        + " or ".join(f"{description} ({mode})" for mode, description in TOLD_MODES.items())
        + f"; {arguments.samples} posterior samples give the fit profile. The recommender learns each garment's "
        "size offset and the size each body wears per chart from the training log's purchases (size bought, "
        "buyer's body id) and returns (reason), reading only fit profiles; 'garment offsets' rows ignore what "
        f"the bodies taught. {arguments.eval_sessions} evaluation sessions per shopper: the storefront "
        f"shows the {SHOWN_PER_ROLE} best garments of each role and the shopper buys an outfit among them by their "
        "hidden taste, in the advised size when a body is given. NDCG@20: RecommendGarments against the garments "
        f"bought in {HELD_OUT_SESSIONS} held-out sessions (all purchases, and only those kept, i.e. not sent back). "
        "'demote p < t' puts garments whose advised size fits with "
        "probability under t after the others, in taste order; 'taste + w x ln(fit)' is the service's rule, "
        "whose w is fit.FIT_WEIGHT.",
        "",
        *tables,
        f"Goal: at least 30% fewer returns for at most 2% less NDCG@20. Cost of carrying the profile: "
        f"BodyUpdated grows from {cost['bare_bytes']:.0f} to {cost['full_bytes']:.0f} bytes "
        f"({len(fit_profile_charts())} charts, {sum(len(c.sizes) for c in fit_profile_charts())} sizes); "
        f"BodyService computes a profile from posterior samples in {cost['profile_ms']:.1f} ms (median), after "
        f"drawing {arguments.samples} samples in {cost['sample_ms']:.0f} ms (median). In BodyService's domain with "
        f"its default 2,000 samples, CreateBody takes {create_plain:.0f} ms without the profile and "
        f"{create_fit:.0f} ms with it, and the first AdviseSize after it {advise_plain:.0f} ms and "
        f"{advise_fit:.1f} ms (the samples drawn for the profile are kept for it; medians of 10). The recommender "
        "adds no call on the request path: a dictionary lookup per garment; learning from a purchase or return "
        f"takes {np.mean(learning):.0f} microseconds (mean over the training logs' sized events).",
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
    parser.add_argument("--garments", type=int, default=1000)
    parser.add_argument("--shoppers", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=10, help="training sessions per shopper")
    parser.add_argument("--samples", type=int, default=200, help="posterior samples per body")
    parser.add_argument(
        "--eval-sessions", type=int, default=5,
        help="evaluation sessions per shopper among the garments shown (more purchases, less noise in returns)",
    )
    numbers = lambda text: [float(w) for w in text.split(",") if w]  # noqa: E731
    parser.add_argument(
        "--offset-shares", type=numbers, default=[0.0, 0.25, 0.5],
        help="shares of garments with a chart that run one size small or large, comma-separated",
    )
    parser.add_argument(
        "--thresholds", type=numbers, default=[0.01],
        help="fit probabilities under which a garment is demoted, comma-separated (the service uses fit.FIT_THRESHOLD)",
    )
    parser.add_argument(
        "--fit-weights", type=numbers, default=[0.1],
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
