"""Shared fixtures for the unit tests: tiny random models built from configs (CPU, offline, fast).

Nothing here loads the real SmolLM2 base model: the base LM is a 2-layer ``LlamaForCausalLM``
with hidden size 32, its tokenizer is the BERT WordPiece tokenizer bundled with the MiniLM
encoder package (with a small Jinja chat template assigned here), and the knowledge/query
encoder is a 1-layer random ``BertModel`` of hidden size 32.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Hypothesis caches literal constants on disk: keep that out of the checkout.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "langchain-recipe-hypothesis")
)

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import settings

from langchain_recipe.base_models import HuggingFaceBaseModel, resolve_encoder_path
from langchain_recipe.config import PromptEncoderType, RecipeConfig
from langchain_recipe.datasets import EditRecord
from langchain_recipe.nn import RecipeModel

# No example database: hypothesis must not write a .hypothesis/ folder into the checkout.
settings.register_profile("unit", database=None, deadline=None, max_examples=25, derandomize=True)
settings.load_profile("unit")

# Keep the unit tests light on a busy machine (and bit-for-bit reproducible).
torch.set_num_threads(1)

SEED = 1234

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
"""A minimal chat template: one ``role: content`` line per turn, then ``assistant:``."""

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

TINY_RECIPE_KWARGS: dict[str, Any] = {
    "encoder_hidden_size": 32,
    "encoder_max_length": 32,
    "knowledge_dim": 64,
    "lm_hidden_size": 32,
    "num_sentinel_tokens": 4,
    "num_prompt_tokens": 3,
    "prompt_encoder_layers": 1,
    "prompt_encoder_heads": 4,
    "prompt_encoder_ffn_ratio": 2,
    "max_statement_tokens": 16,
    "base_model_name": "tiny-llama",
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same torch RNG state."""
    torch.manual_seed(SEED)


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The MiniLM encoder's BERT WordPiece fast tokenizer, with a chat template (do not mutate)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_encoder_path(ENCODER_NAME))
    tok.chat_template = CHAT_TEMPLATE
    assert tok.is_fast
    assert tok.pad_token_id is not None
    return tok


@pytest.fixture(scope="session")
def base_model(tokenizer: Any) -> HuggingFaceBaseModel:
    """A tiny random LlamaForCausalLM (eval mode, frozen) wrapped as a HuggingFaceBaseModel."""
    from model_variants import tiny_llama

    torch.manual_seed(SEED)
    return tiny_llama(
        tokenizer,
        hidden_size=32,
        layers=2,
        name="tiny-llama",
        max_position_embeddings=256,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )


@pytest.fixture(scope="session")
def lm_state(base_model: HuggingFaceBaseModel) -> dict[str, torch.Tensor]:
    """A copy of the tiny LM's weights, to check that no test changes them."""
    return {k: v.detach().clone() for k, v in base_model.model.state_dict().items()}


def _tiny_encoder(vocab_size: int) -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED + 1)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.fixture
def encoder(tokenizer: Any) -> torch.nn.Module:
    """A fresh tiny random BertModel (function scope: RecipeModel sets its requires_grad)."""
    return _tiny_encoder(len(tokenizer))


@pytest.fixture
def recipe_config() -> RecipeConfig:
    """A tiny statement-attention RecipeConfig matching the tiny LM and encoder."""
    return RecipeConfig(**TINY_RECIPE_KWARGS)


@pytest.fixture
def make_recipe_model(tokenizer: Any) -> Callable[..., RecipeModel]:
    """Factory of fresh, deterministic tiny RecipeModels; keyword arguments override the config."""

    def make(**overrides: Any) -> RecipeModel:
        config = RecipeConfig(**{**TINY_RECIPE_KWARGS, **overrides})
        encoder = _tiny_encoder(len(tokenizer))
        torch.manual_seed(SEED + 2)
        return RecipeModel(config, encoder=encoder, encoder_tokenizer=tokenizer)

    return make


@pytest.fixture
def recipe_model(make_recipe_model: Callable[..., RecipeModel]) -> RecipeModel:
    """A fresh tiny statement-attention RecipeModel."""
    return make_recipe_model()


@pytest.fixture(params=[PromptEncoderType.STATEMENT_ATTENTION, PromptEncoderType.MLP], ids=lambda t: t.value)
def any_recipe_model(request: pytest.FixtureRequest, make_recipe_model: Callable[..., RecipeModel]) -> RecipeModel:
    """A fresh tiny RecipeModel of each prompt encoder type."""
    return make_recipe_model(prompt_encoder_type=request.param)


@pytest.fixture
def edit_records() -> list[EditRecord]:
    """Four hand-made edits with paraphrases and unrelated locality questions."""
    return [
        EditRecord(
            prompt="Who is the chief executive of Acme Corporation?",
            target="Ada Lovelace",
            rephrase="Which person runs Acme Corporation?",
            locality_prompt="What is the capital of France?",
            locality_answer="Paris",
            subject="Acme Corporation",
        ),
        EditRecord(
            prompt="In which city is the Zephyr Tower located?",
            target="Lisbon",
            rephrase="Where can one find the Zephyr Tower?",
            locality_prompt="How many legs does a spider have?",
            locality_answer="eight",
            subject="Zephyr Tower",
        ),
        EditRecord(
            prompt="What language does Oskar Brandt speak?",
            target="Portuguese",
            rephrase="Which language is spoken by Oskar Brandt?",
            locality_prompt="Who wrote the play Hamlet?",
            locality_answer="William Shakespeare",
            subject="Oskar Brandt",
        ),
        EditRecord(
            prompt="Which team does Mira Solberg play for?",
            target="Chicago Bulls",
            rephrase="Mira Solberg is a member of which team?",
            locality_prompt="What is the boiling point of water in Celsius?",
            locality_answer="one hundred",
            subject="Mira Solberg",
        ),
    ]


# ---------------------------------------------------------------------- knowledge store helpers
@pytest.fixture
def knowledge_store(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> Any:
    """An empty in-memory RecipeKnowledgeStore over the tiny RecipeModel and tiny LM."""
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    store = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, location=":memory:")
    yield store
    store.client.close()


@pytest.fixture
def force_gate(monkeypatch: pytest.MonkeyPatch) -> Callable[..., torch.Tensor]:
    """Set a store's knowledge sentinel so that chosen queries pass or fail the gate.

    ``force_gate(store, accept=[...], reject=[...])`` replaces ``store._sentinel_key`` (undone
    after the test) by a vector whose sentinel score ``s(q, Θ)`` is about ``-1e4`` for every
    ``accept`` query (below any edit's score) and ``+1e4`` for every ``reject`` query (above any).
    Returns the queries' new sentinel scores.
    """

    def force(store: Any, *, accept: Any = (), reject: Any = (), margin: float = 1e4) -> torch.Tensor:
        queries = [*accept, *reject]
        keys, _ = store.encode_queries(queries)
        scale = (store.recipe_model.config.knowledge_dim) ** 0.5
        target = torch.tensor([-margin] * len(accept) + [margin] * len(reject), dtype=torch.float64) * scale
        sentinel = torch.linalg.pinv(keys.double()) @ target
        monkeypatch.setattr(store, "_sentinel_key", sentinel.float())
        _, scores = store.encode_queries(queries)
        assert bool((scores[: len(accept)] < -margin / 2).all()), scores
        assert bool((scores[len(accept) :] > margin / 2).all()), scores
        return scores

    return force
