"""Tests of RecipeChatModel (langchain_recipe.chat_models) with the tiny LM and tiny store.

The knowledge sentinel is forced (``force_gate``) so a query's best edit is surely accepted or
rejected; the bare LM's greedy output is computed with ``model.generate`` on the same chat
template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from facts import IDS, QUERY, STATEMENTS
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.chat_models import RecipeChatModel, retrieval_query
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.injection import chat_prompt_offset, prepend_continuous_prompts
from langchain_recipe.knowledge_store import RecipeKnowledgeStore

OTHER_QUERY = "In which city is the Zephyr Tower located?"
SYSTEM = "You are a terse assistant who loves the Zephyr Tower."
MAX_TOKENS = 5


@pytest.fixture
def store(knowledge_store: RecipeKnowledgeStore) -> RecipeKnowledgeStore:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    return knowledge_store


@pytest.fixture
def llm(store: RecipeKnowledgeStore) -> RecipeChatModel:
    return RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS)


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[list[list[int]]]:
    """The new token ids of every finished generation (one list of rows per call)."""
    calls: list[list[list[int]]] = []
    original = RecipeChatModel._decode_steps

    def spy(self: RecipeChatModel, rows: list[Any], **kwargs: Any) -> Iterator[None]:
        yield from original(self, rows, **kwargs)
        calls.append([list(row.tokens) for row in rows])

    monkeypatch.setattr(RecipeChatModel, "_decode_steps", spy)
    return calls


@pytest.fixture
def first_forward(base_model: HuggingFaceBaseModel) -> Iterator[list[dict[str, Any]]]:
    """Inputs and logits of every forward of the tiny LM (the first one of a generation is the prefill)."""
    calls: list[dict[str, Any]] = []

    def hook(module: torch.nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        embeds = kwargs.get("inputs_embeds")
        ids = kwargs.get("input_ids")
        length = embeds.shape[1] if embeds is not None else ids.shape[1]
        calls.append({"length": length, "logits": output.logits.detach().clone()})

    handle = base_model.model.register_forward_hook(hook, with_kwargs=True)
    yield calls
    handle.remove()


@pytest.fixture
def no_eos(base_model: HuggingFaceBaseModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation never stops early: no end-of-sequence token."""
    monkeypatch.setattr(base_model.model.generation_config, "eos_token_id", None)
    assert base_model.tokenizer.eos_token_id is None


def _template(base_model: HuggingFaceBaseModel, messages: list[dict[str, str]]) -> dict[str, torch.Tensor]:
    return base_model.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


def _bare_generate(base_model: HuggingFaceBaseModel, messages: list[dict[str, str]], max_new_tokens: int) -> list[int]:
    """The unedited LM's greedy new tokens for a templated conversation (cut after an end token)."""
    inputs = _template(base_model, messages)
    with torch.no_grad():
        output = base_model.model.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=base_model.tokenizer.pad_token_id,
        )
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    eos = base_model.model.generation_config.eos_token_id
    return new[: new.index(eos) + 1] if eos in new else new


def _check_usage(message: AIMessage, input_tokens: int, max_tokens: int = MAX_TOKENS) -> None:
    usage = message.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == input_tokens
    assert 1 <= usage["output_tokens"] <= max_tokens
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


# ---------------------------------------------------------------------- metadata and the gate
def test_invoke_with_an_accepted_edit(
    llm: RecipeChatModel,
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
) -> None:
    force_gate(store, accept=[QUERY])
    best = store.search(QUERY)[0]

    message = llm.invoke(QUERY)

    assert isinstance(message, AIMessage)
    assert isinstance(message.content, str)
    _check_usage(message, _template(base_model, [{"role": "user", "content": QUERY}])["input_ids"].shape[1])
    metadata = message.response_metadata
    assert metadata["model_name"] == "tiny-llama"
    assert metadata["finish_reason"] in {"stop", "length"}
    edit = metadata["edit"]
    assert isinstance(edit, dict)
    assert edit["edit_id"] == best.edit_id
    assert edit["statement"] == best.statement
    assert type(edit["score"]) is float
    assert type(edit["sentinel_score"]) is float
    assert edit["score"] > edit["sentinel_score"]


def test_invoke_with_a_rejected_edit(
    llm: RecipeChatModel,
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
) -> None:
    force_gate(store, reject=[QUERY])

    message = llm.invoke(QUERY)

    assert message.response_metadata["edit"] is None
    assert message.response_metadata["model_name"] == "tiny-llama"
    _check_usage(message, _template(base_model, [{"role": "user", "content": QUERY}])["input_ids"].shape[1])


# ---------------------------------------------------------------------- bare LM equality
@pytest.mark.parametrize("case", ["empty store", "rejected"])
def test_without_an_edit_the_output_is_the_bare_lm(
    case: str,
    knowledge_store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
    first_forward: list[dict[str, Any]],
    lm_state: dict[str, torch.Tensor],
) -> None:
    if case == "rejected":
        knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
        force_gate(knowledge_store, reject=[QUERY])
    llm = RecipeChatModel(knowledge_store=knowledge_store, max_tokens=8)
    conversation = [SystemMessage(SYSTEM), HumanMessage(QUERY)]
    templated = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUERY}]

    message = llm.invoke(conversation)
    chat_logits = first_forward[0]["logits"]
    first_forward.clear()
    expected = _bare_generate(base_model, templated, max_new_tokens=8)
    bare_logits = first_forward[0]["logits"]

    assert message.response_metadata["edit"] is None
    assert generated == [[expected]]
    assert message.content == base_model.tokenizer.decode(expected, skip_special_tokens=True).strip()
    assert message.usage_metadata["output_tokens"] == len(expected)
    assert torch.equal(chat_logits, bare_logits)
    for name, value in base_model.model.state_dict().items():
        assert torch.equal(value, lm_state[name]), name


def test_an_accepted_edit_changes_the_first_forward(
    llm: RecipeChatModel,
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    first_forward: list[dict[str, Any]],
    lm_state: dict[str, torch.Tensor],
) -> None:
    force_gate(store, accept=[QUERY])
    (edit,) = store.retrieve_prompts([QUERY])
    inputs = _template(base_model, [{"role": "user", "content": QUERY}])
    num_tokens = inputs["input_ids"].shape[1]
    num_prompt = store.recipe_model.config.num_prompt_tokens

    message = llm.invoke(QUERY)
    edited = first_forward[0]
    first_forward.clear()
    _bare_generate(base_model, [{"role": "user", "content": QUERY}], max_new_tokens=1)
    bare = first_forward[0]

    assert message.response_metadata["edit"]["edit_id"] == edit.edit_id
    assert edited["length"] == num_tokens + num_prompt  # the prefill sees the 3 prompt vectors
    assert bare["length"] == num_tokens
    assert not torch.allclose(edited["logits"][0, -1], bare["logits"][0, -1], atol=1e-4)
    # The edited prefill is the LM on [E_header ; P ; E_question]: the prompt sits right before the
    # user's text, after the template's tokens that precede it.
    conversation = [{"role": "user", "content": QUERY}]
    offset = chat_prompt_offset(base_model.tokenizer, conversation, inputs["input_ids"][0].tolist())
    header = base_model.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False).split(
        QUERY
    )[0]
    assert offset == len(base_model.tokenizer(header, add_special_tokens=False)["input_ids"]) > 0
    prefixed = prepend_continuous_prompts(
        base_model.embed(inputs["input_ids"]), inputs["attention_mask"], [edit.prompt], prompt_offsets=[offset]
    )
    with torch.no_grad():
        expected = base_model.model(
            inputs_embeds=prefixed.inputs_embeds,
            attention_mask=prefixed.attention_mask,
            position_ids=prefixed.position_ids,
        ).logits
    assert torch.allclose(edited["logits"][0, -1], expected[0, -1], atol=1e-4)
    for name, value in base_model.model.state_dict().items():
        assert torch.equal(value, lm_state[name]), name


# ---------------------------------------------------------------------- max_tokens
@pytest.mark.parametrize("max_tokens", [1, 4, 9])
@pytest.mark.parametrize("gate", ["accept", "reject"])
def test_max_tokens_counts_new_tokens_only(
    max_tokens: int,
    gate: str,
    store: RecipeKnowledgeStore,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
    no_eos: None,
) -> None:
    force_gate(store, **{gate: [QUERY]})
    llm = RecipeChatModel(knowledge_store=store, max_tokens=max_tokens)

    message = llm.invoke(QUERY)

    assert (message.response_metadata["edit"] is not None) == (gate == "accept")
    assert message.usage_metadata["output_tokens"] == max_tokens
    assert len(generated[0][0]) == max_tokens
    assert message.response_metadata["finish_reason"] == "length"


def test_max_tokens_can_be_given_per_call(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], no_eos: None
) -> None:
    force_gate(store, accept=[QUERY])

    assert llm.invoke(QUERY, max_tokens=2).usage_metadata["output_tokens"] == 2
    assert llm.invoke(QUERY).usage_metadata["output_tokens"] == MAX_TOKENS


def test_output_tokens_never_exceed_max_tokens_with_eos(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    for query in (QUERY, OTHER_QUERY, "Tell me something."):
        for gate in ("accept", "reject"):
            force_gate(store, **{gate: [query]})
            assert llm.invoke(query).usage_metadata["output_tokens"] <= MAX_TOKENS


def test_min_new_tokens_of_the_generation_config_is_honoured(llm: RecipeChatModel) -> None:
    """generation_config.min_new_tokens suppresses end-of-sequence tokens until that many new
    tokens exist (as transformers' generate does); recipe bench relies on it for equal-length
    answers."""
    config = llm.base_model.model.generation_config
    saved = (config.eos_token_id, config.min_new_tokens)
    try:
        # Every token but the last of the vocabulary ends a sequence: an answer stops after its
        # first token (the tiny LM's greedy first token is not that one)...
        config.eos_token_id = list(range(llm.base_model.model.config.vocab_size - 1))
        stopped = llm.invoke(QUERY, max_tokens=6)
        assert stopped.usage_metadata["output_tokens"] == 1
        assert stopped.response_metadata["finish_reason"] == "stop"
        # ...unless min_new_tokens asks for more (the one other token fills them).
        config.min_new_tokens = 4
        forced = llm.invoke(QUERY, max_tokens=6)
        assert forced.usage_metadata["output_tokens"] >= 4
        batch = llm.generate_batch([QUERY, OTHER_QUERY], max_tokens=6)
        assert all(m.usage_metadata["output_tokens"] >= 4 for m in batch)
    finally:
        config.eos_token_id, config.min_new_tokens = saved


# ---------------------------------------------------------------------- the retrieval query
def test_retrieval_sees_only_the_last_human_message(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    original = store.retrieve_prompts

    def spy(queries: list[str]) -> Any:
        seen.append(list(queries))
        return original(queries)

    monkeypatch.setattr(store, "retrieve_prompts", spy)
    conversation = [
        SystemMessage(SYSTEM),
        HumanMessage(OTHER_QUERY),
        AIMessage("Lisbon."),
        HumanMessage(QUERY),
    ]

    llm.invoke(conversation)
    llm.invoke([SystemMessage(SYSTEM)])  # no human message: nothing to retrieve for

    assert seen[0] == [QUERY]
    assert all(query == [] for query in seen[1:])


def test_retrieval_query() -> None:
    assert (
        retrieval_query([SystemMessage(SYSTEM), HumanMessage("first"), AIMessage("a"), HumanMessage("second")])
        == "second"
    )
    assert retrieval_query([HumanMessage("only"), AIMessage("reply")]) == "only"
    assert retrieval_query([SystemMessage(SYSTEM)]) is None
    assert retrieval_query([]) is None
    blocks = HumanMessage(content=[{"type": "text", "text": "Who runs Acme?"}])
    assert retrieval_query([blocks]) == "Who runs Acme?"


def test_the_reply_holds_no_template_or_system_prompt(
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
) -> None:
    llm = RecipeChatModel(knowledge_store=store, max_tokens=12)
    conversation = [SystemMessage(SYSTEM), HumanMessage(OTHER_QUERY), AIMessage("Lisbon."), HumanMessage(QUERY)]
    for gate in ("accept", "reject"):
        force_gate(store, **{gate: [QUERY]})
        generated.clear()

        message = llm.invoke(conversation)

        text = message.content
        assert text == base_model.tokenizer.decode(generated[0][0], skip_special_tokens=True).strip()
        for marker in ("<|im_start|>", "<|im_end|>", "system:", "user:", "assistant:", "[CLS]", "[SEP]", "[PAD]"):
            assert marker not in text
        assert SYSTEM not in text
        assert QUERY not in text
        templated = _template(
            base_model, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": OTHER_QUERY}]
        )
        assert message.usage_metadata["input_tokens"] > templated["input_ids"].shape[1]


# ---------------------------------------------------------------------- batches, stops, errors
def test_generate_batch_with_accepted_and_rejected_rows(
    llm: RecipeChatModel,
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
) -> None:
    force_gate(store, accept=[QUERY], reject=[OTHER_QUERY])
    conversations: list[list[BaseMessage] | str] = [
        QUERY,
        OTHER_QUERY,
        [SystemMessage(SYSTEM), HumanMessage(QUERY)],
        [HumanMessage(QUERY), AIMessage("Ada."), HumanMessage(OTHER_QUERY)],
    ]
    templated = [
        [{"role": "user", "content": QUERY}],
        [{"role": "user", "content": OTHER_QUERY}],
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUERY}],
        [
            {"role": "user", "content": QUERY},
            {"role": "assistant", "content": "Ada."},
            {"role": "user", "content": OTHER_QUERY},
        ],
    ]
    best = store.search(QUERY)[0].edit_id

    messages = llm.generate_batch(conversations)

    assert len(messages) == len(conversations)
    for message, accepted, turns in zip(messages, [True, False, True, False], templated, strict=False):
        assert isinstance(message, AIMessage)
        assert message.response_metadata["model_name"] == "tiny-llama"
        _check_usage(message, _template(base_model, turns)["input_ids"].shape[1])
        if accepted:
            assert message.response_metadata["edit"]["edit_id"] == best
            assert message.response_metadata["edit"]["score"] > message.response_metadata["edit"]["sentinel_score"]
        else:
            assert message.response_metadata["edit"] is None


def test_generate_batch_of_one_is_invoke(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, accept=[QUERY])

    (batched,) = llm.generate_batch([QUERY])
    single = llm.invoke(QUERY)

    assert batched.content == single.content
    assert batched.usage_metadata == single.usage_metadata
    assert batched.response_metadata["edit"] == single.response_metadata["edit"]


@pytest.mark.parametrize("where", ["invoke", "field", "generate_batch"])
def test_stop_sequences_cut_the_text(
    where: str, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], no_eos: None
) -> None:
    force_gate(store, accept=[QUERY])
    full = RecipeChatModel(knowledge_store=store, max_tokens=8).invoke(QUERY).content
    words = full.split()
    assert len(words) >= 3, full
    stop = words[2]
    expected = full[: full.index(stop)].strip()

    if where == "invoke":
        message = RecipeChatModel(knowledge_store=store, max_tokens=8).invoke(QUERY, stop=[stop])
    elif where == "field":
        message = RecipeChatModel(knowledge_store=store, max_tokens=8, stop=["<never>", stop]).invoke(QUERY)
    else:
        (message,) = RecipeChatModel(knowledge_store=store, max_tokens=8).generate_batch([QUERY], stop=[stop])

    assert message.content == expected
    assert message.response_metadata["finish_reason"] == "stop"
    assert len(message.content) < len(full)


def test_a_stop_sequence_that_never_occurs_changes_nothing(llm: RecipeChatModel) -> None:
    assert llm.invoke(QUERY, stop=["<never-generated>"]).content == llm.invoke(QUERY).content


def test_no_messages_raises(llm: RecipeChatModel) -> None:
    with pytest.raises(InvalidInputError):
        llm.generate_batch([[]])


def test_the_store_base_model_is_used(llm: RecipeChatModel, store: RecipeKnowledgeStore) -> None:
    assert llm.base_model is store.base_model
    assert llm._llm_type == "recipe-chat"
    assert llm._identifying_params["model_name"] == "tiny-llama"


# ---------------------------------------------------------------------- streaming
def _joined(chunks: list[Any]) -> Any:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


@pytest.mark.parametrize("gate", ["accept", "reject"])
def test_streamed_text_equals_invoked_text(
    gate: str, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], generated: list[list[list[int]]]
) -> None:
    force_gate(store, **{gate: [QUERY]})
    llm = RecipeChatModel(knowledge_store=store, max_tokens=10)

    invoked = llm.invoke(QUERY)
    chunks = list(llm.stream(QUERY))
    full = _joined(chunks)

    assert len(chunks) == invoked.usage_metadata["output_tokens"]  # one chunk per generated token
    assert full.content == invoked.content
    assert chunks[-1].chunk_position == "last"
    assert all(c.chunk_position is None for c in chunks[:-1])
    assert full.usage_metadata == invoked.usage_metadata
    assert chunks[0].usage_metadata["input_tokens"] == invoked.usage_metadata["input_tokens"]
    assert all(c.usage_metadata["input_tokens"] == 0 for c in chunks[1:])
    for key in ("model_name", "finish_reason", "edit", "injection"):
        assert full.response_metadata[key] == invoked.response_metadata[key], key
    assert (full.response_metadata["edit"] is not None) == (gate == "accept")


@pytest.mark.parametrize("gate", ["accept", "reject"])
def test_streamed_text_equals_invoked_text_with_a_stop_sequence(
    gate: str, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], no_eos: None
) -> None:
    force_gate(store, **{gate: [QUERY]})
    llm = RecipeChatModel(knowledge_store=store, max_tokens=10)
    words = llm.invoke(QUERY).content.split()
    assert len(words) >= 4, words
    stop = f"{words[2]} {words[3]}"  # a stop sequence of more than one token

    invoked = llm.invoke(QUERY, stop=[stop])
    streamed = _joined(list(llm.stream(QUERY, stop=[stop])))

    assert streamed.content == invoked.content
    assert stop not in streamed.content
    assert streamed.response_metadata["finish_reason"] == invoked.response_metadata["finish_reason"] == "stop"
    assert streamed.usage_metadata == invoked.usage_metadata
    assert invoked.usage_metadata["output_tokens"] < 10  # generation ended at the stop sequence


def test_streaming_field_routes_invoke_through_stream(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, accept=[QUERY])
    tokens: list[str] = []

    from langchain_core.callbacks import BaseCallbackHandler

    class Tokens(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            tokens.append(token)

    streaming = RecipeChatModel(knowledge_store=store, max_tokens=6, streaming=True)
    message = streaming.invoke(QUERY, config={"callbacks": [Tokens()]})

    assert message.content == RecipeChatModel(knowledge_store=store, max_tokens=6).invoke(QUERY).content
    assert len(tokens) == message.usage_metadata["output_tokens"]
    assert "".join(tokens) == message.content


class _Boom(RuntimeError):
    pass


@pytest.fixture
def failing_forward(base_model: HuggingFaceBaseModel) -> Iterator[None]:
    """The tiny LM raises on its third forward pass (after two streamed tokens)."""
    calls = {"n": 0}

    def hook(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Boom("forward failed")

    handle = base_model.model.register_forward_pre_hook(hook, with_kwargs=True)
    yield
    handle.remove()


def test_an_error_inside_generation_surfaces_in_stream(
    llm: RecipeChatModel, no_eos: None, failing_forward: None
) -> None:
    received = []
    with pytest.raises(_Boom):
        for chunk in llm.stream(QUERY):
            received.append(chunk)
    assert len(received) == 2


async def test_an_error_inside_generation_surfaces_in_astream_and_ainvoke(
    store: RecipeKnowledgeStore, base_model: HuggingFaceBaseModel, no_eos: None
) -> None:
    import asyncio

    llm = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS)

    def hook(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        if kwargs.get("input_ids") is not None and kwargs["input_ids"].shape[1] == 1:
            raise _Boom("decode step failed")

    handle = base_model.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with pytest.raises(_Boom):
            await asyncio.wait_for(_drain(llm.astream(QUERY)), timeout=60)
        with pytest.raises(_Boom):
            await asyncio.wait_for(llm.ainvoke(QUERY), timeout=60)
    finally:
        handle.remove()


async def _drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_astream_equals_stream(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, accept=[QUERY])

    streamed = [c.content for c in llm.stream(QUERY)]
    astreamed = [c.content async for c in llm.astream(QUERY)]

    assert astreamed == streamed
    assert (await llm.ainvoke(QUERY)).content == "".join(streamed)


# ---------------------------------------------------------------------- async does not block
async def test_ainvoke_and_astream_leave_the_event_loop_free(
    llm: RecipeChatModel, base_model: HuggingFaceBaseModel
) -> None:
    import asyncio
    import time

    def slow(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        time.sleep(0.05)  # blocking work, as a real forward pass is

    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0.005)

    handle = base_model.model.register_forward_pre_hook(slow, with_kwargs=True)
    try:
        task = asyncio.create_task(ticker())
        await llm.ainvoke(QUERY)
        after_invoke = ticks
        await _drain(llm.astream(QUERY))
        running = False
        await task
    finally:
        handle.remove()

    # One forward pass takes 50 ms; a blocked loop would tick about once per call.
    assert after_invoke >= 5
    assert ticks - after_invoke >= 5


async def test_concurrent_ainvokes_each_get_their_own_edit(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], base_model: HuggingFaceBaseModel
) -> None:
    import asyncio
    import time

    force_gate(store, accept=[QUERY, OTHER_QUERY])
    llm = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS)
    expected = [llm.invoke(QUERY), llm.invoke(OTHER_QUERY)]
    assert expected[0].response_metadata["edit"]["edit_id"] != expected[1].response_metadata["edit"]["edit_id"]

    def slow(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        time.sleep(0.01)  # let the two generations interleave

    handle = base_model.model.register_forward_pre_hook(slow, with_kwargs=True)
    try:
        answers = await asyncio.gather(llm.ainvoke(QUERY), llm.ainvoke(OTHER_QUERY), llm.ainvoke(QUERY))
    finally:
        handle.remove()

    for answer, reference in zip(answers, [*expected, expected[0]], strict=False):
        assert answer.response_metadata["edit"] == reference.response_metadata["edit"]
        assert answer.content == reference.content


# ---------------------------------------------------------------------- batch
def test_batch_is_one_generation_equal_to_invokes(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], generated: list[list[list[int]]]
) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    long_query = f"{QUERY} Please answer with the full name of the person and nothing else at all."
    force_gate(store, accept=[long_query], reject=["Hi."])
    llm = RecipeChatModel(knowledge_store=store, max_tokens=6)
    inputs = ["Hi.", long_query]
    singles = [llm.invoke(text) for text in inputs]
    generated.clear()
    events: list[str] = []

    class Recorder(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            events.append("start")

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            events.append("end")

    batched = llm.batch(inputs, config={"callbacks": [Recorder()]})

    assert len(generated) == 1 and len(generated[0]) == 2  # one batched generation of two rows
    assert events.count("start") == events.count("end") == 2
    assert singles[0].response_metadata["edit"] is None
    assert singles[1].response_metadata["edit"] is not None
    for one, many in zip(singles, batched, strict=False):
        assert many.content == one.content
        assert many.usage_metadata == one.usage_metadata
        assert many.response_metadata["finish_reason"] == one.response_metadata["finish_reason"]
        assert many.id is not None
    # The query encoder sees a padded batch: scores agree to float precision, not bit for bit.
    edit, single_edit = batched[1].response_metadata["edit"], singles[1].response_metadata["edit"]
    assert {k: edit[k] for k in ("edit_id", "statement")} == {k: single_edit[k] for k in ("edit_id", "statement")}
    assert edit["score"] == pytest.approx(single_edit["score"], rel=1e-5)
    assert edit["sentinel_score"] == pytest.approx(single_edit["sentinel_score"], rel=1e-5)


async def test_abatch_equals_batch(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, accept=[QUERY], reject=[OTHER_QUERY])

    batched = llm.batch([QUERY, OTHER_QUERY])
    abatched = await llm.abatch([QUERY, OTHER_QUERY])

    assert [m.content for m in abatched] == [m.content for m in batched]
    assert [m.response_metadata["edit"] for m in abatched] == [m.response_metadata["edit"] for m in batched]


def test_batch_with_return_exceptions(llm: RecipeChatModel) -> None:
    results = llm.batch([QUERY, [], OTHER_QUERY], return_exceptions=True)  # an empty conversation is invalid

    assert isinstance(results[1], InvalidInputError)
    assert [r.content for r in (results[0], results[2])] == [llm.invoke(QUERY).content, llm.invoke(OTHER_QUERY).content]
    with pytest.raises(InvalidInputError):
        llm.batch([QUERY, []])


# ---------------------------------------------------------------------- chat templates
STRICT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _model_with_template(base_model: HuggingFaceBaseModel, template: str | None, **kwargs: Any) -> RecipeChatModel:
    import copy

    tokenizer = copy.deepcopy(base_model.tokenizer)
    tokenizer.chat_template = template
    llm = RecipeChatModel(**kwargs)
    llm._base_model = HuggingFaceBaseModel(model=base_model.model, tokenizer=tokenizer, name="tiny-strict")
    return llm


def test_a_template_that_rejects_system_and_repeated_turns_gets_a_folded_conversation(
    base_model: HuggingFaceBaseModel, generated: list[list[list[int]]]
) -> None:
    llm = _model_with_template(base_model, STRICT_TEMPLATE, max_tokens=4)
    conversation = [SystemMessage(SYSTEM), HumanMessage(OTHER_QUERY), HumanMessage(QUERY)]
    folded = [{"role": "user", "content": f"{SYSTEM}\n\n{OTHER_QUERY}\n\n{QUERY}"}]

    message = llm.invoke(conversation)

    inputs = llm.base_model.tokenizer.apply_chat_template(
        folded, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert message.usage_metadata["input_tokens"] == inputs["input_ids"].shape[1]
    assert generated[0][0] == _bare_generate(llm.base_model, folded, max_new_tokens=4)
    # A conversation the template accepts is not changed.
    llm.invoke([HumanMessage(QUERY), AIMessage("Ada."), HumanMessage(OTHER_QUERY)])


def test_a_system_message_alone_becomes_a_user_turn(base_model: HuggingFaceBaseModel) -> None:
    llm = _model_with_template(base_model, STRICT_TEMPLATE, max_tokens=2)
    assert llm.invoke([SystemMessage(SYSTEM)]).usage_metadata["output_tokens"] >= 1


@pytest.mark.parametrize(
    "template",
    [None, "{{ raise_exception('This model takes no chat') }}", "{{ messages[0]['role'] | no_such_filter }}"],
    ids=["missing", "always-raises", "broken"],
)
def test_an_unusable_template_raises_a_clear_error(base_model: HuggingFaceBaseModel, template: str | None) -> None:
    llm = _model_with_template(base_model, template)
    with pytest.raises(InvalidInputError, match="template"):
        llm.invoke(QUERY)


# ---------------------------------------------------------------------- text injection
def test_text_injection_prepends_the_statement(
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
    first_forward: list[dict[str, Any]],
) -> None:
    force_gate(store, accept=[QUERY])
    best = store.search(QUERY)[0]
    with_statement = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{best.statement}\n{QUERY}"}]
    conversation = [SystemMessage(SYSTEM), HumanMessage(QUERY)]
    expected = _bare_generate(base_model, with_statement, max_new_tokens=MAX_TOKENS)
    first_forward.clear()

    by_field = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS, injection="text").invoke(conversation)
    by_call = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS).invoke(conversation, injection="text")
    by_bind = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS).bind(injection="text").invoke(conversation)
    prompt = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS).invoke(conversation)

    assert generated[:3] == [[expected]] * 3
    assert (
        first_forward[0]["length"] == _template(base_model, with_statement)["input_ids"].shape[1]
    )  # no prompt vectors
    for message in (by_field, by_call, by_bind):
        assert message.response_metadata["injection"] == "text"
        assert message.response_metadata["edit"]["edit_id"] == best.edit_id
        assert message.usage_metadata["input_tokens"] == _template(base_model, with_statement)["input_ids"].shape[1]
    assert prompt.response_metadata["injection"] == "continuous_prompt"


def test_text_injection_behind_a_rejecting_gate_is_the_bare_lm(
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
) -> None:
    force_gate(store, reject=[QUERY])

    message = RecipeChatModel(knowledge_store=store, max_tokens=MAX_TOKENS, injection="text").invoke(QUERY)

    assert message.response_metadata["edit"] is None
    assert message.response_metadata["injection"] is None
    assert generated == [[_bare_generate(base_model, [{"role": "user", "content": QUERY}], max_new_tokens=MAX_TOKENS)]]


def test_an_unknown_injection_or_option_raises(llm: RecipeChatModel) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RecipeChatModel(injection="hooks")
    with pytest.raises(ValidationError, match="RecipeKnowledgeStore"):
        RecipeChatModel(knowledge_store="./recipe_store")
    with pytest.raises(InvalidInputError, match="injection"):
        llm.invoke(QUERY, injection="hooks")
    with pytest.raises(InvalidInputError, match="unknown call options"):
        llm.invoke(QUERY, max_new_tokens=3)
    with pytest.raises(InvalidInputError, match="cannot switch"):
        llm.invoke(QUERY, model="gpt-4o")


# ---------------------------------------------------------------------- retrieval query option
def test_a_custom_retrieval_query(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_recipe.chat_models import system_and_last_human_query

    seen: list[list[str]] = []
    original = store.retrieve_prompts
    monkeypatch.setattr(store, "retrieve_prompts", lambda queries: seen.append(list(queries)) or original(queries))
    conversation = [SystemMessage(SYSTEM), HumanMessage(OTHER_QUERY), AIMessage("Lisbon."), HumanMessage(QUERY)]

    RecipeChatModel(knowledge_store=store, max_tokens=1, retrieval_query=system_and_last_human_query).invoke(
        conversation
    )
    RecipeChatModel(knowledge_store=store, max_tokens=1, retrieval_query=lambda m: m[1].text).invoke(conversation)
    RecipeChatModel(knowledge_store=store, max_tokens=1, retrieval_query=lambda m: None).invoke(conversation)

    assert seen == [[f"{SYSTEM}\n{QUERY}"], [OTHER_QUERY]]  # None: nothing retrieved
    assert system_and_last_human_query([SystemMessage(SYSTEM)]) is None


# ---------------------------------------------------------------------- params, loading
def test_timeout_cuts_the_answer(llm: RecipeChatModel, base_model: HuggingFaceBaseModel, no_eos: None) -> None:
    import time

    def slow(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        time.sleep(0.05)

    handle = base_model.model.register_forward_pre_hook(slow, with_kwargs=True)
    try:
        message = llm.invoke(QUERY, timeout=0.12, max_tokens=50)
    finally:
        handle.remove()

    assert message.response_metadata["finish_reason"] == "timeout"
    assert 1 <= message.usage_metadata["output_tokens"] < 50


def test_sampling_with_a_temperature(llm: RecipeChatModel, no_eos: None) -> None:
    torch.manual_seed(0)
    answers = {llm.invoke(QUERY, temperature=5.0, max_tokens=6).content for _ in range(4)}
    assert len(answers) > 1  # a hot, random tiny LM does not repeat itself
    assert llm.invoke(QUERY).content == llm.invoke(QUERY, temperature=0).content


def test_standard_tracing_params(llm: RecipeChatModel) -> None:
    params = llm._get_ls_params(stop=["\n"])
    assert params["ls_provider"] == "langchain_recipe"
    assert params["ls_model_name"] == "tiny-llama"
    assert params["ls_stop"] == ["\n"]
    assert params["ls_max_tokens"] == MAX_TOKENS
    assert llm._identifying_params["injection"] == "continuous_prompt"


def test_construction_is_lazy_and_weights_are_shared(
    base_model: HuggingFaceBaseModel, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_recipe import base_models

    folder = tmp_path / "tiny-llama"
    base_model.model.save_pretrained(folder)
    base_model.tokenizer.save_pretrained(folder)
    monkeypatch.setattr(base_models, "_loaded", {})

    first = RecipeChatModel(model_name=str(folder), max_tokens=2)
    second = RecipeChatModel(model_name=str(folder), max_tokens=3)
    assert base_models._loaded == {}  # constructing loads nothing
    assert first._identifying_params["model_name"] == str(folder)

    first.invoke(QUERY)
    second.invoke(QUERY)

    assert len(base_models._loaded) == 1
    assert first.base_model is second.base_model
    assert first.invoke(QUERY).response_metadata["edit"] is None


# ---------------------------------------------------------------------- generation through transformers
def _argmax_reference(base_model: HuggingFaceBaseModel, embeds: torch.Tensor, max_new_tokens: int) -> list[int]:
    """Greedy tokens by a plain argmax loop over the whole ``inputs_embeds`` (no cache, no generate)."""
    ends = {base_model.model.generation_config.eos_token_id}
    tokens: list[int] = []
    with torch.no_grad():
        while len(tokens) < max_new_tokens and not ends & set(tokens[-1:]):
            tokens.append(int(base_model.model(inputs_embeds=embeds).logits[0, -1].argmax()))
            embeds = torch.cat([embeds, base_model.embed(torch.tensor([tokens[-1:]]))], dim=1)
    return tokens


def _edited_embeds(base_model: HuggingFaceBaseModel, query: str, prompt: torch.Tensor | None) -> torch.Tensor:
    conversation = [{"role": "user", "content": query}]
    inputs = _template(base_model, conversation)
    offset = chat_prompt_offset(base_model.tokenizer, conversation, inputs["input_ids"][0].tolist())
    prompts = None if prompt is None else [prompt]
    return prepend_continuous_prompts(
        base_model.embed(inputs["input_ids"]), inputs["attention_mask"], prompts, prompt_offsets=[offset]
    ).inputs_embeds


def test_greedy_tokens_equal_an_argmax_loop_alone_and_in_a_batch(
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
) -> None:
    queries = [QUERY, OTHER_QUERY, "Hi."]
    force_gate(store, accept=[QUERY, "Hi."], reject=[OTHER_QUERY])
    edits = store.retrieve_prompts(queries)
    expected = [
        _argmax_reference(base_model, _edited_embeds(base_model, q, e.prompt if e else None), 8)
        for q, e in zip(queries, edits, strict=True)
    ]
    llm = RecipeChatModel(knowledge_store=store, max_tokens=8)

    singles = [llm.invoke(q) for q in queries]
    batched = llm.generate_batch(queries)

    assert [e is not None for e in edits] == [True, False, True]
    assert generated[:3] == [[tokens] for tokens in expected]
    assert generated[3] == expected  # one batch of three rows, each with its own prompt (or none)
    assert [m.content for m in batched] == [m.content for m in singles]
    assert [m.usage_metadata for m in batched] == [m.usage_metadata for m in singles]


def test_a_seed_makes_sampling_repeatable(llm: RecipeChatModel, no_eos: None) -> None:
    options = {"temperature": 5.0, "max_tokens": 8}
    state = torch.get_rng_state()

    first = llm.invoke(QUERY, seed=11, **options).content
    again = llm.invoke(QUERY, seed=11, **options).content
    others = {llm.invoke(QUERY, seed=seed, **options).content for seed in range(4)}
    seeded = RecipeChatModel(knowledge_store=llm.knowledge_store, seed=11, **options)

    assert torch.equal(torch.get_rng_state(), state)  # a seeded call leaves the global RNG as it was
    assert first == again == seeded.invoke(QUERY).content
    assert len(others) > 1
    assert [m.content for m in seeded.generate_batch([QUERY, OTHER_QUERY])] == [
        m.content for m in seeded.generate_batch([QUERY, OTHER_QUERY])
    ]


def test_sampling_controls_reach_generate(
    llm: RecipeChatModel, base_model: HuggingFaceBaseModel, monkeypatch: pytest.MonkeyPatch, no_eos: None
) -> None:
    seen: list[dict[str, Any]] = []
    original = base_model.model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(base_model.model, "generate", spy)
    greedy = llm.invoke(QUERY, max_tokens=6).content

    llm.invoke(QUERY, temperature=0.7, top_p=0.9, top_k=5, repetition_penalty=1.3, seed=1)
    one_token_left = {llm.invoke(QUERY, temperature=3.0, top_k=1, max_tokens=6).content for _ in range(3)}
    nucleus_of_one = llm.invoke(QUERY, temperature=3.0, top_p=1e-9, max_tokens=6).content

    assert {k: seen[1][k] for k in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")} == {
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 5,
        "repetition_penalty": 1.3,
    }
    assert seen[0]["do_sample"] is False
    assert one_token_left == {greedy}  # top_k=1 keeps only the greedy token
    assert nucleus_of_one == greedy


@pytest.mark.parametrize("gate", ["accept", "reject"])
def test_a_repetition_penalty_covers_the_question_and_the_answer(
    gate: str,
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    generated: list[list[list[int]]],
    no_eos: None,
) -> None:
    force_gate(store, **{gate: [QUERY]})
    llm = RecipeChatModel(knowledge_store=store, max_tokens=12, repetition_penalty=1e9)

    message = llm.invoke(QUERY)

    (tokens,) = generated[0]
    question = set(_template(base_model, [{"role": "user", "content": QUERY}])["input_ids"][0].tolist())
    assert (message.response_metadata["edit"] is not None) == (gate == "accept")
    assert len(set(tokens)) == len(tokens)  # never a token twice...
    assert not question & set(tokens)  # ...nor one of the conversation's (with or without a prompt)


def test_sampling_controls_are_checked(llm: RecipeChatModel) -> None:
    from pydantic import ValidationError

    for bad in ({"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}, {"repetition_penalty": 0.0}, {"seed": -1}):
        with pytest.raises(ValidationError):
            RecipeChatModel(**bad)
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            llm.invoke(QUERY, **bad)
    assert llm._identifying_params["top_p"] == 1.0


def test_closing_a_stream_early_stops_generation(llm: RecipeChatModel, no_eos: None) -> None:
    import threading

    stream = llm.stream(QUERY, max_tokens=50)
    next(stream)
    stream.close()

    assert not [t for t in threading.enumerate() if t.name == "recipe-generate"]


# ---------------------------------------------------------------------- choosing the base LM
def test_a_loaded_lm_that_the_stores_prompts_do_not_fit_is_refused(store: RecipeKnowledgeStore, tokenizer: Any) -> None:
    from model_variants import smaller_base_model

    from langchain_recipe.errors import BaseModelMismatchError

    other = smaller_base_model(tokenizer)
    with pytest.raises(BaseModelMismatchError, match="tiny-llama-16"):
        RecipeChatModel.from_base_model(other, knowledge_store=store)
    same = RecipeChatModel.from_base_model(store.base_model, knowledge_store=store, max_tokens=3)
    assert same.base_model is store.base_model
