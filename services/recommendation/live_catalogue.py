"""Train the recommender on GarmentService's live catalogue.

Usage: python -m tryon.services.recommendation.live_catalogue --garment-service HOST:PORT
       --out DATA_DIR/artifacts [--shoppers 1000] [--epochs 60] [--seed 0]

Reads every registered garment with its content latent (ListGarments), lets simulated
shoppers with hidden tastes browse that catalogue and buy outfits in sessions (a new shop has no
history yet; ``models_store.simulated_interactions``), and trains the artifacts
RecommendationService loads, the outfit compatibility space among them. What it recommends is
then what the storefront sells, and a garment registered later is placed through the same
content-latent space the cold-start map was fitted on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
import torch

from tryon.services.recommendation.catalogue import Catalogue, Garment
from tryon.services.recommendation.models_store import simulated_interactions
from tryon.services.recommendation.recommender import ModelArtifacts
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.services.recommendation.train import SERVING_CONFIG, train_artifacts
from tryon.shared.contract import category_from_proto
from tryon.shared.proto import garment_service_pb2, garment_service_pb2_grpc

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000


def fetch_catalogue(garment_service_address: str, timeout_s: float = 30.0) -> Catalogue:
    """Every garment registered in GarmentService, in registration order."""
    garments = []
    with grpc.insecure_channel(garment_service_address) as channel:
        stub = garment_service_pb2_grpc.GarmentServiceStub(channel)
        token = ""
        while True:
            page = stub.ListGarments(
                garment_service_pb2.ListGarmentsRequest(page_size=PAGE_SIZE, page_token=token), timeout=timeout_s
            )
            garments.extend(
                Garment(
                    garment_id=garment.garment_id,
                    category=category_from_proto(garment.category),
                    content_latent=np.asarray(garment.content_latent, dtype=np.float32),
                    price_minor=garment.price.amount_minor,
                    name=garment.name,
                    size_chart_id=garment.size_chart.chart_id,
                )
                for garment in page.garments
            )
            token = page.next_page_token
            if not token:
                break
    if not garments:
        raise ValueError(f"GarmentService at {garment_service_address} has no registered garment to train on")
    return Catalogue(garments)


def train_on_live_catalogue(
    garment_service_address: str,
    artifacts_dir: Path,
    shoppers: int = 1000,
    epochs: int = SERVING_CONFIG.epochs,
    seed: int = 0,
    index_factory: str = "Flat",
    progress: bool = True,
) -> ModelArtifacts:
    """Fetch the catalogue, simulate shoppers on it, train and save the artifacts.

    Training uses the service's torch threads (one by default), as a first start of the service
    would: with two threads a RecVAE epoch took 31 times as long as with one while the other core
    was busy.
    """
    torch.set_num_threads(RecommendationSettings().torch_threads)
    catalogue = fetch_catalogue(garment_service_address)
    interactions = simulated_interactions(catalogue, shoppers, seed)
    artifacts = train_artifacts(
        interactions, catalogue, replace(SERVING_CONFIG, epochs=epochs), index_factory, seed, progress=progress
    )
    artifacts.save(artifacts_dir)
    logger.info(
        "trained on the live catalogue",
        extra={"garments": len(catalogue), "shoppers": shoppers, "interactions": len(interactions)},
    )
    return artifacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garment-service", required=True, help="host:port of GarmentService")
    parser.add_argument("--out", type=Path, required=True, help="artifacts folder (DATA_DIR/artifacts)")
    parser.add_argument("--shoppers", type=int, default=1000, help="simulated shoppers")
    parser.add_argument("--epochs", type=int, default=SERVING_CONFIG.epochs, help="most epochs of the served family (it keeps its best validation epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index-factory", default="Flat", help='FAISS factory string, e.g. "Flat", "HNSW32"')
    options = parser.parse_args(argv)
    artifacts = train_on_live_catalogue(
        options.garment_service, options.out, options.shoppers, options.epochs, options.seed, options.index_factory
    )
    print(f"wrote {options.out}: {len(artifacts.catalogue)} garments, {len(artifacts.model_items)} with interactions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
