"""Property-based tests (hypothesis) of the injection layout and of the id mappings (issue 8).

* :func:`prepend_continuous_prompts`: for any batch of input lengths (rows with no real token
  included), input and output padding sides and per-row prompt lengths (rows with no prompt, as
  ``None`` or as an empty tensor, included), the shapes, the attention mask, the position ids,
  where each real token embedding, prompt vector and label lands (bit-exactly), and that a row's
  layout does not depend on the other rows of the batch. Tiny random tensors, no model:
  ``test_injection.py`` already checks the logits against a tiny Llama.
* :func:`edit_point_id`: deterministic, a canonical UUID string, injective over
  ``(tenant, edit_id)`` pairs, JSON-looking ids and ids equal to tenant names included.
* The store: ids given to ``add_knowledge`` come back unchanged from ``get_by_ids``,
  ``get_edits``, ``list`` and ``search`` in any tenant, and no tenant's write touches another's.
* :class:`KeyIndex`: its row mapping under random upserts and removes equals a plain dict model,
  and its search equals a brute-force scan of that model (a hypothesis stateful test).

The ``unit`` profile (conftest.py) runs 25 derandomised examples per property; the tensor-only
properties ask for more, the store-backed ones keep 25 so the file stays fast.
"""

from __future__ import annotations

import itertools
import json
import uuid
import warnings
from typing import Any, ClassVar

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import EditConflictWarning, InvalidInputError
from langchain_recipe.injection import (
    IGNORE_INDEX,
    position_ids_from_mask,
    prepend_continuous_prompts,
    prepend_statement_text,
)
from langchain_recipe.knowledge_store import DEFAULT_TENANT, RecipeKnowledgeStore, edit_point_id
from langchain_recipe.knowledge_store._key_index import KeyIndex
from langchain_recipe.nn import RecipeModel

HIDDEN = 8
SIDES = ("left", "right")
MANY = settings(max_examples=150)
"""Tensor-only properties are cheap (a few ms per example): run more than the profile's 25."""


# ---------------------------------------------------------------------- injection: strategies
@st.composite
def injection_batches(draw: st.DrawFn) -> dict[str, Any]:
    """A batch: per row a real-token count (0 allowed) and a prompt (``None``, empty or
    ``n >= 1`` vectors), how the input is padded, and distinct random values everywhere."""
    batch_size = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(0, 6), min_size=batch_size, max_size=batch_size))
    prompt_kinds = draw(
        st.lists(st.sampled_from(["none", "empty", "vectors"]), min_size=batch_size, max_size=batch_size)
    )
    prompt_lengths = [draw(st.integers(1, 4)) if kind == "vectors" else 0 for kind in prompt_kinds]
    # "scattered": real tokens anywhere in the row; the function keeps the mask's order.
    input_side = draw(st.sampled_from(["left", "right", "scattered"]))
    extra = draw(st.integers(0, 2))  # padding beyond the longest row
    seq_len = max(lengths) + extra
    mask = torch.zeros(batch_size, seq_len, dtype=torch.long)
    for i, n in enumerate(lengths):
        if input_side == "left":
            mask[i, seq_len - n :] = 1
        elif input_side == "right":
            mask[i, :n] = 1
        else:
            mask[i, draw(st.permutations(range(seq_len)))[:n]] = 1
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    # Values drawn from a continuous distribution, so two positions never hold the same vector.
    token_embeds = torch.randn(batch_size, seq_len, HIDDEN, generator=generator)
    labels = torch.randint(0, 10_000, (batch_size, seq_len), generator=generator)
    prompts: list[torch.Tensor | None] = []
    for kind, n in zip(prompt_kinds, prompt_lengths, strict=True):
        prompts.append(None if kind == "none" else torch.randn(n, HIDDEN, generator=generator) + 100.0)
    return {
        "token_embeds": token_embeds,
        "mask": mask,
        "labels": labels,
        "prompts": prompts,
        "lengths": lengths,
        "prompt_lengths": prompt_lengths,
        "output_side": draw(st.sampled_from(SIDES)),
        "with_labels": draw(st.booleans()),
    }


def _span(size: int, length: int, side: str) -> slice:
    return slice(length - size, length) if side == "left" else slice(0, size)


def _check_layout(batch: dict[str, Any], out: Any) -> None:
    """Every property of one prefixed batch against what its inputs say it must be."""
    token_embeds, mask, side = batch["token_embeds"], batch["mask"], batch["output_side"]
    batch_size = token_embeds.shape[0]
    totals = [n + p for n, p in zip(batch["lengths"], batch["prompt_lengths"], strict=True)]
    length = max(totals)
    assert out.inputs_embeds.shape == (batch_size, length, HIDDEN)
    assert out.attention_mask.shape == out.position_ids.shape == (batch_size, length)
    assert out.inputs_embeds.dtype == token_embeds.dtype
    assert out.attention_mask.dtype == mask.dtype
    assert out.position_ids.dtype == torch.long
    assert out.num_prompt_tokens.tolist() == batch["prompt_lengths"]
    if batch["with_labels"]:
        assert out.labels is not None and out.labels.shape == (batch_size, length)
    else:
        assert out.labels is None
    # Position ids are the documented formula everywhere, padding included.
    assert torch.equal(out.position_ids, (out.attention_mask.long().cumsum(-1) - 1).clamp_min(0))
    for i in range(batch_size):
        total, n_prompt = totals[i], batch["prompt_lengths"][i]
        span = _span(total, length, side)
        # The mask: 1 on the row's prompt and real tokens, 0 on padding, all of it on `side`.
        expected_mask = torch.zeros(length, dtype=mask.dtype)
        expected_mask[span] = 1
        assert torch.equal(out.attention_mask[i], expected_mask)
        # Positions 0..total-1 over the real positions; left padding sits at position 0.
        assert torch.equal(out.position_ids[i, span], torch.arange(total))
        if side == "left":
            assert out.position_ids[i, : length - total].eq(0).all()
        # [prompt ; real tokens in mask order], bit-exactly; padding is zeros.
        sequence = out.inputs_embeds[i, span]
        prompt = batch["prompts"][i]
        if n_prompt:
            assert torch.equal(sequence[:n_prompt], prompt)
        assert torch.equal(sequence[n_prompt:], token_embeds[i][mask[i].bool()])
        assert out.inputs_embeds[i][out.attention_mask[i] == 0].eq(0).all()
        if batch["with_labels"]:
            row_labels = out.labels[i]
            assert row_labels[span][:n_prompt].eq(IGNORE_INDEX).all()
            assert torch.equal(row_labels[span][n_prompt:], batch["labels"][i][mask[i].bool()])
            assert row_labels[out.attention_mask[i] == 0].eq(IGNORE_INDEX).all()


def _prefix(batch: dict[str, Any], rows: list[int] | None = None) -> Any:
    """Prefix the batch, or only ``rows`` of it (in that order)."""
    rows = list(range(batch["token_embeds"].shape[0])) if rows is None else rows
    return prepend_continuous_prompts(
        batch["token_embeds"][rows],
        batch["mask"][rows],
        [batch["prompts"][i] for i in rows],
        labels=batch["labels"][rows] if batch["with_labels"] else None,
        padding_side=batch["output_side"],
    )


# ---------------------------------------------------------------------- injection: properties
@MANY
@given(batch=injection_batches())
def test_layout_shapes_mask_positions_and_values(batch: dict[str, Any]) -> None:
    """Shapes `(batch_size, seq_len, hidden_size)`, mask, positions, embeddings, prompts and
    labels land where they must, for any lengths, prompts and paddings."""
    _check_layout(batch, _prefix(batch))


@MANY
@given(batch=injection_batches(), data=st.data())
def test_a_rows_layout_does_not_depend_on_the_other_rows(batch: dict[str, Any], data: st.DataObject) -> None:
    """Row i's unpadded layout (embeddings, mask, positions, labels over its real span) is the
    same alone, in the whole batch, and in any sub-batch or order of rows that contains it."""
    batch_size = batch["token_embeds"].shape[0]
    order = data.draw(st.permutations(range(batch_size)))
    subset = order[: data.draw(st.integers(1, batch_size))]
    whole = _prefix(batch)
    part = _prefix(batch, list(subset))
    totals = [n + p for n, p in zip(batch["lengths"], batch["prompt_lengths"], strict=True)]
    for position, i in enumerate(subset):
        alone = _prefix(batch, [i])
        assert alone.inputs_embeds.shape == (1, totals[i], HIDDEN)  # a lone row has no padding
        for out, row in ((whole, i), (part, position)):
            real = out.attention_mask[row].bool()
            assert torch.equal(out.inputs_embeds[row][real], alone.inputs_embeds[0])
            assert torch.equal(out.position_ids[row][real], alone.position_ids[0])
            if batch["with_labels"]:
                assert torch.equal(out.labels[row][real], alone.labels[0])


@MANY
@given(batch=injection_batches())
def test_a_batched_prompt_tensor_equals_the_same_prompts_as_a_list(batch: dict[str, Any]) -> None:
    """One `(batch_size, num_prompt_tokens, hidden_size)` tensor gives exactly what the list of
    its rows gives (every row the same number of prompt vectors)."""
    batch_size = batch["token_embeds"].shape[0]
    n = max(batch["prompt_lengths"])
    stacked = torch.randn(batch_size, n, HIDDEN)
    from_tensor = prepend_continuous_prompts(
        batch["token_embeds"], batch["mask"], stacked, padding_side=batch["output_side"]
    )
    from_list = prepend_continuous_prompts(
        batch["token_embeds"], batch["mask"], list(stacked), padding_side=batch["output_side"]
    )
    for name in ("inputs_embeds", "attention_mask", "position_ids", "num_prompt_tokens"):
        assert torch.equal(getattr(from_tensor, name), getattr(from_list, name)), name
    _check_layout(
        {**batch, "prompts": list(stacked), "prompt_lengths": [n] * batch_size, "with_labels": False}, from_tensor
    )


@MANY
@given(batch=injection_batches())
def test_no_prompt_on_left_padded_input_changes_nothing_but_padding(batch: dict[str, Any]) -> None:
    """Without prompts, an input already left-padded to its longest row comes back with the same
    mask and the same real-token embeddings (the bare LM's inputs)."""
    mask = batch["mask"]
    lengths = batch["lengths"]
    assume(max(lengths) > 0)
    left = torch.zeros_like(mask)
    for i, n in enumerate(lengths):
        left[i, mask.shape[1] - n :] = 1
    width = max(lengths)
    left = left[:, -width:]
    embeds = batch["token_embeds"][:, -width:]
    out = prepend_continuous_prompts(embeds, left, [None] * len(lengths))
    assert torch.equal(out.attention_mask, left)
    assert torch.equal(out.inputs_embeds[left.bool()], embeds[left.bool()])
    assert torch.equal(out.position_ids, position_ids_from_mask(left))


@MANY
@given(
    mask=st.integers(1, 4).flatmap(
        lambda rows: st.integers(0, 8).flatmap(
            lambda cols: st.lists(
                st.lists(st.integers(0, 1), min_size=cols, max_size=cols), min_size=rows, max_size=rows
            )
        )
    )
)
def test_position_ids_count_the_real_positions_before_each(mask: list[list[int]]) -> None:
    """Each real position's id is the number of real positions before it; padding takes the id
    of the last real position before it (0 when none)."""
    tensor = torch.tensor(mask, dtype=torch.long).reshape(len(mask), -1)
    for as_bool in (False, True):
        positions = position_ids_from_mask(tensor.bool() if as_bool else tensor)
        assert positions.dtype == torch.long and positions.shape == tensor.shape
        for i, row in enumerate(mask):
            seen = 0
            for j, real in enumerate(row):
                assert positions[i, j] == (seen if real else max(seen - 1, 0))
                seen += real


@MANY
@given(batch=injection_batches(), row=st.integers(0, 4), width=st.integers(1, 2 * HIDDEN).filter(lambda w: w != HIDDEN))
def test_a_prompt_of_the_wrong_width_names_its_row(batch: dict[str, Any], row: int, width: int) -> None:
    batch_size = batch["token_embeds"].shape[0]
    row %= batch_size
    prompts = list(batch["prompts"])
    prompts[row] = torch.randn(2, width)
    with pytest.raises(ValueError, match=f"Prompt of row {row} "):
        prepend_continuous_prompts(batch["token_embeds"], batch["mask"], prompts)


@given(statement=st.text(), question=st.text())
def test_statement_text_is_data_never_a_template(statement: str, question: str) -> None:
    """The text-RAG prefix is the stripped statement, a newline and the question, verbatim:
    braces, percent signs and JSON in either are never interpreted."""
    assume(statement.strip())
    text = prepend_statement_text(statement, question)
    assert text == statement.strip() + "\n" + question
    assert text.endswith(question)


# ---------------------------------------------------------------------- id mapping: strategies
TRICKY_STRINGS = [
    DEFAULT_TENANT,
    "acme",
    "Acme",
    " acme",
    "acme ",
    "x",
    '["acme", "x"]',
    '["acme","x"]',
    '["default", "x"]',
    '["acme", "x"]\n',
    '["acme", "x"',
    "null",
    "[]",
    '{"tenant": "acme"}',
    "ünïcødé",
    "名前",
    "😀",
    "a\u0301",  # combining accent: not the same string as "á"
    "\u00e1",
    " ",
    "\t",
    "\x00",
    "\\",
    '"',
]
tenant_names = st.one_of(
    st.sampled_from([t for t in TRICKY_STRINGS if t.strip()]),
    st.text(min_size=1, max_size=12).filter(str.strip),
)
edit_ids = st.one_of(
    st.sampled_from(TRICKY_STRINGS),
    st.text(min_size=1, max_size=24),
    # Ids that look exactly like the name another tenant's edit is hashed under.
    st.builds(lambda tenant, edit_id: json.dumps([tenant, edit_id]), tenant_names, st.text(max_size=8)),
)


# ---------------------------------------------------------------------- id mapping: edit_point_id
@MANY
@given(edit_id=edit_ids, tenant=tenant_names)
def test_edit_point_id_is_a_deterministic_canonical_uuid(edit_id: str, tenant: str) -> None:
    point_id = edit_point_id(edit_id, tenant)
    assert isinstance(point_id, str)
    assert str(uuid.UUID(point_id)) == point_id  # canonical form: what Qdrant hands back
    assert uuid.UUID(point_id).version == 5
    assert edit_point_id(edit_id, tenant) == point_id
    assert edit_point_id(str(edit_id), str(tenant)) == point_id


@MANY
@given(pairs=st.lists(st.tuples(tenant_names, edit_ids), min_size=2, max_size=12, unique=True))
def test_edit_point_id_is_injective_over_tenant_and_id(pairs: list[tuple[str, str]]) -> None:
    # Each pair also meets the ids that spell its hashed name, in the default tenant and in its own.
    spelled = [(t, json.dumps([tenant, edit_id])) for tenant, edit_id in pairs for t in (DEFAULT_TENANT, tenant)]
    pairs = list(dict.fromkeys([*pairs, *spelled]))
    point_ids = [edit_point_id(edit_id, tenant) for tenant, edit_id in pairs]
    assert len(set(point_ids)) == len(pairs)


@MANY
@given(tenant=tenant_names, edit_id=st.text(max_size=12))
def test_no_default_tenant_id_takes_another_tenants_point(tenant: str, edit_id: str) -> None:
    """The id that spells another tenant's hashed name, ``'["acme", "x"]'``, is a different
    point in the default tenant than ``"x"`` is in tenant ``"acme"``."""
    assume(tenant != DEFAULT_TENANT)
    assert edit_point_id(json.dumps([tenant, edit_id])) != edit_point_id(edit_id, tenant)


def test_default_tenant_point_ids_are_stable() -> None:
    """Stores written before stay readable: a default-tenant id maps to UUIDv5 of the id itself,
    another tenant's to UUIDv5 of ``[tenant, id]`` as JSON (the namespace is fixed)."""
    namespace = uuid.UUID("6f1c2b1e-7c1a-4c1e-9a57-2f0c1d5e8b31")
    assert edit_point_id("fact-1") == str(uuid.uuid5(namespace, "fact-1"))
    assert edit_point_id("fact-1", DEFAULT_TENANT) == edit_point_id("fact-1")
    assert edit_point_id("fact-1", "acme") == str(uuid.uuid5(namespace, '["acme", "fact-1"]'))
    # Regression: the one default-tenant id that spelled tenant acme's "x" now maps elsewhere.
    assert edit_point_id('["acme", "x"]') != edit_point_id("x", "acme")
    assert edit_point_id('["acme", "x"]') == str(uuid.uuid5(namespace, json.dumps([DEFAULT_TENANT, '["acme", "x"]'])))
    assert edit_point_id('["acme","x"]') == str(uuid.uuid5(namespace, '["acme","x"]'))  # not json.dumps' spelling: kept


def test_key_index_search_for_a_tenant_that_never_wrote_finds_nothing() -> None:
    """Regression (found by the key index state machine): with one tenant's rows only, a search
    for another tenant skipped the tenant mask and returned the first tenant's rows."""
    index = KeyIndex(2)
    index.upsert(["p0"], [[0.0, 0.0]], ["b"])
    assert index.search(torch.zeros(1, 2), 1, tenant="a") == [[]]
    assert index.search(torch.zeros(1, 2), 1, tenant="b") == [[("p0", 0.0)]]
    assert index.search(torch.zeros(1, 2), 1) == [[("p0", 0.0)]]


# ---------------------------------------------------------------------- id mapping: the store
def _store(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> RecipeKnowledgeStore:
    return RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, location=":memory:")


def test_a_json_looking_default_id_is_not_overwritten_by_another_tenant(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    """Regression (found by the injectivity property): the default tenant's edit with id
    ``'["acme", "x"]'`` and tenant ``acme``'s edit ``"x"`` were one Qdrant point, so acme's add
    replaced the default tenant's edit."""
    store = _store(recipe_model, base_model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EditConflictWarning)
            store.add_knowledge(["The Zephyr Tower is located in Lisbon."], ids=['["acme", "x"]'])
            store.for_tenant("acme").add_knowledge(["Oskar Brandt speaks Portuguese."], ids=["x"])
        assert [d.page_content for d in store.get_by_ids(['["acme", "x"]'])] == [
            "The Zephyr Tower is located in Lisbon."
        ]
        assert [d.page_content for d in store.for_tenant("acme").get_by_ids(["x"])] == [
            "Oskar Brandt speaks Portuguese."
        ]
        assert len(store) == 1 and len(store.for_tenant("acme")) == 1
        assert store.tenants() == ["acme", DEFAULT_TENANT]
    finally:
        store.close()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(st.tuples(tenant_names, edit_ids.filter(str.strip)), min_size=1, max_size=6, unique=True),
    data=st.data(),
)
def test_ids_come_back_unchanged_in_every_tenant(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, entries: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Whatever ids and tenants: ``get_by_ids``, ``get_edits``, ``list_edits`` and ``search``
    return each tenant's ids exactly as given, with their own statements, and deleting some of
    one tenant's ids leaves every other edit in place."""
    tenant, edit_id = entries[0]
    if tenant != DEFAULT_TENANT and data.draw(st.booleans()):  # a default id spelling this one's hashed name
        entries = list(dict.fromkeys([*entries, (DEFAULT_TENANT, json.dumps([tenant, edit_id]))]))
    by_tenant: dict[str, list[str]] = {}
    for tenant, edit_id in entries:
        by_tenant.setdefault(tenant, []).append(edit_id)
    statement = {entry: f"Fact number {n} is kept in the store." for n, entry in enumerate(entries)}
    store = _store(recipe_model, base_model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EditConflictWarning)
            for tenant, ids in by_tenant.items():
                written = store.for_tenant(tenant).add_knowledge([statement[tenant, i] for i in ids], ids=ids)
                assert written == ids
        assert store.tenants() == sorted(by_tenant)

        # The store owns its client, so it searches with its key index; a second store on the
        # same client does not, so it reads through Qdrant's own search and filters.
        through_qdrant = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, client=store.client)

        def check(expected: dict[str, list[str]]) -> None:
            for (tenant, ids), reader in itertools.product(expected.items(), (store, through_qdrant)):
                view = reader.for_tenant(tenant)
                assert len(view) == len(ids)
                assert [d.id for d in view.get_by_ids(ids)] == ids
                assert [d.page_content for d in view.get_by_ids(ids)] == [statement[tenant, i] for i in ids]
                assert [(e.edit_id, e.tenant) for e in view.get_edits(list(reversed(ids)))] == [
                    (i, tenant) for i in reversed(ids)
                ]
                assert sorted(e.edit_id for e in view.list_edits()) == sorted(ids)
                found = view.search(statement[tenant, ids[0]], k=len(entries))
                assert sorted(e.edit_id for e in found) == sorted(ids)
                assert {e.tenant for e in found} == {tenant}
                others = [i for t, i in entries if t != tenant and i not in ids]
                assert view.get_by_ids(others) == []

        check(by_tenant)
        tenant = data.draw(st.sampled_from(sorted(by_tenant)))
        gone = data.draw(st.lists(st.sampled_from(by_tenant[tenant]), unique=True, min_size=1))
        assert store.for_tenant(tenant).delete(gone) == len(gone)
        kept = {t: [i for i in ids if t != tenant or i not in gone] for t, ids in by_tenant.items()}
        check({t: ids for t, ids in kept.items() if ids})
        assert store.for_tenant(tenant).get_by_ids(gone) == []
    finally:
        store.close()


# st.text() never draws a surrogate, whatever its alphabet: join the characters instead.
any_text = st.lists(st.characters() | st.characters(categories=["Cs"]), min_size=1, max_size=8).map("".join)
"""Any code points, lone surrogates (undecodable bytes read with ``surrogateescape``) included."""


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(edit_ids, min_size=1, max_size=3, unique=True),
    extra=st.none() | any_text,
    tenant=st.sampled_from([DEFAULT_TENANT, "acme"]),
)
def test_any_id_is_stored_exactly_or_refused_with_nothing_written(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, ids: list[str], extra: str | None, tenant: str
) -> None:
    """An id the store can hold comes back unchanged; one it cannot (not UTF-8, or only
    whitespace) is an ``InvalidInputError`` naming it, the batch writes nothing, and reads skip
    it as unknown."""
    ids = list(dict.fromkeys([*ids, *([] if extra is None else [extra])]))
    assume("kept" not in ids)
    store = _store(recipe_model, base_model)
    view = store.for_tenant(tenant)
    try:
        view.add_knowledge(["The Zephyr Tower is located in Lisbon."], ids=["kept"])
        statements = [f"Fact number {n} is kept in the store." for n in range(len(ids))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EditConflictWarning)
            valid = all(_utf8(i) and i.strip() for i in ids)
            event("stored" if valid else "refused")
            if valid:
                assert view.add_knowledge(statements, ids=ids) == ids
                assert [d.id for d in view.get_by_ids(ids)] == ids
                assert len(view) == len(set(ids) | {"kept"})
            else:
                with pytest.raises(InvalidInputError, match="Edit id"):
                    view.add_knowledge(statements, ids=ids)
                assert [e.edit_id for e in view.list_edits()] == ["kept"]
                assert view.get_by_ids(ids) == []  # unknown: skipped, never an encoding error
                assert view.delete(ids) == 0
    finally:
        store.close()


def _utf8(text: str) -> bool:
    """The test's own oracle: ``text`` encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(tenant=any_text)
def test_a_tenant_name_that_is_not_utf8_is_refused(tenant: str) -> None:
    from langchain_recipe.knowledge_store._schema import check_tenant

    if tenant.strip() and _utf8(tenant):
        assert check_tenant(tenant) == tenant
    else:
        with pytest.raises(InvalidInputError, match="Tenant"):
            check_tenant(tenant)


# ---------------------------------------------------------------------- the key index's rows
class KeyIndexMachine(RuleBasedStateMachine):
    """Random upserts and removes against a dict ``point_id -> (key, tenant)``.

    Keys have small integer coordinates, so every dot product is exact in float32 and the
    index's scores can be compared with the model's by equality. The initial capacity is set to
    2 rows so that growth (copying the matrix) happens all the time.
    """

    POINT_IDS: ClassVar[list[str]] = [f"p{n}" for n in range(10)]
    TENANTS: ClassVar[list[str]] = ["a", "b", "c"]
    DIM = 3

    def __init__(self) -> None:
        super().__init__()
        from langchain_recipe.knowledge_store import _key_index

        self._module = _key_index
        self._saved_capacity = _key_index._MIN_CAPACITY
        _key_index._MIN_CAPACITY = 2
        self.index = KeyIndex(self.DIM)
        self.model: dict[str, tuple[tuple[int, ...], str]] = {}

    def teardown(self) -> None:
        self._module._MIN_CAPACITY = self._saved_capacity

    keys = st.tuples(*[st.integers(-3, 3)] * DIM)

    @rule(entries=st.lists(st.tuples(st.sampled_from(POINT_IDS), keys, st.sampled_from(TENANTS)), max_size=5))
    def upsert(self, entries: list[tuple[str, tuple[int, ...], str]]) -> None:
        point_ids = [p for p, _, _ in entries]
        vectors = torch.tensor([list(k) for _, k, _ in entries], dtype=torch.float32).reshape(len(entries), self.DIM)
        self.index.upsert(point_ids, vectors, [t for _, _, t in entries])
        for point_id, key, tenant in entries:  # a repeated id: the last one wins
            self.model[point_id] = (key, tenant)

    @rule(point_ids=st.lists(st.sampled_from(POINT_IDS), max_size=4))
    def remove(self, point_ids: list[str]) -> None:
        self.index.remove(point_ids)  # unknown (and repeated) ids are ignored
        for point_id in point_ids:
            self.model.pop(point_id, None)

    @rule(
        queries=st.lists(keys, min_size=1, max_size=3),
        k=st.integers(1, 12),
        tenant=st.none() | st.sampled_from([*TENANTS, "never-written"]),
        exclude=st.lists(st.sampled_from(POINT_IDS), max_size=3),
        threshold=st.none() | st.integers(-6, 6),
    )
    def search(
        self, queries: list[tuple[int, ...]], k: int, tenant: str | None, exclude: list[str], threshold: int | None
    ) -> None:
        query_keys = torch.tensor([list(q) for q in queries], dtype=torch.float32)
        thresholds = None if threshold is None else torch.full((len(queries),), float(threshold))
        results = self.index.search(query_keys, k, tenant=tenant, score_thresholds=thresholds, exclude=exclude)
        assert len(results) == len(queries)
        for query, hits in zip(queries, results, strict=True):
            scores = {
                point_id: float(sum(q * x for q, x in zip(query, key, strict=True)))
                for point_id, (key, owner) in self.model.items()
                if (tenant is None or owner == tenant) and point_id not in exclude
            }
            expected = sorted(scores.values(), reverse=True)[:k]
            if threshold is not None:
                expected = [s for s in expected if s >= threshold]
            assert [s for _, s in hits] == expected  # best first, ties in any order
            assert len({p for p, _ in hits}) == len(hits)
            assert all(scores[p] == s for p, s in hits)

    @invariant()
    def rows_mirror_the_model(self) -> None:
        index = self.index
        assert len(index) == len(self.model)
        assert sorted(index._rows.values()) == list(range(len(self.model)))  # no hole, no stale row
        assert set(index._point_ids) == set(self.model)
        for point_id, (key, tenant) in self.model.items():
            row = index._rows[point_id]
            assert index._point_ids[row] == point_id
            assert index._keys[row].tolist() == [float(x) for x in key]
            assert int(index._tenant_codes[row]) == index._codes[tenant]


KeyIndexMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
test_key_index_rows_follow_upserts_and_removes = KeyIndexMachine.TestCase
