"""RecipeKnowledgeStore retrieval on its two embedded engines, measured through the store itself.

``engine="qdrant"`` (qdrant-client's embedded mode, ``:memory:``) against ``engine="edge"``
(qdrant-edge-py, temporary folder), with the shipped RecipeModel's sizes (1024-d keys, 8 x 576
continuous prompts stored as float16 payloads). Edits are synthetic random keys and prompts
written through the store's own write path (``build_point`` and ``upsert_points`` of
``langchain_recipe.knowledge_store._write``: point layout, request batching) —
encoding 10,000 statements would measure the encoder. Queries go through
``store.retrieve_prompts`` (tenant filter where the engine applies it, top-1 ranking, the strict
sentinel gate applied once, prompt payload fetched and decoded) with ``encode_queries`` replaced by
precomputed random query keys, so the figures are the store and engine, not the query encoder
(which costs the same on both engines).

Each (engine, size) runs in a fresh subprocess. p50/p95 are medians over ``--repeats`` rounds.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python \\
        benchmarks/store_engines.py all --out benchmarks/results/store_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's langchain_recipe

from langchain_recipe.benchmarks.measure import run_json_row


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(engine: str, n: int, queries: int, repeats: int, batch: int, optimize: bool) -> dict[str, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from langchain_recipe.base_models import HuggingFaceBaseModel, default_recipe_model_path
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore, edit_point_id
    from langchain_recipe.knowledge_store._collection import register_tenant
    from langchain_recipe.knowledge_store._write import build_point, upsert_points
    from langchain_recipe.nn.recipe_model import RecipeModel

    recipe_model = RecipeModel.from_pretrained(default_recipe_model_path())
    config = recipe_model.config
    # The store only needs the base LM's hidden size and fingerprint here (no statement is
    # encoded): a one-layer random LM of SmolLM2's hidden size avoids loading SmolLM2.
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=config.lm_hidden_size,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=config.lm_hidden_size // 64,
            num_key_value_heads=1,
        )
    ).eval()
    base_model = HuggingFaceBaseModel(model=lm, tokenizer=None, name="smollm2-sized")
    # Its input embeddings are not SmolLM2's, so the store's base-LM guard would refuse it: drop
    # the fingerprint the checkpoint records (no continuous prompt is ever fed to this LM).
    config.base_model_fingerprint = ""
    arguments: dict[str, Any] = {"engine": "edge"} if engine == "edge" else {"location": ":memory:"}
    generator = torch.Generator().manual_seed(0)
    rss_before = _rss_bytes()
    store = RecipeKnowledgeStore(recipe_model, base_model, **arguments)
    register_tenant(store._shared, store.tenant)
    started = time.perf_counter()
    for start in range(0, n, 1000):
        count = min(1000, n - start)
        keys = torch.randn(count, config.knowledge_dim, generator=generator)
        prompts = torch.randn(count, config.num_prompt_tokens, config.lm_hidden_size, generator=generator) * 0.05
        payloads = [
            {
                "edit_id": f"edit-{start + i}",
                "statement": f"Synthetic statement number {start + i}.",
                "metadata": {},
                "tenant": store.tenant,
                "source": None,
                "author": None,
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
                "conflicts_with": [],
                "replaces": [],
            }
            for i in range(count)
        ]
        points = [
            build_point(store._shared, edit_point_id(p["edit_id"], p["tenant"]), p, keys[i], prompts[i])
            for i, p in enumerate(payloads)
        ]
        upsert_points(store._shared, points, store.max_request_bytes)
    insert_seconds = time.perf_counter() - started
    optimize_seconds = None
    if optimize and engine == "edge":
        started = time.perf_counter()
        store.optimize()
        optimize_seconds = round(time.perf_counter() - started, 1)
    rss_after = _rss_bytes()
    assert len(store) == n
    query_keys = torch.randn(queries, config.knowledge_dim, generator=generator)
    low_sentinel = torch.full((queries,), -1e9)  # every top hit passes the gate: its prompt is fetched
    position = {"next": 0}

    def fake_encode_queries(texts: Any) -> tuple[torch.Tensor, torch.Tensor]:
        i = position["next"]
        position["next"] = (i + len(texts)) % queries
        index = torch.arange(i, i + len(texts)) % queries
        return query_keys[index], low_sentinel[index]

    store.encode_queries = fake_encode_queries  # type: ignore[method-assign]
    store.retrieve_prompts(["warm-up"])
    p50s, p95s, batch_ms = [], [], []
    for _ in range(repeats):
        samples = []
        for _ in range(queries):
            t0 = time.perf_counter()
            (found,) = store.retrieve_prompts(["q"])
            samples.append((time.perf_counter() - t0) * 1e3)
            assert found is not None and found.prompt.shape == (config.num_prompt_tokens, config.lm_hidden_size)
        p50, p95 = _percentiles(samples)
        p50s.append(p50)
        p95s.append(p95)
        t0 = time.perf_counter()
        results = store.search_batch(["q"] * batch, k=1, gated=True)
        batch_ms.append((time.perf_counter() - t0) * 1e3)
        assert len(results) == batch and all(len(r) == 1 for r in results)
    folder = store.client.path if engine == "edge" else None
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder else 0
    store.close()
    return {
        "engine": engine + (" (optimized)" if optimize_seconds is not None else ""),
        "edits": n,
        "queries_per_round": queries,
        "rounds": repeats,
        "retrieve_prompts_p50_ms": round(statistics.median(p50s), 3),
        "retrieve_prompts_p95_ms": round(statistics.median(p95s), 3),
        f"search_batch_{batch}_ms": round(statistics.median(batch_ms), 2),
        "insert_seconds": round(insert_seconds, 1),
        "optimize_seconds": optimize_seconds,
        "rss_growth_mib": round((rss_after - rss_before) / 2**20, 1),
        "folder_mib": round(disk / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["one", "all"])
    parser.add_argument("--engine", choices=["qdrant", "edge"], default="edge")
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--optimize", action="store_true", help="edge: run the optimizers (HNSW build) before querying")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "one":
        print(json.dumps(measure(args.engine, args.edits, args.queries, args.repeats, args.batch, args.optimize)))
        return
    rows = []
    runs = [(n, engine, []) for n in (int(s) for s in args.sizes.split(",")) for engine in ("qdrant", "edge")]
    runs.append((max(int(s) for s in args.sizes.split(",")), "edge", ["--optimize"]))
    for n, engine, extra in runs:
        queries = args.queries if engine == "edge" or n <= 1000 else max(20, args.queries // 3)
        row = run_json_row(
            [
                sys.executable,
                __file__,
                "one",
                "--engine",
                engine,
                "--edits",
                str(n),
                "--queries",
                str(queries),
                *("--repeats", str(args.repeats), "--batch", str(args.batch)),
                *extra,
            ],
            {"engine": engine, "edits": n},
            error_lines=3,
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()[0]
        machine = (
            f"{os.cpu_count()} CPUs shared with a training job and other sessions (noisy; load average {load:.1f})"
        )
        args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
