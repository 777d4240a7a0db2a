"""Helpers that build tiny RecipeModels differing from the conftest one, for the store tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from langchain_recipe.nn import RecipeModel


def other_recipe_model(
    make_recipe_model: Callable[..., RecipeModel], *, seed: int = 987, **overrides: Any
) -> RecipeModel:
    """A tiny RecipeModel like ``make_recipe_model(**overrides)`` but with other trained weights
    (every non-encoder parameter drawn again from ``seed``): another fingerprint, other keys and
    prompts, the same frozen encoder."""
    model = make_recipe_model(**overrides)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not name.startswith("encoder."):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model
