"""Tests of the shared generation rules (langchain_recipe.generation, injection.pad_rows)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.generation import Sampling, end_token_ids, generate_rows, pad_id
from langchain_recipe.injection import pad_rows


@pytest.mark.parametrize("side", ["left", "right"])
def test_pad_rows(side: str) -> None:
    ids, mask = pad_rows([[5, 6, 7], [8]], 0, side=side)
    weights, _ = pad_rows([[0.5, 2.0], [1.0]], -1.0, side=side, dtype=torch.float32)
    embeds, embeds_mask = pad_rows([torch.ones(2, 4, requires_grad=True), torch.ones(3, 4)], 0.0, side=side)

    expected = [[5, 6, 7], [0, 0, 8]] if side == "left" else [[5, 6, 7], [8, 0, 0]]
    assert ids.tolist() == expected and ids.dtype == torch.long
    assert mask.tolist() == [[int(t != 0) for t in row] for row in expected]
    assert weights.dtype == torch.float32 and weights.tolist()[1] == ([-1.0, 1.0] if side == "left" else [1.0, -1.0])
    assert embeds.shape == (2, 3, 4) and embeds.requires_grad
    assert embeds_mask.sum(-1).tolist() == [2, 3]


def test_pad_rows_rejects_a_bad_side_or_no_rows() -> None:
    with pytest.raises(InvalidInputError, match="padding"):
        pad_rows([[1]], side="middle")
    with pytest.raises(InvalidInputError, match="at least one row"):
        pad_rows([])


def test_end_token_ids_join_the_generation_config_and_the_tokenizer(
    base_model: HuggingFaceBaseModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    sep = base_model.tokenizer.sep_token_id
    assert end_token_ids(base_model) == [sep]
    monkeypatch.setattr(base_model.model.generation_config, "eos_token_id", [7, sep])
    with_eos = HuggingFaceBaseModel(model=base_model.model, tokenizer=SimpleNamespace(eos_token_id=3), name="x")
    no_pad = SimpleNamespace(pad_token_id=None)

    assert end_token_ids(with_eos) == sorted({3, 7, sep})
    assert pad_id(base_model.tokenizer) == base_model.tokenizer.pad_token_id
    assert pad_id(no_pad, end_token_ids(with_eos)) == 3
    assert pad_id(no_pad) == 0


def test_generate_rows_equals_the_bare_generate_for_unprompted_rows(base_model: HuggingFaceBaseModel) -> None:
    rows = [torch.tensor([101, 2054, 2003, 1996]), torch.tensor([101, 7592])]
    (alone,) = generate_rows(base_model, rows[:1], max_new_tokens=6)
    with torch.no_grad():
        bare = base_model.model.generate(
            rows[0][None], attention_mask=torch.ones(1, 4, dtype=torch.long), max_new_tokens=6, do_sample=False
        )
    both = generate_rows(base_model, rows, prompts=[None, None], max_new_tokens=6)

    assert alone.tokens == bare[0, 4:].tolist()[: len(alone.tokens)]
    assert alone.finish_reason in {"stop", "length"}
    assert both[0].tokens == alone.tokens
    assert both[1].tokens == generate_rows(base_model, rows[1:], max_new_tokens=6)[0].tokens


def test_sampling_is_checked() -> None:
    assert Sampling().greedy and Sampling().generate_kwargs()["do_sample"] is False
    with pytest.raises(InvalidInputError, match="top_p"):
        Sampling(temperature=1.0, top_p=0.0)
