"""Teacher-forced batches and label logits, shared by training and evaluation.

A question/target pair becomes ``input = ids[:-1]``, ``labels = ids[1:]`` of the joint text,
with labels kept only on the target's tokens (RECIPE §4 evaluation protocol). The target span is
found from the tokenizer's character offsets on the joint text, so the label ids are exactly the
tail of the joint tokenisation (the leading space stays with the target's first token).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.generation import pad_id
from langchain_recipe.injection import IGNORE_INDEX, chat_prompt_offset, pad_rows, prepend_continuous_prompts

__all__ = ["TeacherForcedBatch", "build_teacher_forced_batch", "format_question", "label_logits"]


def format_question(tokenizer, question: str, *, chat: bool = False) -> str:  # noqa: ANN001
    """The text the LM sees before the answer: the raw question, or the chat-templated turn.

    Args:
        tokenizer: the base LM's tokenizer.
        question: the question or sentence prefix.
        chat: wrap it as a user turn of the tokenizer's chat template, ending with the
            assistant's header.
    """
    if not chat:
        return question
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )


def join_question_and_target(question_text: str, target: str, *, chat: bool) -> tuple[str, int]:
    """Joint text and the character index where the target (with its leading space) starts."""
    target = target.strip()
    if chat or question_text.endswith((" ", "\n")):
        return question_text + target, len(question_text)
    return question_text + " " + target, len(question_text)


@dataclass
class TeacherForcedBatch:
    """Left-padded teacher-forcing inputs.

    Attributes:
        input_ids: shape `(batch_size, seq_len)`.
        attention_mask: shape `(batch_size, seq_len)`, from the tokenizer.
        labels: shape `(batch_size, seq_len)`, the next token at target positions, else -100.
        prompt_offsets: real tokens before the continuous prompt in each row, shape
            `(batch_size,)`: 0 for raw questions (the paper's prefix), the chat template's tokens
            before the question for chat rows (:func:`~langchain_recipe.injection.chat_prompt_offset`).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    prompt_offsets: torch.Tensor | None = None


def build_teacher_forced_batch(
    tokenizer,  # noqa: ANN001
    questions: Sequence[str],
    targets: Sequence[str],
    *,
    chat: bool | Sequence[bool] = False,
) -> TeacherForcedBatch:
    """Tokenise question/target pairs for teacher forcing.

    Args:
        tokenizer: a fast tokenizer of the base LM (character offsets are required).
        questions: questions or sentence prefixes.
        targets: the answers whose tokens are labelled.
        chat: whether each question is wrapped in the chat template (one flag for all, or one
            per row).

    Returns:
        A left-padded :class:`TeacherForcedBatch`.

    Raises:
        ValueError: lengths differ, or a target is empty.
    """
    if len(questions) != len(targets):
        msg = f"Got {len(questions)} questions but {len(targets)} targets."
        raise ValueError(msg)
    flags = [chat] * len(questions) if isinstance(chat, bool) else list(chat)
    rows_ids: list[list[int]] = []
    rows_labels: list[list[int]] = []
    offsets: list[int] = []
    for question, target, is_chat in zip(questions, targets, flags, strict=False):
        if not target.strip():
            msg = f"Empty target for question {question!r}."
            raise ValueError(msg)
        text, boundary = join_question_and_target(
            format_question(tokenizer, question, chat=is_chat), target, chat=is_chat
        )
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=not is_chat)
        ids = list(encoded["input_ids"])
        is_target = [end > boundary for _, end in encoded["offset_mapping"]]
        rows_ids.append(ids[:-1])
        offsets.append(chat_prompt_offset(tokenizer, [{"role": "user", "content": question}], ids) if is_chat else 0)
        rows_labels.append([tok if flag else IGNORE_INDEX for tok, flag in zip(ids[1:], is_target[1:], strict=True)])
    input_ids, attention_mask = pad_rows(rows_ids, pad_id(tokenizer))
    labels, _ = pad_rows(rows_labels, IGNORE_INDEX)
    return TeacherForcedBatch(input_ids, attention_mask, labels, torch.tensor(offsets, dtype=torch.long))


def label_logits(
    base_model: HuggingFaceBaseModel,
    batch: TeacherForcedBatch,
    prompts: Sequence[torch.Tensor | None] | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the LM with optional continuous prompts and return logits at labelled positions only.

    Only labelled positions go through the LM head, which saves most of the vocabulary
    projection (for models whose logits are not just ``lm_head(hidden)``, the last positions
    are kept with ``logits_to_keep`` instead).

    Args:
        base_model: the frozen base LM.
        batch: a left-padded teacher-forced batch.
        prompts: per-row continuous prompts (see
            :func:`~langchain_recipe.injection.prepend_continuous_prompts`).

    Returns:
        ``(logits, labels, rows)``: logits of shape `(num_labels, vocab_size)` (float32),
        labels of shape `(num_labels,)` and the batch row of each label, shape `(num_labels,)`.
    """
    device = base_model.device
    embeds = base_model.embed(batch.input_ids.to(device))
    prefixed = prepend_continuous_prompts(
        embeds,
        batch.attention_mask.to(device),
        prompts,
        labels=batch.labels.to(device),
        prompt_offsets=batch.prompt_offsets,
    )
    labels = prefixed.labels
    selected = labels != IGNORE_INDEX
    model = base_model.model
    if _can_project_selected(model):
        # Run the decoder, then the LM head only on labelled positions (a few per row).
        hidden = model.get_decoder()(
            inputs_embeds=prefixed.inputs_embeds,
            attention_mask=prefixed.attention_mask,
            position_ids=prefixed.position_ids,
            use_cache=False,
        ).last_hidden_state
        logits = model.get_output_embeddings()(hidden[selected])
    else:
        labelled_columns = selected.any(0).nonzero()
        keep = labels.shape[1] - int(labelled_columns.min()) if labelled_columns.numel() else 1
        output = model(
            inputs_embeds=prefixed.inputs_embeds,
            attention_mask=prefixed.attention_mask,
            position_ids=prefixed.position_ids,
            logits_to_keep=keep,
            use_cache=False,
        )
        logits = output.logits[selected[:, -keep:]]
    rows = torch.arange(labels.shape[0], device=labels.device).unsqueeze(1).expand_as(labels)
    return logits.float(), labels[selected], rows[selected]


def _can_project_selected(model) -> bool:  # noqa: ANN001
    """Whether logits are exactly ``lm_head(decoder(...))`` for this model.

    With no soft-capping or logit scaling in its forward, the head may run on selected positions only.
    """
    config = model.config
    special = any(
        getattr(config, name, None) not in (None, 1, 1.0) for name in ("final_logit_softcapping", "logit_scale")
    )
    return not special and model.get_decoder() is not None and model.get_output_embeddings() is not None
