"""Tests of prepend_continuous_prompts (langchain_recipe.injection) on a tiny random Llama."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.injection import IGNORE_INDEX, position_ids_from_mask, prepend_continuous_prompts

HIDDEN = 32


def _pad(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token id rows on one side; the mask comes from the lengths, never from the ids."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(length - len(row), length) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def _random_rows(lengths: list[int], vocab_size: int, generator: torch.Generator) -> list[list[int]]:
    return [torch.randint(1000, vocab_size, (n,), generator=generator).tolist() for n in lengths]


def _logits(
    base_model: HuggingFaceBaseModel, inputs_embeds: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor | None
) -> torch.Tensor:
    with torch.no_grad():
        return base_model.model(
            inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids, use_cache=False
        ).logits


# ---------------------------------------------------------------------- empty store == bare LM
@pytest.mark.parametrize("prompts", [None, "all_none", "empty_tensors"])
def test_no_prompts_on_left_padded_input_gives_the_bare_lm_logits(
    base_model: HuggingFaceBaseModel, prompts: str | None
) -> None:
    generator = torch.Generator().manual_seed(0)
    ids, mask = _pad(_random_rows([7, 3, 5], len(base_model.tokenizer), generator), 0, "left")
    rows = {None: None, "all_none": [None, None, None], "empty_tensors": [torch.zeros(0, HIDDEN)] * 3}[prompts]
    embeds = base_model.embed(ids)

    prefixed = prepend_continuous_prompts(embeds, mask, rows)

    # Left-padded input without prompts is passed through unchanged (apart from pad embeddings).
    assert torch.equal(prefixed.attention_mask, mask)
    assert torch.equal(prefixed.inputs_embeds[mask.bool()], embeds[mask.bool()])
    assert prefixed.num_prompt_tokens.tolist() == [0, 0, 0]
    with torch.no_grad():
        bare = base_model.model(input_ids=ids, attention_mask=mask).logits
    injected = _logits(base_model, prefixed.inputs_embeds, prefixed.attention_mask, prefixed.position_ids)
    real = mask.bool()
    assert torch.allclose(injected[real], bare[real], atol=1e-5)


def test_no_prompts_on_unpadded_input_is_exactly_the_bare_lm(base_model: HuggingFaceBaseModel) -> None:
    ids = torch.randint(1000, len(base_model.tokenizer), (2, 6))
    mask = torch.ones_like(ids)
    prefixed = prepend_continuous_prompts(base_model.embed(ids), mask, None)
    assert torch.equal(prefixed.position_ids, torch.arange(6).expand(2, 6))
    with torch.no_grad():
        bare = base_model.model(input_ids=ids, attention_mask=mask).logits
    injected = _logits(base_model, prefixed.inputs_embeds, prefixed.attention_mask, prefixed.position_ids)
    assert torch.allclose(injected, bare, atol=1e-6)


# ---------------------------------------------------------------------- layout
@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("input_side", ["left", "right"])
def test_mixed_prompt_lengths_layout(padding_side: str, input_side: str) -> None:
    lengths = [4, 2, 3]
    ids, mask = _pad([[11 + 10 * i + j for j in range(n)] for i, n in enumerate(lengths)], 0, input_side)
    # Embeddings that encode the token id, so positions can be traced in the output.
    embeds = ids.unsqueeze(-1).float().expand(-1, -1, HIDDEN).clone()
    prompt = torch.full((3, HIDDEN), -1.0)
    labels = torch.where(mask.bool(), ids + 1000, torch.full_like(ids, 7))  # pad labels must disappear

    out = prepend_continuous_prompts(embeds, mask, [None, prompt, prompt], labels=labels, padding_side=padding_side)

    total = [4, 5, 6]  # tokens + prompt length (0, 3, 3)
    assert out.inputs_embeds.shape == (3, 6, HIDDEN)
    assert out.attention_mask.shape == out.position_ids.shape == out.labels.shape == (3, 6)
    assert out.num_prompt_tokens.tolist() == [0, 3, 3]
    assert out.attention_mask.sum(1).tolist() == total
    for i, n in enumerate(total):
        span = slice(6 - n, 6) if padding_side == "left" else slice(0, n)
        expected_mask = torch.zeros(6, dtype=torch.long)
        expected_mask[span] = 1
        assert torch.equal(out.attention_mask[i], expected_mask)
        # Positions 0..n-1 on the sequence (left padding sits at position 0).
        assert torch.equal(out.position_ids[i, span], torch.arange(n))
        if padding_side == "left":
            assert out.position_ids[i, : 6 - n].eq(0).all()
        sequence = out.inputs_embeds[i, span, 0]
        p = int(out.num_prompt_tokens[i])
        assert torch.equal(sequence[:p], torch.full((p,), -1.0))
        assert sequence[p:].tolist() == [float(11 + 10 * i + j) for j in range(lengths[i])]
        # Labels: -100 on prompt and padding, the given labels on real tokens (in order).
        row_labels = out.labels[i]
        assert row_labels[span][:p].eq(IGNORE_INDEX).all()
        assert row_labels[span][p:].tolist() == [1000 + 11 + 10 * i + j for j in range(lengths[i])]
        assert row_labels[out.attention_mask[i] == 0].eq(IGNORE_INDEX).all()
        # Padding is zeros.
        assert out.inputs_embeds[i][out.attention_mask[i] == 0].eq(0).all()


def test_batched_prompt_tensor_is_accepted() -> None:
    embeds = torch.randn(2, 4, HIDDEN)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    prompts = torch.randn(2, 3, HIDDEN)
    out = prepend_continuous_prompts(embeds, mask, prompts)
    assert out.inputs_embeds.shape == (2, 7, HIDDEN)
    assert torch.equal(out.inputs_embeds[0, 1:4], prompts[0])
    assert torch.equal(out.inputs_embeds[1, 0:3], prompts[1])
    assert out.labels is None


def test_position_ids_from_mask() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2]]


# ---------------------------------------------------------------------- dtypes, masks, gradients
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_prompts_are_cast_to_the_embeddings_dtype(dtype: torch.dtype) -> None:
    embeds = torch.randn(2, 3, HIDDEN, dtype=dtype)
    mask = torch.ones(2, 3, dtype=torch.long)
    prompt = torch.randn(2, HIDDEN, dtype=torch.float32)
    out = prepend_continuous_prompts(embeds, mask, [prompt, None])
    assert out.inputs_embeds.dtype == dtype
    assert torch.equal(out.inputs_embeds[0, :2], prompt.to(dtype))


def test_gradients_flow_into_the_prompts() -> None:
    embeds = torch.randn(2, 3, HIDDEN)
    mask = torch.tensor([[1, 1, 1], [0, 1, 1]])
    prompt = torch.randn(2, HIDDEN, requires_grad=True)
    out = prepend_continuous_prompts(embeds, mask, [None, prompt])
    out.inputs_embeds.sum().backward()
    assert prompt.grad is not None
    assert torch.equal(prompt.grad, torch.ones(2, HIDDEN))


def test_mask_comes_from_attention_mask_not_from_pad_ids(base_model: HuggingFaceBaseModel) -> None:
    pad_id = 2054  # also a real token in the rows below
    rows = [[2054, 3000, 2054], [4000, 2054]]
    ids, mask = _pad(rows, pad_id, "left")
    assert ids[1, 0] == pad_id  # the padding looks exactly like a real token
    embeds = base_model.embed(ids)
    prompt = torch.randn(2, HIDDEN)
    out = prepend_continuous_prompts(embeds, mask, [prompt, prompt], labels=ids)
    assert out.attention_mask.sum(1).tolist() == [5, 4]
    # Every real occurrence of the pad id survives, with its label.
    assert out.labels[0, 2:].tolist() == [2054, 3000, 2054]
    assert out.labels[1, 3:].tolist() == [4000, 2054]
    assert torch.equal(out.inputs_embeds[0, 2], base_model.embed(torch.tensor([2054]))[0])


@pytest.mark.parametrize(
    "prompt",
    [torch.randn(3, HIDDEN + 1), torch.randn(3, HIDDEN // 2), torch.randn(1, 3, HIDDEN), torch.randn(HIDDEN)],
    ids=["too_wide", "too_narrow", "3d", "1d"],
)
def test_wrong_prompt_shape_raises(prompt: torch.Tensor) -> None:
    embeds = torch.randn(2, 3, HIDDEN)
    mask = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="Prompt of row 1"):
        prepend_continuous_prompts(embeds, mask, [None, prompt])


def test_other_bad_arguments_raise() -> None:
    embeds = torch.randn(2, 3, HIDDEN)
    mask = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="padding_side"):
        prepend_continuous_prompts(embeds, mask, None, padding_side="middle")
    with pytest.raises(ValueError, match="attention_mask shape"):
        prepend_continuous_prompts(embeds, mask[:, :2], None)
    with pytest.raises(ValueError, match="3 prompts for a batch of 2"):
        prepend_continuous_prompts(embeds, mask, [None, None, None])


# ---------------------------------------------------------------------- property test
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 6), st.sampled_from([0, 1, 3])),  # (token count, prompt length)
        min_size=1,
        max_size=4,
    ),
    input_side=st.sampled_from(["left", "right"]),
    output_side=st.sampled_from(["left", "right"]),
    seed=st.integers(0, 2**16),
)
def test_batched_injection_equals_each_row_alone(
    base_model: HuggingFaceBaseModel,
    rows: list[tuple[int, int]],
    input_side: str,
    output_side: str,
    seed: int,
) -> None:
    """Whatever the lengths, prompts and padding, a row's logits at its real positions equal those
    of the LM run on ``[prompt ; tokens]`` alone (no padding), and labels line up."""
    generator = torch.Generator().manual_seed(seed)
    token_rows = _random_rows([n for n, _ in rows], len(base_model.tokenizer), generator)
    ids, mask = _pad(token_rows, 0, input_side)
    prompts = [torch.randn(p, HIDDEN, generator=generator) if p else None for _, p in rows]
    embeds = base_model.embed(ids)

    out = prepend_continuous_prompts(embeds, mask, prompts, labels=ids, padding_side=output_side)

    batched = _logits(base_model, out.inputs_embeds, out.attention_mask, out.position_ids)
    assert out.attention_mask.sum(1).tolist() == [n + p for n, p in rows]
    assert out.num_prompt_tokens.tolist() == [p for _, p in rows]
    for i, (tokens, prompt) in enumerate(zip(token_rows, prompts, strict=False)):
        alone = base_model.embed(torch.tensor([tokens]))
        if prompt is not None:
            alone = torch.cat([prompt.unsqueeze(0), alone], dim=1)
        reference = _logits(base_model, alone, torch.ones(alone.shape[:2], dtype=torch.long), None)[0]
        real = out.attention_mask[i].bool()
        assert torch.allclose(batched[i][real], reference, atol=1e-5)
        assert torch.equal(out.position_ids[i][real], torch.arange(real.sum()))
        n_prompt = 0 if prompt is None else prompt.shape[0]
        assert out.labels[i][real].tolist() == [IGNORE_INDEX] * n_prompt + tokens
        assert out.labels[i][~real].eq(IGNORE_INDEX).all()
