"""A second architecture: tiny Gemma-3-shaped and Llama-shaped LMs train a step, answer and round-trip.

Gemma 3 differs from SmolLM2/Llama where RECIPE touches the LM: its embedding module multiplies the
token embeddings by ``sqrt(hidden_size)`` inside its forward, and its chat template rejects a system
role. Both LMs here are built from configs (no download), with the MiniLM WordPiece tokenizer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import SEED, TINY_RECIPE_KWARGS, _tiny_encoder
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.config import TrainingConfig
from langchain_recipe.datasets import EditRecord
from langchain_recipe.errors import BaseModelMismatchError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.nn import RecipeModel
from langchain_recipe.training import RecipeTrainer

GEMMA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
"""Gemma's turn markers, and an error on a system turn (as the issue describes Gemma 3's template)."""

STATEMENT = "The CEO of Acme Corporation is Ada Lovelace."
QUESTION = "Who is the chief executive of Acme Corporation?"
SHAPES = ["llama", "gemma3"]


def _gemma_tokenizer(tokenizer: Any) -> Any:
    gemma = copy.deepcopy(tokenizer)
    gemma.chat_template = GEMMA_CHAT_TEMPLATE
    return gemma


def _lm_config(shape: str, tokenizer: Any) -> Any:
    from transformers import Gemma3TextConfig, LlamaConfig

    sizes = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "attn_implementation": "eager",
    }
    if shape == "gemma3":
        return Gemma3TextConfig(**sizes, head_dim=8, sliding_window=16, tie_word_embeddings=True)
    return LlamaConfig(**sizes, tie_word_embeddings=False)


@pytest.fixture(scope="module", params=SHAPES)
def shaped_lm(request: pytest.FixtureRequest, tokenizer: Any) -> HuggingFaceBaseModel:
    """A tiny random LM of each shape, frozen, with its tokenizer and chat template."""
    from transformers import Gemma3ForCausalLM, LlamaForCausalLM

    shape = request.param
    lm_tokenizer = _gemma_tokenizer(tokenizer) if shape == "gemma3" else tokenizer
    torch.manual_seed(SEED)
    model_class = Gemma3ForCausalLM if shape == "gemma3" else LlamaForCausalLM
    model = model_class(_lm_config(shape, lm_tokenizer)).eval()
    model.requires_grad_(False)
    return HuggingFaceBaseModel(model=model, tokenizer=lm_tokenizer, name=f"tiny-{shape}")


@pytest.fixture
def shaped_recipe_model(shaped_lm: HuggingFaceBaseModel, tokenizer: Any) -> RecipeModel:
    """A fresh tiny RecipeModel bound to ``shaped_lm`` (hidden size, name, fingerprint, prompt scale)."""
    sizes = {k: v for k, v in TINY_RECIPE_KWARGS.items() if k not in ("lm_hidden_size", "base_model_name")}
    encoder = _tiny_encoder(len(tokenizer))
    torch.manual_seed(SEED + 2)
    return RecipeModel.for_base_model(shaped_lm, encoder=encoder, encoder_tokenizer=tokenizer, **sizes)


def test_gemma_embeddings_are_scaled_inside_the_module_and_embed_matches_the_lms_own_forward(
    shaped_lm: HuggingFaceBaseModel,
) -> None:
    ids = shaped_lm.tokenizer(QUESTION, return_tensors="pt")["input_ids"]
    expected_scale = 32**0.5 if shaped_lm.name == "tiny-gemma3" else 1.0
    assert shaped_lm.embedding_scale == pytest.approx(expected_scale, rel=1e-5)
    weight_rows = shaped_lm.model.get_input_embeddings().weight[ids]
    assert torch.allclose(shaped_lm.embed(ids), weight_rows * expected_scale, atol=1e-5)
    with torch.no_grad():  # prompts inserted as inputs_embeds live in the space the LM's forward makes
        from_ids = shaped_lm.model(input_ids=ids).logits
        from_embeds = shaped_lm.model(inputs_embeds=shaped_lm.embed(ids)).logits
    assert torch.allclose(from_ids, from_embeds, atol=1e-5)


def test_a_fresh_recipe_model_is_bound_to_its_lm(
    shaped_lm: HuggingFaceBaseModel, shaped_recipe_model: RecipeModel
) -> None:
    config = shaped_recipe_model.config
    assert (config.lm_hidden_size, config.base_model_name) == (32, shaped_lm.name)
    assert config.base_model_fingerprint == shaped_lm.fingerprint
    assert config.prompt_output_scale == pytest.approx(0.1 * shaped_lm.embedding_scale)
    with torch.no_grad():  # the statement-attention prompts start as the statement's scaled embeddings
        _, prompts = shaped_recipe_model.encode_edits([STATEMENT], shaped_lm)
        embeds, _ = shaped_recipe_model.statement_embeddings([STATEMENT], shaped_lm)
    assert prompts.norm(dim=-1).mean() == pytest.approx(float(embeds.norm(dim=-1).mean()), rel=0.5)


def test_one_training_step_changes_the_model_and_gives_finite_losses(
    shaped_lm: HuggingFaceBaseModel,
    shaped_recipe_model: RecipeModel,
    edit_records: list[EditRecord],
    tmp_path: Path,
) -> None:
    config = TrainingConfig(batch_size=4, warmup_steps=0, max_steps=1, chat_format_probability=1.0, seed=0)
    trainer = RecipeTrainer(shaped_recipe_model, shaped_lm, config, {"zsre": edit_records}, tmp_path)
    before = copy.deepcopy(shaped_recipe_model.prompt_encoder.state_dict())
    result = trainer.train_step(edit_records)  # chat format: the template (Gemma's included) is applied
    assert all(torch.isfinite(torch.tensor(v)) for v in [result.total, *result.terms.values()])
    after = shaped_recipe_model.prompt_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_the_chat_model_answers_with_the_edit_and_a_system_prompt(
    shaped_lm: HuggingFaceBaseModel, shaped_recipe_model: RecipeModel, force_gate: Callable[..., torch.Tensor]
) -> None:
    store = RecipeKnowledgeStore(recipe_model=shaped_recipe_model, base_model=shaped_lm, location=":memory:")
    try:
        store.add_knowledge([STATEMENT], ids=["acme"])
        force_gate(store, accept=[QUESTION])
        chat = RecipeChatModel(knowledge_store=store, max_tokens=3)
        # Gemma's template rejects the system turn: it is folded into the first user turn.
        message = chat.invoke([SystemMessage("Answer briefly."), HumanMessage(QUESTION)])
    finally:
        store.close()
    assert isinstance(message.content, str)
    assert message.response_metadata["edit"]["statement"] == STATEMENT
    assert message.response_metadata["model_name"] == shaped_lm.name


def test_save_and_load_round_trip_and_the_other_lm_is_refused(
    shaped_lm: HuggingFaceBaseModel, shaped_recipe_model: RecipeModel, tokenizer: Any, tmp_path: Path
) -> None:
    shaped_recipe_model.save_pretrained(tmp_path / "ckpt")
    loaded = RecipeModel.from_pretrained(
        tmp_path / "ckpt", encoder=shaped_recipe_model.encoder, encoder_tokenizer=shaped_recipe_model.encoder_tokenizer
    )
    assert loaded.config == shaped_recipe_model.config
    with torch.no_grad():
        keys_a, prompts_a = shaped_recipe_model.encode_edits([STATEMENT], shaped_lm)
        keys_b, prompts_b = loaded.encode_edits([STATEMENT], shaped_lm)
    assert torch.equal(keys_a, keys_b) and torch.equal(prompts_a, prompts_b)
    other_shape = "llama" if shaped_lm.name == "tiny-gemma3" else "gemma3"
    from transformers import Gemma3ForCausalLM, LlamaForCausalLM

    model_class = Gemma3ForCausalLM if other_shape == "gemma3" else LlamaForCausalLM
    torch.manual_seed(SEED + 5)
    other = HuggingFaceBaseModel(
        model=model_class(_lm_config(other_shape, tokenizer)).eval(), tokenizer=tokenizer, name=f"tiny-{other_shape}"
    )
    with pytest.raises(
        BaseModelMismatchError, match=rf"trained for the base LM '{shaped_lm.name}'.*tiny-{other_shape}"
    ):
        RecipeKnowledgeStore(recipe_model=loaded, base_model=other, location=":memory:")
