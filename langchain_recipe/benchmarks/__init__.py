"""Side-by-side performance measurements: the CPU suite behind ``recipe bench`` and the GPU script.

Speed targets are checked here, as ratios of variants measured in one run, never as timed tests.
See ``docs/performance.md``.
"""

from langchain_recipe.benchmarks.suite import SuiteSettings, run_cpu_suite, text_rag_answers

__all__ = ["SuiteSettings", "run_cpu_suite", "text_rag_answers"]
