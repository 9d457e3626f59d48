"""Golden outputs of the real models on photographs that ship with scikit-image (in-process ONNX Runtime).

The same helpers serve the Triton comparison in test_backends_triton.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from skimage import data

from transforms.adapters.onnxruntime import OnnxRuntimeBackend
from transforms.backends.base import InferenceBackend
from transforms.handlers import get_handler
from transforms.handlers.base import PIXELS_INPUT, Prediction
from transforms.model_registry import find
from transforms.settings import get_settings

ZOO = ("object-detection", "scene-classification", "face-detection", "nsfw-classification", "image-embedding")
PHOTOS = ("astronaut", "chelsea", "coffee")


def photo(name: str) -> Image.Image:
    """A real photograph from scikit-image as an RGB PIL image."""
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def predict(backend: InferenceBackend, model_id: str, *images: Image.Image) -> list[Prediction]:
    """Pixels, one backend call (the served graph normalises), postprocess: what the service does per micro-batch."""
    model = find(model_id)
    handler = get_handler(model, get_settings().resolved_model_store)
    batch, metas = handler.pixels_batch(images)
    return handler.postprocess_batch(backend.infer(model, {PIXELS_INPUT: batch}, handler.output_names), metas)


@pytest.fixture(scope="module")
def ort_backend() -> Iterator[OnnxRuntimeBackend]:
    backend = OnnxRuntimeBackend(get_settings().resolved_model_store)
    yield backend
    backend.close()


def labels_at(prediction: Prediction, threshold: float) -> dict[str, float]:
    """Best score per label name at or above threshold."""
    best: dict[str, float] = {}
    for label in prediction.labels:
        if label.score >= threshold:
            best[label.label] = max(best.get(label.label, 0.0), label.score)
    return best


def test_detector_finds_the_astronaut_as_a_person(ort_backend: OnnxRuntimeBackend) -> None:
    (pred,) = predict(ort_backend, "object-detection", photo("astronaut"))
    top = pred.labels[0]
    assert top.label == "person" and top.score > 0.6
    x1, y1, x2, y2 = top.bounding_box or []
    assert x1 < 60 and y1 < 60 and 300 < x2 < 420 and y2 > 450  # the astronaut fills the left two thirds
    assert set(pred.raw) == {f"{k}_{s}" for k in ("cls", "reg") for s in (8, 16, 32)}


def test_detector_finds_the_cat_in_chelsea(ort_backend: OnnxRuntimeBackend) -> None:
    (pred,) = predict(ort_backend, "object-detection", photo("chelsea"))
    assert pred.labels[0].label == "cat"
    assert "cat" in labels_at(pred, find("object-detection").default_confidence_threshold)


def test_classifier_says_espresso_for_coffee_and_cat_for_chelsea(ort_backend: OnnxRuntimeBackend) -> None:
    coffee, chelsea = predict(ort_backend, "scene-classification", photo("coffee"), photo("chelsea"))
    assert coffee.labels[0].label == "espresso" and coffee.labels[0].score > 0.9
    assert "cat" in chelsea.labels[0].label and all(label.bounding_box is None for label in chelsea.labels)
    assert len(coffee.labels) == 5 and coffee.raw["logits"].shape == (1000,)


def test_face_detector_finds_the_astronauts_face_only(ort_backend: OnnxRuntimeBackend) -> None:
    astronaut, coffee = predict(ort_backend, "face-detection", photo("astronaut"), photo("coffee"))
    faces = labels_at(astronaut, 0.5)
    assert list(faces) == ["face"] and len([x for x in astronaut.labels if x.score >= 0.5]) == 1
    x1, y1, x2, y2 = astronaut.labels[0].bounding_box or []
    assert 150 < x1 < 215 and 30 < y1 < 90 and 240 < x2 < 300 and 150 < y2 < 210
    assert not labels_at(coffee, 0.5)
    assert astronaut.raw["landmarks"].shape == (10, 160, 160)


def test_nsfw_scores_safe_photos_low(ort_backend: OnnxRuntimeBackend) -> None:
    for pred in predict(ort_backend, "nsfw-classification", *(photo(n) for n in PHOTOS)):
        scores = {label.label: label.score for label in pred.labels}
        assert scores["nsfw"] < 0.1 and scores["sfw"] > 0.9
        assert abs(sum(scores.values()) - 1) < 1e-4


def test_embedding_is_a_unit_vector_close_for_a_copy_and_far_for_other_photos(ort_backend: OnnxRuntimeBackend) -> None:
    astronaut = photo("astronaut")
    copy = astronaut.resize((300, 300))  # 512 -> 300 px, then JPEG at quality 50
    buf = io.BytesIO()
    copy.save(buf, "JPEG", quality=50)
    copy = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    images = (astronaut, copy, photo("coffee"), photo("rocket"))
    original, resized, *others = predict(ort_backend, "image-embedding", *images)
    assert original.labels == [] and original.embedding is not None and original.embedding.shape == (1280,)
    assert abs(float(np.linalg.norm(original.embedding)) - 1) < 1e-5
    threshold = get_settings().near_duplicate_threshold
    assert float(original.embedding @ resized.embedding) >= threshold
    assert all(float(original.embedding @ other.embedding) < threshold - 0.2 for other in others)


def assert_same_prediction(a: Prediction, b: Prediction, atol: float) -> None:
    assert [x.label for x in a.labels] == [x.label for x in b.labels]
    np.testing.assert_allclose([x.score for x in a.labels], [x.score for x in b.labels], rtol=1e-4, atol=atol)
    if a.embedding is not None or b.embedding is not None:
        np.testing.assert_allclose(a.embedding, b.embedding, atol=atol)


@pytest.mark.parametrize("model_id", ZOO)
def test_batch_of_three_equals_three_single_runs(ort_backend: OnnxRuntimeBackend, model_id: str) -> None:
    images = [photo(n) for n in PHOTOS]
    batched = predict(ort_backend, model_id, *images)
    for image, together in zip(images, batched, strict=True):
        (alone,) = predict(ort_backend, model_id, image)
        assert_same_prediction(alone, together, atol=1e-5)
