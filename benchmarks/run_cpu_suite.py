"""The CPU benchmark suite from a source checkout (the same as ``recipe bench``)::

    python benchmarks/run_cpu_suite.py --quick --output-dir benchmarks/results

Every option of ``recipe bench`` is accepted; see ``docs/performance.md``.
"""

from __future__ import annotations

import sys

from langchain_recipe.cli import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]])
