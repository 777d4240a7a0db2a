"""Crash safety of the on-disk stores: a writer process SIGKILLed in the middle of a large add.

For both on-disk engines (``path=`` with qdrant-client's embedded mode, whose folder is SQLite
plus pickle, and ``engine="edge"``, qdrant-edge-py with a write-ahead log), a real writer process
(``crash_worker.py``) opens a fresh store and runs ONE ``add_knowledge`` of ``BATCH_SIZE``
statements with explicit ids, which the store splits into several upsert requests; it is killed
with SIGKILL at a chosen moment (by this process, or by itself where only it can reach the
moment). This process then reopens the folder with the same tiny models and checks that the
store opens, holds each edit completely (statement, metadata, key, continuous prompt) or not at
all, holds nothing else, retrieves consistently, and accepts the retried batch without
duplicates.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from crash_worker import crash_batch, gate_only_conflicts, save_tiny_models
from model_variants import other_recipe_model
from qdrant_client import models

import langchain_recipe
from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.knowledge_store import (
    KEY_VECTOR,
    PROMPT_FIELD,
    RecipeKnowledgeStore,
    decode_prompt_payload,
    edit_point_id,
)
from langchain_recipe.knowledge_store import _write as store_module
from langchain_recipe.knowledge_store._schema import scaled_key
from langchain_recipe.nn import RecipeModel

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the crash worker forks its writers (POSIX only)")

BATCH_SIZE = 600
"""Statements in the killed add: three upsert requests (256 + 256 + 88 points)."""
REPLACE_BATCH_SIZE = 300
OLD_IDS = [f"old-{i}" for i in range(8)]
OLD_STATEMENTS = [f"The river Quell {i} flows into the lake Morrow {i}." for i in range(8)]
PAYLOAD_FIELDS = {
    "edit_id",
    "statement",
    "metadata",
    "tenant",
    "source",
    "author",
    "created_at",
    "updated_at",
    "conflicts_with",
    "replaces",
    PROMPT_FIELD,
}
WORKER = Path(__file__).with_name("crash_worker.py")
EVENT_TIMEOUT_S = 300  # a fresh interpreter imports torch slowly on a loaded 2-core machine


@dataclass
class Trial:
    """One fault: where the writer dies, and what the store must hold afterwards."""

    name: str
    kill_on: tuple[str, int | None] | None = None  # (event, request): this process sends SIGKILL on it
    kill_self: dict[str, Any] | None = None  # the writer SIGKILLs itself (see crash_worker.py)
    size: int = BATCH_SIZE
    replace: bool = False  # old edits first; the add replaces them (forced conflicts)
    expected_count: int | None = None  # edits the store must hold after the kill, when known
    engines: tuple[str, ...] = ("qdrant", "edge")


TRIALS = [
    Trial("while encoding and checking conflicts", kill_on=("adding", None)),
    Trial(
        "while writing the collection metadata (tenant registry)",
        kill_self={"at": "metadata_write"},
        expected_count=0,
        engines=("qdrant",),
    ),
    Trial("inside the first request", kill_on=("upsert-start", 1), engines=("edge",)),
    Trial("right after the first request", kill_self={"at": "after_request", "request": 1}, expected_count=256),
    Trial("inside the second request", kill_on=("upsert-start", 2)),
    Trial(
        "in the SQLite transaction of point 400",
        kill_self={"at": "sqlite_insert", "point": 400},
        expected_count=399,
        engines=("qdrant",),
    ),
    Trial(
        "between the replacing upserts and the deletion of the replaced edits",
        kill_self={"at": "before_delete"},
        size=REPLACE_BATCH_SIZE,
        replace=True,
        expected_count=REPLACE_BATCH_SIZE + len(OLD_IDS),
    ),
]


@dataclass
class Outcome:
    """What a writer printed before it died, and how it ended."""

    events: list[dict[str, Any]] = field(default_factory=list)
    signal: int | None = None

    @property
    def requests_done(self) -> int:
        return max([e["request"] for e in self.events if e["event"] == "upsert-done"], default=0)

    @property
    def finished(self) -> bool:
        return any(e["event"] == "done" for e in self.events)


class ForkServer:
    """``crash_worker.py`` running as a subprocess: forks one writer process per trial."""

    def __init__(self) -> None:
        package_root = str(Path(langchain_recipe.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._next()["event"] == "ready"

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _next(self) -> dict[str, Any]:
        line = self.lines.get(timeout=EVENT_TIMEOUT_S)
        assert line, f"the crash worker ended (exit code {self.process.poll()}); see its stderr above"
        return json.loads(line)

    def run(self, spec: dict[str, Any], kill_on: tuple[str, int | None] | None) -> Outcome:
        """Run one writer; SIGKILL it on the event ``kill_on`` (or after its add) and wait for it."""
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()
        outcome, pid, sent = Outcome(), None, False
        while True:
            event = self._next()
            if event["event"] == "exited":
                outcome.signal = event["signal"]
                return outcome
            outcome.events.append(event)
            if event["event"] == "start":
                pid = event["pid"]
            hit = kill_on is not None and event["event"] == kill_on[0] and event.get("request") == kill_on[1]
            if not sent and (hit or event["event"] == "done"):
                # The writer cannot have been reaped yet (the server reports "exited" after
                # reaping), so this pid is still the writer's.
                os.kill(pid, signal.SIGKILL)
                sent = True

    def close(self) -> None:
        self.process.stdin.close()
        self.process.terminate()  # idle between trials: nothing to finish
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def fork_server() -> Iterator[ForkServer]:
    """One crash worker for the module (it pays the torch import once)."""
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    """Where the trial stores live: a RAM-backed folder (``/dev/shm``) where there is one.

    SIGKILL ends the process, not the machine: what it wrote is in the page cache either way, so
    the outcome does not depend on the disk. qdrant-client's embedded mode commits (and fsyncs)
    one SQLite transaction per point, 12 ms each on this machine's disk, which would make the
    trials minutes long there.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="recipe-crash-", dir=shm))
        yield root
        shutil.rmtree(root, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture
def crash_models(make_recipe_model: Callable[..., RecipeModel]) -> RecipeModel:
    """A tiny RecipeModel whose sentinel gate, like a trained one's, keeps unrelated statements
    apart (the conftest model lets every statement pass against every edit, so each edit of a
    600-statement batch would record hundreds of conflicts)."""
    return other_recipe_model(make_recipe_model, seed=2)


def _all_points(store: RecipeKnowledgeStore) -> list[Any]:
    """Every point of the collection (every tenant), with payload and vectors."""
    points, offset = [], None
    while True:
        page, offset = store.client.scroll(
            store.collection_name, limit=256, offset=offset, with_payload=True, with_vectors=True
        )
        points.extend(page)
        if offset is None:
            return points


def _check_complete(
    store: RecipeKnowledgeStore,
    sent: dict[str, tuple[str, dict[str, Any]]],
    fresh: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> list[Any]:
    """Every point is a whole edit of ``sent`` (no duplicate, no garbage), its key and continuous
    prompt those a fresh encode gives (the prompt within float16 precision); retrieval through
    the store's float32 key index agrees with Qdrant's own search. Returns the points."""
    config = store.recipe_model.config
    points = _all_points(store)
    assert store.client.count(store.collection_name, exact=True).count == len(points) == len(store)
    edit_ids = [p.payload.get("edit_id") for p in points]
    assert len(set(edit_ids)) == len(edit_ids), "an edit is stored twice"
    for point in points:
        payload = point.payload
        assert set(payload) == PAYLOAD_FIELDS, f"incomplete payload: {sorted(payload)}"
        edit_id = payload["edit_id"]
        assert edit_id in sent, f"a point that was never sent: {edit_id!r}"
        assert str(point.id) == edit_point_id(edit_id, payload["tenant"])
        statement, metadata = sent[edit_id]
        assert payload["statement"] == statement
        assert payload["metadata"] == metadata
        key, prompt = fresh[edit_id]
        torch.testing.assert_close(
            torch.tensor(point.vector[KEY_VECTOR]), torch.tensor(scaled_key(key, config.knowledge_dim))
        )
        stored_prompt = decode_prompt_payload(payload[PROMPT_FIELD])
        assert stored_prompt.shape == (config.num_prompt_tokens, config.lm_hidden_size)
        torch.testing.assert_close(stored_prompt, prompt, rtol=2**-10, atol=1e-5)  # float16 storage
    if points:
        queries = [p.payload["statement"] for p in points[:: max(1, len(points) // 12)]]
        by_index = store.search_batch(queries, k=5, with_prompt=False)  # the key index (embedded mode) or Qdrant
        by_qdrant = store.search_batch(queries, k=5, with_prompt=False, filter=models.Filter())  # always Qdrant
        for mine, theirs in zip(by_index, by_qdrant, strict=True):
            assert [e.edit_id for e in mine] == [e.edit_id for e in theirs]
            assert [e.score for e in mine] == pytest.approx([e.score for e in theirs], abs=1e-4)
    return points


def _fresh_encoding(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, ids: list[str], statements: list[str]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    with torch.no_grad():
        keys, prompts = recipe_model.encode_edits(statements, base_model)
    return {edit_id: (keys[i].float(), prompts[i].float()) for i, edit_id in enumerate(ids)}


def _force_conflicts(store: RecipeKnowledgeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement passes the sentinel gate against every edit and conflicts with it, whatever
    the subject (as in crash_worker.py)."""
    monkeypatch.setattr(store, "_sentinel_scores", lambda query_keys: torch.full((query_keys.shape[0],), -1e9))
    monkeypatch.setattr(store_module, "is_conflict", gate_only_conflicts)


@pytest.mark.slow
# The replacing batch is forced to conflict with everything: its statements also match each other.
@pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")
@pytest.mark.parametrize("engine", ["qdrant", "edge"])
def test_a_store_killed_in_the_middle_of_a_large_add_opens_whole_and_takes_the_retried_batch(
    engine: str,
    fork_server: ForkServer,
    crash_models: RecipeModel,
    base_model: HuggingFaceBaseModel,
    tmp_path: Path,
    store_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe_model = crash_models
    models_dir = save_tiny_models(tmp_path / "models", recipe_model, base_model)
    ids, statements, metadatas = crash_batch(BATCH_SIZE)
    fresh = _fresh_encoding(recipe_model, base_model, ids + OLD_IDS, statements + OLD_STATEMENTS)
    trials = [t for t in TRIALS if engine in t.engines]
    report, counts = [], []
    for number, trial in enumerate(trials):
        path = store_root / f"store-{number}"
        batch_ids, batch_statements, batch_metadatas = (
            ids[: trial.size],
            statements[: trial.size],
            metadatas[: trial.size],
        )
        sent = {i: (s, m) for i, s, m in zip(batch_ids, batch_statements, batch_metadatas, strict=True)}
        if trial.replace:
            sent.update({i: (s, {}) for i, s in zip(OLD_IDS, OLD_STATEMENTS, strict=True)})
            with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine=engine) as store:
                store.add_knowledge(OLD_STATEMENTS, ids=OLD_IDS)
        spec = {
            "models": str(models_dir),
            "path": str(path),
            "engine": engine,
            "size": trial.size,
            "policy": "replace" if trial.replace else "keep_both",
            "force_conflicts": trial.replace,
            "kill_self": trial.kill_self,
        }
        outcome = fork_server.run(spec, trial.kill_on)
        assert outcome.signal == signal.SIGKILL, f"{trial.name}: the writer was not killed ({outcome.events[-3:]})"

        # Reopen with the same models: no lock left over, no fingerprint error.
        with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine=engine) as store:
            if trial.replace:
                _force_conflicts(store, monkeypatch)
            points = _check_complete(store, sent, fresh)
            stored = len(points)
            assert stored <= len(sent)
            if trial.expected_count is not None:
                assert stored == trial.expected_count, trial.name
            if trial.replace:
                assert set(OLD_IDS) <= {p.payload["edit_id"] for p in points}, "an edit to be replaced was lost"

            store.add_knowledge(
                batch_statements, batch_metadatas, batch_ids, on_conflict="replace" if trial.replace else "keep_both"
            )
            points = _check_complete(store, sent, fresh)
            held = {p.payload["edit_id"] for p in points}
            assert set(batch_ids) <= held
            replaced = {r for p in points for r in p.payload["replaces"]}
            assert held == set(batch_ids) | (set(OLD_IDS) - replaced if trial.replace else set())
            if trial.replace:
                assert replaced, "the forced conflicts replaced nothing"
            after_retry = len(held)
        with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine=engine) as store:
            assert len(store) == after_retry
        counts.append(stored)
        landed = "after the add" if outcome.finished else f"after {outcome.requests_done} request(s)"
        report.append(f"{engine:6} killed {trial.name} ({landed}): {stored}/{len(sent)} edits held, all whole")
    print(f"\n{len(trials)} faults injected ({engine}):\n" + "\n".join(report))
    assert any(0 < count < BATCH_SIZE for count in counts), "no trial left a partly written batch"


@pytest.mark.slow
def test_an_edge_store_killed_while_creating_its_shard_opens_and_takes_the_batch(
    fork_server: ForkServer,
    crash_models: RecipeModel,
    base_model: HuggingFaceBaseModel,
    tmp_path: Path,
    store_root: Path,
) -> None:
    # The writer dies at open, inside qdrant-edge's shard creation, with the shard folder half
    # written (segments and write-ahead log, no edge_config.json): qdrant-edge can neither load
    # such a folder nor create a shard over it, so it must never carry the collection's name.
    path = store_root / "store"
    spec = {
        "models": str(save_tiny_models(tmp_path / "models", crash_models, base_model)),
        "path": str(path),
        "engine": "edge",
        "size": 8,
        "kill_self": {"at": "shard_create"},
    }
    outcome = fork_server.run(spec, None)
    assert outcome.signal == signal.SIGKILL
    assert [e["event"] for e in outcome.events] == ["start"]
    assert list(path.glob(".recipe_edits.unfinished-*")), "the half-written shard is not where the kill left it"
    assert not (path / "recipe_edits").exists()

    ids, statements, metadatas = crash_batch(8)
    with RecipeKnowledgeStore(crash_models, base_model, path=path, engine="edge") as store:
        assert len(store) == 0
        store.add_knowledge(statements, metadatas, ids)
        assert [e.edit_id for e in store.get_edits(ids)] == ids
    assert not list(path.glob(".recipe_edits.unfinished-*"))
    with RecipeKnowledgeStore(crash_models, base_model, path=path, engine="edge") as store:
        assert len(store) == 8
