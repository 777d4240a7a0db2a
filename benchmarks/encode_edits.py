"""Edit encoding cost: one encoder pass per added statement against two.

``RecipeKnowledgeStore.add_knowledge`` needs, for each new statement, its knowledge key and
continuous prompt (the edit) and its query representation (the conflict check runs the statement
as a query). This script times, interleaved in one process with the bundled SmolLM2 and the
shipped RecipeModel on the demo's ZsRE statements:

* ``two_passes``: ``encode_edits`` then ``encode_queries`` (MiniLM runs twice per statement);
* ``one_pass``: ``encode_edits_with_queries`` (both heads read one pooled pass; statements
  batched by length), what the store calls.

Run::

    python benchmarks/encode_edits.py --statements 96 --repeats 4

It prints the CPU seconds of each repeat and the median edits per CPU second, as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from langchain_recipe.base_models import default_recipe_model_path, load_base_model
from langchain_recipe.nn import RecipeModel

DEMO_EDITS = Path(__file__).resolve().parents[1] / "langchain_recipe" / "resources" / "zsre_demo.jsonl"


def main() -> None:
    """Parse arguments, time both variants interleaved, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = [json.loads(line) for line in DEMO_EDITS.read_text().splitlines() if line.strip()]
    statements = [f"{r['src']} {r['alt']}" for r in records][: args.statements]
    base_model = load_base_model()
    model = RecipeModel.from_pretrained(default_recipe_model_path()).eval()

    @torch.no_grad()
    def two_passes() -> None:
        model.encode_edits(statements, base_model, batch_size=32)
        model.encode_queries(statements)

    @torch.no_grad()
    def one_pass() -> None:
        model.encode_edits_with_queries(statements, base_model, batch_size=32)

    variants = {"two_passes": two_passes, "one_pass": one_pass}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        order = list(variants) if repeat % 2 == 0 else list(reversed(variants))
        for name in order:
            tick = time.process_time()
            variants[name]()
            seconds[name].append(time.process_time() - tick)
    print(
        json.dumps(
            {
                "statements": len(statements),
                "threads": args.threads,
                "cpu_seconds": seconds,
                "edits_per_cpu_second": {name: len(statements) / statistics.median(v) for name, v in seconds.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
