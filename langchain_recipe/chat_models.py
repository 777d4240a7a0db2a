"""RecipeChatModel: a LangChain chat model around a local Hugging Face causal LM with RECIPE edits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_config_list, run_in_executor
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import ConfigDict, Field, PrivateAttr, StrictInt, field_validator

from langchain_recipe._validation import check_unicode
from langchain_recipe.base_models import DEFAULT_BASE_MODEL, HuggingFaceBaseModel, load_base_model, tokenizer_lock
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.generation import (
    MAX_SEED,
    Sampling,
    check_repetition_penalty,
    check_temperature,
    position_limit,
    stream_rows,
)
from langchain_recipe.injection import chat_prompt_offset, prepend_statement_text
from langchain_recipe.knowledge_store import RetrievedEdit

__all__ = ["Injection", "RecipeChatModel", "retrieval_query", "system_and_last_human_query"]

logger = logging.getLogger(__name__)

Injection = Literal["continuous_prompt", "text"]
"""How an accepted edit reaches the LM: its continuous prompt prefixed to the input embeddings
(RECIPE), or its knowledge statement as text before the question (gated text prefix)."""

_INJECTIONS = ("continuous_prompt", "text")
_SAMPLING_OPTIONS = ("temperature", "top_p", "top_k", "repetition_penalty", "seed")
_CALL_OPTIONS = ("max_tokens", *_SAMPLING_OPTIONS, "stop", "timeout", "injection")
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}

_NO_CACHE = (
    "RecipeChatModel does not use LangChain's LLM cache: its answers depend on the knowledge store, its "
    "tenant and the edits stored at the time of the call, which a cache key cannot see, so a cached answer "
    "could be another tenant's or an outdated fact. Leave `cache` unset (cache=False, the default: a global "
    "set_llm_cache(...) is ignored by this model)."
)
_NO_TOOL_CALLING = (
    "RecipeChatModel does not support tool calling (bind_tools): its small local LM does not emit tool "
    "calls reliably, so none would be parsed. To let an agent keep the facts current, give the tools of "
    "langchain_recipe.RecipeToolkit(store=store).get_tools() to a tool-calling chat model, and answer "
    "questions with RecipeChatModel (docs/agent_tools.md)."
)
_NO_STRUCTURED_OUTPUT = (
    "RecipeChatModel does not support structured output (with_structured_output): it has no tool calling "
    "or JSON mode. Ask for the format in the prompt and parse the text with an output parser, e.g. "
    "`llm | PydanticOutputParser(pydantic_object=Schema)` (langchain_core.output_parsers), or use a "
    "tool-calling chat model for structured output."
)


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


def retrieval_query(messages: Sequence[BaseMessage]) -> str | None:
    """The default retrieval query: the last human message's text.

    Never the chat-templated prompt, the system prompt or earlier turns, so a long system prompt
    or history cannot drown the question (RECIPE retrieves with the question alone, §3.3).

    Returns:
        The text, or ``None`` when there is no human message (then nothing is retrieved).
    """
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return _text(message)
    return None


def system_and_last_human_query(messages: Sequence[BaseMessage]) -> str | None:
    """A wider retrieval query: the system messages' text, then the last human message's text.

    Pass it as ``RecipeChatModel(retrieval_query=system_and_last_human_query)`` when the system
    prompt names the subject the user asks about (e.g. "You answer questions about Acme.").

    Returns:
        The texts joined by a newline, or ``None`` when there is no human message.
    """
    question = retrieval_query(messages)
    if question is None:
        return None
    context = [_text(m) for m in messages if m.type == "system" and _text(m).strip()]
    return "\n".join([*context, question])


# ---------------------------------------------------------------------- chat templates
_EMPTY_SYSTEM = {"role": "system", "content": ""}
"""The turn :meth:`RecipeChatModel.get_num_tokens_from_messages` counts every other turn after."""


def _conversation(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    if not messages:
        msg = "RecipeChatModel needs at least one message."
        raise InvalidInputError(msg)
    return [
        {"role": _ROLES.get(m.type, "user"), "content": check_unicode(_text(m), f"Message {index} ({m.type})")}
        for index, m in enumerate(messages)
    ]


def _fold_conversation(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """A conversation that strict chat templates accept.

    System text is folded into the first user turn, tool results become user turns, and
    consecutive turns of one role are merged.
    """
    system = "\n\n".join(turn["content"] for turn in conversation if turn["role"] == "system")
    turns = [
        {"role": "user" if turn["role"] == "tool" else turn["role"], "content": turn["content"]}
        for turn in conversation
        if turn["role"] != "system"
    ]
    if system:
        if turns and turns[0]["role"] == "user":
            turns[0] = {"role": "user", "content": f"{system}\n\n{turns[0]['content']}"}
        else:
            turns.insert(0, {"role": "user", "content": system})
    merged: list[dict[str, str]] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": f"{merged[-1]['content']}\n\n{turn['content']}"}
        else:
            merged.append(dict(turn))
    return merged


def _apply_chat_template(lm: HuggingFaceBaseModel, conversation: list[dict[str, str]]) -> torch.Tensor:
    """Token ids `(1, seq_len)` of the templated conversation with the generation prompt (:func:`_templated`)."""
    return _templated(lm, conversation)[0]


def _templated(
    lm: HuggingFaceBaseModel, conversation: list[dict[str, str]]
) -> tuple[torch.Tensor, list[dict[str, str]]]:
    """Token ids `(1, seq_len)` of the templated conversation, and the conversation the template accepted.

    The ids end with the generation prompt; the accepted conversation is ``conversation`` itself,
    or its folded form.

    A template that rejects the conversation (a system role, two user turns in a row) gets the
    folded conversation (:func:`_fold_conversation`) instead.

    Raises:
        InvalidInputError: the tokenizer has no chat template, or rejects the folded conversation too.
    """
    import jinja2

    tokenizer = lm.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        msg = (
            f"The tokenizer of {lm.name!r} has no chat template; set `tokenizer.chat_template` to a Jinja "
            "template or use an instruction-tuned model."
        )
        raise InvalidInputError(msg)

    def apply(turns: list[dict[str, str]]) -> torch.Tensor:
        with tokenizer_lock(tokenizer):
            encoded = tokenizer.apply_chat_template(
                turns, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        return encoded["input_ids"]

    try:
        return apply(conversation), conversation
    except jinja2.TemplateError as error:
        folded = _fold_conversation(conversation)
        logger.debug("Chat template of %s rejected the conversation (%s); folding it.", lm.name, error)
        try:
            return apply(folded), folded
        except jinja2.TemplateError as second:
            roles = [turn["role"] for turn in folded]
            msg = (
                f"The chat template of {lm.name!r} rejects this conversation even with the system prompt "
                f"folded into the first user turn and same-role turns merged (roles {roles}): {second}. "
                "Send the turns in the order the model expects (user, assistant, user, ...)."
            )
            raise InvalidInputError(msg) from second


# ---------------------------------------------------------------------- decoding
@dataclass
class _Row:
    """One conversation in a generation: its templated ids, its edit and its new tokens."""

    input_ids: torch.Tensor
    edit: RetrievedEdit | None
    injection: str
    prompt_offset: int = 0
    """Template tokens before the continuous prompt (:func:`~langchain_recipe.injection.chat_prompt_offset`)."""
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def prompted(self) -> bool:
        """Whether the row's continuous prompt goes into its input embeddings."""
        return self.edit is not None and self.injection == "continuous_prompt"

    @property
    def prompt_positions(self) -> int:
        """Input positions the continuous prompt takes (0 without one)."""
        return int(self.edit.prompt.shape[0]) if self.prompted else 0


def _answer_text(text: str, stops: Sequence[str]) -> str:
    """The answer a decoded ``text`` gives.

    It is cut before the first stop sequence, loses a trailing partial UTF-8 character (U+FFFD, left
    by ``max_tokens`` or a timeout in the middle of a character) and is stripped of whitespace at
    both ends, also before a stop sequence (``stop=["Pari"]`` on "... is Paris" gives "... is").
    """
    return _cut_at_stop(text, stops)[0].rstrip("\ufffd").strip()


def _max_concurrency(configs: Sequence[RunnableConfig]) -> int | None:
    """The smallest ``max_concurrency`` the configs set, or ``None``."""
    limits = [c["max_concurrency"] for c in configs if c.get("max_concurrency")]
    return min(limits) if limits else None


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    found = [text.index(s) for s in stops if s and s in text]
    return (text[: min(found)], True) if found else (text, False)


def _held_back(text: str, stops: Sequence[str]) -> str:
    """``text`` less what may still change.

    That is everything from a complete stop sequence on, a partial UTF-8 character, the start of a
    stop sequence, and trailing whitespace (the final answer is stripped).
    """
    text = _cut_at_stop(text, stops)[0].rstrip("\ufffd")
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                text = text[:-size]
                break
    return text.rstrip()


def _chunk_usage(input_tokens: int, counted: int, total: int) -> dict[str, int]:
    """Usage of a streamed chunk: its new output tokens, and the input tokens on the first chunk only."""
    new_tokens = total - counted
    inputs = input_tokens if counted == 0 else 0
    return {"input_tokens": inputs, "output_tokens": new_tokens, "total_tokens": new_tokens + inputs}


class RecipeChatModel(BaseChatModel):
    """Chat model that answers with a local Hugging Face LM and the edits in a knowledge store.

    For each call it retrieves the best edit for the retrieval query (by default the last human
    message's text, see :func:`retrieval_query`) from ``knowledge_store``. If the edit passes the
    knowledge sentinel gate (RECIPE, Chen et al., EMNLP 2024, §3.3), it is injected:

    * ``injection="continuous_prompt"`` (default, RECIPE §3.2): its continuous prompt,
      `(num_prompt_tokens, hidden_size)`, is inserted into the input embeddings of the
      chat-templated conversation right before the last user turn's text
      (:func:`~langchain_recipe.injection.chat_prompt_offset`), where training puts it;
    * ``injection="text"`` (gated text prefix): its knowledge statement is put before the text of
      the last human turn, followed by a newline, before the chat template is applied
      (:func:`~langchain_recipe.injection.prepend_statement_text`, also ``recipe eval``'s text-RAG).

    Otherwise the bare LM answers, with exactly the logits it has without RECIPE.

    Setup:
        ``pip install langchain-recipe``; the bundled SmolLM2-135M-Instruct is the default LM.

    Key init args — completion params (all also per call, e.g. ``invoke(..., top_p=0.9)``):
        max_tokens: maximum number of new tokens (64).
        temperature: 0 (default) for greedy decoding, above 0 to sample.
        top_p: nucleus sampling threshold (1.0: off).
        top_k: sample among the k most likely tokens (0: off).
        repetition_penalty: penalty on repeated tokens (1.0: off; greedy too).
        seed: makes a sampling call repeatable (``None``: torch's global RNG).
        stop: stop sequences.
        timeout: seconds of generation after which the answer is cut (``finish_reason="timeout"``).
        injection: ``"continuous_prompt"`` or ``"text"``; also per call (``invoke(..., injection="text")``).

    Instantiate:
        .. code-block:: python

            from langchain_recipe import RecipeChatModel, RecipeKnowledgeStore

            store = RecipeKnowledgeStore(path="./recipe_store")
            store.add_knowledge(["The CEO of Acme is Ada Lovelace."])
            llm = RecipeChatModel(knowledge_store=store, max_tokens=32)
            message = llm.invoke("Who is the CEO of Acme?")
            message.response_metadata["edit"]  # the applied edit's id, statement and scores, or None

    Stream, async and batch:
        ``stream``/``astream`` yield one chunk per generated token (their text joined equals
        ``invoke``'s); ``ainvoke``/``astream`` run the torch work in an executor thread, so the
        event loop never blocks; ``batch`` answers all inputs in one left-padded batched
        generation, each row with its own continuous prompt (or none).

    Sampling:
        Decoding is transformers' ``generate``. With ``temperature > 0`` it samples after its
        temperature, top-k and top-p warpers. Sampling generations in one process
        run one at a time (a lock), so none draws from torch's global RNG while another
        runs; with a ``seed``, the generation runs on a forked RNG seeded with it
        (``torch.random.fork_rng`` + ``torch.manual_seed``), which leaves the global RNG as it
        was. Greedy generations never wait for the lock.

    Response metadata:
        ``model_name``, ``finish_reason`` (``"stop"``, ``"length"`` or ``"timeout"``), ``edit``
        (``{"edit_id", "statement", "score", "sentinel_score"}`` with plain floats, or ``None``),
        ``injection`` (the injection used, ``None`` when no edit was applied) and
        ``continuous_prompt_positions`` (input positions the applied continuous prompt took, 0
        without one).

    Usage metadata:
        ``input_tokens`` counts the tokens of the chat-templated conversation (with the injected
        statement under ``injection="text"``), as :meth:`get_num_tokens_from_messages` and
        ``trim_messages(..., token_counter=llm)`` do; the continuous prompt's positions are not
        tokens and are reported in ``response_metadata["continuous_prompt_positions"]``.

    Answer text:
        The answer is cut before the first stop sequence (found in the decoded text, also when it
        starts or ends inside a token) and stripped of whitespace at both ends, also the whitespace
        before a stop: ``stop=["Pari"]`` on "The capital is Paris" gives "The capital is" (LangChain
        keeps the text before the stop; this model strips it). A partial UTF-8 character left by
        ``max_tokens`` or a timeout is dropped. ``invoke``, ``stream`` and ``batch`` agree.

    Limits:
        Prompt tokens + continuous prompt positions + ``max_tokens`` must fit the LM's position
        limit (``config.max_position_embeddings``, else the tokenizer's ``model_max_length``);
        otherwise the call raises ``InvalidInputError`` naming the four numbers, before generating.
        ``temperature`` is 0 or from 0.001 to 100; ``repetition_penalty`` at least 0.001.

    LangChain features:
        ``batch(..., config={"max_concurrency": n})`` generates at most ``n`` rows at once.
        LangChain's LLM cache is never used (answers depend on the store, the tenant and the
        edits): a global ``set_llm_cache`` is ignored and ``cache=True`` raises. ``bind_tools`` and
        ``with_structured_output`` raise ``NotImplementedError`` saying what to use instead.
        ``copy.deepcopy(llm)`` and ``llm.model_copy(deep=True)`` copy the settings and share the
        store and the LM; ``pickle`` works only for a model that holds neither (else a clear
        ``TypeError``). A cancelled ``ainvoke`` or ``astream`` stops generating at the next token.

    The model weights load lazily on the first call and are shared by instances that name the
    same model, device and dtype (and with the knowledge store, whose base LM is used).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_store: Any = None
    """Where edits come from (a :class:`RecipeKnowledgeStore`, or any object with its
    ``retrieve_prompts`` and ``base_model``); ``None`` answers with the bare LM."""
    model_name: str = DEFAULT_BASE_MODEL
    """Base LM id or folder, used when there is no knowledge store (the store's LM otherwise)."""
    gguf_file: str | None = None
    """GGUF file inside ``model_name`` to load."""
    device: str = "cpu"
    """Torch device of the base LM."""
    dtype: str = "auto"
    """Weight dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``bfloat16``, ``float32``, ``float16``."""
    device_map: str | dict[str, Any] | None = None
    """accelerate's placement of the base LM's layers (``"auto"``, or a module → device dict), passed
    to ``from_pretrained``; ``None`` puts the whole LM on ``device``. Used when there is no knowledge
    store."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other ``AutoModelForCausalLM.from_pretrained`` arguments (``quantization_config``, ``revision``,
    ...), as ``HuggingFacePipeline.from_model_id`` takes them. Used when there is no knowledge store."""
    max_tokens: int = Field(default=64, ge=1)
    """Maximum number of new tokens (independent of the continuous prompt's length)."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 (default) for greedy decoding; otherwise the softmax temperature of sampling, from 0.001 to
    100 (smaller values overflow the logits; see :func:`~langchain_recipe.generation.check_temperature`)."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling: sample among the most likely tokens whose probabilities sum to ``top_p``;
    1.0 (default) keeps every token. Ignored when ``temperature`` is 0."""
    top_k: StrictInt = Field(default=0, ge=0)
    """Sample among the ``top_k`` most likely tokens; 0 (default) keeps every token. Ignored when
    ``temperature`` is 0."""
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    """Penalty on tokens already in the conversation or the answer (CTRL, Keskar et al., 2019):
    1.0 (default) is none, above 1 discourages repeats, at least 0.001. Applies to greedy decoding too."""
    seed: StrictInt | None = Field(default=None, ge=0, le=MAX_SEED)
    """Seed of a sampling generation: the same seed, input and settings give the same answer.
    ``None`` (default) draws from torch's global RNG. See "Sampling" in the class docstring."""
    stop: list[str] | None = None
    """Stop sequences: generation ends once one appears and the answer is cut before it."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds of generation (retrieval not counted) after which the answer is cut; ``None``: no limit."""
    streaming: bool = False
    """Whether ``invoke`` streams internally (callbacks then get one ``on_llm_new_token`` per token)."""
    injection: Injection = "continuous_prompt"
    """How an accepted edit is injected: ``"continuous_prompt"`` (RECIPE) or ``"text"`` (the
    statement before the question). Per call: ``invoke(..., injection="text")``."""
    retrieval_query: Callable[[Sequence[BaseMessage]], str | None] | None = None
    """Function from the messages to the retrieval query; ``None`` is :func:`retrieval_query`
    (the last human message). :func:`system_and_last_human_query` also reads the system prompt."""

    cache: BaseCache | bool | None = Field(default=False, exclude=True)
    """Always ``False``: LangChain's LLM cache is not used, even when a global one is set. Answers
    depend on the store, the tenant and the stored edits, which a cache key cannot see; asking for
    a cache (``True`` or a ``BaseCache``) raises."""

    _base_model: HuggingFaceBaseModel | None = PrivateAttr(default=None)

    @field_validator("cache", mode="before")
    @classmethod
    def _refuse_cache(cls, cache: Any) -> bool:
        if cache is not None and cache is not False:
            raise ValueError(_NO_CACHE)
        return False

    @field_validator("temperature")
    @classmethod
    def _check_temperature(cls, value: float) -> float:
        return check_temperature(value)

    @field_validator("repetition_penalty")
    @classmethod
    def _check_repetition_penalty(cls, value: float) -> float:
        return check_repetition_penalty(value)

    @field_validator("knowledge_store")
    @classmethod
    def _check_store(cls, store: Any) -> Any:
        if store is not None and not (hasattr(store, "retrieve_prompts") and hasattr(store, "base_model")):
            msg = (
                f"knowledge_store must be a RecipeKnowledgeStore (or have its retrieve_prompts and base_model), "
                f"not {type(store).__name__}; open one with RecipeKnowledgeStore(path=...)."
            )
            raise ValueError(msg)
        return store

    @property
    def _llm_type(self) -> str:
        return "recipe-chat"

    @property
    def _resolved_model_name(self) -> str:
        if self._base_model is not None:
            return self._base_model.name
        if self.knowledge_store is not None:
            return self.knowledge_store.base_model.name
        return self.model_name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self._resolved_model_name,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
            "seed": self.seed,
            "injection": self.injection,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="langchain_recipe",
            ls_model_name=kwargs["model"] if isinstance(kwargs.get("model"), str) else self._resolved_model_name,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if stops := stop or kwargs.get("stop") or self.stop:
            params["ls_stop"] = stops
        return params

    @classmethod
    def from_base_model(cls, base_model: HuggingFaceBaseModel, **kwargs: Any) -> RecipeChatModel:
        """A chat model over an already loaded base LM (the bare LM unless ``knowledge_store`` is given).

        Args:
            base_model: the loaded base LM.
            **kwargs: other fields (``max_tokens``, ``temperature``, ...). With a
                ``knowledge_store``, its continuous prompts must fit ``base_model``.

        Raises:
            BaseModelMismatchError: the knowledge store's RecipeModel was trained for another base LM.
        """
        store = kwargs.get("knowledge_store")
        recipe_model = getattr(store, "recipe_model", None)
        if recipe_model is not None and store.base_model is not base_model:
            recipe_model.check_base_model(base_model)
        chat = cls(model_name=base_model.name, **kwargs)
        chat._base_model = base_model
        return chat

    @property
    def base_model(self) -> HuggingFaceBaseModel:
        """The base LM (loaded on first use; the knowledge store's when there is one)."""
        if self._base_model is None:
            if self.knowledge_store is not None:
                self._base_model = self.knowledge_store.base_model
            else:
                name = None if self.model_name == DEFAULT_BASE_MODEL else self.model_name
                placement = {} if self.device_map is None else {"device_map": self.device_map}
                self._base_model = load_base_model(
                    name,
                    gguf_file=self.gguf_file,
                    device=self.device,
                    dtype=self.dtype,
                    **placement,
                    **self.model_kwargs,
                )
        return self._base_model

    # ------------------------------------------------------------------ the LangChain contract
    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` by the LM's own tokenizer, without special tokens (offline).

        ``custom_get_token_ids``, when set, is used instead. Loads the LM on first use.
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        tokenizer = self.base_model.tokenizer
        with tokenizer_lock(tokenizer):
            return list(tokenizer.encode(text, add_special_tokens=False))

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Sequence[Any] | None = None) -> int:
        """Tokens of the chat-templated conversation, counted so that ``trim_messages`` adds up.

        A conversation with a system message counts its whole templated length with the
        generation prompt: ``usage_metadata["input_tokens"]``. One without counts only its own
        turns (after an empty system message), leaving out the generation prompt and any system
        prompt the template adds by default (SmolLM2's does). ``trim_messages(...,
        token_counter=llm, include_system=True)`` counts the system message apart from the
        other turns, so the two parts then add up to the real count, and it keeps the system
        message and the newest turns that fit. The count leaves out the continuous prompt's
        positions (``response_metadata["continuous_prompt_positions"]``) and, with
        ``injection="text"``, the injected statement. Where the tokenizer has no chat template,
        it is the sum of the messages' tokens.

        Args:
            messages: the conversation; an empty list counts 0.
            tools: ignored: RecipeChatModel sends no tool schemas to the LM.
        """
        if not messages:
            return 0
        try:
            conversation = _conversation(messages)
            if any(turn["role"] == "system" for turn in conversation):
                return self._templated_length(conversation)
            return self._templated_length([_EMPTY_SYSTEM, *conversation]) - self._templated_length([_EMPTY_SYSTEM])
        except InvalidInputError:
            return sum(len(self.get_token_ids(_text(message))) for message in messages)

    def _templated_length(self, conversation: list[dict[str, str]]) -> int:
        return int(_templated(self.base_model, conversation)[0].shape[1])

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> Runnable:
        """Not supported.

        Raises:
            NotImplementedError: always, saying what to use instead (the tools of ``RecipeToolkit``
                on a tool-calling chat model).
        """
        raise NotImplementedError(_NO_TOOL_CALLING)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        """Not supported.

        Raises:
            NotImplementedError: always, saying what to use instead (an output parser on the text).
        """
        raise NotImplementedError(_NO_STRUCTURED_OUTPUT)

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        """Reached only when LangChain would consult an LLM cache (``cache`` set after construction).

        Raises:
            InvalidInputError: always; a cached answer could be another tenant's or an outdated fact.
        """
        raise InvalidInputError(_NO_CACHE)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> RecipeChatModel:
        """A deep copy of the settings that shares the knowledge store, the loaded LM and the rate limiter.

        ``copy.deepcopy(llm)`` and ``llm.model_copy(deep=True)`` both come here: the store holds an
        open Qdrant client and locks, and the LM its weights, which are shared, never copied.
        """
        memo = {} if memo is None else memo
        for shared in (self.knowledge_store, self._base_model, self.rate_limiter):
            if shared is not None:
                memo.setdefault(id(shared), shared)
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle state: only for a chat model that holds no knowledge store and no loaded LM (its settings).

        Raises:
            TypeError: the model holds a knowledge store or a loaded LM; the message says what to use instead.
        """
        if self.knowledge_store is not None or self._base_model is not None:
            msg = (
                "A RecipeChatModel with a knowledge store or a loaded LM cannot be pickled (it holds an open "
                "Qdrant client, locks and the LM's weights). In this process, copy it with copy.deepcopy(llm) or "
                "llm.model_copy(deep=True), which share the store and the LM; in another process, create a "
                "RecipeChatModel there over a RecipeKnowledgeStore opened there."
            )
            raise TypeError(msg)
        return super().__getstate__()

    # ------------------------------------------------------------------ preparing rows
    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's options (the fields, overridden by ``kwargs``), checked.

        Raises:
            InvalidInputError: an unknown option, another model, or a value out of range.
        """
        unknown = set(kwargs) - {*_CALL_OPTIONS, "model"}
        if unknown:
            msg = f"RecipeChatModel got unknown call options {sorted(unknown)}; it accepts {', '.join(_CALL_OPTIONS)}."
            raise InvalidInputError(msg)
        model = kwargs.get("model")
        if model is not None and model != self._resolved_model_name:
            msg = (
                f"RecipeChatModel serves {self._resolved_model_name!r} and cannot switch to {model!r} per "
                "call; create another RecipeChatModel (or knowledge store) for that model."
            )
            raise InvalidInputError(msg)
        value = {name: kwargs.get(name, getattr(self, name)) for name in _CALL_OPTIONS}
        if value["injection"] not in _INJECTIONS:
            msg = f"injection must be one of {list(_INJECTIONS)}, not {value['injection']!r}."
            raise InvalidInputError(msg)
        max_tokens, timeout = int(value["max_tokens"]), value["timeout"]
        if max_tokens < 1 or (timeout is not None and timeout <= 0):
            msg = f"Need max_tokens >= 1 and timeout > 0 or None (got {max_tokens} and {timeout})."
            raise InvalidInputError(msg)
        sampling = Sampling(**{name: value[name] for name in _SAMPLING_OPTIONS})
        stops = [s for s in (stop or kwargs.get("stop") or self.stop or []) if s]
        return {
            "injection": value["injection"],
            "max_tokens": max_tokens,
            "sampling": sampling,
            "timeout": timeout,
            "stops": stops,
        }

    def _rows(self, conversations: Sequence[Sequence[BaseMessage]], injection: str) -> list[_Row]:
        """Retrieve (one batched encoder pass and Qdrant request) and template every conversation."""
        lm = self.base_model
        turns = [_conversation(messages) for messages in conversations]
        query_of = self.retrieval_query or retrieval_query
        queries = [query_of(list(messages)) for messages in conversations]
        edits: list[RetrievedEdit | None] = [None] * len(conversations)
        if self.knowledge_store is not None:
            asked = [i for i, q in enumerate(queries) if q and q.strip()]
            if asked:
                found = self.knowledge_store.retrieve_prompts([queries[i] for i in asked])
                for i, edit in zip(asked, found, strict=True):
                    edits[i] = edit
        rows = []
        for conversation, edit in zip(turns, edits, strict=True):
            if edit is not None and injection == "text":
                conversation = self._with_statement(conversation, edit.statement)
            input_ids, templated = _templated(lm, conversation)
            offset = 0
            if edit is not None and injection == "continuous_prompt":
                with tokenizer_lock(lm.tokenizer):
                    offset = chat_prompt_offset(lm.tokenizer, templated, input_ids[0].tolist())
            rows.append(_Row(input_ids=input_ids, edit=edit, injection=injection, prompt_offset=offset))
        return rows

    @staticmethod
    def _with_statement(conversation: list[dict[str, str]], statement: str) -> list[dict[str, str]]:
        """The conversation with ``statement`` before the last user turn's text (``prepend_statement_text``)."""
        conversation = [dict(turn) for turn in conversation]
        for turn in reversed(conversation):
            if turn["role"] == "user":
                turn["content"] = prepend_statement_text(statement, turn["content"])
                return conversation
        return [{"role": "user", "content": statement}, *conversation]

    # ------------------------------------------------------------------ generation
    def _decode_steps(
        self,
        rows: list[_Row],
        *,
        max_tokens: int,
        sampling: Sampling,
        stops: list[str],
        timeout: float | None,
        cancel: threading.Event | None = None,
    ) -> Iterator[None]:
        """Generate for all ``rows`` at once with transformers' ``generate``, yielding after every token.

        Each step appends one token to every unfinished row and sets ``finish_reason`` where a
        row ends: ``"stop"`` at an end-of-sequence token or a stop sequence, ``"length"`` at
        ``max_tokens``, ``"timeout"`` once ``timeout`` seconds have passed. Each row's continuous
        prompt (if any) is inserted at its offset; a single row without one runs the bare LM on its
        token ids, so its logits are exactly the unedited model's
        (:func:`~langchain_recipe.generation.generate_rows`). Generation runs on a worker thread
        (:func:`~langchain_recipe.generation.stream_rows`); closing this iterator early, or setting
        ``cancel``, stops it at the next token.
        """
        steps = stream_rows(
            self.base_model,
            [row.input_ids[0] for row in rows],
            cancel=cancel,
            prompts=[row.edit.prompt if row.prompted else None for row in rows],
            prompt_offsets=[row.prompt_offset for row in rows],
            max_new_tokens=max_tokens,
            sampling=sampling,
            stops=stops,
            timeout=timeout,
        )
        with contextlib.closing(steps):
            for step in steps:
                for row, generated in zip(rows, step, strict=True):
                    if generated is not None:
                        row.tokens.append(generated[0])
                        row.finish_reason = generated[1]
                yield

    def _final_text(self, row: _Row, stops: list[str]) -> str:
        return _answer_text(self.base_model.tokenizer.decode(row.tokens, skip_special_tokens=True), stops)

    def _position_error(self, row: _Row, max_tokens: int) -> InvalidInputError | None:
        """The error for a row beyond the LM's position limit, else ``None``.

        A row needs its prompt tokens + its continuous prompt positions + ``max_tokens`` positions,
        at most :func:`~langchain_recipe.generation.position_limit` (no check where that is unknown).
        """
        known = position_limit(self.base_model)
        tokens, positions = int(row.input_ids.shape[1]), row.prompt_positions
        if known is None or tokens + positions + max_tokens <= known[0]:
            return None
        limit, source = known
        msg = (
            f"This conversation needs {tokens} prompt tokens + {positions} continuous prompt positions + "
            f"max_tokens={max_tokens} = {tokens + positions + max_tokens} positions, beyond the {limit} positions "
            f"{self.base_model.name!r} reads ({source}). Lower max_tokens, or shorten the conversation, e.g. with "
            "langchain_core.messages.trim_messages(messages, max_tokens=..., token_counter=llm)."
        )
        return InvalidInputError(msg)

    def _metadata(self, row: _Row, seconds: float) -> dict[str, Any]:
        edit = None
        if row.edit is not None:
            edit = {
                "edit_id": row.edit.edit_id,
                "statement": row.edit.statement,
                "score": float(row.edit.score),
                "sentinel_score": float(row.edit.sentinel_score),
            }
        return {
            "model_name": self.base_model.name,
            "finish_reason": row.finish_reason,
            "edit": edit,
            "injection": row.injection if row.edit is not None else None,
            "continuous_prompt_positions": row.prompt_positions,
            "generation_seconds": round(seconds, 4),
        }

    def _usage(self, row: _Row) -> dict[str, int]:
        input_tokens = int(row.input_ids.shape[1])
        return {
            "input_tokens": input_tokens,
            "output_tokens": len(row.tokens),
            "total_tokens": input_tokens + len(row.tokens),
        }

    def _answer(
        self,
        conversations: Sequence[Sequence[BaseMessage]],
        stop: list[str] | None = None,
        *,
        cancel: threading.Event | None = None,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Answer conversations in one batched generation (one continuous prompt per row).

        Raises:
            InvalidInputError: a conversation or option is malformed, or a row exceeds the LM's
                position limit (before anything is generated).
        """
        return self._answer_rows(conversations, stop, kwargs, cancel=cancel, fail_fast=True)  # type: ignore[return-value]

    def _answer_rows(
        self,
        conversations: Sequence[Sequence[BaseMessage]],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        cancel: threading.Event | None = None,
        fail_fast: bool = False,
    ) -> list[AIMessage | InvalidInputError]:
        """Per conversation its answer, or the error of a row beyond the LM's position limit.

        Such a row is left out of the one batched generation; with ``fail_fast`` its error is
        raised before anything is generated.
        """
        options = self._options(stop, kwargs)
        rows = self._rows(conversations, options.pop("injection"))
        errors = [self._position_error(row, options["max_tokens"]) for row in rows]
        if fail_fast and (first := next((e for e in errors if e is not None), None)):
            raise first
        live = [row for row, error in zip(rows, errors, strict=True) if error is None]
        started = time.perf_counter()
        if live:
            for _ in self._decode_steps(live, cancel=cancel, **options):
                pass
        seconds = time.perf_counter() - started
        return [
            error
            or AIMessage(
                content=self._final_text(row, options["stops"]),
                response_metadata=self._metadata(row, seconds),
                usage_metadata=self._usage(row),
            )
            for row, error in zip(rows, errors, strict=True)
        ]

    # ------------------------------------------------------------------ LangChain hooks
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._answer([messages], stop=stop, **kwargs)[0]
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """One chunk per generated token; the joined text equals ``invoke``'s.

        Text that may still change (a partial character, the start of a stop sequence, trailing
        whitespace) is held back until the next token settles it. The first chunk carries the
        input token count, each chunk one output token, the last chunk the response metadata
        and ``chunk_position="last"``. An error in the LM's forward pass is raised to the caller.
        """
        options = self._options(stop, kwargs)
        stops = options["stops"]
        (row,) = self._rows([messages], options.pop("injection"))
        if error := self._position_error(row, options["max_tokens"]):
            raise error
        tokenizer = self.base_model.tokenizer
        started = time.perf_counter()
        emitted = ""
        counted = 0
        input_tokens = int(row.input_ids.shape[1])
        with contextlib.closing(self._decode_steps([row], **options)) as steps:
            for _ in steps:
                if row.done:
                    break
                visible = _held_back(tokenizer.decode(row.tokens, skip_special_tokens=True), stops).lstrip()
                delta = visible[len(emitted) :] if visible.startswith(emitted) else ""
                emitted += delta
                usage = _chunk_usage(input_tokens, counted, len(row.tokens))
                counted = len(row.tokens)
                yield ChatGenerationChunk(message=AIMessageChunk(content=delta, usage_metadata=usage))
        final = self._final_text(row, stops)
        if final.startswith(emitted):
            delta = final[len(emitted) :]
        else:  # a tokenizer whose decoded prefixes are not prefixes of the full text
            logger.warning("Streamed text %r is not a prefix of the answer %r.", emitted, final)
            delta = ""
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=delta,
                usage_metadata=_chunk_usage(input_tokens, counted, len(row.tokens)),
                response_metadata=self._metadata(row, time.perf_counter() - started),
                chunk_position="last",
            )
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """:meth:`_generate` in an executor thread: the event loop stays free during generation.

        A cancelled call (``asyncio.CancelledError``) stops the generation at its next token.
        """
        cancel = threading.Event()
        try:
            (message,) = await run_in_executor(None, self._answer, [messages], stop, cancel=cancel, **kwargs)
        except asyncio.CancelledError:
            cancel.set()
            raise
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """:meth:`_stream` with every step (retrieval, prefill, each token) in an executor thread."""
        iterator = self._stream(messages, stop, None, **kwargs)
        done = object()
        while True:
            chunk = await run_in_executor(None, next, iterator, done)
            if chunk is done:
                return
            yield chunk

    # ------------------------------------------------------------------ batches
    def _can_batch(self, inputs: Sequence[Any], **kwargs: Any) -> bool:
        """Whether ``batch`` may run batched generations (else LangChain's per-input path).

        A cache set after construction goes to LangChain's path too, which refuses it (:data:`_NO_CACHE`).
        """
        cache_in_use = self.cache is not False and (isinstance(self.cache, BaseCache) or get_llm_cache() is not None)
        return (
            len(inputs) > 1
            and not cache_in_use
            and self.rate_limiter is None
            and self.output_version in (None, "v0")
            and not self.streaming
            and not kwargs.get("stream")
        )

    # LangChain has no underscore hook for a batch: BaseChatModel.batch runs one ``invoke`` per
    # input in threads, so one generation of many rows (each with its own continuous prompt) needs
    # the public ``batch``/``abatch``. They keep LangChain's contract (one callback run per input,
    # ``return_exceptions``, ``config`` lists) and fall back to ``super()`` wherever a per-input
    # feature (cache, rate limiter, streaming, v1 output) is in use.
    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Answer all ``inputs`` in one left-padded batched generation.

        Each row has its own continuous prompt (or none where the gate rejects); greedy answers
        equal one ``invoke`` per input. Each input gets its own callback run, like ``invoke``.
        With ``config={"max_concurrency": n}``, the inputs go in consecutive groups of at most
        ``n`` rows, each one retrieval and one generation.

        Falls back to LangChain's default (one ``invoke`` per input, in threads) for a single
        input, with a rate limiter, ``output_version="v1"`` or streaming.

        Raises:
            InvalidInputError: an input is malformed, or beyond the LM's position limit, and
                ``return_exceptions`` is false (with it, that input's result is the error).
        """
        if not inputs:
            return []
        if not self._can_batch(inputs, **kwargs):
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        stop = kwargs.pop("stop", None)
        configs = get_config_list(config, len(inputs))
        conversations = [self._convert_input(item).to_messages() for item in inputs]
        run_managers = self._start_runs(conversations, configs, stop, kwargs)
        results = self._check_templates(conversations, run_managers, return_exceptions=return_exceptions)
        valid = [i for i, result in enumerate(results) if result is None]
        size = _max_concurrency(configs) or max(len(valid), 1)
        for start in range(0, len(valid), size):
            group = valid[start : start + size]
            try:
                answers = self._answer_rows([conversations[i] for i in group], stop, kwargs)
            except BaseException as error:
                if not (return_exceptions and isinstance(error, Exception)):
                    self._end_open_runs(run_managers, results, error)
                    raise
                answers = [error] * len(group)
            for i, answer in zip(group, answers, strict=True):
                results[i] = self._end_run(run_managers[i], answer)
            failed = next((a for a in answers if isinstance(a, BaseException)), None)
            if failed is not None and not return_exceptions:
                self._end_open_runs(run_managers, results, failed)
                raise failed
        return results

    @staticmethod
    def _end_run(run_manager: CallbackManagerForLLMRun, answer: AIMessage | BaseException) -> Any:
        """End one input's callback run with its answer or error; returns the batch's result for it."""
        if isinstance(answer, BaseException):
            run_manager.on_llm_error(answer)
            return answer
        answer.id = f"{LC_ID_PREFIX}-{run_manager.run_id}-0"
        run_manager.on_llm_end(LLMResult(generations=[[ChatGeneration(message=answer)]]))
        return answer

    @staticmethod
    def _end_open_runs(run_managers: list[CallbackManagerForLLMRun], results: list[Any], error: BaseException) -> None:
        """End with ``error`` every run that has no result yet (before a batch raises)."""
        for run_manager, result in zip(run_managers, results, strict=True):
            if result is None:
                run_manager.on_llm_error(error)

    def _start_runs(
        self,
        conversations: list[list[BaseMessage]],
        configs: list[RunnableConfig],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> list[CallbackManagerForLLMRun]:
        """One callback run per conversation, started as ``invoke`` starts it."""
        params = self._get_invocation_params(stop=stop, **kwargs)
        ls_params = self._get_ls_params_with_defaults(stop=stop, **kwargs)
        run_managers: list[CallbackManagerForLLMRun] = []
        for conversation, item_config in zip(conversations, configs, strict=True):
            manager = CallbackManager.configure(
                item_config.get("callbacks"),
                self.callbacks,
                self.verbose,
                item_config.get("tags"),
                self.tags,
                {**(item_config.get("metadata") or {}), **ls_params},
                self.metadata,
            )
            (run_manager,) = manager.on_chat_model_start(
                self._serialized,
                [conversation],
                invocation_params=params,
                options={"stop": stop},
                name=item_config.get("run_name"),
                run_id=item_config.get("run_id"),
                batch_size=len(conversations),
            )
            run_managers.append(run_manager)
        return run_managers

    def _check_templates(
        self,
        conversations: list[list[BaseMessage]],
        run_managers: list[CallbackManagerForLLMRun],
        *,
        return_exceptions: bool,
    ) -> list[Any]:
        """``None`` per conversation the chat template accepts, else its error (which ends its run).

        Raises:
            InvalidInputError: a conversation is malformed and ``return_exceptions`` is false
                (every run then ends with the error).
        """
        results: list[Any] = [None] * len(conversations)
        for i, conversation in enumerate(conversations):  # a malformed row fails alone
            try:
                _apply_chat_template(self.base_model, _conversation(conversation))
            except InvalidInputError as error:
                run_managers[i].on_llm_error(error)
                if not return_exceptions:
                    for other in run_managers[:i] + run_managers[i + 1 :]:
                        other.on_llm_error(error)
                    raise
                results[i] = error
        return results

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """:meth:`batch` in an executor thread (one batched generation; the event loop stays free)."""
        if not inputs:
            return []
        if not self._can_batch(inputs, **kwargs):
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return await run_in_executor(None, self.batch, inputs, config, return_exceptions=return_exceptions, **kwargs)

    def generate_batch(self, conversations: Sequence[Sequence[BaseMessage] | str], **kwargs: Any) -> list[AIMessage]:
        """Answer many conversations in one batched generation without LangChain callbacks.

        Args:
            conversations: message lists, or plain strings (one human message each).
            **kwargs: per-call options: ``max_tokens``, ``temperature``, ``top_p``, ``top_k``,
                ``repetition_penalty``, ``seed``, ``stop``, ``timeout``, ``injection``.

        Raises:
            InvalidInputError: a conversation is malformed or an option is unknown or out of range.
        """
        lists = [[HumanMessage(c)] if isinstance(c, str) else list(c) for c in conversations]
        return self._answer(lists, **kwargs)
