"""Own-edit top-1, dense against hybrid retrieval, measured through RecipeKnowledgeStore itself.

``recipe bench-retrieval`` simulates hybrid retrieval in process (``LexicalIndex``); this
script stores the same edits (``langchain_recipe.benchmarks.retrieval.benchmark_sets``: ZsRE dev
500, and the 10,000-edit mix) in an embedded in-memory store opened with
``retrieval="hybrid"`` and the shipped RecipeModel, so the keys, sparse vectors, Qdrant's IDF
modifier and the fusion are the store's own. Each edit question and paraphrase is encoded
once (``store.encode_queries``) and searched through the store's read chain (``search_points``,
what ``search_batch(k=1)`` runs) for each weight; it is right when the top edit is its own or
holds the very same statement (the benchmark's rule). Statements longer than the RecipeModel
reads are refused by the store (the benchmark keeps them): the count is reported, and their
questions count as misses. Dense is the same store with ``hybrid_weight=0`` (the fused score is
the dense score, over the same candidates).

qdrant-client's embedded mode scores sparse vectors in Python, point by point (about 23 ms per
query at 500 edits on one thread), so the 10,000-edit mix runs on ``--engine edge``
(qdrant-edge-py: the same sparse vectors and IDF modifier, in Rust):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/store_hybrid.py --sets zsre-500
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/store_hybrid.py --engine edge --sets zsre-500 mix-10000 \\
        --out benchmarks/results/retrieval/store_hybrid_edge.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's langchain_recipe

import torch

from langchain_recipe.benchmarks.retrieval import RetrievalSet, benchmark_sets
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.knowledge_store._read import search_points
from langchain_recipe.knowledge_store._sparse import DEFAULT_HYBRID_WEIGHT


def _normalised(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" ?.")


def measure(rset: RetrievalSet, weights: list[float], engine: str = "qdrant", batch: int = 256) -> dict[str, Any]:
    """Own-edit top-1 of ``rset``'s questions for each fusion weight (0: dense), in one hybrid store."""
    tick = time.perf_counter()
    store = RecipeKnowledgeStore(retrieval="hybrid", on_conflict="keep_both", engine=engine)  # type: ignore[arg-type]
    stored = rset.stored
    ids = [str(i) for i in range(len(stored))]
    refused = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, len(stored), batch):
            part = range(start, min(start + batch, len(stored)))
            try:
                store.add_knowledge([stored[i].statement for i in part], ids=[ids[i] for i in part])
            except InvalidInputError:  # a statement longer than the RecipeModel reads: the rest one by one
                for i in part:
                    try:
                        store.add_knowledge([stored[i].statement], ids=[ids[i]])
                    except InvalidInputError:
                        refused.append(i)
    written = time.perf_counter() - tick
    statements = [_normalised(e.statement) for e in stored]
    questions = [(q, i) for i, e in enumerate(rset.edits) for q in e.questions]
    result: dict[str, Any] = {
        "stored": len(stored) - len(refused),
        "refused_statements": len(refused),  # too long for the RecipeModel; their questions count as misses
        "questions": len(questions),
        "write_seconds": written,
    }
    tick = time.perf_counter()
    texts = [q for q, _ in questions]
    encoded = [store.encode_queries(texts[start : start + batch]) for start in range(0, len(texts), batch)]
    result["encode_seconds"] = time.perf_counter() - tick
    for weight in weights:
        store._shared.hybrid_weight = weight
        right = 0
        tick = time.perf_counter()
        for n, (keys, sentinel) in enumerate(encoded):  # the read chain of search_batch, queries encoded once
            part = questions[n * batch : (n + 1) * batch]
            found = search_points(
                store._shared,
                store.tenant,
                keys,
                sentinel,
                1,
                gated=False,
                with_prompt=False,
                queries=texts[n * batch : (n + 1) * batch],
            )
            for hits, (_, own) in zip(found, part, strict=True):
                best = int(hits[0].record.payload["edit_id"]) if hits else -1
                right += best == own or (best >= 0 and statements[best] == statements[own])
        result["dense" if weight == 0 else f"hybrid_w{weight:g}"] = right / len(questions)
        result[f"search_seconds_w{weight:g}"] = time.perf_counter() - tick
    store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["zsre-500"], help="zsre-500, counterfact-1000, mix-10000")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, DEFAULT_HYBRID_WEIGHT])
    parser.add_argument("--engine", choices=["qdrant", "edge"], default="qdrant", help="qdrant: embedded :memory:")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = {s.name: s for s in benchmark_sets()}
    results = {}
    for name in args.sets:
        results[name] = {"engine": args.engine, **measure(sets[name], args.weights, args.engine)}
        print(name, json.dumps(results[name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
