"""Model handlers, looked up by the registry row's `handler` name."""

from __future__ import annotations

from pathlib import Path

from transforms.handlers.base import ModelHandler, ModelVersion
from transforms.handlers.centerface import CenterFaceHandler
from transforms.handlers.classifier import ClassifierHandler
from transforms.handlers.embedding import EmbeddingHandler
from transforms.handlers.nanodet import NanoDetHandler
from transforms.handlers.open_nsfw import OpenNsfwHandler

HANDLERS: dict[str, type[ModelHandler]] = {
    cls.name: cls for cls in (NanoDetHandler, ClassifierHandler, CenterFaceHandler, OpenNsfwHandler, EmbeddingHandler)
}


def get_handler(model: ModelVersion, model_store: Path) -> ModelHandler:
    """The handler for a registry row whose artifacts live in `model_store`; KeyError names the known handlers."""
    try:
        return HANDLERS[model.handler](model, model_store)
    except KeyError:
        raise KeyError(f"{model.model_id}: unknown handler {model.handler!r}; known: {sorted(HANDLERS)}") from None
