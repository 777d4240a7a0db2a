"""RECIPE vs bare-LM latency and batched throughput for a 7B-shaped Llama with random weights.

On a CUDA machine (bf16, hidden 4096, 32 layers, batch 1/8/32)::

    python benchmarks/gpu_benchmark.py --output benchmarks/results/gpu.json

CPU smoke run with a tiny config (seconds)::

    python benchmarks/gpu_benchmark.py --tiny --output /tmp/gpu-smoke.json

See ``langchain_recipe.benchmarks.gpu`` for what is measured and ``docs/performance.md``.
"""

from __future__ import annotations

from langchain_recipe.benchmarks.gpu import main

if __name__ == "__main__":
    main()
