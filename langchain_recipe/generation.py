"""Generation with per-row continuous prompts, through transformers' ``generate``.

The one decode path of the chat model (:class:`~langchain_recipe.chat_models.RecipeChatModel`) and
the generation metrics (:func:`~langchain_recipe.evaluation.metrics.greedy_continuations`), and the
two rules they share with training and teacher forcing: how token rows are padded
(:func:`pad_rows`) and which tokens end a sequence (:func:`end_token_ids`).

A single row without a continuous prompt goes to ``generate`` as token ids, exactly as the bare LM
runs; any other batch goes as ``inputs_embeds`` built by
:func:`~langchain_recipe.injection.prepend_continuous_prompts` (RECIPE §3.2), together with token ids
aligned with them, so logits processors that read the context (the repetition penalty) see every
row's real tokens either way. transformers does the decoding: sampling (temperature, top-p, top-k),
the repetition penalty, ``max_new_tokens``, the end-of-sequence tokens and the generation config's
``min_new_tokens``; its ``MaxTimeCriteria`` decides timeouts. The one piece of our own is
:class:`_StepRecorder`, a ``StoppingCriteria`` that notes which row ended at which token and why
(``generate`` does not say), ends a row once its decoded text holds a stop string, and reports
every step.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.injection import IGNORE_INDEX, pad_rows, prepend_continuous_prompts

__all__ = [
    "GREEDY",
    "RowState",
    "Sampling",
    "end_token_ids",
    "generate_rows",
    "pad_id",
    "position_limit",
    "stream_rows",
]

Step = list[tuple[int, str | None] | None]
"""One generated token for every row: ``(token_id, finish_reason)``, or ``None`` for a row that
had already ended."""

_SAMPLING_LOCK = threading.Lock()
"""Held by every sampling generation, so a seeded one never shares torch's global RNG."""

MIN_TEMPERATURE = 1e-3
"""The smallest sampling temperature: below it, logits divided by it can overflow float32 and
sampling fails on ``inf``/``nan`` probabilities (``temperature=0`` is greedy)."""
MAX_TEMPERATURE = 100.0
"""The largest temperature (finite, so ``-inf`` logits divided by it never give ``nan``)."""
MIN_REPETITION_PENALTY = 1e-3
"""The smallest repetition penalty: positive logits are divided by it, and below it they can overflow."""


# ---------------------------------------------------------------------- end tokens and padding id
def end_token_ids(base_model: HuggingFaceBaseModel) -> list[int]:
    """The tokens that end a generated answer, sorted (possibly none).

    They are the generation config's ``eos_token_id`` (one id or a list) and the tokenizer's
    ``eos_token_id``, read at every call.
    """
    configured = base_model.model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list | tuple) else [configured]
    return sorted({int(i) for i in [*ids, base_model.tokenizer.eos_token_id] if i is not None})


def pad_id(tokenizer: Any, end_ids: Sequence[int] = ()) -> int:
    """The id that pads token rows: the tokenizer's pad token, else the first end token, else 0.

    Padding is masked out, so the choice never changes a result.
    """
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(end_ids[0]) if end_ids else 0


def position_limit(base_model: HuggingFaceBaseModel) -> tuple[int, str] | None:
    """The most positions the LM reads, and where the number comes from; ``None`` when unknown.

    The model config's ``max_position_embeddings`` (of its text config for a multimodal model),
    else the tokenizer's ``model_max_length`` unless that is transformers' "no limit" placeholder.
    """
    config = base_model.model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    limit = getattr(text_config, "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0:
        return limit, "config.max_position_embeddings"
    limit = getattr(base_model.tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10**9:
        return limit, "tokenizer.model_max_length"
    return None


# ---------------------------------------------------------------------- sampling controls
def check_temperature(value: float) -> float:
    """``value`` if it is a temperature that works: 0 (greedy) or in [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``].

    Raises:
        InvalidInputError: any other value (a tiny one overflows float32 logits; NaN and infinity fail too).
    """
    if value == 0 or (math.isfinite(value) and MIN_TEMPERATURE <= value <= MAX_TEMPERATURE):
        return value
    msg = (
        f"temperature must be 0 (greedy) or between {MIN_TEMPERATURE} and {MAX_TEMPERATURE}, not {value!r}: "
        "below that the logits divided by it overflow and sampling fails. Use temperature=0 for the most "
        "likely tokens."
    )
    raise InvalidInputError(msg)


def check_repetition_penalty(value: float) -> float:
    """``value`` if it is a finite repetition penalty of at least ``MIN_REPETITION_PENALTY``.

    Raises:
        InvalidInputError: any other value (positive logits are divided by it and would overflow).
    """
    if math.isfinite(value) and value >= MIN_REPETITION_PENALTY:
        return value
    msg = (
        f"repetition_penalty must be finite and at least {MIN_REPETITION_PENALTY}, not {value!r}: the logits "
        "are divided by it and overflow below that. Use 1.0 for no penalty."
    )
    raise InvalidInputError(msg)


MAX_SEED = 2**63 - 1
"""The largest seed :class:`Sampling` takes (torch's generator state is a signed 64-bit integer)."""


def _refuse(name: str, value: object, rule: str) -> None:
    msg = f"{name} must be {rule}, not {value!r}."
    raise InvalidInputError(msg)


def _check_type(name: str, value: object, types: tuple[type, ...], what: str) -> None:
    """Refuse a sampling value of the wrong type (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, types):
        _refuse(name, value, what)


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen (transformers' logits processors and warpers).

    Attributes:
        temperature: 0 picks the most likely token (greedy); above 0, softmax temperature of
            sampling.
        top_p: nucleus sampling: keep the smallest set of tokens whose probabilities sum to at
            least ``top_p`` (1.0 keeps all). Sampling only.
        top_k: keep the ``top_k`` most likely tokens (0 keeps all). Sampling only.
        repetition_penalty: CTRL's penalty (Keskar et al., 2019) on every token already in the
            context or the answer (1.0: none; above 1 discourages repeats). Greedy and sampling.
        seed: with sampling, seeds torch's RNG for this generation, so the same call gives the
            same answer; ``None`` draws from the current global RNG.

    Raises:
        InvalidInputError: a value of the wrong type or out of range (the message names it):
            ``temperature`` not 0 or in [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``],
            ``repetition_penalty`` not finite or below ``MIN_REPETITION_PENALTY``, ``top_p``
            outside (0, 1], ``top_k`` not an int of at least 0, ``seed`` not ``None`` or an int
            in [0, ``MAX_SEED``].
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("temperature", "top_p", "repetition_penalty"):
            _check_type(name, getattr(self, name), (int, float), "a number")
        check_temperature(self.temperature)
        check_repetition_penalty(self.repetition_penalty)
        if not 0 < self.top_p <= 1:
            _refuse("top_p", self.top_p, "in (0, 1] (1.0 keeps every token)")
        _check_type("top_k", self.top_k, (int,), "an int")
        if self.top_k < 0:
            _refuse("top_k", self.top_k, "0 (keeps every token) or more")
        if self.seed is not None:
            _check_type("seed", self.seed, (int,), "an int or None")
            if not 0 <= self.seed <= MAX_SEED:
                _refuse("seed", self.seed, f"None or between 0 and {MAX_SEED} (what torch.manual_seed takes)")

    @property
    def greedy(self) -> bool:
        """Whether decoding is greedy (``temperature == 0``)."""
        return self.temperature == 0

    def generate_kwargs(self) -> dict[str, Any]:
        """The ``generate`` arguments, explicit so the model's generation config cannot add a sampler."""
        if self.greedy:
            sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        else:
            sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
        return {**sampling, "repetition_penalty": self.repetition_penalty}

    @contextlib.contextmanager
    def rng(self, device: torch.device) -> Iterator[None]:
        """The RNG context of one generation on ``device``.

        Nothing for greedy decoding. For sampling, :data:`_SAMPLING_LOCK`: sampling generations
        run one at a time, so no other generation draws from torch's global RNG meanwhile. With a
        seed, also a forked RNG seeded with it (``torch.random.fork_rng`` + ``torch.manual_seed``);
        the global RNG state is restored afterwards.
        """
        if self.greedy:
            yield
            return
        with _SAMPLING_LOCK:
            if self.seed is None:
                yield
                return
            devices = [] if device.type == "cpu" else [device]
            with torch.random.fork_rng(devices=devices, device_type=device.type):
                torch.manual_seed(self.seed)
                yield


GREEDY = Sampling()
"""Greedy decoding with no repetition penalty."""


# ---------------------------------------------------------------------- generation
@dataclass
class RowState:
    """One row's new tokens (an end-of-sequence token included) and why it ended.

    ``finish_reason`` is ``"stop"`` (end token or stop string), ``"length"`` (``max_new_tokens``),
    ``"timeout"``, or ``None`` while the row runs (and after a cancelled generation).
    """

    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None


class _StepRecorder:
    """A ``StoppingCriteria`` run once per generated token, that records each row's answer.

    It appends each live row's token; ends rows by end token, stop string, ``max_new_tokens`` and
    timeout (``MaxTimeCriteria``); and reports the step to ``on_step``. A stop string is looked for
    in the row's decoded new text, the text the caller sees and cuts, so one that starts or ends
    inside a token (or inside a WordPiece ``##`` piece) is found as soon as it is complete.

    Returns ``True`` for ended rows (and for all rows once ``cancel`` is set).
    """

    def __init__(
        self,
        base_model: HuggingFaceBaseModel,
        num_rows: int,
        prompt_length: int,
        *,
        max_new_tokens: int,
        stops: Sequence[str],
        timeout: float | None,
        on_step: Callable[[Step], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        from transformers import MaxTimeCriteria

        self.rows = [RowState() for _ in range(num_rows)]
        self.ends = set(end_token_ids(base_model))
        self.prompt_length, self.max_new_tokens = prompt_length, max_new_tokens
        self.on_step, self.cancel = on_step, cancel
        self.tokenizer, self.stops = base_model.tokenizer, [stop for stop in stops if stop]
        self.clock = MaxTimeCriteria(timeout, initial_timestamp=time.time()) if timeout is not None else None

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        new = input_ids[:, self.prompt_length :]
        timed_out = self.clock is not None and bool(self.clock(new, scores)[0])
        step: Step = []
        for row, token in zip(self.rows, new[:, -1].tolist(), strict=True):
            if row.finish_reason is not None:
                step.append(None)  # generate pads an ended row (or goes on with it); not its answer
                continue
            row.tokens.append(int(token))
            if token in self.ends or self._stopped(row.tokens):
                row.finish_reason = "stop"
            elif len(row.tokens) >= self.max_new_tokens:
                row.finish_reason = "length"
            elif timed_out:
                row.finish_reason = "timeout"
            step.append((int(token), row.finish_reason))
        if self.on_step is not None:
            self.on_step(step)
        cancelled = self.cancel is not None and self.cancel.is_set()
        done = [cancelled or row.finish_reason is not None for row in self.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _stopped(self, tokens: list[int]) -> bool:
        """Whether the decoded text of ``tokens`` holds a stop string."""
        if not self.stops:
            return False
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(stop in text for stop in self.stops)


def _model_inputs(
    base_model: HuggingFaceBaseModel,
    rows: Sequence[torch.Tensor],
    prompts: Sequence[torch.Tensor | None] | None,
    prompt_offsets: Sequence[int] | torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Left-padded ``generate`` inputs.

    Token ids for a single row without a prompt (the bare LM exactly); else ``inputs_embeds`` with
    the prompts (if any) inserted, plus token ids aligned with them (a prompt position holds a copy of the
    row's last token, which is in the context anyway).
    """
    device = base_model.device
    input_ids, attention_mask = pad_rows(rows, pad_id(base_model.tokenizer, end_token_ids(base_model)))
    if len(rows) == 1 and (prompts is None or prompts[0] is None):
        return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
    input_ids = input_ids.to(device)
    prefixed = prepend_continuous_prompts(
        base_model.embed(input_ids),
        attention_mask.to(device),
        prompts,
        labels=input_ids,
        prompt_offsets=prompt_offsets,
    )
    aligned = torch.where(prefixed.labels == IGNORE_INDEX, input_ids[:, -1:], prefixed.labels)
    return {"input_ids": aligned, "inputs_embeds": prefixed.inputs_embeds, "attention_mask": prefixed.attention_mask}


def generate_rows(
    base_model: HuggingFaceBaseModel,
    rows: Sequence[torch.Tensor],
    *,
    prompts: Sequence[torch.Tensor | None] | None = None,
    prompt_offsets: Sequence[int] | torch.Tensor | None = None,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    stops: Sequence[str] = (),
    timeout: float | None = None,
    on_step: Callable[[Step], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[RowState]:
    """Generate after every row in one left-padded ``generate`` call.

    Args:
        base_model: the frozen base LM.
        rows: each row's token ids, 1-D tensors of length `seq_len_i` (no padding).
        prompts: per row a continuous prompt `(num_prompt_tokens, hidden_size)` or ``None``.
        prompt_offsets: per row, the real tokens before its prompt (see
            :func:`~langchain_recipe.injection.prepend_continuous_prompts`); ``None``: a prefix.
        max_new_tokens: the most new tokens per row (exact: a row that reaches it ends).
        sampling: how tokens are chosen (:class:`Sampling`).
        stops: stop strings; a row ends once the decoded text of its new tokens contains one
            (wherever token boundaries fall; the text is not cut here).
        timeout: seconds from the call after which every row ends (``"timeout"``).
        on_step: called after every generated token with the :data:`Step` (on this thread).
        cancel: once set, generation ends at the next token (rows keep ``finish_reason=None``).

    Returns:
        One :class:`RowState` per row.

    Raises:
        InvalidInputError: a prompt is malformed (see ``prepend_continuous_prompts``).
    """
    inputs = _model_inputs(base_model, rows, prompts, prompt_offsets)
    recorder = _StepRecorder(
        base_model,
        len(rows),
        inputs["input_ids"].shape[1],
        max_new_tokens=max_new_tokens,
        stops=stops,
        timeout=timeout,
        on_step=on_step,
        cancel=cancel,
    )
    end_ids = sorted(recorder.ends)
    with sampling.rng(base_model.device), torch.no_grad():
        base_model.model.generate(
            **inputs,
            **sampling.generate_kwargs(),
            max_new_tokens=max_new_tokens,
            eos_token_id=end_ids or None,
            pad_token_id=pad_id(base_model.tokenizer, end_ids),
            stopping_criteria=[recorder],
        )
    return recorder.rows


def stream_rows(
    base_model: HuggingFaceBaseModel,
    rows: Sequence[torch.Tensor],
    *,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> Iterator[Step]:
    """:func:`generate_rows` on a worker thread, yielding each :data:`Step` as it is generated.

    Takes the arguments of :func:`generate_rows` but ``on_step``. An error in generation is
    raised here. Setting ``cancel`` (from any thread, e.g. when an asyncio task is cancelled) ends
    the generation at its next token; closing the iterator early sets it and waits for the worker
    thread.
    """
    steps: queue.Queue[Any] = queue.Queue()
    cancel = cancel if cancel is not None else threading.Event()
    finished = object()

    def work() -> None:
        try:
            generate_rows(base_model, rows, on_step=steps.put, cancel=cancel, **kwargs)
            steps.put(finished)
        except BaseException as error:  # handed to the consumer, which raises it
            steps.put(error)

    worker = threading.Thread(target=work, name="recipe-generate", daemon=True)
    worker.start()
    try:
        while (item := steps.get()) is not finished:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
        worker.join()
