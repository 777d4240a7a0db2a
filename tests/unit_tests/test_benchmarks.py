"""Tests of the benchmark code (langchain_recipe.benchmarks) with tiny models: the measurements'
plumbing, never a speed (speed targets are reported by ``recipe bench``, not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from facts import IDS, QUERY, STATEMENTS

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.benchmarks.gpu import (
    GpuBenchmarkSettings,
    benchmark_tokenizer,
    run_gpu_benchmark,
    synthetic_records,
)
from langchain_recipe.benchmarks.gpu import main as gpu_main
from langchain_recipe.benchmarks.measure import Samples, interleaved, paired_ratio, percentile
from langchain_recipe.benchmarks.report import render_markdown, write_report
from langchain_recipe.benchmarks.suite import (
    evaluate_targets,
    exact_new_tokens,
    qdrant_search,
    store_query_request,
    stored_bytes_per_edit,
    text_rag_answers,
)
from langchain_recipe.benchmarks.synthetic import SyntheticEdits, qdrant_edge_available
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.injection import prepend_statement_text
from langchain_recipe.knowledge_store import (
    KEY_VECTOR,
    MULTIVECTOR,
    PAYLOAD_FP16,
    PROMPT_FIELD,
    RecipeKnowledgeStore,
    decode_prompt_payload,
    edit_point_id,
)


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
    synthetic.fill_store(knowledge_store, 0, 1500)
    assert len(knowledge_store) == len(STATEMENTS) + 1500
    document = knowledge_store.get_by_ids(["synthetic-1499"])[0]
    assert document.page_content.startswith("Synthetic background statement")
    # The same point layout as add_knowledge: payload fields, fp16 prompt payload, no prompt vector.
    real, fake = (knowledge_store._retrieve_points([i], with_vectors=True)[0] for i in (IDS[0], "synthetic-7"))
    assert knowledge_store.prompt_storage == PAYLOAD_FP16
    assert set(fake.payload) == set(real.payload) and PROMPT_FIELD in fake.payload
    assert set(fake.vector) == set(real.vector) == {KEY_VECTOR}
    assert fake.id == edit_point_id("synthetic-7")
    _, keys, prompts, _ = synthetic.chunk(0, 1000)  # the first piece the fill wrote
    torch.testing.assert_close(
        decode_prompt_payload(fake.payload[PROMPT_FIELD]), torch.from_numpy(prompts[7]), atol=1e-3, rtol=1e-3
    )
    np.testing.assert_allclose(fake.vector[KEY_VECTOR], keys[7] / config.knowledge_dim**0.5, rtol=1e-5)
    found = knowledge_store.search("Synthetic background statement number 3.", k=3)
    assert len(found) == 3
    assert found[0].prompt.shape == (config.num_prompt_tokens, config.lm_hidden_size)
    # Tiny keys next to real ones: the real edit for the question still comes first.
    assert knowledge_store.search(QUERY)[0].edit_id == IDS[0]
    # The suite's direct request is the store's: same best edit, prompt in the payload.
    query_keys, _sentinel = knowledge_store.encode_queries([QUERY])
    point = knowledge_store.client.query_batch_points(
        knowledge_store.collection_name, [store_query_request(knowledge_store, query_keys[0])]
    )[0].points[0]
    assert point.payload["edit_id"] == IDS[0] and PROMPT_FIELD in point.payload
    sizes = stored_bytes_per_edit(knowledge_store)
    assert (
        sizes["raw_vector_bytes_per_edit"]
        == 4 * config.knowledge_dim + 2 * config.num_prompt_tokens * config.lm_hidden_size
    )
    assert sizes["request_bytes_per_edit"] > 0


def test_qdrant_search_ranks_then_gates_strictly_like_the_store(knowledge_store: RecipeKnowledgeStore) -> None:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    questions = [QUERY, "What is the capital of France?"]
    query_keys, sentinel = knowledge_store.encode_queries(questions)
    request = store_query_request(knowledge_store, query_keys[0])
    assert request.limit == 1 and request.score_threshold is None  # ranking only: the gate comes after
    for i, edit in enumerate(knowledge_store.retrieve_prompts(questions)):
        found = qdrant_search(knowledge_store, query_keys[i], sentinel[i])
        assert [p.payload["edit_id"] for p in found] == ([] if edit is None else [edit.edit_id])
    # A tie with the sentinel is rejected (strict), where Qdrant's inclusive threshold would keep it.
    (top,) = knowledge_store.client.query_batch_points(knowledge_store.collection_name, [request])[0].points
    assert qdrant_search(knowledge_store, query_keys[0], float(np.nextafter(top.score, -np.inf))) != []
    assert qdrant_search(knowledge_store, query_keys[0], top.score) == []


def test_synthetic_fill_follows_a_multivector_store_and_its_tenant(
    recipe_model: Any, base_model: HuggingFaceBaseModel
) -> None:
    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, location=":memory:", prompt_storage=MULTIVECTOR
    )
    try:
        acme = store.for_tenant("acme")
        acme.add_knowledge(STATEMENTS, ids=IDS)
        config = recipe_model.config
        synthetic = SyntheticEdits(config.knowledge_dim, config.num_prompt_tokens, config.lm_hidden_size, key_norm=1e-3)
        synthetic.fill_store(acme, 0, 20)
        assert len(acme) == len(STATEMENTS) + 20 and len(store) == 0
        real, fake = (acme._retrieve_points([i], with_vectors=True)[0] for i in (IDS[0], "synthetic-3"))
        assert set(fake.payload) == set(real.payload) and PROMPT_FIELD not in fake.payload
        assert set(fake.vector) == set(real.vector) == {KEY_VECTOR, PROMPT_FIELD}
        assert fake.payload["tenant"] == "acme" and fake.id == edit_point_id("synthetic-3", "acme")
        query_keys, _ = acme.encode_queries([QUERY])
        point = acme.client.query_batch_points(acme.collection_name, [store_query_request(acme, query_keys[0])])[
            0
        ].points[0]
        assert point.payload["edit_id"] == IDS[0]
        assert np.asarray(point.vector[PROMPT_FIELD]).shape == (config.num_prompt_tokens, config.lm_hidden_size)
        assert stored_bytes_per_edit(acme)["raw_vector_bytes_per_edit"] == 4 * (
            config.knowledge_dim + config.num_prompt_tokens * config.lm_hidden_size
        )
        with pytest.raises(ValueError, match="do not fit"):
            SyntheticEdits(config.knowledge_dim + 1, config.num_prompt_tokens, config.lm_hidden_size).fill_store(
                acme, 0, 1
            )
    finally:
        store.close()


@pytest.mark.skipif(not qdrant_edge_available(), reason="qdrant-edge-py is not installed")
@pytest.mark.parametrize("prompt_storage", [PAYLOAD_FP16, MULTIVECTOR])
def test_edge_collection_round_trip(
    tmp_path: Path, recipe_model: Any, base_model: HuggingFaceBaseModel, prompt_storage: str
) -> None:
    from langchain_recipe.benchmarks.synthetic import EdgeCollection

    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, location=":memory:", prompt_storage=prompt_storage
    )  # type: ignore[arg-type]
    config = recipe_model.config
    synthetic = SyntheticEdits(config.knowledge_dim, config.num_prompt_tokens, config.lm_hidden_size)
    collection = EdgeCollection(
        tmp_path / "shard", config.knowledge_dim, config.lm_hidden_size, prompt_storage=prompt_storage
    )
    try:
        synthetic.fill_edge(collection, store, 0, 50)
        _, keys, prompts, _ = synthetic.chunk(0, 50)
        best = collection.search(keys[7].tolist())
        assert best[0].payload["edit_id"] == "synthetic-7"
        if prompt_storage == PAYLOAD_FP16:
            prompt = decode_prompt_payload(best[0].payload[PROMPT_FIELD])
        else:
            prompt = torch.tensor(best[0].vector[PROMPT_FIELD])
        torch.testing.assert_close(prompt, torch.from_numpy(prompts[7]), atol=1e-3, rtol=1e-3)
        assert collection.disk_bytes() > 0
        other = MULTIVECTOR if prompt_storage == PAYLOAD_FP16 else PAYLOAD_FP16
        mismatched = RecipeKnowledgeStore(
            recipe_model=recipe_model, base_model=base_model, location=":memory:", prompt_storage=other
        )  # type: ignore[arg-type]
        try:
            with pytest.raises(ValueError, match="make them equal"):
                synthetic.fill_edge(collection, mismatched, 0, 1)
        finally:
            mismatched.close()
    finally:
        collection.close()
        store.close()
    assert not (tmp_path / "shard").exists()


# ---------------------------------------------------------------------- answers
def _bare(base_model: HuggingFaceBaseModel, max_tokens: int) -> RecipeChatModel:
    bare = RecipeChatModel(max_tokens=max_tokens)
    bare._base_model = base_model
    return bare


def test_exact_new_tokens_forces_the_length_and_restores_the_config(base_model: HuggingFaceBaseModel) -> None:
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
    knowledge_store: RecipeKnowledgeStore, base_model: HuggingFaceBaseModel, force_gate: Any
) -> None:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    other = "What is the capital of France?"
    force_gate(knowledge_store, accept=[QUERY], reject=[other])
    bare = _bare(base_model, 4)
    messages, edits = text_rag_answers(knowledge_store, bare, [QUERY, other], max_tokens=4)
    assert [e.edit_id if e else None for e in edits] == [IDS[0], None]
    expected = bare.generate_batch([prepend_statement_text(STATEMENTS[0], QUERY), other], max_tokens=4)
    assert [m.content for m in messages] == [m.content for m in expected]
    prompt_tokens = [m.usage_metadata["input_tokens"] for m in messages]
    plain = bare.generate_batch([QUERY], max_tokens=4)[0].usage_metadata["input_tokens"]
    assert prompt_tokens[0] > plain  # the statement text is part of the prompt
    single, _ = text_rag_answers(knowledge_store, bare, [QUERY], max_tokens=4)
    assert single[0].content == expected[0].content


# ---------------------------------------------------------------------- GPU check, tiny on CPU
def test_gpu_benchmark_tiny_on_cpu(tmp_path: Path) -> None:
    """The whole script path (models, trainer steps, answers, JSON and markdown) with a tiny config."""
    output = tmp_path / "gpu.json"
    results = gpu_main(
        ["--tiny", "--output", str(output), "--repeats", "1", "--batch-sizes", "1", "2", "--new-tokens", "4"]
    )
    saved = json.loads(output.read_text())
    assert saved["meta"]["settings"]["hidden_size"] == GpuBenchmarkSettings.tiny().hidden_size
    assert [row["batch_size"] for row in saved["batches"]] == [1, 2]
    for row in saved["batches"]:
        assert row["new_tokens"] == {"bare": 4, "recipe": 4}
        assert row["recipe/bare"]["median"] > 0
        assert row["tokens_per_s"]["bare"] > 0
        assert row["peak_memory_bytes"] is None  # CUDA memory only
    training = saved["training"]
    assert training["steps"] == GpuBenchmarkSettings.tiny().train_steps
    assert training["steps_per_s"] > 0
    assert training["seconds_per_step"]["n"] == training["steps"]
    assert training["mixed_precision"] == "no"
    assert training["lm_dtype"] == "float32"
    assert np.isfinite([training["loss_first"], training["loss_last"]]).all()
    assert results["meta"]["lm_parameters"] > 0
    markdown = output.with_suffix(".md").read_text()
    assert "| RecipeTrainer.train_step | 2 |" in markdown
    assert markdown.count("\n| 1 |") == 1
    assert markdown.count("\n| 2 |") == 1


def test_gpu_benchmark_bf16_training_path_on_cpu(tmp_path: Path) -> None:
    """The GPU run's precision (bf16 LM weights, bf16 autocast in the trainer's Accelerator), tiny, on the CPU.

    In a subprocess: accelerate keeps one mixed-precision setting per process, and the other tests use "no".
    """
    output = tmp_path / "bf16.json"
    command = [sys.executable, "-m", "langchain_recipe.benchmarks.gpu", "--tiny", "--dtype", "bfloat16"]
    command += ["--mixed-precision", "bf16", "--batch-sizes", "2", "--repeats", "1", "--output", str(output)]
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert run.returncode == 0, run.stderr[-2000:]
    training = json.loads(output.read_text())["training"]
    assert (training["mixed_precision"], training["lm_dtype"]) == ("bf16", "bfloat16")
    assert np.isfinite(training["loss_last"])


def test_gpu_benchmark_presets() -> None:
    one_b, seven_b = GpuBenchmarkSettings(), GpuBenchmarkSettings.llama_7b()
    assert (one_b.hidden_size, one_b.num_layers, one_b.vocab_size, one_b.batch_sizes) == (2048, 16, 128256, [1, 8])
    assert (one_b.mixed_precision, one_b.dtype, one_b.device) == ("bf16", "bfloat16", "cuda")
    assert (seven_b.hidden_size, seven_b.num_layers, seven_b.tie_word_embeddings) == (4096, 32, False)
    assert one_b.hidden_size % one_b.num_heads == 0


def test_gpu_benchmark_synthetic_records_tokenize_word_by_word() -> None:
    """About one token per word, as a subword tokenizer gives: the lengths the trainer sees are realistic."""
    tokenizer = benchmark_tokenizer()
    record = synthetic_records(3)[2]
    ids = tokenizer(record.prompt, add_special_tokens=False).input_ids
    assert tokenizer.unk_token_id not in ids
    assert len(ids) <= len(record.prompt.split()) + 4  # digits and "?" are tokens of their own
    assert "<|assistant|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


def test_gpu_benchmark_refuses_cuda_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available")
    with pytest.raises(RuntimeError, match="No CUDA device"):
        run_gpu_benchmark(GpuBenchmarkSettings.tiny(device="cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_check_on_cuda(tmp_path: Path) -> None:
    """On a GPU: a 2-layer slice of the 1B shape, bf16, reports CUDA peak memory for training and answers."""
    results = gpu_main(["--layers", "2", "--train-steps", "2", "--repeats", "1", "--output", str(tmp_path / "g.json")])
    assert results["training"]["peak_memory_bytes"] > results["training"]["allocated_before_bytes"] > 0
    assert all(row["peak_memory_bytes"] > 0 for row in results["batches"])
    assert results["training"]["lm_dtype"] == "bfloat16"


# ---------------------------------------------------------------------- report
def _results() -> dict[str, Any]:
    latency = {
        name: Samples([1.0, 1.1], [0.9, 1.0]).summary(1000)
        for name in ("bare_edit_questions", "recipe_hit", "text_rag_hit", "bare_unrelated_questions", "recipe_rejected")
    }
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
                "cpu": "Test CPU",
                "logical_cpus": 2,
                "torch_threads": 2,
                "avx2": True,
                "avx512f": False,
                "avx512_bf16": False,
                "amx_bf16": False,
                "load_average": [1.0, 1.0, 1.0],
                "torch": "x",
                "transformers": "x",
                "qdrant_client": "x",
                "qdrant_edge": None,
            },
        },
        "answer_latency": [
            {
                "background_edits": 10_000,
                "batch_size": 1,
                "latency_ms": latency,
                "tokens_per_s": dict.fromkeys(latency, 30.0),
                "ratios": {
                    "recipe_hit/bare": ratio,
                    "recipe_rejected/bare": ratio,
                    "text_rag/bare": ratio,
                    "recipe_hit/text_rag": paired_ratio(Samples([1.0]), Samples([1.02])),
                },
                "cpu_ms": latency,
                "tokens_per_cpu_s": dict.fromkeys(latency, 33.0),
                "cpu_ratios": {
                    "recipe_hit/bare": cpu_ratio,
                    "recipe_rejected/bare": cpu_ratio,
                    "text_rag/bare": cpu_ratio,
                    "recipe_hit/text_rag": cpu_ratio,
                },
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
        "time_to_retrievable": [
            {"background_edits": 0, "ms": Samples([0.03]).summary(1000), "retrievable_on_first_query": 1}
        ],
        "retrieval": [
            {
                "backend": "qdrant-client :memory:",
                "background_edits": 100_000,
                "stored_edits": 100_008,
                "ms": {"qdrant_search": Samples([0.05]).summary(1000), "store_search": Samples([0.03]).summary(1000)},
                "cpu_ms": {
                    "qdrant_search": Samples([0.004]).summary(1000),
                    "store_search": Samples([0.006]).summary(1000),
                },
            },
            {
                "backend": "qdrant-client path=",
                "stored_edits": 10_000,
                "ms": {"qdrant_search": Samples([0.01]).summary(1000)},
                "disk_bytes_per_edit": 9000.0,
            },
            {"backend": "qdrant-edge", "skipped": "qdrant-edge-py is not installed"},
        ],
        "fill": [{"backend": "qdrant-client :memory:", "edits": 1000, "edits_per_s": 900.0}],
        "memory": {
            "raw_vector_bytes_per_edit": 11008,
            "rss_after_load_bytes": 2**30,
            "rss_bytes": [{"background_edits": 0, "rss_bytes": 2**30}],
            "peak_rss_bytes": 2**31,
        },
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
    # The store's own search step (key index) is judged, not Qdrant's search: 6 ms CPU misses 5 ms.
    store_search = targets["retrieval p50 at 100k edits, ms (qdrant-client :memory:, store search)"]
    assert store_search["measured"] == pytest.approx(6.0) and store_search["met"] is False
    assert targets["bytes per stored edit (qdrant-client path=, largest store, on disk)"]["met"] is False
    results["targets"] = list(targets.values())
    json_path, markdown_path = write_report(results, tmp_path / "out")
    assert json.loads(json_path.read_text())["edit_throughput"]["batched_edits_per_cpu_s"] == 250.0
    markdown = markdown_path.read_text()
    assert markdown == render_markdown(results)
    assert "| batched edit throughput (edits/s) | >= 200 | 250 | 200 | yes |" in markdown
    assert (
        "| bytes per stored edit (qdrant-client path=, largest store, on disk) | <= 8192 | - | 9,000 | **no** |"
        in markdown
    )
    assert "### Batch 1, CPU time" in markdown and "### Batch 1, wall clock" in markdown
    assert "skipped: qdrant-edge-py is not installed" in markdown
    assert "| 10,000 | 1050.0 (1000.0-1100.0)" in markdown
    assert "| qdrant-client :memory: | 100,008 | 4.00 / 4.00 | 6.00 / 6.00 | - |" in markdown


def test_suite_store_measurements_run_on_the_store_schema(
    knowledge_store: RecipeKnowledgeStore, tmp_path: Path
) -> None:
    """The suite's fill, direct-request retrieval and backend parts on a tiny store (no timing checked)."""
    from types import SimpleNamespace

    from langchain_recipe.benchmarks.suite import SuiteSettings, _Suite

    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    config = knowledge_store.recipe_model.config
    settings = SuiteSettings(path_sizes=[30], backend_sizes=[30], retrieval_queries=2, backends=["path", "edge"])
    suite = _Suite(settings, log=lambda line: None)
    suite.store = knowledge_store
    suite.records = [SimpleNamespace(prompt=QUERY, locality_prompt="What is the capital of France?")]
    suite.synthetic = SyntheticEdits(
        config.knowledge_dim, config.num_prompt_tokens, config.lm_hidden_size, key_norm=1e-3
    )
    assert suite.fill_memory(40, 0) == 40
    assert len(knowledge_store) == len(STATEMENTS) + 40
    suite.retrieval_memory(40)
    suite.retrieval_backends(tmp_path)
    backends = [row["backend"] for row in suite.results["retrieval"]]
    assert backends[:2] == ["qdrant-client :memory:", "qdrant-client path="]
    edge = [row for row in suite.results["retrieval"] if row["backend"] == "qdrant-edge"]
    assert len(edge) == 1  # measured where qdrant-edge-py is installed, else a row saying it was skipped
    assert ("ms" in edge[0]) == qdrant_edge_available()
    assert ("skipped" in edge[0]) != qdrant_edge_available()
    assert all(row["ms"]["qdrant_search"]["median"] > 0 for row in suite.results["retrieval"] if "ms" in row)
    assert [row["backend"] for row in suite.results["fill"]][:2] == ["qdrant-client :memory:", "qdrant-client path="]
