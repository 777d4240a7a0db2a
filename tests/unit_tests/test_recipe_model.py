"""Tests of RecipeModel (langchain_recipe.nn) and RecipeConfig with a tiny random encoder."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from safetensors import safe_open

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.config import PromptEncoderType, RecipeConfig, TrainingConfig
from langchain_recipe.errors import CheckpointError, InvalidInputError, RecipeError
from langchain_recipe.nn import RecipeModel, RepresentationHead, pool_hidden_states
from langchain_recipe.nn.recipe_model import CONFIG_NAME, WEIGHTS_NAME

STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
]
QUERIES = ["Who runs Acme?", "Where is the Zephyr Tower?"]


def _load(directory: Path, model: RecipeModel) -> RecipeModel:
    return RecipeModel.from_pretrained(directory, encoder=model.encoder, encoder_tokenizer=model.encoder_tokenizer)


def _assert_same_trained_state(a: RecipeModel, b: RecipeModel) -> None:
    state_a, state_b = a.trained_state_dict(), b.trained_state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert state_a[key].dtype == state_b[key].dtype, key
        assert torch.equal(state_a[key], state_b[key]), key


# ---------------------------------------------------------------------- shapes
def test_encoding_shapes(any_recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    model = any_recipe_model
    with torch.no_grad():
        assert model.encode_knowledge(STATEMENTS).shape == (3, 64)
        assert model.encode_queries(QUERIES).shape == (2, 64)
        assert model.sentinel_key().shape == (64,)
        assert model.similarity(model.encode_queries(QUERIES), model.encode_knowledge(STATEMENTS)).shape == (2, 3)
        keys, prompts = model.encode_edits(STATEMENTS, base_model)
    assert keys.shape == (3, 64)
    assert prompts.shape == (3, 3, 32)
    assert keys.dtype == prompts.dtype == torch.float32
    assert torch.isfinite(prompts).all()
    # Keys of encode_edits are the knowledge representations.
    with torch.no_grad():
        assert torch.allclose(keys, model.encode_knowledge(STATEMENTS))


def test_statement_embeddings_are_right_padded_and_keep_the_last_tokens(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    long_statement = " ".join(f"word{i}" for i in range(40)) + " ends with Lisbon"
    embeds, mask = recipe_model.statement_embeddings(["Ada.", long_statement], base_model)
    assert embeds.shape == (2, 16, 32)
    assert mask.shape == (2, 16)
    short_ids = base_model.tokenizer("Ada.", add_special_tokens=False)["input_ids"]
    assert mask[0].tolist() == [1] * len(short_ids) + [0] * (16 - len(short_ids))
    assert mask[1].eq(1).all()
    long_ids = base_model.tokenizer(long_statement, add_special_tokens=False)["input_ids"][-16:]
    assert torch.equal(embeds[1], base_model.embed(torch.tensor(long_ids)))


def test_statement_attention_prompts_start_as_the_statement_tail_embeddings(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    """At initialisation prompt vector j copies the token at distance num_prompt_tokens-1-j from the end."""
    with torch.no_grad():
        _, prompts = recipe_model.encode_edits(STATEMENTS, base_model)
    num_prompt_tokens = recipe_model.config.num_prompt_tokens
    for row, statement in enumerate(STATEMENTS):
        ids = base_model.tokenizer(statement, add_special_tokens=False)["input_ids"][-num_prompt_tokens:]
        expected = base_model.embed(torch.tensor(ids)).float()
        # softmax over a +8 bias leaves a little weight on the other tokens
        assert torch.allclose(prompts[row, -len(ids) :], expected, atol=0.05 * expected.abs().max().item())


@torch.no_grad()
def test_edits_with_queries_match_separate_passes_in_the_given_order(
    any_recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    """One encoder pass for keys, prompts and query keys (the store's add path), batched by length
    and returned in the caller's order, gives what the separate calls give."""
    statements = [
        "The Zephyr Tower, finished in 1931 after a decade of delays, is located in Lisbon.",
        "Oskar speaks Portuguese.",
        "The chief executive of Acme Corporation is Ada Lovelace.",
        "Lake Ombra is in the Andes.",
        "Mira plays for the Bulls.",
    ]
    keys, prompts, query_keys = any_recipe_model.encode_edits_with_queries(statements, base_model, batch_size=2)
    expected_keys, expected_prompts = any_recipe_model.encode_edits(statements, base_model)
    torch.testing.assert_close(keys, expected_keys, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(prompts, expected_prompts, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(query_keys, any_recipe_model.encode_queries(statements), atol=1e-5, rtol=1e-4)


def test_wrong_base_model_size_raises(
    make_recipe_model: Callable[..., RecipeModel], base_model: HuggingFaceBaseModel
) -> None:
    model = make_recipe_model(lm_hidden_size=64)
    with pytest.raises(InvalidInputError, match="hidden size 32"):
        model.encode_edits(STATEMENTS, base_model)


def test_encoder_size_mismatch_raises(encoder: torch.nn.Module, tokenizer: Any) -> None:
    config = RecipeConfig(encoder_hidden_size=48, knowledge_dim=64, lm_hidden_size=32, prompt_encoder_heads=4)
    with pytest.raises(InvalidInputError, match="encoder_hidden_size"):
        RecipeModel(config, encoder=encoder, encoder_tokenizer=tokenizer)


def test_frozen_encoder_has_no_gradients_and_stays_in_eval(recipe_model: RecipeModel) -> None:
    assert not any(p.requires_grad for p in recipe_model.encoder.parameters())
    recipe_model.train()
    assert not recipe_model.encoder.training
    assert recipe_model.prompt_encoder.training
    assert not any(k.startswith("encoder.") for k in recipe_model.trained_state_dict())


# ---------------------------------------------------------------------- heads start as cosine
def test_heads_start_as_scaled_cosine(recipe_model: RecipeModel) -> None:
    texts = [*STATEMENTS, "Bananas are yellow.", "Paris is the capital of France."]
    with torch.no_grad():
        similarity = recipe_model.similarity(recipe_model.encode_queries(texts), recipe_model.encode_knowledge(texts))
        batch = recipe_model.encoder_tokenizer(texts, padding=True, return_tensors="pt")
        hidden = recipe_model.encoder(**batch).last_hidden_state
        mean = pool_hidden_states(hidden, batch["attention_mask"])[:, 32:64]  # normalised mean block
    cosine = mean @ mean.T
    scale = recipe_model.config.head_init_scale**2 / math.sqrt(recipe_model.config.knowledge_dim)
    # Identical texts are each row's (unique) best match...
    assert similarity.argmax(1).tolist() == list(range(len(texts)))
    assert (similarity.diagonal() > similarity.masked_fill(torch.eye(len(texts), dtype=torch.bool), -1e9).amax(1)).all()
    # ... because the similarity starts as the encoder's scaled cosine similarity.
    assert torch.allclose(similarity, scale * cosine, atol=0.02 * scale)
    assert torch.allclose(similarity.diagonal(), torch.full((len(texts),), scale), atol=0.02 * scale)


def test_pool_hidden_states_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    pooled = pool_hidden_states(hidden, mask)
    mean = torch.tensor([2.0, -1.0]) / math.sqrt(5.0)
    assert torch.allclose(
        pooled[0], torch.cat([torch.tensor([1.0, 2.0]), mean, torch.tensor([3.0, 2.0]), torch.tensor([1.0, -4.0])])
    )


def test_representation_head_rejects_a_small_knowledge_dim() -> None:
    with pytest.raises(ValueError, match="knowledge_dim=16"):
        RepresentationHead(encoder_hidden_size=32, knowledge_dim=16, init_scale=1.0)


# ---------------------------------------------------------------------- persistence
def test_save_and_load_round_trip_exactly(
    any_recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    model = any_recipe_model
    with torch.no_grad():  # make the weights differ from a fresh initialisation
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.01)
    model.save_pretrained(tmp_path / "ckpt")

    loaded = _load(tmp_path / "ckpt", model)

    assert loaded.config == model.config
    _assert_same_trained_state(model, loaded)
    with torch.no_grad():
        keys_a, prompts_a = model.encode_edits(STATEMENTS, base_model)
        keys_b, prompts_b = loaded.encode_edits(STATEMENTS, base_model)
        assert torch.equal(model.sentinel_key(), loaded.sentinel_key())
    assert torch.equal(keys_a, keys_b)
    assert torch.equal(prompts_a, prompts_b)


def test_frozen_encoder_weights_are_not_saved(recipe_model: RecipeModel, tmp_path: Path) -> None:
    recipe_model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {CONFIG_NAME, WEIGHTS_NAME}
    with safe_open(tmp_path / WEIGHTS_NAME, framework="pt") as handle:
        keys = set(handle.keys())
        assert handle.metadata()["recipe_format_version"] == "1"
    assert keys == set(recipe_model.trained_state_dict())
    assert not any(k.startswith("encoder.") for k in keys)
    assert any(k.startswith("prompt_encoder.") for k in keys)
    assert any(k.startswith("knowledge_head.") for k in keys)
    assert "sentinel.embeddings" in keys
    payload = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert payload["recipe_format_version"] == 1
    assert payload["num_prompt_tokens"] == 3


def test_trained_encoder_weights_are_saved(make_recipe_model: Callable[..., RecipeModel], tmp_path: Path) -> None:
    model = make_recipe_model(train_encoder=True)
    assert all(p.requires_grad for p in model.encoder.parameters())
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / WEIGHTS_NAME, framework="pt") as handle:
        assert any(k.startswith("encoder.") for k in handle.keys())
    fresh_encoder = make_recipe_model(train_encoder=True).encoder
    with torch.no_grad():
        for parameter in fresh_encoder.parameters():
            parameter.zero_()
    loaded = RecipeModel.from_pretrained(tmp_path, encoder=fresh_encoder, encoder_tokenizer=model.encoder_tokenizer)
    _assert_same_trained_state(model, loaded)


def test_fp16_export_loads_as_float32(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    recipe_model.save_pretrained(tmp_path, dtype=torch.float16)
    with safe_open(tmp_path / WEIGHTS_NAME, framework="pt") as handle:
        assert all(handle.get_tensor(k).dtype == torch.float16 for k in handle.keys())
    loaded = _load(tmp_path, recipe_model)
    for key, value in recipe_model.trained_state_dict().items():
        restored = loaded.trained_state_dict()[key]
        assert restored.dtype == torch.float32
        assert torch.equal(restored, value.half().float()), key
    with torch.no_grad():
        keys_a, prompts_a = recipe_model.encode_edits(STATEMENTS, base_model)
        keys_b, prompts_b = loaded.encode_edits(STATEMENTS, base_model)
    assert torch.allclose(keys_a, keys_b, atol=1e-2)
    assert torch.allclose(prompts_a, prompts_b, atol=1e-3)


# ---------------------------------------------------------------------- broken checkpoints
@pytest.fixture
def saved(recipe_model: RecipeModel, tmp_path: Path) -> Path:
    recipe_model.save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", [CONFIG_NAME, WEIGHTS_NAME])
def test_missing_file_raises(saved: Path, recipe_model: RecipeModel, name: str) -> None:
    (saved / name).unlink()
    with pytest.raises(CheckpointError, match=f"{name} is missing"):
        _load(saved, recipe_model)


def test_missing_directory_raises(recipe_model: RecipeModel, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="missing"):
        _load(tmp_path / "nowhere", recipe_model)


@pytest.mark.parametrize("keep", [0, 7, 100, 0.5, -1], ids=["empty", "7B", "100B", "half", "minus1B"])
def test_truncated_weights_raise(saved: Path, recipe_model: RecipeModel, keep: float) -> None:
    data = (saved / WEIGHTS_NAME).read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (len(data) + keep if keep < 0 else keep)
    (saved / WEIGHTS_NAME).write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="corrupted"):
        _load(saved, recipe_model)


@pytest.mark.parametrize(
    "text", ['{"knowledge_dim": 64', "", "[]", '"config"', "null"], ids=["truncated", "empty", "list", "string", "null"]
)
def test_corrupted_config_raises(saved: Path, recipe_model: RecipeModel, text: str) -> None:
    (saved / CONFIG_NAME).write_text(text)
    with pytest.raises(CheckpointError, match="not a valid RecipeModel config"):
        _load(saved, recipe_model)


def test_invalid_config_values_raise(saved: Path, recipe_model: RecipeModel) -> None:
    payload = json.loads((saved / CONFIG_NAME).read_text())
    payload["num_prompt_tokens"] = -3
    (saved / CONFIG_NAME).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="num_prompt_tokens"):
        _load(saved, recipe_model)


@pytest.mark.parametrize("version", [2, 99])
def test_newer_format_raises(saved: Path, recipe_model: RecipeModel, version: int) -> None:
    payload = json.loads((saved / CONFIG_NAME).read_text())
    payload["recipe_format_version"] = version
    (saved / CONFIG_NAME).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match=f"format {version}.*Upgrade"):
        _load(saved, recipe_model)


@pytest.mark.parametrize("version", ["2", 1.5, None, True])
def test_malformed_format_version_raises(saved: Path, recipe_model: RecipeModel, version: Any) -> None:
    payload = json.loads((saved / CONFIG_NAME).read_text())
    payload["recipe_format_version"] = version
    (saved / CONFIG_NAME).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="recipe_format_version"):
        _load(saved, recipe_model)


def test_binary_garbage_config_raises(saved: Path, recipe_model: RecipeModel) -> None:
    (saved / CONFIG_NAME).write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(CheckpointError, match="not a valid RecipeModel config"):
        _load(saved, recipe_model)


def test_weights_that_do_not_fit_the_config_raise(saved: Path, recipe_model: RecipeModel) -> None:
    payload = json.loads((saved / CONFIG_NAME).read_text())
    payload["max_statement_tokens"] = 20  # distance embedding of another shape
    (saved / CONFIG_NAME).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="does not fit its config"):
        _load(saved, recipe_model)
    payload["max_statement_tokens"] = 16
    payload["prompt_encoder_type"] = "mlp"  # other parameter names
    (saved / CONFIG_NAME).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="does not fit its config: missing"):
        _load(saved, recipe_model)


def test_checkpoint_error_is_a_recipe_error() -> None:
    assert issubclass(CheckpointError, RecipeError)


# ---------------------------------------------------------------------- config validation
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_prompt_tokens", 0),
        ("num_prompt_tokens", -1),
        ("knowledge_dim", 0),
        ("encoder_hidden_size", -5),
        ("num_sentinel_tokens", 0),
        ("head_init_scale", 0.0),
        ("max_statement_tokens", 0),
        ("prompt_encoder_type", "transformer"),
        ("num_prompt_tokens", "three"),
    ],
)
def test_recipe_config_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        RecipeConfig(**{field: value})


def test_recipe_config_rejects_unknown_fields_and_bad_assignments() -> None:
    with pytest.raises(ValidationError, match="num_prompt_token"):
        RecipeConfig(num_prompt_token=3)
    config = RecipeConfig()
    with pytest.raises(ValidationError, match="num_prompt_tokens"):
        config.num_prompt_tokens = 0
    assert config.num_prompt_tokens == 3


def test_heads_must_divide_the_lm_hidden_size() -> None:
    with pytest.raises(ValidationError, match="prompt_encoder_heads=5 does not divide lm_hidden_size=32"):
        RecipeConfig(lm_hidden_size=32, prompt_encoder_heads=5)
    # The MLP prompt encoder has no heads, so any count is fine there.
    RecipeConfig(lm_hidden_size=32, prompt_encoder_heads=5, prompt_encoder_type=PromptEncoderType.MLP)
    config = RecipeConfig(lm_hidden_size=32, prompt_encoder_heads=4)
    with pytest.raises(ValidationError, match="does not divide"):
        config.prompt_encoder_heads = 3


def test_recipe_config_json_round_trip() -> None:
    config = RecipeConfig(lm_hidden_size=32, prompt_encoder_heads=4, prompt_encoder_type="mlp")
    assert RecipeConfig.model_validate_json(config.model_dump_json()) == config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chat_format_probability", 1.5),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("datasets", ["squad"]),
        ("lm_dtype", "int8"),
    ],
)
def test_training_config_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        TrainingConfig(**{field: value})


def test_retrieval_text_format_is_shared_by_queries_and_statements(recipe_model: RecipeModel) -> None:
    """Training, evaluation and serving all go through RecipeModel.encode_*; whitespace variants
    of one question must get the same key, so the three can never disagree on the format."""
    from langchain_recipe.nn import format_retrieval_text

    assert format_retrieval_text("  Who is\tthe CEO\nof Acme? ") == "Who is the CEO of Acme?"
    with torch.no_grad():
        queries = recipe_model.encode_queries(["Who is the CEO of Acme?", "  Who is\tthe CEO\n of Acme?  "])
        statements = recipe_model.encode_knowledge(["The CEO of Acme is Ada.", "The  CEO of Acme is Ada.\n"])
    torch.testing.assert_close(queries[0], queries[1])
    torch.testing.assert_close(statements[0], statements[1])


def test_sentinel_gate_keeps_a_match_and_rejects_an_unrelated_query() -> None:
    """Hand-made 4-d vectors: s(q, k) = q·k / 2. The first query points at edit 1 (score 1.0 vs a
    sentinel score of 0.25); the second is orthogonal to both edits (score 0 < sentinel 0.5)."""
    from langchain_recipe.nn import sentinel_gate

    knowledge = torch.tensor([[0.0, 2.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    sentinel = torch.tensor([0.5, 0.0, 1.0, 0.0])
    queries = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    gate = sentinel_gate(queries, knowledge, sentinel)
    assert gate.best_index.tolist()[0] == 1
    assert gate.best_score.tolist() == [1.0, 0.0]
    assert gate.sentinel_score.tolist() == [0.25, 0.5]
    assert gate.accepted.tolist() == [True, False]
    tie = sentinel_gate(
        torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([1.0, 0.0, 0.0, 0.0])
    )
    assert tie.accepted.tolist() == [False]  # equal evidence never applies an edit
    empty = sentinel_gate(queries, torch.zeros(0, 4), sentinel)
    assert empty.accepted.tolist() == [False, False]
    assert empty.best_index.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="knowledge_dim"):
        sentinel_gate(queries, torch.zeros(2, 3), sentinel)


def test_the_old_base_model_name_still_works_with_a_deprecation_warning() -> None:
    import langchain_recipe
    from langchain_recipe.base_models import HuggingFaceBaseModel

    with pytest.warns(DeprecationWarning, match="HuggingFaceBaseModel"):
        assert langchain_recipe.BaseLanguageModel is HuggingFaceBaseModel
    with pytest.raises(AttributeError):
        _ = langchain_recipe.NoSuchName
