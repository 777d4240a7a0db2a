"""Knowledge-store measurements: prompt storage layouts and embedded backends at scale.

Two parts, both on synthetic random keys and continuous prompts inserted directly through the
Qdrant client with the store's point layout (encoding 100k statements through the RecipeModel
would measure the encoder, not the store):

* ``schema``: bytes per edit in an upsert request, and top-1 retrieval + prompt fetch latency,
  for the continuous prompt as a float16 payload field vs a float32 named multivector;
* ``scale``: retrieval p50/p95 (top-1, tenant filter, sentinel ``score_threshold``, prompt
  fetched) and resident memory at 1k, 10k and 100k edits for each embedded backend:
  qdrant-client local mode in memory and on disk, and qdrant-edge-py (``EdgeShard``).

Each (backend, size) runs in a fresh subprocess so memory is that of one store. Latencies are
the medians over ``--repeats`` rounds of each round's p50/p95. Run:

    OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/store_backends.py all \
        --out benchmarks/results/store_backends.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's langchain_recipe

from langchain_recipe.benchmarks.measure import run_json_row

KNOWLEDGE_DIM = 1024  # the shipped RecipeModel's knowledge_dim
PROMPT_TOKENS = 3
HIDDEN = 576  # SmolLM2-135M
TENANT = "default"


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = (rng.standard_normal((n, KNOWLEDGE_DIM), dtype=np.float32) / np.sqrt(KNOWLEDGE_DIM)).astype(np.float32)
    prompts = (rng.standard_normal((n, PROMPT_TOKENS, HIDDEN), dtype=np.float32) * 0.05).astype(np.float32)
    return keys, prompts


def _payload(i: int, prompt: np.ndarray | None) -> dict[str, Any]:
    import torch

    from langchain_recipe.knowledge_store import encode_prompt_payload

    payload: dict[str, Any] = {
        "edit_id": f"edit-{i}",
        "statement": f"Synthetic statement number {i} about subject {i}.",
        "metadata": {"n": i},
        "tenant": TENANT,
        "source": "benchmark",
        "author": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "conflicts_with": [],
        "replaces": [],
    }
    if prompt is not None:
        payload["prompt"] = encode_prompt_payload(torch.from_numpy(prompt))
    return payload


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# ---------------------------------------------------------------------- qdrant-client local mode
def _local_client(backend: str, folder: Path) -> Any:
    from qdrant_client import QdrantClient

    return QdrantClient(location=":memory:") if backend == "memory" else QdrantClient(path=str(folder))


def _local_collection(client: Any, storage: str, hidden: int = HIDDEN) -> None:
    from qdrant_client import models

    vectors = {"key": models.VectorParams(size=KNOWLEDGE_DIM, distance=models.Distance.DOT)}
    if storage == "multivector":
        vectors["prompt"] = models.VectorParams(
            size=hidden,
            distance=models.Distance.DOT,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            hnsw_config=models.HnswConfigDiff(m=0),
        )
    client.create_collection("bench", vectors_config=vectors, on_disk_payload=True)


def _local_points(keys: np.ndarray, prompts: np.ndarray, storage: str, start: int = 0) -> list[Any]:
    from qdrant_client import models

    points = []
    for i in range(len(keys)):
        vector: dict[str, Any] = {"key": keys[i].tolist()}
        if storage == "multivector":
            vector["prompt"] = prompts[i].tolist()
        payload = _payload(start + i, prompts[i] if storage == "payload_fp16" else None)
        points.append(
            models.PointStruct(id=str(uuid.uuid5(uuid.NAMESPACE_OID, str(start + i))), vector=vector, payload=payload)
        )
    return points


def _local_query(client: Any, storage: str, query: np.ndarray, *, tenant_filter: bool = False) -> Any:
    import torch
    from qdrant_client import models

    from langchain_recipe.knowledge_store import decode_prompt_payload

    response = client.query_points(
        "bench",
        query=query.tolist(),
        using="key",
        limit=1,
        # The store skips the tenant filter in embedded mode while the collection has one tenant.
        query_filter=models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value=TENANT))])
        if tenant_filter
        else None,
        with_payload=True if storage == "payload_fp16" else models.PayloadSelectorExclude(exclude=["prompt"]),
        with_vectors=["prompt"] if storage == "multivector" else False,
        score_threshold=-1e9,
    )
    point = response.points[0]
    if storage == "multivector":
        return torch.tensor(point.vector["prompt"])
    return decode_prompt_payload(point.payload["prompt"])


# ---------------------------------------------------------------------- qdrant-edge-py
def _edge_shard(folder: Path) -> Any:
    from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, PayloadSchemaType, UpdateOperation

    shard = EdgeShard.create(
        str(folder), EdgeConfig(vectors={"key": EdgeVectorParams(size=KNOWLEDGE_DIM, distance=Distance.Dot)})
    )
    shard.update(UpdateOperation.create_field_index("tenant", PayloadSchemaType.Keyword))
    return shard


def _edge_insert(shard: Any, keys: np.ndarray, prompts: np.ndarray, start: int = 0) -> None:
    from qdrant_edge import Point, UpdateOperation

    points = [
        Point(
            str(uuid.uuid5(uuid.NAMESPACE_OID, str(start + i))),
            {"key": keys[i].tolist()},
            _payload(start + i, prompts[i]),
        )
        for i in range(len(keys))
    ]
    shard.update(UpdateOperation.upsert_points(points))


def _edge_query(shard: Any, query: np.ndarray) -> Any:
    from qdrant_edge import FieldCondition, Filter, MatchValue, Query, QueryRequest

    from langchain_recipe.knowledge_store import decode_prompt_payload

    (point,) = shard.query(
        QueryRequest(
            limit=1,
            query=Query.Nearest(query.tolist(), using="key"),
            filter=Filter(must=[FieldCondition(key="tenant", match=MatchValue(TENANT))]),
            with_payload=True,
            with_vector=False,
            score_threshold=-1e9,
        )
    )
    return decode_prompt_payload(point.payload["prompt"])


# ---------------------------------------------------------------------- one measurement
def measure_scale(backend: str, n: int, queries: int, repeats: int, tenant_filter: bool = False) -> dict[str, Any]:
    keys, prompts = _data(n)
    query_vectors = _data(queries, seed=1)[0] * np.sqrt(KNOWLEDGE_DIM)
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    _payload(0, prompts[0])  # import torch and langchain_recipe before measuring memory
    if backend == "edge":
        import qdrant_edge  # noqa: F401
    else:
        from qdrant_client import QdrantClient  # noqa: F401
    rss_before = _rss_bytes()
    started = time.perf_counter()
    batch = 1000
    if backend == "edge":
        store = _edge_shard(folder)
        for s in range(0, n, batch):
            _edge_insert(store, keys[s : s + batch], prompts[s : s + batch], start=s)
        store.optimize()  # build the HNSW index once (an app would do this when idle)
        query = lambda q: _edge_query(store, q)  # noqa: E731
    else:
        from qdrant_client import models

        store = _local_client(backend, folder)
        _local_collection(store, "payload_fp16")
        for s in range(0, n, batch):
            end = min(n, s + batch)
            store.upsert(
                "bench",
                models.Batch(
                    ids=[str(uuid.uuid5(uuid.NAMESPACE_OID, str(i))) for i in range(s, end)],
                    vectors={"key": keys[s:end].tolist()},
                    payloads=[_payload(i, prompts[i]) for i in range(s, end)],
                ),
                wait=True,
            )
        query = lambda q: _local_query(store, "payload_fp16", q, tenant_filter=tenant_filter)  # noqa: E731
    insert_seconds = time.perf_counter() - started
    del keys, prompts
    import gc

    gc.collect()
    rss_after = _rss_bytes()
    query(query_vectors[0])  # warm-up
    p50s, p95s = [], []
    for _ in range(repeats):
        samples = []
        for q in query_vectors:
            t0 = time.perf_counter()
            prompt = query(q)
            samples.append((time.perf_counter() - t0) * 1e3)
            assert prompt.shape == (PROMPT_TOKENS, HIDDEN)
        p50, p95 = _percentiles(samples)
        p50s.append(p50)
        p95s.append(p95)
    disk = _folder_bytes(folder) if backend != "memory" else 0
    if backend == "edge":
        store.close()
    else:
        store.close()
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "backend": backend,
        "edits": n,
        "tenant_filter": tenant_filter or backend == "edge",
        "queries_per_round": len(query_vectors),
        "rounds": repeats,
        "p50_ms": round(statistics.median(p50s), 3),
        "p95_ms": round(statistics.median(p95s), 3),
        "rss_delta_mib": round((rss_after - rss_before) / 2**20, 1),
        "disk_mib": round(disk / 2**20, 1),
        "insert_seconds": round(insert_seconds, 1),
    }


def measure_schema(n: int, queries: int, repeats: int) -> list[dict[str, Any]]:
    """Request bytes per edit and top-1 + prompt-fetch latency for both prompt storages."""
    rows = []
    for hidden in (HIDDEN, 4096):
        rng = np.random.default_rng(0)
        key = rng.standard_normal((1, KNOWLEDGE_DIM), dtype=np.float32)
        prompt = (rng.standard_normal((1, PROMPT_TOKENS, hidden), dtype=np.float32) * 0.05).astype(np.float32)
        for storage in ("payload_fp16", "multivector"):
            (point,) = _local_points_hidden(key, prompt, storage)
            rows.append(
                {
                    "lm_hidden_size": hidden,
                    "storage": storage,
                    "request_bytes_per_edit": len(point.model_dump_json(exclude_none=True)),
                }
            )
    keys, prompts = _data(n)
    query_vectors = _data(queries, seed=1)[0] * np.sqrt(KNOWLEDGE_DIM)
    for storage in ("payload_fp16", "multivector"):
        for backend in ("memory", "path"):
            folder = Path(tempfile.mkdtemp(prefix="bench-schema-"))
            client = _local_client(backend, folder)
            _local_collection(client, storage)
            for s in range(0, n, 500):
                client.upsert(
                    "bench", _local_points(keys[s : s + 500], prompts[s : s + 500], storage, start=s), wait=True
                )
            _local_query(client, storage, query_vectors[0])
            p50s, p95s = [], []
            for _ in range(repeats):
                samples = []
                for q in query_vectors:
                    t0 = time.perf_counter()
                    _local_query(client, storage, q)
                    samples.append((time.perf_counter() - t0) * 1e3)
                p50, p95 = _percentiles(samples)
                p50s.append(p50)
                p95s.append(p95)
            client.close()
            disk = _folder_bytes(folder) if backend == "path" else 0
            shutil.rmtree(folder, ignore_errors=True)
            rows.append(
                {
                    "storage": storage,
                    "backend": backend,
                    "edits": n,
                    "p50_ms": round(statistics.median(p50s), 3),
                    "p95_ms": round(statistics.median(p95s), 3),
                    "disk_bytes_per_edit": round(disk / n) if disk else None,
                }
            )
    return rows


def _local_points_hidden(keys: np.ndarray, prompts: np.ndarray, storage: str) -> list[Any]:
    return _local_points(keys, prompts, storage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["schema", "scale", "all"])
    parser.add_argument("--backend", choices=["memory", "path", "edge"], default="memory")
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--path-max", type=int, default=10_000)
    parser.add_argument("--tenant-filter", action="store_true", help="local mode: filter on the tenant field")
    args = parser.parse_args()
    if args.command == "schema":
        print(json.dumps(measure_schema(args.edits, args.queries, args.repeats)))
        return
    if args.command == "scale":
        print(json.dumps(measure_scale(args.backend, args.edits, args.queries, args.repeats, args.tenant_filter)))
        return
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs, shared with other jobs (noisy)", "scale": []}
    command = [sys.executable, __file__]
    results["schema"] = json.loads(
        subprocess.run(
            [*command, "schema", "--edits", "1000", "--queries", "100"], check=True, capture_output=True, text=True
        ).stdout
    )
    print(json.dumps(results["schema"]), flush=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    # qdrant-client's on-disk local mode writes each point to SQLite (~27 ms per edit here), so
    # 100k edits would take ~45 min: it is measured up to --path-max edits.
    runs = [(n, b, []) for n in sizes for b in ("memory", "path", "edge") if b != "path" or n <= args.path_max]
    runs.append((1000, "memory", ["--tenant-filter"]))  # what a multi-tenant embedded collection costs
    runs.append((10000, "memory", ["--tenant-filter"]))
    for n, backend, extra in runs:
        if True:
            queries = args.queries if n <= 10_000 else max(20, args.queries // 4)
            if extra:
                queries = 20
            row = run_json_row(
                [
                    *command,
                    "scale",
                    "--backend",
                    backend,
                    "--edits",
                    str(n),
                    *("--queries", str(queries)),
                    *("--repeats", str(args.repeats)),
                    *extra,
                ],
                {"backend": backend, "edits": n},
            )
            results["scale"].append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
