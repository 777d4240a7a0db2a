"""Tests of the benchmark code (langchain_recipe.benchmarks) with tiny models: the measurements'
plumbing, never a speed (speed targets are reported by ``recipe bench``, not asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from langchain_recipe.base_models import BaseLanguageModel
from langchain_recipe.benchmarks.gpu import GpuBenchmarkSettings, main as gpu_main, run_gpu_benchmark
from langchain_recipe.benchmarks.measure import Samples, interleaved, paired_ratio, percentile
from langchain_recipe.benchmarks.report import render_markdown, write_report
from langchain_recipe.benchmarks.suite import TEXT_RAG_TEMPLATE, evaluate_targets, exact_new_tokens, text_rag_answers
from langchain_recipe.benchmarks.synthetic import SyntheticEdits, qdrant_edge_available
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.knowledge_store import RecipeKnowledgeStore

from facts import IDS, QUERY, STATEMENTS


# ---------------------------------------------------------------------- measure
def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="at least one"):
        percentile([], 50)


def test_interleaved_rotates_the_order_of_variants() -> None:
    calls: list[tuple[str, int]] = []
    variants = {name: (lambda repeat, name=name: calls.append((name, repeat))) for name in "ABC"}
    samples = interleaved(variants, 3)
    assert [name for name, _ in calls] == list("ABCBCACAB")
    assert all(len(s.values) == 3 for s in samples.values())


def test_paired_ratio_uses_back_to_back_pairs() -> None:
    slow, fast = Samples([2.0, 4.0, 30.0]), Samples([1.0, 2.0, 10.0])
    ratio = paired_ratio(slow, fast)
    assert ratio["median"] == pytest.approx(2.0)
    assert ratio["max"] == pytest.approx(3.0)
    assert ratio["ratio_of_medians"] == pytest.approx(2.0)


# ---------------------------------------------------------------------- synthetic edits
def test_synthetic_edits_are_deterministic_with_the_requested_norm() -> None:
    synthetic = SyntheticEdits(knowledge_dim=16, num_prompt_tokens=3, lm_hidden_size=8, key_norm=2.5)
    ids, keys, prompts, payloads = synthetic.chunk(10, 4)
    assert ids == [f"synthetic-{i}" for i in range(10, 14)]
    assert keys.shape == (4, 16) and keys.dtype == np.float32
    assert prompts.shape == (4, 3, 8)
    np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 2.5, rtol=1e-5)
    assert payloads[0]["edit_id"] == "synthetic-10" and payloads[0]["statement"]
    again = synthetic.chunk(10, 4)
    np.testing.assert_array_equal(keys, again[1])


def test_synthetic_fill_lands_in_the_store_schema(knowledge_store: RecipeKnowledgeStore) -> None:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    config = knowledge_store.recipe_model.config
    synthetic = SyntheticEdits(config.knowledge_dim, config.num_prompt_tokens, config.lm_hidden_size, key_norm=1e-3)
    synthetic.fill_qdrant(knowledge_store.client, knowledge_store.collection_name, 0, 1500)
    assert len(knowledge_store) == len(STATEMENTS) + 1500
    document = knowledge_store.get_by_ids(["synthetic-1499"])[0]
    assert document.page_content.startswith("Synthetic background statement")
    found = knowledge_store.search("Synthetic background statement number 3.", k=3)
    assert len(found) == 3
    assert found[0].prompt.shape == (config.num_prompt_tokens, config.lm_hidden_size)
    # Tiny keys next to real ones: the real edit for the question still comes first.
    assert knowledge_store.search(QUERY)[0].edit_id == IDS[0]


@pytest.mark.skipif(not qdrant_edge_available(), reason="qdrant-edge-py is not installed")
def test_edge_collection_round_trip(tmp_path: Path) -> None:
    from langchain_recipe.benchmarks.synthetic import EdgeCollection

    synthetic = SyntheticEdits(knowledge_dim=16, num_prompt_tokens=3, lm_hidden_size=8)
    collection = EdgeCollection(tmp_path / "shard", 16, 8)
    try:
        synthetic.fill_edge(collection, 0, 50)
        _, keys, _, _ = synthetic.chunk(0, 50)
        best = collection.search(keys[7].tolist())
        assert best[0].payload["edit_id"] == "synthetic-7"
        assert collection.disk_bytes() > 0
    finally:
        collection.close()
    assert not (tmp_path / "shard").exists()


# ---------------------------------------------------------------------- answers
def _bare(base_model: BaseLanguageModel, max_tokens: int) -> RecipeChatModel:
    bare = RecipeChatModel(max_tokens=max_tokens)
    bare._base_model = base_model
    return bare


def test_exact_new_tokens_forces_the_length_and_restores_the_config(base_model: BaseLanguageModel) -> None:
    model = base_model.model
    eos = model.generation_config.eos_token_id
    before = model.generation_config.min_new_tokens
    input_ids = torch.tensor([[base_model.tokenizer.cls_token_id, 5, 6, 7]])
    # Make end-of-sequence the only likely token: without the forcing, generation stops at once.
    bias = torch.zeros(model.config.vocab_size)
    bias[eos] = 1e4
    handle = model.lm_head.register_forward_hook(lambda module, args, output: output + bias)
    try:
        free = model.generate(input_ids=input_ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
        with exact_new_tokens(model, 6):
            forced = model.generate(input_ids=input_ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
    finally:
        handle.remove()
    assert free.shape[1] - input_ids.shape[1] == 1
    assert forced.shape[1] - input_ids.shape[1] == 6
    assert model.generation_config.min_new_tokens == before


def test_text_rag_prepends_the_accepted_statement(
    knowledge_store: RecipeKnowledgeStore, base_model: BaseLanguageModel, force_gate: Any
) -> None:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    other = "What is the capital of France?"
    force_gate(knowledge_store, accept=[QUERY], reject=[other])
    bare = _bare(base_model, 4)
    messages, edits = text_rag_answers(knowledge_store, bare, [QUERY, other], max_tokens=4)
    assert [e.edit_id if e else None for e in edits] == [IDS[0], None]
    expected = bare.generate_batch([TEXT_RAG_TEMPLATE.format(statement=STATEMENTS[0], question=QUERY), other], max_tokens=4)
    assert [m.content for m in messages] == [m.content for m in expected]
    prompt_tokens = [m.usage_metadata["input_tokens"] for m in messages]
    plain = bare.generate_batch([QUERY], max_tokens=4)[0].usage_metadata["input_tokens"]
    assert prompt_tokens[0] > plain  # the statement text is part of the prompt
    single, _ = text_rag_answers(knowledge_store, bare, [QUERY], max_tokens=4)
    assert single[0].content == expected[0].content


# ---------------------------------------------------------------------- GPU script, tiny on CPU
def test_gpu_benchmark_tiny_on_cpu(tmp_path: Path) -> None:
    output = tmp_path / "gpu.json"
    results = gpu_main(["--tiny", "--output", str(output), "--repeats", "1", "--batch-sizes", "1", "2", "--new-tokens", "4"])
    saved = json.loads(output.read_text())
    assert saved["meta"]["settings"]["hidden_size"] == GpuBenchmarkSettings.tiny().hidden_size
    assert [row["batch_size"] for row in saved["batches"]] == [1, 2]
    for row in saved["batches"]:
        assert row["new_tokens"] == {"bare": 4, "recipe": 4}
        assert row["recipe/bare"]["median"] > 0
        assert row["tokens_per_s"]["bare"] > 0
    assert results["meta"]["lm_parameters"] > 0


def test_gpu_benchmark_refuses_cuda_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available")
    with pytest.raises(RuntimeError, match="No CUDA device"):
        run_gpu_benchmark(GpuBenchmarkSettings.tiny(device="cuda"))


# ---------------------------------------------------------------------- report
def _results() -> dict[str, Any]:
    latency = {name: Samples([1.0, 1.1], [0.9, 1.0]).summary(1000) for name in ("bare_edit_questions", "recipe_hit", "text_rag_hit", "bare_unrelated_questions", "recipe_rejected")}
    ratio = paired_ratio(Samples([1.01, 1.0]), Samples([1.0, 1.0]))
    cpu_ratio = paired_ratio(Samples([1.0], [1.03]), Samples([1.0], [1.0]), cpu=True)
    checks = {name: {"answers": 2, "exact_length": 2, "edit_applied": 2, "right_edit": 2} for name in latency}
    return {
        "meta": {
            "started": "2026-01-01T00:00:00+00:00",
            "finished": "2026-01-01T00:05:00+00:00",
            "seconds": 300.0,
            "load_average_end": [3.0, 3.0, 3.0],
            "settings": {"repeats": 2, "max_new_tokens": 32, "batch_sizes": [1]},
            "machine": {
                "cpu": "Test CPU", "logical_cpus": 2, "torch_threads": 2, "avx2": True, "avx512f": False,
                "avx512_bf16": False, "amx_bf16": False, "load_average": [1.0, 1.0, 1.0], "torch": "x",
                "transformers": "x", "qdrant_client": "x", "qdrant_edge": None,
            },
        },
        "answer_latency": [
            {
                "background_edits": 10_000, "batch_size": 1, "latency_ms": latency,
                "tokens_per_s": dict.fromkeys(latency, 30.0),
                "ratios": {"recipe_hit/bare": ratio, "recipe_rejected/bare": ratio, "text_rag/bare": ratio, "recipe_hit/text_rag": paired_ratio(Samples([1.0]), Samples([1.02]))},
                "cpu_ms": latency,
                "tokens_per_cpu_s": dict.fromkeys(latency, 33.0),
                "cpu_ratios": {"recipe_hit/bare": cpu_ratio, "recipe_rejected/bare": cpu_ratio, "text_rag/bare": cpu_ratio, "recipe_hit/text_rag": cpu_ratio},
                "checks": checks,
            }
        ],
        "edit_throughput": {
            "batch_size": 100,
            "batched_call_ms": Samples([0.5]).summary(1000),
            "batched_call_cpu_ms": Samples([0.4]).summary(1000),
            "batched_edits_per_s": 200.0,
            "batched_edits_per_cpu_s": 250.0,
            "single_call_ms": Samples([0.02]).summary(1000),
            "single_call_cpu_ms": Samples([0.02]).summary(1000),
            "single_edits_per_s": 50.0,
            "single_edits_per_cpu_s": 50.0,
        },
        "time_to_retrievable": [{"background_edits": 0, "ms": Samples([0.03]).summary(1000), "retrievable_on_first_query": 1}],
        "retrieval": [
            {
                "backend": "qdrant-client :memory:", "background_edits": 100_000, "stored_edits": 100_008,
                "ms": {"qdrant_search": Samples([0.05]).summary(1000)}, "cpu_ms": {"qdrant_search": Samples([0.004]).summary(1000)},
            },
            {"backend": "qdrant-client path=", "stored_edits": 10_000, "ms": {"qdrant_search": Samples([0.01]).summary(1000)}, "disk_bytes_per_edit": 9000.0},
            {"backend": "qdrant-edge", "skipped": "qdrant-edge-py is not installed"},
        ],
        "fill": [{"backend": "qdrant-client :memory:", "edits": 1000, "edits_per_s": 900.0}],
        "memory": {"raw_vector_bytes_per_edit": 11008, "rss_after_load_bytes": 2**30, "rss_bytes": [{"background_edits": 0, "rss_bytes": 2**30}], "peak_rss_bytes": 2**31},
    }


def test_targets_and_markdown_report(tmp_path: Path) -> None:
    results = _results()
    targets = {t["target"]: t for t in evaluate_targets(results)}
    # Judged on CPU time where it was recorded: 1.03 misses although the wall-clock ratio is 1.005.
    assert targets["RECIPE/bare answer latency at 10k edits, batch 1"]["met"] is False
    assert targets["RECIPE/bare answer latency at 10k edits, batch 1"]["wall"] == pytest.approx(1.005)
    assert targets["RECIPE/text-RAG answer latency at 10k edits, batch 1"]["met"] is False
    assert targets["batched edit throughput (edits/s)"]["measured"] == 250.0
    assert targets["batched edit throughput (edits/s)"]["met"] is True
    assert targets["retrieval p50 at 100k edits, ms (qdrant-client :memory:, the store's request)"]["met"] is True
    assert targets["bytes per stored edit (qdrant-client path=, largest store, on disk)"]["met"] is False
    results["targets"] = list(targets.values())
    json_path, markdown_path = write_report(results, tmp_path / "out")
    assert json.loads(json_path.read_text())["edit_throughput"]["batched_edits_per_cpu_s"] == 250.0
    markdown = markdown_path.read_text()
    assert markdown == render_markdown(results)
    assert "| batched edit throughput (edits/s) | >= 200 | 250 | 200 | yes |" in markdown
    assert "| bytes per stored edit (qdrant-client path=, largest store, on disk) | <= 8192 | - | 9,000 | **no** |" in markdown
    assert "### Batch 1, CPU time" in markdown and "### Batch 1, wall clock" in markdown
    assert "skipped: qdrant-edge-py is not installed" in markdown
    assert "| 10,000 | 1050.0 (1000.0-1100.0)" in markdown
