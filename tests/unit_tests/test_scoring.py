"""The one home of RECIPE's retrieval score and sentinel gate (RECIPE §3.3)."""

from __future__ import annotations

import math

import pytest
import torch

from langchain_recipe.scoring import (
    paired_retrieval_scores,
    passes_gate,
    retrieval_scores,
    sentinel_gate,
    stored_key,
)


def test_retrieval_scores_are_the_scaled_dot_product() -> None:
    queries = torch.tensor([[1.0, 2.0, 0.0, 0.0]])
    keys = torch.tensor([[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    assert torch.allclose(retrieval_scores(queries, keys), torch.tensor([[5.0 / 2.0, 0.0]]))


def test_paired_scores_are_the_diagonal_of_all_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(5, 8, generator=generator), torch.randn(5, 8, generator=generator)
    assert torch.allclose(paired_retrieval_scores(queries, keys), retrieval_scores(queries, keys).diagonal())


def test_a_plain_dot_product_with_the_stored_key_is_the_retrieval_score() -> None:
    generator = torch.Generator().manual_seed(1)
    queries, keys = torch.randn(3, 16, generator=generator), torch.randn(4, 16, generator=generator)
    assert torch.allclose(queries @ stored_key(keys).T, retrieval_scores(queries, keys), atol=1e-6)
    assert stored_key(keys.half()).dtype == torch.float32


def test_the_gate_is_strict_so_a_tie_applies_no_edit() -> None:
    assert passes_gate(0.5, 0.4)
    assert not passes_gate(0.5, 0.5)
    assert passes_gate(torch.tensor([0.5, 0.5]), torch.tensor([0.4, 0.5])).tolist() == [True, False]


def test_sentinel_gate_uses_the_same_score_and_gate() -> None:
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    knowledge = torch.tensor([[2.0, 0.0]])
    sentinel = torch.tensor([1.0, 1.0])
    decision = sentinel_gate(queries, knowledge, sentinel)
    assert decision.best_index.tolist() == [0, 0]
    assert decision.best_score.tolist() == pytest.approx([2.0 / math.sqrt(2), 0.0])
    assert decision.accepted.tolist() == [True, False]


def test_mismatched_dimensions_say_how_to_fix_them() -> None:
    with pytest.raises(ValueError, match="same RecipeModel"):
        retrieval_scores(torch.zeros(1, 4), torch.zeros(1, 8))
