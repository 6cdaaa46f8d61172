"""Where RecommendationService gets its artifacts at start: the data folder, or training the default ones."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from tryon.services.recommendation.recommender import ModelArtifacts
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.shared.contract import CONTENT_LATENT_DIM

logger = logging.getLogger("tryon.services.recommendation")


def load_or_train_artifacts(settings: RecommendationSettings) -> ModelArtifacts:
    """The artifacts under the data folder, or ones trained on a simulated catalogue and saved there."""
    if ModelArtifacts.exists(settings.artifacts_dir):
        artifacts = ModelArtifacts.load(settings.artifacts_dir, nprobe=settings.nprobe, ef_search=settings.ef_search)
        logger.info("recommendation artifacts loaded", extra={"garments": len(artifacts.item_index)})
        return artifacts
    from tryon.services.recommendation.catalogue import synthetic_catalogue
    from tryon.services.recommendation.simulator import ShopperSimulator
    from tryon.services.recommendation.train import SERVING_CONFIG, train_artifacts

    logger.info("no recommendation artifacts found; training on a simulated catalogue",
                extra={"garments": settings.demo_garments, "shoppers": settings.demo_shoppers})
    started = time.monotonic()
    catalogue = synthetic_catalogue(settings.demo_garments, CONTENT_LATENT_DIM, seed=settings.train_seed)
    simulator = ShopperSimulator(catalogue, seed=settings.train_seed)
    interactions = simulator.interactions_table(simulator.make_shoppers(settings.demo_shoppers))
    config = replace(SERVING_CONFIG, epochs=settings.train_epochs)
    artifacts = train_artifacts(interactions, catalogue, config, settings.index_factory, settings.train_seed, progress=False)
    artifacts.save(settings.artifacts_dir)
    interactions.to_parquet(settings.data_dir / "simulated_interactions.parquet", index=False)
    logger.info("recommendation artifacts trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return artifacts
