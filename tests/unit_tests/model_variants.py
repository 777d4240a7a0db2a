"""Helpers that build tiny models differing from the conftest ones, for the store and chat model tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
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


def tiny_llama(tokenizer: Any, *, hidden_size: int, layers: int, name: str, **config: Any) -> HuggingFaceBaseModel:
    """A tiny random ``LlamaForCausalLM`` over ``tokenizer``, frozen and in eval mode.

    Args:
        tokenizer: the tiny tokenizer (its size is the vocabulary).
        hidden_size: the LM's hidden size (heads: ``hidden_size // 8``, half as many key/value heads).
        layers: how many decoder layers.
        name: the :class:`HuggingFaceBaseModel`'s name.
        **config: other ``LlamaConfig`` fields.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    heads = max(2, hidden_size // 8)
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )
    model = LlamaForCausalLM(llama).eval()
    model.requires_grad_(False)
    return HuggingFaceBaseModel(model=model, tokenizer=tokenizer, name=name)


def smaller_base_model(tokenizer: Any) -> HuggingFaceBaseModel:
    """A tiny random Llama with hidden size 16 (the conftest LM has 32), named ``"tiny-llama-16"``."""
    return tiny_llama(tokenizer, hidden_size=16, layers=1, name="tiny-llama-16")
