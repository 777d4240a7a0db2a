"""The LangChain contract of RecipeChatModel and the failure cases users hit (issue 17, chat model items).

Each test names the class of failure it guards; docs/reliability.md ("The LangChain contract: the
chat model") lists them. Tiny random models from ``conftest.py``: CPU, offline, fast.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_chat_models
import torch
from facts import QUERY, STATEMENTS
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore

OTHER_QUERY = "In which city is the Zephyr Tower located?"
POSITION_LIMIT = 256  # the tiny LM's config.max_position_embeddings (conftest.py)


# The chat model tests' fixtures and helper: the four facts stored (``store``), a chat model over
# them with 5 new tokens (``llm``), no end-of-sequence token (``no_eos``), chunks joined (``_joined``).
store = test_chat_models.store
llm = test_chat_models.llm
no_eos = test_chat_models.no_eos
_joined = test_chat_models._joined


@pytest.fixture
def generations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of every generation (one entry per call of ``_decode_steps``)."""
    sizes: list[int] = []
    original = RecipeChatModel._decode_steps

    def spy(self: RecipeChatModel, rows: list[Any], **kwargs: Any) -> Iterator[None]:
        sizes.append(len(rows))
        yield from original(self, rows, **kwargs)

    monkeypatch.setattr(RecipeChatModel, "_decode_steps", spy)
    return sizes


def _template_length(base_model: HuggingFaceBaseModel, messages: list[dict[str, str]]) -> int:
    ids = base_model.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    return len(ids)


# ---------------------------------------------------------------------- 1. context overflow
@pytest.mark.parametrize("call", ["invoke", "stream", "batch"])
def test_a_conversation_beyond_the_position_limit_raises_a_clear_error(llm: RecipeChatModel, call: str) -> None:
    long = "hello " * 240  # about 244 template tokens; with 30 new tokens beyond the tiny LM's 256 positions
    with pytest.raises(InvalidInputError, match=rf"(?s){POSITION_LIMIT}.*max_tokens.*trim_messages"):
        if call == "invoke":
            llm.invoke(long, max_tokens=30)
        elif call == "stream":
            list(llm.stream(long, max_tokens=30))
        else:
            llm.batch([QUERY, long], max_tokens=30)


def test_a_batch_row_beyond_the_position_limit_fails_alone_with_return_exceptions(llm: RecipeChatModel) -> None:
    results = llm.batch([QUERY, "hello " * 240, OTHER_QUERY], max_tokens=30, return_exceptions=True)

    assert isinstance(results[1], InvalidInputError)
    assert [r.content for r in (results[0], results[2])] == [
        llm.invoke(QUERY, max_tokens=30).content,
        llm.invoke(OTHER_QUERY, max_tokens=30).content,
    ]


def test_the_continuous_prompt_positions_count_toward_the_limit_and_are_reported(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, base_model: HuggingFaceBaseModel, force_gate: Callable[..., Any]
) -> None:
    force_gate(store, accept=[QUERY], reject=[OTHER_QUERY])
    system = "You answer questions about companies. " * 20
    accepted: list[BaseMessage] = [SystemMessage(system), HumanMessage(QUERY)]
    rejected: list[BaseMessage] = [SystemMessage(system), HumanMessage(OTHER_QUERY)]
    tokens = _template_length(base_model, [{"role": "system", "content": system}, {"role": "user", "content": QUERY}])
    positions = store.recipe_model.config.num_prompt_tokens

    message = llm.invoke(accepted, max_tokens=2)
    assert message.usage_metadata["input_tokens"] == tokens  # the templated conversation's tokens
    assert message.response_metadata["continuous_prompt_positions"] == positions
    assert llm.invoke(rejected, max_tokens=2).response_metadata["continuous_prompt_positions"] == 0

    fits = POSITION_LIMIT - tokens
    other_tokens = _template_length(
        base_model, [{"role": "system", "content": system}, {"role": "user", "content": OTHER_QUERY}]
    )
    llm.invoke(rejected, max_tokens=POSITION_LIMIT - other_tokens)  # no edit: exactly the limit fits
    with pytest.raises(InvalidInputError, match=rf"{tokens} .*{positions} .*{fits} .*{POSITION_LIMIT}"):
        llm.invoke(accepted, max_tokens=fits)  # the same budget plus the continuous prompt does not


# ---------------------------------------------------------------------- 2. the LangChain LLM cache
def test_the_llm_cache_never_serves_another_tenants_or_an_outdated_answer(
    knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., Any]
) -> None:
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import set_llm_cache

    acme, globex = knowledge_store.for_tenant("acme"), knowledge_store.for_tenant("globex")
    acme.add_knowledge([STATEMENTS[0]], ids=["ceo"])
    globex.add_knowledge(["The chief executive of Acme Corporation is Grace Hopper."], ids=["ceo"])
    force_gate(acme, accept=[QUERY])
    set_llm_cache(InMemoryCache())
    try:
        answer_a = RecipeChatModel(knowledge_store=acme, max_tokens=3).invoke(QUERY)
        answer_b = RecipeChatModel(knowledge_store=globex, max_tokens=3).invoke(QUERY)
        assert answer_a.response_metadata["edit"]["statement"] == STATEMENTS[0]
        assert (
            answer_b.response_metadata["edit"]["statement"]
            == "The chief executive of Acme Corporation is Grace Hopper."
        )

        acme.update_knowledge("ceo", "The chief executive of Acme Corporation is Alan Turing.")
        again = RecipeChatModel(knowledge_store=acme, max_tokens=3).invoke(QUERY)
        assert again.response_metadata["edit"]["statement"] == "The chief executive of Acme Corporation is Alan Turing."
    finally:
        set_llm_cache(None)


def test_asking_a_chat_model_to_cache_is_refused_with_a_clear_message(llm: RecipeChatModel) -> None:
    from langchain_core.caches import InMemoryCache

    for cache in (True, InMemoryCache()):
        with pytest.raises(ValidationError, match="cache=False"):
            RecipeChatModel(cache=cache)
    llm.cache = InMemoryCache()  # set after construction: refused at the call
    with pytest.raises(InvalidInputError, match="tenant"):
        llm.invoke(QUERY)


# ---------------------------------------------------------------------- 3. token counting
def test_token_counts_use_the_lms_own_tokenizer_offline(
    llm: RecipeChatModel, base_model: HuggingFaceBaseModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.language_models import base as lm_base
    from langchain_core.messages import trim_messages

    def no_gpt2() -> None:
        raise AssertionError("the GPT-2 tokenizer was asked for")

    monkeypatch.setattr(lm_base, "get_tokenizer", no_gpt2)
    text = "Who is the chief executive of Acme Corporation?"
    ids = base_model.tokenizer.encode(text, add_special_tokens=False)
    assert llm.get_token_ids(text) == ids
    assert llm.get_num_tokens(text) == len(ids)

    messages: list[BaseMessage] = [SystemMessage("Be terse."), HumanMessage(QUERY)]
    counted = llm.get_num_tokens_from_messages(messages)
    assert counted == llm.invoke(messages).usage_metadata["input_tokens"]
    assert llm.get_num_tokens_from_messages([]) == 0

    history: list[BaseMessage] = [HumanMessage("Where is the Zephyr Tower? " * 5), AIMessage("In Lisbon. " * 5)]
    question = [HumanMessage(QUERY)]
    budget = llm.get_num_tokens_from_messages(question)
    assert trim_messages([*history, *question], max_tokens=budget, token_counter=llm, strategy="last") == question
    assert trim_messages([*history, *question], max_tokens=budget - 1, token_counter=llm, strategy="last") == []

    # With a system message: the count is additive, so trimming keeps the system message and the
    # newest question that fit (a counter that charged each sub-conversation the template's
    # overhead again dropped the question).
    system = SystemMessage("Be terse.")
    kept = [system, *question]
    budget = llm.get_num_tokens_from_messages(kept)
    assert budget == llm.get_num_tokens_from_messages([system]) + llm.get_num_tokens_from_messages(question)
    assert budget == llm.invoke(kept).usage_metadata["input_tokens"]
    trimmed = trim_messages(
        [system, *history, *question], max_tokens=budget, token_counter=llm, strategy="last", include_system=True
    )
    assert trimmed == kept


# ---------------------------------------------------------------------- 4. max_concurrency
def test_batch_honours_max_concurrency(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, generations: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = [QUERY, OTHER_QUERY, "Hi.", "Which language does Oskar Brandt speak?", "Who plays for the Bulls?"]
    singles = [llm.invoke(text).content for text in inputs]
    generations.clear()
    retrieved: list[int] = []
    original = store.retrieve_prompts
    monkeypatch.setattr(store, "retrieve_prompts", lambda queries: retrieved.append(len(queries)) or original(queries))

    answers = llm.batch(inputs, config={"max_concurrency": 2})

    assert generations == [2, 2, 1]
    assert retrieved == [2, 2, 1]
    assert [a.content for a in answers] == singles
    generations.clear()
    llm.batch(inputs)
    assert generations == [5]  # no max_concurrency: one generation


# ---------------------------------------------------------------------- 5. cancelled ainvoke
async def test_a_cancelled_ainvoke_stops_generating_within_one_token(
    llm: RecipeChatModel, base_model: HuggingFaceBaseModel, no_eos: None
) -> None:
    forwards: list[float] = []

    def slow(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        forwards.append(time.monotonic())
        time.sleep(0.02)

    handle = base_model.model.register_forward_pre_hook(slow, with_kwargs=True)
    try:
        task = asyncio.create_task(llm.ainvoke(QUERY, max_tokens=200))
        while len(forwards) < 3:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = len(forwards)
        await asyncio.sleep(0.5)
        assert len(forwards) - at_cancel <= 1
        assert not [t for t in threading.enumerate() if t.name == "recipe-generate"]
    finally:
        handle.remove()


# ---------------------------------------------------------------------- 6. copying
def test_a_chat_model_deep_copies_sharing_its_lm_and_store(llm: RecipeChatModel, store: RecipeKnowledgeStore) -> None:
    expected = llm.invoke(QUERY).content
    for copied in (copy.deepcopy(llm), llm.model_copy(deep=True)):
        assert copied is not llm
        assert copied.knowledge_store is store
        assert copied.base_model is llm.base_model
        assert copied.invoke(QUERY).content == expected
        copied.max_tokens = 2
        assert llm.max_tokens == 5


def test_pickling_a_chat_model_with_a_store_says_what_to_use_instead(llm: RecipeChatModel) -> None:
    with pytest.raises(TypeError, match=r"(?s)cannot be pickled.*deepcopy"):
        pickle.dumps(llm)
    settings = RecipeChatModel(model_name="/nonexistent/model-folder", max_tokens=3)  # nothing loaded: only settings
    assert pickle.loads(pickle.dumps(settings)).max_tokens == 3


# ---------------------------------------------------------------------- 11. stop sequences
def test_stop_sequences_that_end_inside_a_token_cut_invoke_and_stream_alike(
    store: RecipeKnowledgeStore, no_eos: None
) -> None:
    llm = RecipeChatModel(knowledge_store=store, max_tokens=8)
    full = llm.invoke(QUERY).content
    words = full.split()
    assert len(words) >= 3 and all(len(w) >= 3 for w in words[:3]), full
    stops = [
        full[:2],  # inside the first token
        words[1][:2],  # inside the second word's first token
        words[2][1:3],  # starts and ends inside a token
        f"{words[0]} {words[1][:1]}",  # the text before it ends with a space, which is stripped
    ]
    for stop in stops:
        expected = full[: full.index(stop)].strip()
        invoked = llm.invoke(QUERY, stop=[stop])
        streamed = _joined(list(llm.stream(QUERY, stop=[stop])))
        assert invoked.content == streamed.content == expected, stop
        assert invoked.response_metadata["finish_reason"] == streamed.response_metadata["finish_reason"] == "stop"
        assert invoked.usage_metadata["output_tokens"] < 8, stop  # generation ended at the stop


# ---------------------------------------------------------------------- 12. multibyte text cut at max_tokens
@pytest.fixture(scope="module")
def byte_lm() -> HuggingFaceBaseModel:
    """A tiny LM over a byte-level BPE tokenizer with no merges: one token per UTF-8 byte."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128, eos_token_id=None,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval().requires_grad_(False)
    return HuggingFaceBaseModel(model=model, tokenizer=tokenizer, name="tiny-bytes")


@pytest.fixture
def say(byte_lm: HuggingFaceBaseModel) -> Iterator[Callable[[str], None]]:
    """``say(text)`` makes the byte LM generate ``text``'s bytes greedily, one token per step."""
    script: list[int] = []
    step = {"n": 0}

    def hook(module: torch.nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        inputs = kwargs.get("inputs_embeds") if kwargs.get("inputs_embeds") is not None else kwargs["input_ids"]
        step["n"] = 0 if inputs.shape[1] > 1 else step["n"] + 1
        output.logits[:, -1, :] = -1e4
        output.logits[:, -1, script[min(step["n"], len(script) - 1)]] = 1e4
        return output

    handle = byte_lm.model.register_forward_hook(hook, with_kwargs=True)
    yield lambda text: script.__setitem__(slice(None), byte_lm.tokenizer.encode(text, add_special_tokens=False))
    handle.remove()


@pytest.mark.parametrize("text", ["café", "日本", "a🙂"])
def test_a_multibyte_character_cut_at_max_tokens_is_trimmed(
    byte_lm: HuggingFaceBaseModel, say: Callable[[str], None], text: str
) -> None:
    llm = RecipeChatModel.from_base_model(byte_lm)
    say(text)
    size = len(text.encode("utf-8"))
    assert llm.invoke("q", max_tokens=size).content == text  # whole: kept
    for cut in range(1, len(text[-1].encode("utf-8"))):  # every partial last character
        invoked = llm.invoke("q", max_tokens=size - cut)
        streamed = _joined(list(llm.stream("q", max_tokens=size - cut)))
        assert invoked.content == streamed.content == text[:-1], cut
        assert invoked.response_metadata["finish_reason"] == "length"


# ---------------------------------------------------------------------- 13. tools and structured output
def test_tool_calling_and_structured_output_say_what_to_use_instead(llm: RecipeChatModel) -> None:
    from langchain_core.tools import tool

    @tool
    def lookup(subject: str) -> str:
        """Look a subject up."""
        return subject

    class Answer(BaseModel):
        name: str

    with pytest.raises(NotImplementedError, match=r"(?s)tool calling.*RecipeToolkit"):
        llm.bind_tools([lookup])
    with pytest.raises(NotImplementedError, match=r"(?s)structured output.*OutputParser"):
        llm.with_structured_output(Answer)


# ---------------------------------------------------------------------- 15. sampling values that overflow
@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 1e-40},
        {"temperature": 1e-5},
        {"temperature": float("inf")},
        {"temperature": float("nan")},
        {"temperature": 1.0, "repetition_penalty": 1e-40},
    ],
    ids=["tiny temperature", "small temperature", "infinite temperature", "NaN temperature", "tiny penalty"],
)
def test_sampling_values_that_would_overflow_are_refused(llm: RecipeChatModel, bad: dict[str, float]) -> None:
    name = list(bad)[-1]
    with pytest.raises(ValidationError, match=name):
        RecipeChatModel(**bad)
    with pytest.raises(InvalidInputError, match=rf"{name}.*(0\.001|1e-03)"):
        llm.invoke(QUERY, **bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_p": float("nan")},
        {"top_k": -1},
        {"top_k": 2.5},
        {"top_k": True},
        {"seed": -1},
        {"seed": 1.5},
        {"seed": "7"},
        {"seed": 2**70},
        {"temperature": "hot"},
    ],
    ids=lambda bad: f"{next(iter(bad))}={next(iter(bad.values()))!r}",
)
def test_a_bad_sampling_option_per_call_is_named_before_generating(llm: RecipeChatModel, bad: dict[str, Any]) -> None:
    """Each bad per-call value gets an InvalidInputError naming it, never a raw error from torch."""
    name = next(iter(bad))
    with pytest.raises(InvalidInputError, match=rf"^{name} must be"):
        llm.invoke(QUERY, **{"temperature": 0.9, **bad})  # sampling, where top_p and top_k act
    with pytest.raises(ValidationError, match=name):
        RecipeChatModel(**bad)


def test_the_edges_of_the_sampling_range_work(llm: RecipeChatModel) -> None:
    for good in ({"temperature": 1e-3}, {"temperature": 100.0}, {"temperature": 1.0, "repetition_penalty": 1e-3}):
        RecipeChatModel(**good)
        assert isinstance(llm.invoke(QUERY, **good).content, str)
