"""A store made with the default (bundled) LM and RecipeModel refuses, at open, another
checkpoint or a base LM with another hidden size, naming both and the fix."""

from __future__ import annotations

import copy

import pytest
import torch

from langchain_recipe import FingerprintMismatchError, RecipeKnowledgeStore
from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.nn import RecipeModel


def test_default_store_refuses_another_checkpoint_or_hidden_size_at_open(base_model, recipe_model, tmp_path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path / "store"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:
        store.add_knowledge(["The CEO of Acme is Ada Lovelace."], ids=["fact-1"])

    retrained = copy.deepcopy(recipe_model)
    with torch.no_grad():
        retrained.sentinel.embeddings.add_(0.01)
    with pytest.raises(FingerprintMismatchError, match="reencode") as raised:
        RecipeKnowledgeStore(retrained, base_model, path=path)
    assert "hidden size 576" in str(raised.value)

    config = LlamaConfig(
        vocab_size=len(base_model.tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    other_lm = HuggingFaceBaseModel(
        model=LlamaForCausalLM(config).eval(), tokenizer=base_model.tokenizer, name="other-64"
    )
    other_recipe = RecipeModel(
        recipe_model.config.model_copy(
            update={"lm_hidden_size": 64, "base_model_fingerprint": other_lm.fingerprint, "base_model_name": "other-64"}
        ),
        encoder=recipe_model.encoder,
        encoder_tokenizer=recipe_model.encoder_tokenizer,
    )
    with pytest.raises(FingerprintMismatchError) as raised:
        RecipeKnowledgeStore(other_recipe, other_lm, path=path)
    message = str(raised.value)
    assert "hidden size 576" in message and "hidden size 64" in message
    assert "SmolLM2" in message or "smollm2" in message.lower()

    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:  # the original still opens
        assert [d.id for d in store.list()] == ["fact-1"]
