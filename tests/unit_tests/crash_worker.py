"""The writer process that ``test_crash_safety.py`` kills with SIGKILL in the middle of a large add.

Run as a script (``python crash_worker.py``), it is a small fork server: it pays the slow imports
(torch, transformers, the store) once, prints ``{"event": "ready"}``, then reads one JSON trial
per stdin line and forks a fresh writer process for it. It loads the tiny models that the test
saved (once per folder, so the store's fingerprint guard accepts the store) and runs the add
path once in memory before forking, so a writer starts at once. The writer opens the on-disk
store and runs ONE batched :meth:`RecipeKnowledgeStore.add_knowledge` of :func:`crash_batch`. It prints
a JSON event line before and after every Qdrant upsert request (and before the deletions of
``on_conflict="replace"``), so the test can kill it at a chosen moment; some trials make it kill
itself at a moment the test cannot reach from outside (inside an SQLite write transaction,
between the last upsert and the deletions). After its add it prints ``done`` and waits to be
killed, so the pid the test signals is always the writer's. The fork server reports how each
writer ended (``exited``, with the signal number).

Trial keys: ``models`` (folder written by ``save_tiny_models``), ``path``, ``engine``, ``size``,
``policy``, ``force_conflicts`` (every new statement passes the sentinel gate against every
edit and conflicts with every edit it passes, whatever the subject, to exercise ``replace``),
``kill_self`` (``None``, ``{"at": "after_request", "request": n}``,
``{"at": "sqlite_insert", "point": n}``, ``{"at": "metadata_write"}`` (before
qdrant-client renames its new meta.json into place), ``{"at": "before_delete"}``, or ``{"at":
"shard_create"}``: while the edge engine creates the collection's shard, at open).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["crash_batch", "load_tiny_models", "save_tiny_models"]

LM_NAME = "tiny-llama"


def crash_batch(size: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Ids, knowledge statements and metadata (nested, non-ASCII) of the batch every trial adds."""
    ids = [f"crash-{i:04d}" for i in range(size)]
    statements = [f"The capital of Velor {i} is Tarn {(i * 37) % 1009}." for i in range(size)]
    metadatas = [
        {
            "row": i,
            "tags": ["crash", f"group-{i % 7}"],
            "origin": {"file": "crash.jsonl", "ok": i % 2 == 0},
            "note": "état ✓",
        }
        for i in range(size)
    ]
    return ids, statements, metadatas


def gate_only_conflicts(
    new_statement: str, old_statement: str, *, score: float, sentinel_score: float, **_: Any
) -> bool:
    """A conflict rule that ignores subjects and relations: every edit that passes the gate conflicts."""
    return score > sentinel_score


def save_tiny_models(directory: Path, recipe_model: Any, base_model: Any) -> Path:
    """Write a tiny RecipeModel (with its frozen encoder) and base LM where a writer can load them."""
    recipe_model.save_pretrained(directory / "recipe")
    recipe_model.encoder.save_pretrained(directory / "encoder")
    base_model.tokenizer.save_pretrained(directory / "tokenizer")
    base_model.model.save_pretrained(directory / "lm")
    return directory


def load_tiny_models(directory: Path) -> tuple[Any, Any]:
    """The ``(recipe_model, base_model)`` written by :func:`save_tiny_models`."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    from langchain_recipe.base_models import HuggingFaceBaseModel
    from langchain_recipe.nn import RecipeModel

    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
    encoder = AutoModel.from_pretrained(directory / "encoder").eval()
    recipe_model = RecipeModel.from_pretrained(directory / "recipe", encoder=encoder, encoder_tokenizer=tokenizer)
    lm = AutoModelForCausalLM.from_pretrained(directory / "lm").eval()
    lm.requires_grad_(False)
    return recipe_model, HuggingFaceBaseModel(model=lm, tokenizer=tokenizer, name=LM_NAME)


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _KillingConnection:
    """An ``sqlite3.Connection`` stand-in that SIGKILLs the process right after the INSERT of
    the ``point``-th point, before the transaction that holds it commits."""

    def __init__(self, connection: Any, point: int) -> None:
        self._connection = connection
        self._left = point

    def execute(self, sql: str, *args: Any) -> Any:
        result = self._connection.execute(sql, *args)
        if sql.startswith("INSERT"):
            self._left -= 1
            if self._left == 0:
                _die()
        return result

    def __enter__(self) -> Any:
        return self._connection.__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        return self._connection.__exit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _warm_up(recipe_model: Any, base_model: Any) -> None:
    """Run the add path once in memory, so that lazy imports and first-call set-up happen in the
    fork server and not in every writer."""
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    with RecipeKnowledgeStore(recipe_model, base_model, location=":memory:") as store:
        store.add_knowledge(["The warm-up statement is not stored anywhere."], ids=["warm-up"])
        store.search("Which statement warms up?")


def _kill_in_shard_creation() -> None:
    """Make qdrant-edge's shard creation end the process with the shard folder half written:
    segments and write-ahead log there, ``edge_config.json`` not yet."""
    import qdrant_edge

    from langchain_recipe.knowledge_store import _edge

    class DyingShard:
        @staticmethod
        def create(path: str, config: Any) -> Any:
            qdrant_edge.EdgeShard.create(path, config).close()
            (Path(path) / "edge_config.json").unlink()
            _die()

    class EdgeModule:
        """qdrant_edge with the dying EdgeShard (the adapter calls ``_edge()`` for the module)."""

        EdgeShard = DyingShard

        def __getattr__(self, name: str) -> Any:
            return getattr(qdrant_edge, name)

    _edge._edge = EdgeModule


def run_trial(spec: dict[str, Any], recipe_model: Any, base_model: Any) -> None:
    """Open the store and run the one large add, reporting (and maybe ending) as asked."""
    import torch

    from langchain_recipe.knowledge_store import RecipeKnowledgeStore
    from langchain_recipe.knowledge_store import _write as store_module

    _emit("start", pid=os.getpid())
    kill_self = spec.get("kill_self") or {}
    if kill_self.get("at") == "shard_create":
        _kill_in_shard_creation()
    store = RecipeKnowledgeStore(recipe_model, base_model, path=spec["path"], engine=spec["engine"])
    client = store.client
    upsert = client.upsert
    requests = 0

    def reporting_upsert(*args: Any, **kwargs: Any) -> Any:
        nonlocal requests
        requests += 1
        points = args[1] if len(args) > 1 else kwargs["points"]
        _emit("upsert-start", request=requests, points=len(points))
        result = upsert(*args, **kwargs)
        _emit("upsert-done", request=requests)
        if kill_self.get("at") == "after_request" and kill_self["request"] == requests:
            _die()
        return result

    client.upsert = reporting_upsert
    delete = client.delete

    def reporting_delete(*args: Any, **kwargs: Any) -> Any:
        _emit("delete-start")
        if kill_self.get("at") == "before_delete":
            _die()
        return delete(*args, **kwargs)

    client.delete = reporting_delete
    if kill_self.get("at") == "metadata_write":
        # qdrant-client writes meta.json (collection metadata: here the store's tenant registry,
        # written before the first upsert) to a temporary file and renames it over the old one.
        from qdrant_client.local import qdrant_local

        class DyingOs:
            def replace(self, *args: Any) -> None:
                _die()

            def __getattr__(self, name: str) -> Any:
                return getattr(os, name)

        qdrant_local.os = DyingOs()
    if kill_self.get("at") == "sqlite_insert":
        persistence = client._client.collections[store.collection_name].storage  # qdrant-client local mode
        persistence.storage = _KillingConnection(persistence.storage, kill_self["point"])
    if spec.get("force_conflicts"):
        store._sentinel_scores = lambda query_keys: torch.full((query_keys.shape[0],), -1e9)
        store_module.is_conflict = gate_only_conflicts
    ids, statements, metadatas = crash_batch(spec["size"])
    _emit("adding")
    store.add_knowledge(statements, metadatas, ids, on_conflict=spec.get("policy", "keep_both"))
    _emit("done")
    time.sleep(600)  # wait for the test's SIGKILL (it may come after the add)


def main() -> None:
    """The fork server loop (see the module docstring)."""
    import torch
    import transformers  # imported once here, inherited by every writer

    transformers.utils.logging.set_verbosity_error()  # no load report per writer
    transformers.utils.logging.disable_progress_bar()

    import langchain_recipe.knowledge_store  # noqa: F401

    torch.set_num_threads(1)  # no thread pool in the parent: fork stays safe
    loaded: dict[str, tuple[Any, Any]] = {}
    _emit("ready")
    for line in sys.stdin:
        spec = json.loads(line)
        if spec["models"] not in loaded:
            loaded[spec["models"]] = load_tiny_models(Path(spec["models"]))
            _warm_up(*loaded[spec["models"]])
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_trial(spec, *loaded[spec["models"]])
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        _emit(
            "exited",
            pid=pid,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        )


if __name__ == "__main__":
    main()
