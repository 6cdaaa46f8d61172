"""Where RecommendationService gets its artifacts at start: the data folder, the shipped ones, or training.

Artifacts under ``<data_dir>/artifacts`` are loaded. Without them, the artifacts shipped in
``services/recommendation/weights/artifacts`` (written by ``make weights``) are copied there
when they were trained with the service's own settings (catalogue and shoppers simulated, epochs,
seed, index factory), unless ``train_on_start`` asks for training; otherwise the served model, its
indexes and the outfit compatibility space are trained on a simulated catalogue and shoppers
(``simulated_interactions``) and saved there. The log says which of the three happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from tryon.services.recommendation.catalogue import Catalogue
from tryon.services.recommendation.recommender import ModelArtifacts
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.contract import CONTENT_LATENT_DIM
from tryon.shared.shipped_weights import install_shipped, write_shipped

logger = logging.getLogger("tryon.services.recommendation")

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""The package folder of the shipped artifacts: ``artifacts/`` as a service's data folder holds it."""
SHIPPED_DIR = WEIGHTS_DIR / "artifacts"
"""The shipped folder a first start copies into its data folder."""

TRAINING_DATA = (
    "catalogue and shoppers simulated by services/recommendation/simulator.py from the training seed: each "
    "shopper browses (ShopperSimulator) and buys one outfit in a session (OutfitSessionSimulator)"
)
OUTFIT_SESSIONS = 1
"""Outfit sessions per simulated shopper: the co-purchases the compatibility space learns from."""


def training_settings(settings: RecommendationSettings) -> dict[str, int | str]:
    """The settings that decide the trained artifacts, compared with the shipped artifacts' provenance."""
    return {
        "demo_garments": settings.demo_garments,
        "demo_shoppers": settings.demo_shoppers,
        "train_epochs": settings.train_epochs,
        "train_seed": settings.train_seed,
        "index_factory": settings.index_factory,
    }


def simulated_interactions(catalogue: Catalogue, n_shoppers: int, seed: int) -> pd.DataFrame:
    """The event log a shop without history trains on, SIMULATED: every shopper browses the catalogue
    and then buys one outfit in a session (with a session id, so the compatibility space learns from it).

    A catalogue without tops, bottoms and shoes has no outfit to buy: its shoppers only browse.
    """
    from tryon.services.recommendation.outfits import OUTFIT_FORMS, role_of
    from tryon.services.recommendation.simulator import OutfitSessionSimulator

    simulator = OutfitSessionSimulator(catalogue, seed=seed)
    shoppers = simulator.make_shoppers(n_shoppers)
    browsing = simulator.browsing.interactions_table([shopper.shopper for shopper in shoppers])
    if not set(OUTFIT_FORMS[0]) <= {role_of(category) for category in catalogue.categories}:
        return browsing
    outfits, _ = simulator.sessions(shoppers, OUTFIT_SESSIONS)
    return pd.concat([browsing, outfits], ignore_index=True)


def train_default_artifacts(settings: RecommendationSettings, progress: bool = False) -> ModelArtifacts:
    """Train on a simulated catalogue and shoppers and save the artifacts (and the interactions) under data_dir."""
    from tryon.services.recommendation.catalogue import synthetic_catalogue
    from tryon.services.recommendation.train import SERVING_CONFIG, train_artifacts

    catalogue = synthetic_catalogue(settings.demo_garments, CONTENT_LATENT_DIM, seed=settings.train_seed)
    interactions = simulated_interactions(catalogue, settings.demo_shoppers, settings.train_seed)
    config = replace(SERVING_CONFIG, epochs=settings.train_epochs)
    artifacts = train_artifacts(
        interactions, catalogue, config, settings.index_factory, settings.train_seed, progress=progress
    )
    artifacts.save(settings.artifacts_dir)
    interactions.to_parquet(settings.data_dir / "simulated_interactions.parquet", index=False)
    return artifacts


def _load(settings: RecommendationSettings, source: str) -> ModelArtifacts:
    artifacts = ModelArtifacts.load(settings.artifacts_dir, nprobe=settings.nprobe, ef_search=settings.ef_search)
    logger.info("recommendation artifacts loaded", extra={"garments": len(artifacts.item_index), "source": source})
    return artifacts


def load_or_train_artifacts(
    settings: RecommendationSettings, shipped: Path = SHIPPED_DIR
) -> ModelArtifacts:
    """The artifacts under the data folder, else the shipped ones, else ones trained on a simulated catalogue."""
    if ModelArtifacts.exists(settings.artifacts_dir):
        return _load(settings, "stored")
    if settings.train_on_start:
        logger.info("training on start as asked; the shipped recommendation artifacts are not used")
    else:
        installed = install_shipped(shipped, settings.artifacts_dir, training_settings(settings))
        logger.info(installed.reason, extra={"artifacts_dir": str(settings.artifacts_dir)})
        if installed.provenance is not None:
            return _load(settings, "shipped")
    logger.info("no recommendation artifacts found; training on a simulated catalogue",
                extra={"garments": settings.demo_garments, "shoppers": settings.demo_shoppers})
    started = time.monotonic()
    artifacts = train_default_artifacts(settings)
    logger.info("recommendation artifacts trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return artifacts


def write_weights(unrelated: tuple[Path, ...] = ()) -> dict:
    """Train the default artifacts as a first start would and ship them in ``SHIPPED_DIR``; returns their provenance."""
    import torch

    from tryon.services.recommendation.index import set_search_threads

    settings = RecommendationSettings()
    torch.set_num_threads(settings.torch_threads)
    set_search_threads(settings.faiss_threads)

    def train(data_dir: Path) -> Path:
        trained = replace(settings, data_dir=data_dir)
        train_default_artifacts(trained, progress=True)
        return trained.artifacts_dir

    return write_shipped(
        SHIPPED_DIR, train, service="recommendation", training=training_settings(settings),
        data=TRAINING_DATA, unrelated=unrelated,
    )
