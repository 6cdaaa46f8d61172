"""Product-like pictures made from Fashion-MNIST: colour on white, deterministic, and read back by the models as the garment they came from."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tryon.services.garment import images
from tryon.services.garment.product_images import product_bytes, product_picture


def test_pictures_are_coloured_garments_on_white_and_the_same_per_seed(fashion_sample) -> None:
    pictures, _ = fashion_sample
    first = np.asarray(product_picture(pictures[0], seed=3, side=224), dtype=np.int32)
    assert first.shape == (224, 224, 3)
    assert (first[0, 0] == 255).all() and (first[-1, -1] == 255).all()
    garment = first[112, 112]
    assert garment.max() - garment.min() > 40, "the garment's centre is coloured, not grey"
    np.testing.assert_array_equal(first, np.asarray(product_picture(pictures[0], seed=3, side=224)))
    assert not np.array_equal(first, np.asarray(product_picture(pictures[0], seed=4, side=224)))


def test_the_model_input_of_a_product_picture_matches_its_fashion_mnist_garment(fashion_sample) -> None:
    pictures, _ = fashion_sample
    correlations = []
    for index in range(8):
        data = product_bytes(pictures[index], seed=index, file_format="JPEG")
        assert Image.open(io.BytesIO(data)).format == "JPEG"
        recovered = images.model_input_from_bytes(data)
        mask_recovered = (recovered > 0.1).ravel()
        mask_source = (pictures[index] > 0.1).ravel()
        correlations.append(np.corrcoef(mask_recovered, mask_source)[0, 1])
    assert np.median(correlations) > 0.8, correlations
