"""Bad input that is not a store call: long queries, chat messages, NaN and infinity, broken
checkpoints, checkpoints for another base LM, folders from a newer schema, files that are not
UTF-8. docs/reliability.md lists every case with its test; each must raise a ``RecipeError``
subclass with a message that says what to do, and leave what is stored unchanged.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from facts import IDS, QUERY, STATEMENTS, store_snapshot
from qdrant_modes import MODES, qdrant_server_url, store_location  # noqa: F401  (fixture import)
from safetensors.torch import load_file, save_file

from langchain_recipe.base_models import HuggingFaceBaseModel, fingerprint_model, fingerprints_match
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.datasets import load_edits
from langchain_recipe.errors import (
    BaseModelMismatchError,
    CheckpointError,
    InvalidInputError,
    QueryTruncatedWarning,
    RecipeError,
    StoreError,
)
from langchain_recipe.injection import prepend_continuous_prompts
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.nn import RecipeModel

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

LONG_QUERY = "Tell me, after all of this long and winding preamble about nothing in particular, " * 4 + QUERY


@pytest.fixture(params=MODES)
def filled(
    request: pytest.FixtureRequest, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> Any:
    """A store holding the four hand-made edits, in each Qdrant mode."""
    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, **store_location(request.param, request, tmp_path)
    )
    store.add_knowledge(STATEMENTS, ids=IDS)
    yield store
    store.close()


def _other_base_model(
    base_model: HuggingFaceBaseModel, *, dtype: torch.dtype | None = None, seed: int | None = None
) -> HuggingFaceBaseModel:
    """A copy of the tiny LM in another dtype, or with other random input embeddings."""
    model = copy.deepcopy(base_model.model)
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        weight = model.get_input_embeddings().weight
        weight.data = torch.randn(weight.shape, generator=generator) * weight.std()
    if dtype is not None:
        model = model.to(dtype)
    return HuggingFaceBaseModel(model=model, tokenizer=base_model.tokenizer, name=f"tiny-llama-{dtype or seed}")


# ---------------------------------------------------------------------- queries and messages
def test_a_query_beyond_the_encoder_length_is_truncated_with_a_warning(filled: RecipeKnowledgeStore) -> None:
    with pytest.warns(QueryTruncatedWarning, match="longer than the 32 encoder tokens"):
        found = filled.search(LONG_QUERY)
    assert len(found) == 1  # still answered, from the query's beginning
    with warnings.catch_warnings():
        warnings.simplefilter("error", QueryTruncatedWarning)
        filled.search(QUERY)  # a short query warns nothing


def test_a_chat_message_that_is_not_utf8_raises_before_anything_runs(filled: RecipeKnowledgeStore) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    llm = RecipeChatModel(knowledge_store=filled, max_tokens=2)
    before = store_snapshot(filled)
    with pytest.raises(InvalidInputError, match=r"Message 0 \(human\) is not valid Unicode"):
        llm.invoke("Who runs Acme \udcff?")
    with pytest.raises(InvalidInputError, match=r"Message 0 \(system\)"):
        llm.invoke([SystemMessage("Be \udcff brief."), HumanMessage(QUERY)])
    assert store_snapshot(filled) == before
    assert llm.invoke(QUERY).content is not None  # the model still answers


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=["NaN", "+inf", "-inf"])
def test_non_finite_prompt_vectors_are_refused_by_the_injection(value: float) -> None:
    embeds, mask = torch.zeros(2, 4, 8), torch.ones(2, 4, dtype=torch.long)
    prompt = torch.zeros(3, 8)
    prompt[1, 5] = value
    with pytest.raises(InvalidInputError, match="Prompt of row 1 holds NaN or infinite values"):
        prepend_continuous_prompts(embeds, mask, [None, prompt])


# ---------------------------------------------------------------------- statements and limits
def test_statement_limits_name_the_statement_its_length_and_the_limit(
    make_recipe_model: Callable[..., RecipeModel], base_model: HuggingFaceBaseModel
) -> None:
    attention = make_recipe_model()
    twenty_words = " ".join(["word"] * 20)  # 20 base-LM tokens: past max_statement_tokens (16)
    with pytest.raises(InvalidInputError, match=r"Statement 1 is 20 base LM tokens long .*at most 16"):
        attention.check_statements(["Fine.", twenty_words], base_model)
    # The MLP prompt encoder never reads the statement's LM tokens: only the encoder limit counts.
    make_recipe_model(prompt_encoder_type="mlp").check_statements(["Fine.", twenty_words], base_model)
    with pytest.raises(InvalidInputError, match=r"Statement 0 is 42 knowledge encoder tokens long .*at most 32"):
        attention.check_statements([" ".join(["word"] * 40)], base_model)
    # Characters that take several bytes are counted as tokens, not guessed from the length.
    attention.check_statements(["é" * 15], base_model)  # 15 characters, 30 bytes, 1 token


# ---------------------------------------------------------------------- models and checkpoints
def test_a_checkpoint_with_nan_weights_is_refused(recipe_model: RecipeModel, tmp_path: Path) -> None:
    recipe_model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    name = sorted(k for k in state if k.startswith("prompt_encoder."))[0]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=rf"NaN or infinite weights in \['{name}'\]"):
        RecipeModel.from_pretrained(
            tmp_path, encoder=recipe_model.encoder, encoder_tokenizer=recipe_model.encoder_tokenizer
        )


def test_a_model_that_turned_to_nan_writes_nothing(filled: RecipeKnowledgeStore) -> None:
    before = store_snapshot(filled)
    with torch.no_grad():
        next(filled.recipe_model.prompt_encoder.parameters()).fill_(float("nan"))
    with pytest.raises(CheckpointError, match=r"NaN or infinite keys or continuous prompts.*Nothing was written"):
        filled.add_knowledge(["The Moon orbits the Earth."], ids=["moon"])
    assert store_snapshot(filled) == before


def test_a_checkpoint_for_another_base_lm_of_the_same_size_is_refused(
    make_recipe_model: Callable[..., RecipeModel], base_model: HuggingFaceBaseModel
) -> None:
    other = _other_base_model(base_model, seed=7)
    assert other.hidden_size == base_model.hidden_size
    recipe_model = make_recipe_model(base_model_fingerprint=other.fingerprint, base_model_name="other-llama")
    with pytest.raises(BaseModelMismatchError, match=r"trained for the base LM 'other-llama'.*recipe train"):
        RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model)
    with pytest.raises(BaseModelMismatchError):
        recipe_model.encode_edits(["The Moon orbits the Earth."], base_model)
    RecipeKnowledgeStore(recipe_model=recipe_model, base_model=other).close()  # its own LM is fine


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_the_same_base_lm_in_another_dtype_opens_the_same_store(
    make_recipe_model: Callable[..., RecipeModel], base_model: HuggingFaceBaseModel, tmp_path: Path, dtype: torch.dtype
) -> None:
    """A store made on CPU in float32 opens on a GPU in bfloat16: the fingerprint ignores the dtype."""
    other = _other_base_model(base_model, dtype=dtype)
    assert fingerprints_match(fingerprint_model(base_model.model), fingerprint_model(other.model))
    assert not fingerprints_match(base_model.fingerprint, _other_base_model(base_model, seed=7).fingerprint)
    recipe_model = make_recipe_model(base_model_fingerprint=base_model.fingerprint)
    with RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=tmp_path / "store") as store:
        store.add_knowledge(STATEMENTS, ids=IDS)
    with RecipeKnowledgeStore(recipe_model=recipe_model, base_model=other, path=tmp_path / "store") as store:
        assert sorted(d.id for d in store.list()) == sorted(IDS)


def _set_schema_version(path: Path, engine: str, collection_name: str, version: int) -> None:
    """Write another schema version into a closed store folder, as a newer release would."""
    if engine == "edge":
        from langchain_recipe.knowledge_store._edge import EdgeClient

        client: Any = EdgeClient(path)
    else:
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(path))
    try:
        client.update_collection(collection_name, metadata={"recipe_schema_version": version})
    finally:
        client.close()


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (99, "schema version 99; this langchain-recipe reads up to 2. Upgrade langchain-recipe"),
        (1, "schema version 1, from an earlier"),
    ],
    ids=["newer", "older"],
)
@pytest.mark.parametrize("engine", ["qdrant", "edge"])
def test_a_store_folder_from_another_schema_is_refused_and_kept(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path, engine: str, version: int, message: str
) -> None:
    path = tmp_path / "store"
    with RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path, engine=engine) as store:
        store.add_knowledge(STATEMENTS, ids=IDS)
        before, name = store_snapshot(store), store.collection_name
    _set_schema_version(path, engine, name, version)
    with pytest.raises(StoreError, match=message):
        RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path, engine=engine)
    # Nothing was changed (and the folder is not left locked): with the version put back, every
    # edit is still there.
    _set_schema_version(path, engine, name, 2)
    with RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path, engine=engine) as store:
        assert store_snapshot(store) == before


# ---------------------------------------------------------------------- files
def test_a_dataset_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    record = {"src": "Who?", "alt": "Ada", "rephrase": "Who, again?", "loc": "nq question: x", "loc_ans": "y"}
    path = tmp_path / "edits.jsonl"
    path.write_bytes(json.dumps(record).encode() + b"\n" + b'{"src": "Caf\xe9?"}\n')
    with pytest.raises(InvalidInputError, match=r"edits.jsonl:2 is not UTF-8 text"):
        load_edits("zsre", path=path)


IMPORTS = {
    "not UTF-8": b'{"id": "new", "statement": "Caf\xe9 Zembla opened in 1990."}\n',
    "non-UTF-8 statement": b'{"id": "new", "statement": "Zembla \\udcff opened."}\n',
    "huge statement": json.dumps({"id": "long", "statement": " ".join(["word"] * 40)}).encode() + b"\n",
    "not an object": b'["id", "statement"]\n',
    "non-string id": b'{"id": 5, "statement": "Zembla opened."}\n',
}


@pytest.mark.parametrize("bad_line", IMPORTS.values(), ids=IMPORTS.keys())
def test_an_import_with_one_bad_line_writes_nothing(filled: RecipeKnowledgeStore, bad_line: bytes) -> None:
    before = store_snapshot(filled)
    good = json.dumps({"id": "fine", "statement": "The Moon orbits the Earth."}).encode() + b"\n"
    with pytest.raises(InvalidInputError):
        filled.import_jsonl(io.TextIOWrapper(io.BytesIO(good + bad_line), encoding="utf-8"))
    assert store_snapshot(filled) == before


def test_unknown_ids_are_reported_not_guessed(filled: RecipeKnowledgeStore) -> None:
    before = store_snapshot(filled)
    assert filled.delete(["nope", "never"]) == 0
    assert filled.get_by_ids(["nope"]) == []
    assert filled.get_edits(["nope", "acme"])[0].edit_id == "acme"
    with pytest.raises(InvalidInputError, match=r"No edit with id 'nope'.*use add_knowledge"):
        filled.update_knowledge("nope", "The Moon orbits the Earth.")
    assert store_snapshot(filled) == before


def test_every_error_is_a_recipe_error() -> None:
    import inspect

    from langchain_recipe import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert all(issubclass(c, RecipeError) for c in classes if not issubclass(c, Warning))


def test_unsupported_vectorstore_methods_say_what_to_use(filled: RecipeKnowledgeStore) -> None:
    with pytest.raises(NotImplementedError, match=r"does not do maximal marginal relevance.*SentinelRetriever"):
        filled.as_retriever(search_type="mmr").invoke(QUERY)
    with pytest.raises(NotImplementedError, match="not a fixed relevance scale"):
        filled.similarity_search_with_relevance_scores(QUERY)
