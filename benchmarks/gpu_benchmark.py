"""The GPU check (issue 18): RECIPE training steps/s and peak memory, and answer latency against the bare LM.

Same as ``python -m langchain_recipe.benchmarks.gpu``. On a CUDA machine (Llama 3.2 1B shape,
random weights, bf16; ``--preset 7b`` for Llama 2 7B's)::

    python benchmarks/gpu_benchmark.py --output benchmarks/results/gpu.json

CPU smoke run with a tiny config (seconds)::

    python benchmarks/gpu_benchmark.py --tiny --output /tmp/gpu-smoke.json

On a lent device machine, ``benchmarks/gpu_check.sh`` runs it with the wheels it needs. See
``langchain_recipe.benchmarks.gpu`` for what is measured and ``docs/performance.md``.
"""

from __future__ import annotations

from langchain_recipe.benchmarks.gpu import main

if __name__ == "__main__":
    main()
