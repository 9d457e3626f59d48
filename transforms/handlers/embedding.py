"""Image embeddings: ImageNet-style preprocessing (as the classifier) -> one L2-normalised vector, no labels.

The graph already normalises (`models/recipes/mobilenet_v2_embedding.py`); the handler renormalises in float32 so a
vector read back from any back end has unit length, and the dot product of two vectors is their cosine similarity.
"""

from __future__ import annotations

import numpy as np

from transforms.handlers.base import Label, PreprocessMeta
from transforms.handlers.classifier import ClassifierHandler


def normalise(vector: np.ndarray) -> np.ndarray:
    """A float32 copy of `vector` with unit L2 norm (an all-zero vector stays zero)."""
    v = np.asarray(vector, np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v.copy()


class EmbeddingHandler(ClassifierHandler):
    name = "embedding"
    output = "embedding"

    @property
    def labels(self) -> list[str]:
        return []

    def postprocess(self, outputs: dict[str, np.ndarray], meta: PreprocessMeta) -> list[Label]:
        return []

    def embedding(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return normalise(outputs[self.output])
