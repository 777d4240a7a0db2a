"""Why the embedded store's search is slow: qdrant-client's local mode searches in float64.

qdrant-client's local mode (``QdrantClient(":memory:")`` / ``path=``) turns every dense query into
a float64 NumPy array (a list of floats, and a float32 array too, since the client converts it to
a list first) and computes ``np.dot(float32 keys, float64 query)``, which copies the whole key
matrix to float64 on every query, then sorts all scores. This script times, side by side on the
same random keys (no models needed):

* ``qdrant_local``: ``client.query_points`` for the best point (what the store's search pays);
* ``numpy_float64``: the same exhaustive scan as qdrant-client does it (float64 query);
* ``numpy_float32``: the scan with a float32 query and ``argmax`` (no copy, no full sort);
* ``torch_float32``: ``keys @ query`` and ``topk`` in torch (what a store-side key matrix costs).

Run::

    python benchmarks/query_dtype.py --sizes 1000 10000 100000 --queries 30

It prints one JSON object per size (p50/p95 milliseconds of wall and of this process's CPU time)
and checks that all four find the same best key.
"""

from __future__ import annotations

import argparse
import json
import os

# One BLAS thread, set before NumPy loads: idle OpenBLAS threads busy-wait, which would count as
# this process's CPU time.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch
from qdrant_client import QdrantClient, models

from langchain_recipe.benchmarks.measure import interleaved

KEY = "key"


def main(argv: list[str] | None = None) -> list[dict]:
    """Time qdrant-client local search against float64/float32 scans for each collection size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--dim", type=int, default=1024, help="Key size (the shipped RecipeModel's knowledge_dim).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "keys", vectors_config={KEY: models.VectorParams(size=args.dim, distance=models.Distance.DOT)}
    )
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    parts: list[np.ndarray] = []
    rows, filled = [], 0
    for size in sorted(args.sizes):
        for start in range(filled, size, 1000):
            count = min(1000, size - start)
            keys = rng.standard_normal((count, args.dim), dtype=np.float32)
            parts.append(keys)
            client.upsert(
                "keys", models.Batch(ids=list(range(start, start + count)), vectors={KEY: keys.tolist()}), wait=True
            )
        filled = size
        matrix = np.concatenate(parts)
        tensor = torch.from_numpy(matrix)

        def scan64(r: int, matrix: np.ndarray = matrix) -> int:
            return int(np.argsort(np.dot(matrix, np.array(queries[r % args.queries].tolist())))[-1])

        variants = {
            "qdrant_local": lambda r: (
                client.query_points("keys", query=queries[r % args.queries].tolist(), using=KEY, limit=1).points[0].id
            ),
            "numpy_float64": scan64,
            "numpy_float32": lambda r, matrix=matrix: int(np.argmax(matrix @ queries[r % args.queries])),
            "torch_float32": lambda r, tensor=tensor: int(
                torch.topk(tensor @ torch.from_numpy(queries[r % args.queries]), 1).indices[0]
            ),
        }
        samples = interleaved(variants, args.queries)
        same = all(len({variant(i) for variant in variants.values()}) == 1 for i in range(min(5, args.queries)))
        row = {
            "size": size,
            "wall_ms": {name: s.summary(1000) for name, s in samples.items()},
            "cpu_ms": {name: s.summary(1000, cpu=True) for name, s in samples.items()},
            "same_best_key": same,
        }
        print(json.dumps(row))
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
