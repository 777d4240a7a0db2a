#!/usr/bin/env bash
# Wheels for the GPU check: the packages langchain_recipe.benchmarks.gpu imports that the lent
# device machine's image lacks (it has torch, transformers, accelerate, tokenizers, safetensors,
# numpy). Run HERE, in the repository root, before the device call; then carry `.whl`
# (docs/performance.md, "GPU check"). Versions are pinned to the ones installed in this
# environment; the wheels are for CPython 3.12 on x86-64 Linux (the device's Python).
#
#   bash benchmarks/gpu_wheels.sh [PYTHON]      # PYTHON: this checkout's interpreter (.venv/bin/python)
set -euo pipefail
python="${1:-.venv/bin/python}"
names="pydantic pydantic-core annotated-types typing-inspection langchain-core langchain-protocol langsmith
jsonpatch jsonpointer orjson requests-toolbelt uuid-utils zstandard httpx2 httpcore2 h2 hpack hyperframe sniffio
truststore distro"
pins=$("$python" -c 'import sys, importlib.metadata as m; print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' $names)
exclude="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
platforms=""
for n in 17 24 27 28 31 34 35 39; do platforms="$platforms --platform manylinux_2_${n}_x86_64"; done
# shellcheck disable=SC2086  # word splitting of the pins and platforms is intended
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  $platforms --platform manylinux2014_x86_64 -d .whl $pins
ls .whl
