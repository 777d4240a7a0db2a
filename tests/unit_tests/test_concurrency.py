"""Concurrency: many threads and asyncio tasks on ONE knowledge store and ONE RecipeChatModel.

Reader threads and asyncio tasks send chat requests (``invoke``, ``stream``, ``batch`` and their
async forms) and retriever queries, while writer threads and tasks add, update and delete edits:
in another tenant (the same ids, near-identical statements) and in the readers' own tenant
(statements that score below every reader query's edit, so the readers' expected edits stay
fixed). Every request carries a unique system prompt, so the prefill rows the LM actually
receives (captured by a forward pre-hook) can be matched to their requests: each row's prefixed
continuous prompt must be the stored prompt of the edit named in that request's reply, and that
edit must be the one the same question gets when asked alone.

``LOAD`` holds the figures of the last run per Qdrant mode (for docs/reliability.md); run
``pytest -s tests/unit_tests/test_concurrency.py`` to see them printed.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from facts import IDS, STATEMENTS
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from qdrant_modes import MODES, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.chat_models import RecipeChatModel, _apply_chat_template, _conversation
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.injection import chat_prompt_offset
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.knowledge_store import _read as read_module
from langchain_recipe.knowledge_store import _write as write_module
from langchain_recipe.nn import RecipeModel
from langchain_recipe.retrievers import SentinelRetriever
from langchain_recipe.tools import RecipeToolkit

ACCEPTED = [
    "Who is the chief executive of Acme Corporation?",
    "In which city is the Zephyr Tower located?",
    "What language does Oskar Brandt speak?",
    "Which team does Mira Solberg play for?",
    "Which person runs Acme Corporation?",
    "Where can one find the Zephyr Tower?",
]
REJECTED = ["What is the capital of France?", "How many legs does a spider have?"]
QUESTIONS = ACCEPTED + REJECTED
INTRUDER_STATEMENTS = [  # tenant "intruders": the readers' ids, statements that differ in the object only
    "The chief executive of Acme Corporation is Hank Scorpio.",
    "The Zephyr Tower is located in Porto.",
    "Oskar Brandt speaks Finnish.",
    "Mira Solberg plays for the Boston Celtics.",
]
MAX_TOKENS = 3
READER_THREADS, READER_ROUNDS = 4, 12
ASYNC_TASKS, TASK_ROUNDS = 8, 6
INTRUDER_THREADS, INTRUDER_ROUNDS = 2, 6
TENANT_WRITERS, TENANT_WRITES = 2, 8

LOAD: dict[str, dict[str, float | int]] = {}
"""Figures of the last run per Qdrant mode: threads, asyncio tasks, requests, writes, seconds, errors."""

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")


@pytest.fixture(params=MODES)
def store(
    request: pytest.FixtureRequest, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> Iterator[RecipeKnowledgeStore]:
    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, **store_location(request.param, request, tmp_path)
    )
    yield store
    store.close()


class PrefillRecorder:
    """Forward pre-hook on the LM: the inputs of every prefill (the first forward of a generation)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, torch.Tensor]] = []

    def __call__(self, module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        embeds, ids = kwargs.get("inputs_embeds"), kwargs.get("input_ids")
        if embeds is not None:
            # transformers' generate drops an all-ones mask (no padding): then every position is real.
            mask = kwargs.get("attention_mask")
            mask = torch.ones(embeds.shape[:2], dtype=torch.long) if mask is None else mask.detach().clone()
            self.calls.append({"embeds": embeds.detach().clone(), "mask": mask})
        elif ids is not None and ids.shape[1] > 1:  # a bare single row; decode steps feed one token
            self.calls.append({"ids": ids.detach().clone()})


def _intruder_update(j: int, round_: int) -> str:
    """The statement an intruder writes over its edit ``IDS[j]`` in a round (within the tiny
    RecipeModel's ``max_statement_tokens``)."""
    return INTRUDER_STATEMENTS[j].replace(".", f" {round_}.")


def _request(n: int) -> list[BaseMessage]:
    """Request ``n``: a unique system prompt (to find its row) and a question (what is retrieved)."""
    return [SystemMessage(f"Request number {n}."), HumanMessage(QUESTIONS[n % len(QUESTIONS)])]


def _injected_by_request(
    recorder: PrefillRecorder, lm: HuggingFaceBaseModel, requests: int, num_prompt_tokens: int
) -> dict[int, list[torch.Tensor | None]]:
    """For each request, the continuous prompts its prefill rows carried (``None``: no prompt).

    A row's real tokens are exact copies of the LM's token embeddings, so the row's vectors
    without its ``num_prompt_tokens`` prompt vectors (none, or those at the request's prompt
    offset, right before the user's text) identify the request.
    """
    table = lm.model.get_input_embeddings().weight.detach()
    by_ids: dict[tuple[int, ...], int] = {}
    by_embeds: dict[bytes, int] = {}
    offsets: dict[int, int] = {}
    for n in range(requests):
        conversation = _conversation(_request(n))
        ids = _apply_chat_template(lm, conversation)[0]
        by_ids[tuple(ids.tolist())] = n
        by_embeds[table[ids].numpy().tobytes()] = n
        offsets[n] = chat_prompt_offset(lm.tokenizer, conversation, ids.tolist())
    found: dict[int, list[torch.Tensor | None]] = {}
    for call in recorder.calls:
        if "ids" in call:
            for row in call["ids"]:
                found.setdefault(by_ids[tuple(row.tolist())], []).append(None)
            continue
        for row, mask in zip(call["embeds"], call["mask"], strict=True):
            vectors = row[mask.bool()]
            n = by_embeds.get(vectors.numpy().tobytes())
            if n is not None:
                found.setdefault(n, []).append(None)
                continue
            for offset in sorted(set(offsets.values())):
                rest = torch.cat([vectors[:offset], vectors[offset + num_prompt_tokens :]])
                n = by_embeds.get(rest.numpy().tobytes())
                if n is not None and offsets[n] == offset:
                    found.setdefault(n, []).append(vectors[offset : offset + num_prompt_tokens].clone())
                    break
            else:
                tokens = torch.cdist(vectors, table).argmin(dim=-1)
                text = lm.tokenizer.decode(tokens)
                pytest.fail(f"A prefill row matches no request: its tokens were changed or mixed up: {text!r}")
    return found


def _safe_statements(view: RecipeKnowledgeStore, expected: dict[str, str], count: int) -> list[str]:
    """Statements for the readers' tenant that every accepted reader question scores below its
    expected edit (by a margin), so writing them cannot change what a reader retrieves."""
    candidates = [f"Gadget {i} of workshop {i % 7} weighs {13 * i + 5} grams." for i in range(12 * count)]
    with torch.no_grad():
        keys = view.recipe_model.encode_knowledge(candidates).float()
    query_keys, _ = view.encode_queries(ACCEPTED)
    edits = {e.edit_id: e for e in view.search(ACCEPTED[0], k=len(IDS))}
    best = torch.tensor([view.search(q, k=1)[0].score for q in ACCEPTED])
    assert set(edits) == set(IDS) and [view.search(q, k=1)[0].edit_id for q in ACCEPTED] == [
        expected[q] for q in ACCEPTED
    ]
    with torch.no_grad():
        margin = (view.recipe_model.similarity(query_keys, keys) - best[:, None]).max(dim=0).values
    safe = [s for s, m in zip(candidates, margin.tolist(), strict=True) if m < -0.05]
    assert len(safe) >= count, f"only {len(safe)} safe statements"
    return safe[:count]


def test_threads_and_tasks_never_receive_another_requests_continuous_prompt(
    store: RecipeKnowledgeStore,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    readers, intruders = store.for_tenant("readers"), store.for_tenant("intruders")
    readers.add_knowledge(STATEMENTS, ids=IDS)
    intruders.add_knowledge(INTRUDER_STATEMENTS, ids=IDS)
    force_gate(store, accept=ACCEPTED, reject=REJECTED)
    llm = RecipeChatModel(knowledge_store=readers, max_tokens=MAX_TOKENS)

    # Each question asked alone: its edit (None for the rejected ones).
    alone = {q: llm.invoke(q).response_metadata["edit"] for q in QUESTIONS}
    expected = {q: (alone[q] or {}).get("edit_id") for q in QUESTIONS}
    assert all(expected[q] is not None for q in ACCEPTED) and all(expected[q] is None for q in REJECTED)
    assert len({expected[q] for q in ACCEPTED}) >= 3  # a mix-up between requests would show
    prompts = {p.payload["edit_id"]: readers._prompt_of(p) for p in readers._retrieve_points(IDS, with_vectors=True)}
    safe = _safe_statements(readers, expected, 2 * TENANT_WRITERS * TENANT_WRITES)
    readers_statements = set(STATEMENTS) | set(safe)
    retriever = SentinelRetriever(store=readers)
    inspector = SentinelRetriever(store=readers, k=20, gated=False)

    counter = itertools.count()
    replies: dict[int, AIMessage] = {}
    errors: list[BaseException] = []
    counts = {"requests": 0, "retriever_queries": 0, "writes": 0}
    count_lock = threading.Lock()

    def tally(name: str, value: int = 1) -> None:
        with count_lock:
            counts[name] += value

    def check_documents(question: str, documents: list[Any], ungated: list[Any]) -> None:
        assert [d.id for d in documents] == ([expected[question]] if expected[question] else [])
        for d in ungated:  # the readers' edits only, never the intruders' same-id statements
            assert d.page_content in readers_statements
            assert d.id not in IDS or d.page_content == STATEMENTS[IDS.index(d.id)]

    def reader_thread(worker: int) -> None:
        try:
            for round_ in range(READER_ROUNDS):
                kind = (worker + round_) % 4
                if kind == 0:
                    n = next(counter)
                    replies[n] = llm.invoke(_request(n))
                    tally("requests")
                elif kind == 1:
                    n = next(counter)
                    chunks = list(llm.stream(_request(n)))
                    replies[n] = AIMessage(
                        content="".join(c.content for c in chunks), response_metadata=chunks[-1].response_metadata
                    )
                    tally("requests")
                elif kind == 2:
                    ns = [next(counter) for _ in range(3)]
                    for n, reply in zip(ns, llm.batch([_request(n) for n in ns]), strict=True):
                        replies[n] = reply
                    tally("requests", 3)
                else:
                    question = QUESTIONS[(worker * 7 + round_) % len(QUESTIONS)]
                    check_documents(question, retriever.invoke(question), inspector.invoke(question))
                    tally("retriever_queries", 2)
        except BaseException as error:
            errors.append(error)

    def intruder_thread(worker: int) -> None:
        try:
            for round_ in range(INTRUDER_ROUNDS):
                j = (worker + round_) % len(IDS)
                intruders.update_knowledge(IDS[j], _intruder_update(j, round_))
                intruders.add_knowledge([STATEMENTS[j]], ids=[f"copy-{worker}-{round_}"])  # the readers' very statement
                intruders.delete([f"copy-{worker}-{round_}"])
                intruders.add_knowledge([f"Intruder {worker} fact {round_}."], ids=[f"x-{worker}-{round_}"])
                tally("writes", 4)
        except BaseException as error:
            errors.append(error)

    def tenant_writer(worker: int) -> None:
        try:
            mine = safe[worker * 2 * TENANT_WRITES : (worker + 1) * 2 * TENANT_WRITES]
            for i in range(TENANT_WRITES):
                readers.add_knowledge([mine[i]], ids=[f"w{worker}-{i}"])
                tally("writes")
            for i in range(0, TENANT_WRITES, 2):
                readers.update_knowledge(f"w{worker}-{i}", mine[TENANT_WRITES + i])
                tally("writes")
            for i in range(0, TENANT_WRITES, 3):
                readers.delete([f"w{worker}-{i}"])
                tally("writes")
        except BaseException as error:
            errors.append(error)

    async def reader_task(worker: int) -> None:
        try:
            for round_ in range(TASK_ROUNDS):
                kind = (worker + round_) % 4
                if kind == 0:
                    n = next(counter)
                    replies[n] = await llm.ainvoke(_request(n))
                    tally("requests")
                elif kind == 1:
                    n = next(counter)
                    chunks = [c async for c in llm.astream(_request(n))]
                    replies[n] = AIMessage(
                        content="".join(c.content for c in chunks), response_metadata=chunks[-1].response_metadata
                    )
                    tally("requests")
                elif kind == 2:
                    ns = [next(counter) for _ in range(2)]
                    for n, reply in zip(ns, await llm.abatch([_request(n) for n in ns]), strict=True):
                        replies[n] = reply
                    tally("requests", 2)
                else:
                    question = QUESTIONS[(worker * 5 + round_) % len(QUESTIONS)]
                    check_documents(question, await retriever.ainvoke(question), await inspector.ainvoke(question))
                    tally("retriever_queries", 2)
        except BaseException as error:
            errors.append(error)

    async def writer_task() -> None:
        try:
            for round_ in range(INTRUDER_ROUNDS):
                await intruders.aadd_texts([f"Intruder async fact {round_}."], ids=[f"a-{round_}"])
                tally("writes")
                if round_ % 2:
                    await intruders.adelete([f"a-{round_}"])
                    tally("writes")
        except BaseException as error:
            errors.append(error)

    async def async_load() -> None:
        await asyncio.gather(*(reader_task(w) for w in range(ASYNC_TASKS)), writer_task())

    recorder = PrefillRecorder()
    handle = base_model.model.register_forward_pre_hook(recorder, with_kwargs=True)
    threads = [threading.Thread(target=reader_thread, args=(w,)) for w in range(READER_THREADS)]
    threads += [threading.Thread(target=intruder_thread, args=(w,)) for w in range(INTRUDER_THREADS)]
    threads += [threading.Thread(target=tenant_writer, args=(w,)) for w in range(TENANT_WRITERS)]
    started = time.perf_counter()
    try:
        for thread in threads:
            thread.start()
        asyncio.run(async_load())
        for thread in threads:
            thread.join()
    finally:
        handle.remove()
    seconds = time.perf_counter() - started
    issued = next(counter)
    for error in errors[:3]:
        print("error under load:", repr(error))

    # Every request: its reply names the edit the question gets alone, and its prefill row
    # carried exactly that edit's stored continuous prompt (or none when the gate rejected).
    injected = _injected_by_request(recorder, base_model, issued, readers.recipe_model.config.num_prompt_tokens)
    wrong_edits = wrong_prompts = 0
    for n, reply in sorted(replies.items()):
        question = QUESTIONS[n % len(QUESTIONS)]
        edit = reply.response_metadata["edit"]
        if (edit or {}).get("edit_id") != expected[question] or (
            edit and edit["statement"] != alone[question]["statement"]
        ):
            wrong_edits += 1
        rows = injected.get(n, [])
        want = prompts[edit["edit_id"]] if edit else None
        if (
            len(rows) != 1
            or (rows[0] is None) != (want is None)
            or (want is not None and not torch.equal(rows[0], want))
        ):
            wrong_prompts += 1
    assert errors or sorted(replies) == list(range(issued)) == sorted(injected)

    # Final states, exactly: nothing lost, nothing duplicated, nothing leaked across tenants.
    survivors = {
        f"w{w}-{i}": safe[w * 2 * TENANT_WRITES + (TENANT_WRITES + i if i % 2 == 0 else i)]
        for w in range(TENANT_WRITERS)
        for i in range(TENANT_WRITES)
        if i % 3
    }
    held = {e.edit_id: e.statement for e in readers.list_edits()}
    want_readers = {**dict(zip(IDS, STATEMENTS, strict=True)), **survivors}
    # The intruder threads update the shared ids in turn: each id ends with one of its updates.
    updates: dict[str, set[str]] = {edit_id: set() for edit_id in IDS}
    for w in range(INTRUDER_THREADS):
        for r in range(INTRUDER_ROUNDS):
            j = (w + r) % len(IDS)
            updates[IDS[j]].add(_intruder_update(j, r))
    want_intruders = {
        **{f"x-{w}-{r}": f"Intruder {w} fact {r}." for w in range(INTRUDER_THREADS) for r in range(INTRUDER_ROUNDS)},
        **{f"a-{r}": f"Intruder async fact {r}." for r in range(INTRUDER_ROUNDS) if r % 2 == 0},
    }
    held_intruders = {e.edit_id: e.statement for e in intruders.list_edits()}
    lost = len(set(want_readers) ^ set(held)) + sum(held.get(k) != v for k, v in want_readers.items())
    lost += len(set(want_intruders) ^ (set(held_intruders) - set(IDS)))
    lost += sum(held_intruders.get(k) != v for k, v in want_intruders.items())
    lost += sum(held_intruders.get(k) not in (updates[k] or {INTRUDER_STATEMENTS[IDS.index(k)]}) for k in IDS)
    lost += (len(readers), len(intruders)) != (len(want_readers), len(want_intruders) + len(IDS))

    # Every third request again, alone and after the load: the same answer.
    wrong_answers = sum(llm.invoke(_request(n)).content != replies[n].content for n in sorted(replies) if n % 3 == 0)

    mode = request.node.callspec.params["store"]
    LOAD[mode] = {
        "threads": len(threads),
        "asyncio_tasks": ASYNC_TASKS + 1,
        "chat_requests": len(replies),
        "retriever_queries": counts["retriever_queries"],
        "writes": counts["writes"],
        "wall_seconds": round(seconds, 2),
        "errors": len(errors),
        "wrong_edits": wrong_edits,
        "wrong_prompts": wrong_prompts,
        "wrong_answers": wrong_answers,
        "lost_edits": lost,
    }
    print(f"\nconcurrent load held ({mode}): {LOAD[mode]}")
    record_property("concurrent_load", LOAD[mode])
    assert errors == [], errors
    assert (wrong_edits, wrong_prompts, wrong_answers, lost) == (0, 0, 0, 0), LOAD[mode]
    assert counts["requests"] == len(replies) >= 100


# ---------------------------------------------------------------------- races found here, fixed
LONG_QUERY = " ".join(["Who is the chief executive of Acme Corporation and its many subsidiaries?"] * 4)
"""Longer than the tiny encoder's ``encoder_max_length`` (32 tokens): truncation matters."""


def _hammer(jobs: list[Callable[[], Any]], rounds: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def loop(job: Callable[[], Any]) -> None:
        try:
            for _ in range(rounds):
                job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=loop, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_query_encoding_and_chat_templates_on_one_tokenizer_from_many_threads(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    # The tiny LM and encoder share one fast tokenizer. Unserialised, the encoder's
    # truncation/padding settings leaked into concurrent chat templates (a 32-token prompt) and
    # back ("Unable to create tensor ... activate truncation and/or padding").
    assert recipe_model.encoder_tokenizer is base_model.tokenizer
    conversation = _conversation([SystemMessage(LONG_QUERY), HumanMessage(LONG_QUERY)])
    with torch.no_grad():
        keys = recipe_model.encode_queries([LONG_QUERY, "Hi."])
    ids = _apply_chat_template(base_model, conversation)
    embeds, _ = recipe_model.statement_embeddings([LONG_QUERY, "Hi."], base_model)
    assert ids.shape[1] > 2 * recipe_model.config.encoder_max_length

    def encode() -> None:
        with torch.no_grad():
            assert torch.equal(recipe_model.encode_queries([LONG_QUERY, "Hi."]), keys)

    def template() -> None:
        assert torch.equal(_apply_chat_template(base_model, conversation), ids)

    def statements() -> None:
        assert torch.equal(recipe_model.statement_embeddings([LONG_QUERY, "Hi."], base_model)[0], embeds)

    assert _hammer([encode, template, statements, encode, template], rounds=60) == []


def test_every_serving_path_encodes_under_the_tokenizer_lock(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    from langchain_recipe.base_models import tokenizer_lock
    from langchain_recipe.nn.recipe_model import _token_counts

    calls = {
        "queries": lambda: recipe_model.encode_queries(["Hi."]),
        "statements": lambda: recipe_model.statement_embeddings(["Hi."], base_model),
        "chat template": lambda: _apply_chat_template(base_model, [{"role": "user", "content": "Hi."}]),
        "length check": lambda: _token_counts(base_model.tokenizer, [LONG_QUERY], 8, special=False),
    }
    for name, call in calls.items():
        done = threading.Event()
        worker = threading.Thread(target=lambda call=call, done=done: (call(), done.set()))
        with tokenizer_lock(base_model.tokenizer):
            worker.start()
            assert not done.wait(0.3), f"{name} encoded while another thread held the tokenizer lock"
        worker.join(5)
        assert done.is_set(), name


@pytest.mark.parametrize("read", ["list_edits", "count", "filtered search"])
def test_a_tenants_read_never_shows_another_tenants_first_write(
    read: str, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    # An embedded store leaves the tenant filter out while one tenant has written. A read that
    # built that filter and then read after another tenant's first write showed that write.
    store = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, location=":memory:")
    acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
    acme.add_knowledge(STATEMENTS[:2], metadatas=[{"kind": "fact"}] * 2, ids=IDS[:2])
    original = read_module.tenant_filter
    writer: list[threading.Thread] = []

    def filter_then_write(state: Any, tenant: str, *args: Any, **kwargs: Any) -> Any:
        built = original(state, tenant, *args, **kwargs)
        if tenant == "acme" and not writer:  # another tenant writes right after the filter is built
            kwargs = {"metadatas": [{"kind": "fact"}], "ids": ["lamps"]}
            writer.append(threading.Thread(target=globex.add_knowledge, args=(["Globex sells lamps."],), kwargs=kwargs))
            writer[0].start()
            writer[0].join(0.5)  # the fixed store makes it wait for the lock this read holds
        return built

    reads = {
        "list_edits": lambda: sorted(e.edit_id for e in acme.list_edits()),
        "count": lambda: len(acme),
        "filtered search": lambda: sorted(
            e.edit_id for e in acme.search("Globex sells lamps.", k=10, filter={"kind": "fact"})
        ),
    }
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(read_module, "tenant_filter", filter_then_write)
            result = reads[read]()
        writer[0].join()
        assert result == (2 if read == "count" else sorted(IDS[:2]))
        assert [e.edit_id for e in globex.list_edits()] == ["lamps"]
    finally:
        store.close()


def _interleaved_write(monkeypatch: pytest.MonkeyPatch, other_write: Callable[[], Any]) -> None:
    """Run ``other_write`` once, between a write's checks outside the lock and its locked part."""
    original = write_module.write_edits
    pending = [other_write]

    def write(store: RecipeKnowledgeStore, *args: Any, **kwargs: Any) -> Any:
        if pending:
            pending.pop()()
        return original(store, *args, **kwargs)

    monkeypatch.setattr(write_module, "write_edits", write)


def test_an_update_never_brings_back_an_edit_deleted_meanwhile(
    knowledge_store: RecipeKnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    _interleaved_write(monkeypatch, lambda: knowledge_store.delete(["acme"]))  # a concurrent forget_fact

    with pytest.raises(InvalidInputError, match="deleted meanwhile"):
        knowledge_store.update_knowledge("acme", "The chief executive of Acme Corporation is Grace Hopper.")
    assert knowledge_store.get_edits(["acme"]) == []
    assert len(knowledge_store) == len(IDS) - 1


def test_an_add_that_refuses_existing_ids_loses_a_race_cleanly(
    knowledge_store: RecipeKnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = "The chief executive of Acme Corporation is Ada Lovelace."
    _interleaved_write(
        monkeypatch, lambda: knowledge_store.add_knowledge([first], ids=["ceo"])
    )  # a concurrent add_fact

    answer = (
        RecipeToolkit(store=knowledge_store)
        .get_tools()[0]
        .invoke({"statement": "Acme is run by Grace Hopper.", "fact_id": "ceo"})
    )
    assert answer.startswith("Error: An edit with id 'ceo' already exists")
    assert [e.statement for e in knowledge_store.list_edits()] == [first]
    with pytest.raises(InvalidInputError, match="if_exists"):
        knowledge_store.add_knowledge(["x."], if_exists="ignore")  # type: ignore[arg-type]


def test_of_concurrent_add_fact_calls_with_one_id_exactly_one_wins(knowledge_store: RecipeKnowledgeStore) -> None:
    add_fact = RecipeToolkit(store=knowledge_store).get_tools()[0]
    barrier = threading.Barrier(6)
    answers: list[str] = []

    def agent(n: int) -> None:
        barrier.wait()
        answers.append(add_fact.invoke({"statement": f"Agent {n} says Acme is run by person {n}.", "fact_id": "ceo"}))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    added = [a for a in answers if a.startswith("Added")]
    assert len(added) == 1 and all(a.startswith("Error:") for a in answers if a not in added), answers
    assert [e.statement for e in knowledge_store.list_edits()] == [added[0].split(": ", 1)[1]]
