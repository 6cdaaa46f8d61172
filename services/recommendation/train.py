"""Train command: interactions + catalogue -> Mult-VAE, cold-start map and FAISS indexes.

    python -m tryon.services.recommendation.train --interactions FILE --catalogue FILE --out DIR \
        [--index-factory Flat|IVF256,Flat|HNSW32] [--epochs N] [--seed N]

Interactions are read with pandas from Parquet or CSV (columns user_id, garment_id, type;
type is VIEW, TRY_ON, ADD_TO_CART, PURCHASE or RETURN) and summed per shopper and garment
with ``history.INTERACTION_WEIGHTS``. Mult-VAE learns a vector for every garment with at
least one interaction; a ridge map from content latents to those vectors gives one to every
other garment of the catalogue, and to garments registered later.
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
from tryon.services.recommendation.history import INTERACTION_WEIGHTS, kind_from_name
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.recommender import ColdStartMap, ModelArtifacts, similarity_vectors
from tryon.services.recommendation.trainer import train_multvae

logger = logging.getLogger(__name__)

SERVING_CONFIG = MultVAEConfig(
    hidden_dims=(200,), latent_dim=64, dropout=0.5, beta_cap=0.2, total_anneal_steps=2000, batch_size=128, epochs=40
)
"""Mult-VAE sized for catalogues of thousands of garments (the paper's 600/200 suits 20k+ items)."""


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
    weights = known["type"].map(lambda name: INTERACTION_WEIGHTS[kind_from_name(name)])
    garments = [g for g in catalogue.garment_ids if g in set(known["garment_id"])]
    users = sorted(known["user_id"].unique())
    column = {g: i for i, g in enumerate(garments)}
    row = {u: i for i, u in enumerate(users)}
    matrix = sparse.coo_matrix(
        (weights.to_numpy(np.float32), (known["user_id"].map(row).to_numpy(), known["garment_id"].map(column).to_numpy())),
        shape=(len(users), len(garments)),
    ).tocsr()
    matrix.sum_duplicates()
    return matrix, users, garments


def train_artifacts(
    interactions: pd.DataFrame,
    catalogue: Catalogue,
    config: MultVAEConfig = SERVING_CONFIG,
    index_factory: str = "Flat",
    seed: int = 0,
    progress: bool = True,
    ridge_l2: float = 1.0,
) -> ModelArtifacts:
    """Train everything the service serves from an interactions table and a catalogue."""
    matrix, _, model_items = weighted_matrix(interactions, catalogue)
    model, history = train_multvae(matrix, config, seed=seed, progress=progress)
    logger.info("trained Mult-VAE on %d shoppers x %d garments, final loss %.3f", *matrix.shape, history.loss[-1])
    trained_vectors = model.item_embeddings()
    trained_latents = catalogue.latents[[catalogue.position[g] for g in model_items]]
    cold_start_map = ColdStartMap.fit(trained_latents, trained_vectors, l2=ridge_l2)
    untrained = [g for g in catalogue.garment_ids if g not in set(model_items)]
    vectors = trained_vectors
    if untrained:
        cold_vectors = cold_start_map(catalogue.latents[[catalogue.position[g] for g in untrained]])
        vectors = np.vstack([trained_vectors, cold_vectors])
    garment_ids = [*model_items, *untrained]
    positive = matrix.maximum(0)
    counts = np.asarray((positive > 0).sum(axis=0)).ravel()
    popularity = {g: float(c) for g, c in zip(model_items, counts)} | {g: 0.0 for g in untrained}
    return ModelArtifacts(
        model=model,
        model_items=model_items,
        catalogue=catalogue,
        cold_start_map=cold_start_map,
        popularity=popularity,
        item_index=ItemIndex.build(garment_ids, vectors, index_factory),
        similar_index=ItemIndex.build(garment_ids, similarity_vectors(vectors), index_factory),
    )


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
    parser.add_argument("--index-factory", default="Flat", help='FAISS factory string, e.g. "Flat", "IVF256,Flat", "HNSW32"')
    parser.add_argument("--epochs", type=int, default=SERVING_CONFIG.epochs)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    started = time.perf_counter()
    interactions = read_interactions(args.interactions)
    catalogue = Catalogue.load(args.catalogue)
    config = replace(SERVING_CONFIG, epochs=args.epochs)
    artifacts = train_artifacts(interactions, catalogue, config, args.index_factory, args.seed)
    artifacts.save(args.out)
    print(
        f"trained on {len(interactions)} interactions, {len(artifacts.model_items)} garments with interactions, "
        f"{len(artifacts.item_index)} indexed ({args.index_factory}) in {time.perf_counter() - started:.1f}s -> {args.out}"
    )


if __name__ == "__main__":
    main()
