"""Prefixing continuous prompts to a causal LM's input embeddings (pure functions).

RECIPE (Chen et al., EMNLP 2024, §3.2) prefixes each edit's continuous prompt to the LM input.
The authors' code does it with forward hooks; here it is done by building ``inputs_embeds``,
an attention mask and position ids, so any Hugging Face causal LM that accepts ``inputs_embeds``
works unmodified:

* row i becomes ``[E_i[:o_i] ; P_i ; E_i[o_i:]]``: its prompt vectors (``n_i`` of them, possibly
  0) inserted after its first ``o_i`` real tokens (``o_i = 0``, a plain prefix, unless offsets are
  given), then the batch is re-padded (left padding by default). In a chat-templated
  conversation the prompt goes right before the last user turn's text
  (:func:`chat_prompt_offset`): the place where training puts it, directly before the question.
  Put before the chat template's system header instead, the same prompt states the new fact in
  far fewer greedy answers (``docs/evaluation.md``);
* the attention mask is 1 on prompt and real-token positions, 0 on padding;
* position ids are ``cumsum(mask) - 1`` clamped at 0 (left padding sits at 0): the prompt takes
  positions ``o_i..o_i+n_i-1`` and the tokens around it keep their order, as in the reference
  implementation for RoPE models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from langchain_recipe.errors import InvalidInputError

__all__ = [
    "PROMPT_SLOT",
    "PrefixedInputs",
    "chat_prompt_offset",
    "pad_rows",
    "position_ids_from_mask",
    "prepend_continuous_prompts",
    "prepend_statement_text",
]

IGNORE_INDEX = -100
"""Label value that loss functions and metrics skip."""


@dataclass
class PrefixedInputs:
    """Model inputs after prefixing continuous prompts.

    Attributes:
        inputs_embeds: shape `(batch_size, seq_len, hidden_size)`.
        attention_mask: shape `(batch_size, seq_len)`, 1 on prompt and token positions.
        position_ids: shape `(batch_size, seq_len)`, ``cumsum(attention_mask) - 1`` clamped at 0.
        labels: shape `(batch_size, seq_len)` with ``-100`` on prompt and padding positions, or
            ``None`` when no labels were given.
        num_prompt_tokens: prompt vectors prefixed to each row, shape `(batch_size,)`.
    """

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None
    num_prompt_tokens: torch.Tensor


def prepend_statement_text(statement: str, question: str) -> str:
    """The gated text prefix (text-RAG): an accepted edit's knowledge statement, a newline, then the question.

    The one format of the chat model's ``injection="text"``, ``recipe eval``'s
    text-RAG baseline and ``recipe bench``'s text-RAG variant, so the three measure the same
    thing.

    Args:
        statement: the retrieved edit's knowledge statement (surrounding whitespace removed).
        question: the question (or the last user turn's text), unchanged.
    """
    return f"{statement.strip()}\n{question}"


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip padding: ``cumsum(mask) - 1``, clamped at 0.

    Args:
        attention_mask: shape `(batch_size, seq_len)`.

    Returns:
        Long tensor of shape `(batch_size, seq_len)`.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def pad_rows(
    rows: Sequence[torch.Tensor | Sequence[int] | Sequence[float]],
    value: float = 0,
    *,
    side: str = "left",
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad rows of different lengths into one batch (``torch.nn.utils.rnn.pad_sequence``).

    The one padding rule of generation, teacher forcing, training and prompt insertion.

    Args:
        rows: tensors of shape `(length_i, *rest)`, or lists of numbers (read with ``dtype``).
        value: the padding value (a pad token id, ``-100`` for labels, 0 for embeddings).
        side: ``"left"`` (suits generation) or ``"right"``.
        dtype: dtype of rows given as lists; ``None`` is ``torch.long``.

    Returns:
        ``(padded, attention_mask)``: shape `(batch_size, max_length, *rest)`, and a long mask of
        shape `(batch_size, max_length)`, 1 on the rows' own positions and 0 on padding. Gradients
        flow through ``padded``.

    Raises:
        InvalidInputError: no rows, or ``side`` is neither "left" nor "right".
    """
    if side not in ("left", "right"):
        msg = f"padding_side must be 'left' or 'right', not {side!r}."
        raise InvalidInputError(msg)
    if not rows:
        msg = "Padding needs at least one row."
        raise InvalidInputError(msg)
    tensors = [r if isinstance(r, torch.Tensor) else torch.tensor(r, dtype=dtype or torch.long) for r in rows]
    padded = pad_sequence(tensors, batch_first=True, padding_value=value, padding_side=side)
    ones = [torch.ones(t.shape[0], dtype=torch.long, device=t.device) for t in tensors]
    return padded, pad_sequence(ones, batch_first=True, padding_value=0, padding_side=side)


def prepend_continuous_prompts(
    token_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    prompts: Sequence[torch.Tensor | None] | torch.Tensor | None,
    *,
    labels: torch.Tensor | None = None,
    padding_side: str = "left",
    prompt_offsets: Sequence[int] | torch.Tensor | None = None,
) -> PrefixedInputs:
    """Insert each row's continuous prompt among its real tokens (by default before all of them); re-pad.

    The real tokens of a row are the positions where ``attention_mask`` is 1 (in order), so the
    input may be padded on either side; the mask must come from the tokenizer, never from
    comparing ids with the pad id (SmolLM2's pad token is also its end-of-turn token).

    Args:
        token_embeds: token input embeddings, shape `(batch_size, seq_len, hidden_size)`.
        attention_mask: 1 on real tokens, 0 on padding, shape `(batch_size, seq_len)`.
        prompts: per row a tensor of shape `(num_prompt_tokens_i, hidden_size)` or ``None``
            (no edit); or one tensor of shape `(batch_size, num_prompt_tokens, hidden_size)`;
            or ``None`` for no prompt at all. Prompts are cast to ``token_embeds``' dtype and
            device; gradients flow through them.
        labels: optional token labels aligned with ``token_embeds``, shape `(batch_size, seq_len)`.
        padding_side: ``"left"`` (suits generation) or ``"right"``.
        prompt_offsets: per row, how many of its real tokens come before the prompt, shape
            `(batch_size,)`; ``None`` puts every prompt first. Chat-templated rows use
            :func:`chat_prompt_offset`, so the prompt sits right before the user's text.

    Returns:
        A :class:`PrefixedInputs`. With no prompts and left-padded input, the embeddings and
        mask are unchanged, so the LM's outputs equal the bare LM's.

    Raises:
        InvalidInputError: shapes disagree, a prompt holds NaN or infinite values, an offset is
            negative or beyond its row's real tokens, or ``padding_side`` is neither "left" nor
            "right" (a ``ValueError`` too).
    """
    rows, offsets = _rows_and_offsets(token_embeds, attention_mask, prompts, prompt_offsets, padding_side)
    sequences, row_labels, lengths = _insert_prompts(token_embeds, attention_mask.bool(), rows, offsets, labels)
    embeds, new_mask = pad_rows(sequences, 0.0, side=padding_side)
    new_labels = None if labels is None else pad_rows(row_labels, IGNORE_INDEX, side=padding_side)[0]
    new_mask = new_mask.to(device=attention_mask.device, dtype=attention_mask.dtype)
    return PrefixedInputs(
        inputs_embeds=embeds,
        attention_mask=new_mask,
        position_ids=position_ids_from_mask(new_mask),
        labels=new_labels,
        num_prompt_tokens=torch.tensor(lengths, device=attention_mask.device),
    )


def _rows_and_offsets(
    token_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    prompts: Sequence[torch.Tensor | None] | torch.Tensor | None,
    prompt_offsets: Sequence[int] | torch.Tensor | None,
    padding_side: str,
) -> tuple[list[torch.Tensor | None], list[int]]:
    """Each row's prompt (or ``None``) and offset, after checking that the shapes agree."""
    if padding_side not in ("left", "right"):
        msg = f"padding_side must be 'left' or 'right', not {padding_side!r}."
        raise InvalidInputError(msg)
    batch_size = token_embeds.shape[0]
    if attention_mask.shape != token_embeds.shape[:2]:
        msg = (
            f"attention_mask shape {tuple(attention_mask.shape)} does not match token_embeds "
            f"{tuple(token_embeds.shape[:2])}."
        )
        raise InvalidInputError(msg)
    rows: list[torch.Tensor | None] = [None] * batch_size if prompts is None else list(prompts)
    if len(rows) != batch_size:
        msg = f"Got {len(rows)} prompts for a batch of {batch_size} rows."
        raise InvalidInputError(msg)
    offsets = [0] * batch_size if prompt_offsets is None else [int(o) for o in prompt_offsets]
    if len(offsets) != batch_size:
        msg = f"Got {len(offsets)} prompt offsets for a batch of {batch_size} rows."
        raise InvalidInputError(msg)
    return rows, offsets


def _insert_prompts(
    token_embeds: torch.Tensor,
    mask: torch.Tensor,
    prompts: list[torch.Tensor | None],
    offsets: list[int],
    labels: torch.Tensor | None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int]]:
    """Per row, its real tokens' embeddings with its prompt inserted at its offset.

    Also, per row, its labels with ``-100`` at the prompt's positions (when ``labels`` is given),
    and its prompt's length.
    """
    sequences: list[torch.Tensor] = []
    row_labels: list[torch.Tensor] = []
    lengths: list[int] = []
    for i, prompt in enumerate(prompts):
        real = token_embeds[i][mask[i]]
        prompt = _checked_prompt(prompt, i, token_embeds.shape[2], offsets[i], real.shape[0])
        cut = 0 if prompt is None else offsets[i]
        inserted = real[:0] if prompt is None else prompt.to(device=real.device, dtype=real.dtype)
        sequences.append(torch.cat([real[:cut], inserted, real[cut:]], dim=0))
        lengths.append(inserted.shape[0])
        if labels is not None:
            kept = labels[i][mask[i]]
            row_labels.append(torch.cat([kept[:cut], kept.new_full((lengths[-1],), IGNORE_INDEX), kept[cut:]]))
    return sequences, row_labels, lengths


def _checked_prompt(
    prompt: torch.Tensor | None, row: int, hidden_size: int, offset: int, num_real: int
) -> torch.Tensor | None:
    """``prompt``, or ``None`` when there is none or it is empty.

    Raises:
        InvalidInputError: a wrong shape, NaN or infinite values, or an offset outside the row.
    """
    if prompt is None or prompt.shape[0] == 0:
        return None
    if prompt.dim() != 2 or prompt.shape[1] != hidden_size:
        msg = f"Prompt of row {row} has shape {tuple(prompt.shape)}; expected (n, {hidden_size})."
        raise InvalidInputError(msg)
    if not torch.isfinite(prompt).all():
        msg = f"Prompt of row {row} holds NaN or infinite values; it would turn the LM's output into NaN."
        raise InvalidInputError(msg)
    if not 0 <= offset <= num_real:
        msg = f"Prompt offset {offset} of row {row} is outside its {num_real} real tokens."
        raise InvalidInputError(msg)
    return prompt


PROMPT_SLOT = "\u2063<recipe-continuous-prompt>\u2063"
"""Placeholder text that marks where the last user turn's text starts in a rendered chat
template (never tokenised)."""


def chat_prompt_offset(tokenizer, conversation: Sequence[dict[str, str]], input_ids: Sequence[int]) -> int:  # noqa: ANN001
    """Where a continuous prompt goes in a chat-templated conversation.

    That is the number of template tokens before the last user turn's text.

    RECIPE trains the prompt directly before the question (§3.2, §4). In a chat template the
    question follows a system header and the user header; a prompt put before all of them is
    read tens of tokens away from the question and changes far fewer answers. This is the one
    rule for the chat model, chat-format training and chat-format evaluation.

    The conversation is rendered again with the last user turn's text replaced by
    :data:`PROMPT_SLOT`; the offset is the length of the longest common prefix of
    ``input_ids`` and the tokens of the text before the slot.

    Args:
        tokenizer: the base LM's tokenizer (with a chat template).
        conversation: ``[{"role": ..., "content": ...}, ...]`` as it was templated.
        input_ids: the templated conversation's token ids (``add_generation_prompt=True``).

    Returns:
        An offset in ``0..len(input_ids)``; 0 when the conversation has no user turn or the
        template drops the slot.
    """
    turns = [dict(turn) for turn in conversation]
    last_user = next((i for i in range(len(turns) - 1, -1, -1) if turns[i]["role"] == "user"), None)
    if last_user is None:
        return 0
    turns[last_user]["content"] = PROMPT_SLOT
    rendered = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    if PROMPT_SLOT not in rendered:
        return 0
    before = tokenizer(rendered.split(PROMPT_SLOT, 1)[0], add_special_tokens=False)["input_ids"]
    ids = [int(i) for i in input_ids]
    common = 0
    for a, b in zip(before, ids, strict=False):
        if a != b:
            break
        common += 1
    return common
