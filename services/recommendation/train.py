"""Train command: interactions + catalogue -> the served model, cold-start map and FAISS indexes.

    python -m tryon.services.recommendation.train --interactions FILE --catalogue FILE --out DIR \
        [--index-factory Flat|IVF256,Flat|IVF256,SQfp16|HNSW32] [--epochs N] [--seed N] [--evaluate-shoppers N]

The served model is the family the MovieLens-100K evaluation picked (``SERVING_FAMILY``, today
RecVAE), trained the way it was evaluated (``families.train_family``): a tenth of the shoppers, at
most ``families.VALIDATION_USERS``, are held out, fold in 80% of their garments, and the epoch
whose NDCG@100 on the other 20% is best is kept, stopping after the family's patience. Under
``torchrun --nproc_per_node N -m tryon.services.recommendation.train ...`` a Mult-VAE trains on N
processes with DistributedDataParallel (see ``trainer``), the same model as on one; rank 0 writes
the artifacts.

Interactions are read with pandas from Parquet or CSV (columns user_id, garment_id, type;
type is VIEW, TRY_ON, ADD_TO_CART, PURCHASE or RETURN) and summed per shopper and garment
with ``history.INTERACTION_WEIGHTS``. The model learns a vector for every garment some training
shopper interacted with; a ridge map from content latents to those vectors gives one to every
other garment of the catalogue, and to garments registered later. The training curve is
drawn to ``DIR/training_loss.png``. With ``--evaluate-shoppers N`` (simulated catalogues only)
N fresh simulated shoppers, unseen in training, are served from their first session and
judged on their next one: recall@20 of what they then put in the cart or bought, and the
mean hidden-taste match of the 20 garments shown, against popularity and random picks.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from tryon.services.recommendation.catalogue import Catalogue, read_table
from tryon.services.recommendation.compatibility import train_compatibility
from tryon.services.recommendation.distributed import World, start_distributed, stop_distributed
from tryon.services.recommendation.families import FAMILIES, VALIDATION_USERS, ModelConfig, train_family
from tryon.services.recommendation.history import INTERACTION_WEIGHTS, kind_from_name
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.protocol import StrongGeneralizationSplit, strong_generalization_split
from tryon.services.recommendation.recommender import ColdStartMap, ModelArtifacts, similarity_vectors
from tryon.services.recommendation.simulator import session_outfits

logger = logging.getLogger(__name__)

SERVING_FAMILY = FAMILIES["recvae"]
"""The family the MovieLens-100K evaluation picked: the best NDCG@100 among those within 3% of EASE
(docs/results.md, section evaluate_recommendation; a test checks that this is the recorded pick).
Its configuration was chosen for ML-100K's ~740 training users and ~1,400 items; the service's
simulated shop (1,000 shoppers, 900 of them training, and the garments they touched of 2,000) and
the demo's (800 shoppers, 300 garments) are of that size, so it is kept as evaluated."""
SERVING_CONFIG = SERVING_FAMILY.config
"""The served family's configuration (``--epochs`` and ``TRAIN_EPOCHS`` may change only its epochs)."""


def weighted_matrix(
    interactions: pd.DataFrame, catalogue: Catalogue
) -> tuple[sparse.csr_matrix, list[str], list[str]]:
    """The shopper x garment matrix of summed interaction weights, its user ids and garment ids.

    Columns are the catalogue garments with at least one interaction, in catalogue order;
    interactions with garments outside the catalogue are dropped.
    """
    known = interactions[interactions["garment_id"].isin(catalogue.position)]
    dropped = len(interactions) - len(known)
    if dropped:
        logger.warning("dropped %d interactions with garments outside the catalogue", dropped)
    if known.empty:
        raise ValueError("no interaction names a garment of the catalogue")
    weight_of = {name: INTERACTION_WEIGHTS[kind_from_name(name)] for name in known["type"].unique()}
    weights = known["type"].map(weight_of)
    interacted = set(known["garment_id"])
    garments = [g for g in catalogue.garment_ids if g in interacted]
    users = sorted(known["user_id"].unique())
    column = {g: i for i, g in enumerate(garments)}
    row = {u: i for i, u in enumerate(users)}
    matrix = sparse.coo_matrix(
        (weights.to_numpy(np.float32), (known["user_id"].map(row).to_numpy(), known["garment_id"].map(column).to_numpy())),
        shape=(len(users), len(garments)),
    ).tocsr()
    matrix.sum_duplicates()
    return matrix, users, garments


def plot_training_loss(loss: list[float], path: Path, model_name: str) -> None:
    """Draw the per-epoch training loss of the model ``model_name`` to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(range(1, len(loss) + 1), loss, marker="o", markersize=3)
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss per shopper")
    axes.set_title(f"{model_name} training on the weighted interaction matrix")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def evaluate_on_fresh_shoppers(
    artifacts: ModelArtifacts, catalogue: Catalogue, n_shoppers: int, seed: int = 0, k: int = 20
) -> dict[str, dict[str, float]]:
    """Serve fresh simulated shoppers from one session and judge the answer on their next session.

    Returns, per method (the served model's fold-in, popularity, random), the mean recall@k of the
    garments the shopper then carted or bought (seen ones excluded) and the mean hidden
    taste match in [0, 1] of the k garments shown.
    """
    from tryon.services.recommendation.history import InteractionKind
    from tryon.services.recommendation.recommender import Recommender
    from tryon.services.recommendation.simulator import ShopperSimulator

    simulator = ShopperSimulator(catalogue, seed=seed + 1_000_003)
    recommender = Recommender(artifacts)
    rng = np.random.default_rng(seed)
    wanted = {InteractionKind.ADD_TO_CART, InteractionKind.PURCHASE}
    served = type(artifacts.model).__name__
    figures: dict[str, dict[str, list[float]]] = {m: {"recall": [], "match": []} for m in (served, "popularity", "random")}
    for shopper in simulator.make_shoppers(n_shoppers, id_prefix="evaluation-shopper-"):
        past = list(simulator.session(shopper, 15))
        future = list(simulator.session(shopper, 30))
        seen = {event.garment_id for event in past}
        positives = {event.garment_id for event in future if event.kind in wanted} - seen
        for event in past:
            recommender.histories.record(shopper.user_id, event.garment_id, event.kind)
        match = simulator.match(shopper)
        unseen = [g for g in catalogue.garment_ids if g not in seen]
        answers = {
            served: [item.garment_id for item in recommender.recommend(shopper.user_id, k).garments],
            "popularity": [item.garment_id for item in recommender._popular(k, lambda g: g not in seen)],
            "random": list(rng.choice(unseen, size=k, replace=False)),
        }
        for method, shown in answers.items():
            figures[method]["match"].append(float(np.mean([match[catalogue.position[g]] for g in shown])))
            if positives:
                figures[method]["recall"].append(len(set(shown) & positives) / min(k, len(positives)))
    return {m: {name: float(np.mean(values)) for name, values in f.items()} for m, f in figures.items()}


def hold_out_validation(matrix: sparse.csr_matrix, seed: int) -> StrongGeneralizationSplit:
    """Training shoppers and held-out validation shoppers of a weighted shopper x garment matrix.

    A tenth of the shoppers, at most ``VALIDATION_USERS``, are held out at random as the evaluation's
    validation users are; each folds in 80% of their garments with their weights. Returns cancel
    purchases, so weights at or below zero say nothing liked: they are dropped first (the models clamp
    them to zero anyway). The split's columns are the garments some training shopper liked.
    """
    liked = sparse.csr_matrix(matrix.maximum(0), dtype=np.float32)
    liked.eliminate_zeros()
    n_validation = min(VALIDATION_USERS, liked.shape[0] // 10)
    return strong_generalization_split(liked, n_validation, 0, seed=seed)


def train_artifacts(
    interactions: pd.DataFrame,
    catalogue: Catalogue,
    config: ModelConfig = SERVING_CONFIG,
    index_factory: str = "Flat",
    seed: int = 0,
    progress: bool = True,
    ridge_l2: float = 1.0,
) -> ModelArtifacts:
    """Train everything the service serves from an interactions table and a catalogue."""
    artifacts, _ = train_artifacts_with_history(interactions, catalogue, config, index_factory, seed, progress, ridge_l2)
    return artifacts


def train_artifacts_with_history(
    interactions: pd.DataFrame,
    catalogue: Catalogue,
    config: ModelConfig = SERVING_CONFIG,
    index_factory: str = "Flat",
    seed: int = 0,
    progress: bool = True,
    ridge_l2: float = 1.0,
):
    """``train_artifacts`` and the model's training history (per-epoch loss, validation NDCG@100).

    ``config``'s type says the family (Mult-VAE, RecVAE or CFGAN; the service serves any of them);
    it is trained as the evaluation trains it, on the shoppers ``hold_out_validation`` keeps.
    """
    matrix, _, interacted = weighted_matrix(interactions, catalogue)
    split = hold_out_validation(matrix, seed)
    model_items = [interacted[column] for column in split.item_ids]
    model, history = train_family(split.train, config, seed=seed, progress=progress, validation=split.validation)
    logger.info(
        "trained %s on %d shoppers x %d garments (%d validation shoppers, epoch %d kept), final loss %.3f",
        type(model).__name__, *split.train.shape, split.validation.n_users, history.best_epoch + 1, history.loss[-1],
    )
    trained_vectors = model.item_embeddings()
    trained_rows = [catalogue.position[g] for g in model_items]
    cold_start_map = ColdStartMap.fit(
        catalogue.latents[trained_rows], catalogue.categories[trained_rows], trained_vectors, l2=ridge_l2
    )
    trained = set(model_items)
    untrained = [g for g in catalogue.garment_ids if g not in trained]
    vectors = trained_vectors
    if untrained:
        untrained_rows = [catalogue.position[g] for g in untrained]
        cold_vectors = cold_start_map(catalogue.latents[untrained_rows], catalogue.categories[untrained_rows])
        vectors = np.vstack([trained_vectors, cold_vectors])
    garment_ids = [*model_items, *untrained]
    counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
    popularity = {g: 0.0 for g in untrained} | {g: float(c) for g, c in zip(interacted, counts)}
    artifacts = ModelArtifacts(
        model=model,
        model_items=model_items,
        catalogue=catalogue,
        cold_start_map=cold_start_map,
        popularity=popularity,
        item_index=ItemIndex.build(garment_ids, vectors, index_factory),
        similar_index=ItemIndex.build(garment_ids, similarity_vectors(vectors), index_factory),
        compatibility=_compatibility_from_sessions(interactions, catalogue, seed, progress),
    )
    return artifacts, history


def _compatibility_from_sessions(interactions: pd.DataFrame, catalogue: Catalogue, seed: int, progress: bool):
    """The outfit compatibility model, trained when the log holds outfits bought in one session; else None."""
    outfits = session_outfits(interactions) if "session_id" in interactions else []
    if not outfits:
        return None
    model, losses = train_compatibility(catalogue, outfits, seed=seed, progress=progress)
    logger.info("trained the compatibility space on %d outfits, final loss %.3f", len(outfits), losses[-1])
    return model


def read_interactions(path: Path) -> pd.DataFrame:
    """An interactions table from Parquet or CSV, with the columns the trainer needs."""
    frame = read_table(path, dtype={"user_id": str, "garment_id": str, "type": str})
    missing = {"user_id", "garment_id", "type"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}")
    return frame


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=Path, required=True, help="Parquet or CSV interactions table")
    parser.add_argument("--catalogue", type=Path, required=True, help="Parquet or CSV catalogue table")
    parser.add_argument("--out", type=Path, required=True, help="directory for the model and indexes")
    parser.add_argument("--index-factory", default="Flat", help='FAISS factory string, e.g. "Flat", "IVF256,Flat", "IVF256,SQfp16", "HNSW32"')
    parser.add_argument("--epochs", type=int, default=SERVING_CONFIG.epochs, help="most epochs of the served family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate-shoppers", type=int, default=0,
                        help="judge the model on this many fresh simulated shoppers (simulated catalogues only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    world = start_distributed()
    try:
        _train_and_write(args, world)
    finally:
        stop_distributed()


def _train_and_write(args: argparse.Namespace, world: World) -> None:
    """Train on every rank; rank 0 writes the artifacts, the curve and the figures."""
    started = time.perf_counter()
    interactions = read_interactions(args.interactions)
    catalogue = Catalogue.load(args.catalogue)
    config = replace(SERVING_CONFIG, epochs=args.epochs)
    artifacts, history = train_artifacts_with_history(interactions, catalogue, config, args.index_factory, args.seed)
    if not world.is_main:
        return
    artifacts.save(args.out)
    plot_training_loss(history.loss, args.out / "training_loss.png", type(artifacts.model).__name__)
    print(
        f"trained on {len(interactions)} interactions, {len(artifacts.model_items)} garments with interactions, "
        f"{len(artifacts.item_index)} indexed ({args.index_factory}) in {time.perf_counter() - started:.1f}s -> {args.out}"
    )
    if args.evaluate_shoppers:
        results = evaluate_on_fresh_shoppers(artifacts, catalogue, args.evaluate_shoppers, seed=args.seed)
        print(f"\n{args.evaluate_shoppers} fresh simulated shoppers, top-20 after one 15-view session")
        print(f"{'method':<12} {'recall@20 of next carts/buys':>30} {'mean taste match@20':>20}")
        for method, figures in results.items():
            print(f"{method:<12} {figures['recall']:>30.3f} {figures['match']:>20.3f}")


if __name__ == "__main__":
    main()
