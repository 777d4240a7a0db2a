"""Why the embedded store's search is slow: qdrant-client's local mode and the query's dtype.

``RecipeKnowledgeStore.search_batch`` sends each query as a list of Python floats. qdrant-client's
local mode turns that list into a float64 NumPy array, and ``np.dot(float32 keys, float64 query)``
then copies the whole key matrix to float64 on every query. Sending the same query as a float32
array (``client.query_points(query=np.ndarray)``) skips the copy. This script times both, side by
side, on a collection of random keys (no models needed)::

    python benchmarks/query_dtype.py --sizes 1000 10000 100000 --queries 30

It prints one JSON object per size with p50/p95 milliseconds for each form and checks that both
return the same point.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from qdrant_client import QdrantClient, models

from langchain_recipe.benchmarks.measure import interleaved

KEY = "key"


def main(argv: list[str] | None = None) -> list[dict]:
    """Time list-of-floats against float32 queries for each collection size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--dim", type=int, default=1024, help="Key size (the shipped RecipeModel's knowledge_dim).")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    client = QdrantClient(location=":memory:")
    client.create_collection("keys", vectors_config={KEY: models.VectorParams(size=args.dim, distance=models.Distance.DOT)})
    rows, filled = [], 0
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    for size in sorted(args.sizes):
        for start in range(filled, size, 1000):
            count = min(1000, size - start)
            keys = rng.standard_normal((count, args.dim), dtype=np.float32)
            client.upsert("keys", models.Batch(ids=list(range(start, start + count)), vectors={KEY: keys.tolist()}), wait=True)
        filled = size
        samples = interleaved(
            {
                "list_query": lambda r: client.query_points("keys", query=queries[r % args.queries].tolist(), using=KEY, limit=1),
                "float32_query": lambda r: client.query_points("keys", query=queries[r % args.queries], using=KEY, limit=1),
            },
            args.queries,
        )
        same = all(
            client.query_points("keys", query=q.tolist(), using=KEY, limit=1).points[0].id
            == client.query_points("keys", query=q, using=KEY, limit=1).points[0].id
            for q in queries[:5]
        )
        row = {"size": size, **{name: s.summary(1000) for name, s in samples.items()}, "same_results": same}
        print(json.dumps(row))
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
