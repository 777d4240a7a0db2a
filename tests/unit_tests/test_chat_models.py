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
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_recipe.base_models import BaseLanguageModel
from langchain_recipe.chat_models import RecipeChatModel, retrieval_query
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.injection import prepend_continuous_prompts
from langchain_recipe.knowledge_store import RecipeKnowledgeStore

from facts import IDS, QUERY, STATEMENTS

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
    """The new token ids of every ``_generate_tokens`` call (one list of rows per call)."""
    calls: list[list[list[int]]] = []
    original = RecipeChatModel._generate_tokens

    def spy(self: RecipeChatModel, *args: Any, **kwargs: Any) -> list[list[int]]:
        rows = original(self, *args, **kwargs)
        calls.append([list(r) for r in rows])
        return rows

    monkeypatch.setattr(RecipeChatModel, "_generate_tokens", spy)
    return calls


@pytest.fixture
def first_forward(base_model: BaseLanguageModel) -> Iterator[list[dict[str, Any]]]:
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
def no_eos(base_model: BaseLanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation never stops early: no end-of-sequence token."""
    monkeypatch.setattr(base_model.model.generation_config, "eos_token_id", None)
    assert base_model.tokenizer.eos_token_id is None


def _template(base_model: BaseLanguageModel, messages: list[dict[str, str]]) -> dict[str, torch.Tensor]:
    return base_model.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)


def _bare_generate(base_model: BaseLanguageModel, messages: list[dict[str, str]], max_new_tokens: int) -> list[int]:
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
    llm: RecipeChatModel, store: RecipeKnowledgeStore, base_model: BaseLanguageModel, force_gate: Callable[..., torch.Tensor]
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
    llm: RecipeChatModel, store: RecipeKnowledgeStore, base_model: BaseLanguageModel, force_gate: Callable[..., torch.Tensor]
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
    base_model: BaseLanguageModel,
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
    base_model: BaseLanguageModel,
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
    # The edited prefill is the LM on [P ; E] (prompt positions 0..n-1, tokens after).
    prefixed = prepend_continuous_prompts(base_model.embed(inputs["input_ids"]), inputs["attention_mask"], [edit.prompt])
    with torch.no_grad():
        expected = base_model.model(
            inputs_embeds=prefixed.inputs_embeds, attention_mask=prefixed.attention_mask, position_ids=prefixed.position_ids
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
    assert retrieval_query([SystemMessage(SYSTEM), HumanMessage("first"), AIMessage("a"), HumanMessage("second")]) == "second"
    assert retrieval_query([HumanMessage("only"), AIMessage("reply")]) == "only"
    assert retrieval_query([SystemMessage(SYSTEM)]) is None
    assert retrieval_query([]) is None
    blocks = HumanMessage(content=[{"type": "text", "text": "Who runs Acme?"}])
    assert retrieval_query([blocks]) == "Who runs Acme?"


def test_the_reply_holds_no_template_or_system_prompt(
    store: RecipeKnowledgeStore,
    base_model: BaseLanguageModel,
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
        templated = _template(base_model, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": OTHER_QUERY}])
        assert message.usage_metadata["input_tokens"] > templated["input_ids"].shape[1]


# ---------------------------------------------------------------------- batches, stops, errors
def test_generate_batch_with_accepted_and_rejected_rows(
    llm: RecipeChatModel, store: RecipeKnowledgeStore, base_model: BaseLanguageModel, force_gate: Callable[..., torch.Tensor]
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
        [{"role": "user", "content": QUERY}, {"role": "assistant", "content": "Ada."}, {"role": "user", "content": OTHER_QUERY}],
    ]
    best = store.search(QUERY)[0].edit_id

    messages = llm.generate_batch(conversations)

    assert len(messages) == len(conversations)
    for message, accepted, turns in zip(messages, [True, False, True, False], templated):
        assert isinstance(message, AIMessage)
        assert message.response_metadata["model_name"] == "tiny-llama"
        _check_usage(message, _template(base_model, turns)["input_ids"].shape[1])
        if accepted:
            assert message.response_metadata["edit"]["edit_id"] == best
            assert message.response_metadata["edit"]["score"] > message.response_metadata["edit"]["sentinel_score"]
        else:
            assert message.response_metadata["edit"] is None


def test_generate_batch_of_one_is_invoke(llm: RecipeChatModel, store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> None:
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
