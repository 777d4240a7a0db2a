"""The retrieval-only benchmark and head training (``recipe bench-retrieval`` / ``train-retrieval``)
with tiny models and hand-made data: plumbing, the one gate rule, splits, thresholds, caching, and
that trained heads do not end below the encoder's plain cosine."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from langchain_recipe.benchmarks import retrieval as R
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.nn.knowledge_sentinel import sentinel_gate
from langchain_recipe.training import losses
from langchain_recipe.training.retrieval import RetrievalTrainingConfig, selection_score, train_retrieval


def _zsre(i: int, subject: str) -> dict[str, Any]:
    return {
        "subject": subject,
        "src": f"What is the capital of {subject}?",
        "pred": "x",
        "rephrase": f"Which city is the capital of {subject}?",
        "alt": f"City{i}",
        "answers": ["y"],
        "loc": f"nq question: who sang song number {i}",
        "loc_ans": "z",
        "cond": "",
    }


def _counterfact(i: int, subject: str) -> dict[str, Any]:
    return {
        "case_id": i,
        "prompt": f"{subject} plays the",
        "target_new": f"instrument{i}",
        "subject": subject,
        "ground_truth": "guitar",
        "rephrase_prompt": f"{subject} is known for playing the",
        "locality_prompt": f"Musician{i} plays the",
        "locality_ground_truth": "piano",
    }


def _knowedit(i: int, subject: str) -> dict[str, Any]:
    return {
        "subject": subject,
        "prompt": f"The occupation of {subject} is",
        "target_new": f"job{i}",
        "ground_truth": "writer",
        "portability": {
            "Subject_Aliasing": [{"prompt": f"The occupation of {subject} Jr is", "ground_truth": f"job{i}"}]
        },
        "locality": {"Relation_Specificity": [{"prompt": f"The gender of {subject} is", "ground_truth": "male"}]},
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny data/ folder: ZsRE and CounterFact train/dev, KnowEdit, natural facts."""
    root = tmp_path / "data"
    _write(root / "zsre" / "train.jsonl", [_zsre(i, f"Land{i}") for i in range(12)])
    _write(root / "zsre" / "dev.jsonl", [_zsre(100 + i, f"Country{i}") for i in range(5)])
    _write(root / "counterfact" / "train.jsonl", [_counterfact(i, f"Player{i}") for i in range(20)])
    _write(root / "counterfact" / "dev.jsonl", [_counterfact(100 + i, f"Artist{i}") for i in range(6)])
    _write(root / "knowedit" / "wiki.jsonl", [_knowedit(i, f"Person{i}") for i in range(20)])
    _write(
        root / "natural" / "facts.jsonl",
        [
            {
                "statement": "Ada's cat is called Tom.",
                "prompt": "What is Ada's cat called?",
                "locality_prompt": "What is the capital of France?",
            },
            {"statement": "Bo lives in Oslo."},
        ],
    )
    return root


def test_split_is_by_subject_and_stable() -> None:
    splits = [R.split_of("counterfact", f"subject {i}") for i in range(400)]
    assert splits == [R.split_of("counterfact", f"subject {i}") for i in range(400)]
    assert 0.2 < splits.count("heldout") / 400 < 0.4
    assert 0.05 < splits.count("val") / 400 < 0.15
    assert "heldout" not in [R.split_of("zsre", f"subject {i}", heldout=False) for i in range(400)]


def test_benchmark_sets_keep_splits_apart(data_dir: Path) -> None:
    sets = R.benchmark_sets(
        data_dir,
        knowedit=data_dir / "knowedit" / "wiki.jsonl",
        natural=data_dir / "natural" / "facts.jsonl",
        mix_size=60,
    )
    names = [s.name for s in sets]
    assert names[:2] == ["zsre-5", "counterfact-6"]
    mix = sets[-1]
    assert len(mix.stored) == 60
    train, val = R.training_sets(data_dir, data_dir / "knowedit" / "wiki.jsonl")
    asked = {q for e in mix.edits for q in e.questions}
    # No question of the measured store is a training or validation question.
    assert not asked & {q for e in train.edits + val.edits for q in e.questions}
    # Distractors are stored but never asked; the natural fact without a question is left out.
    assert all(d.statement not in {e.statement for e in mix.edits} for d in mix.distractors)
    assert "What is Ada's cat called?" in asked
    assert {n.kind for n in mix.negatives} <= set(R.NEGATIVE_KINDS)


def test_negative_that_is_a_stored_question_is_dropped() -> None:
    edits = [R.RetrievalEdit("Chicago is a twin city of Paris", ("Chicago is a twin city of",), "counterfact")]
    negatives = [
        R.RetrievalNegative("Chicago is a twin city of", "counterfact_same_relation"),
        R.RetrievalNegative("Boston is a twin city of", "counterfact_same_relation"),
        R.RetrievalNegative("Boston is a twin city of", "counterfact_same_relation"),
    ]
    kept, dropped = R._without_stored_questions(negatives, edits)
    assert [n.text for n in kept] == ["Boston is a twin city of"]
    assert dropped == 2


def test_cosine_scorer_gates_with_the_sentinel_rule() -> None:
    """The fixed threshold, expressed as a sentinel, gives the plain cosine and a strict '>'."""
    hidden = 8
    features = torch.randn(30, 4 * hidden)
    features[:, hidden : 2 * hidden] = torch.nn.functional.normalize(features[:, hidden : 2 * hidden], dim=-1)
    statements, questions = features[:10], features[10:]
    cosine = questions[:, hidden : 2 * hidden] @ statements[:, hidden : 2 * hidden].T
    threshold = float(cosine.max(-1).values.median())
    scorer = R.CosineScorer(hidden, threshold)
    decision = scorer.decide(scorer.query_keys(questions), scorer.knowledge_keys(statements))
    assert torch.equal(decision.best_index, cosine.argmax(-1))
    assert torch.allclose(decision.best_score, cosine.max(-1).values, atol=1e-5)
    assert torch.equal(decision.accepted, decision.best_score > threshold)
    assert 0 < int(decision.accepted.sum()) < 20


def test_gate_decisions_in_chunks_equal_one_pass() -> None:
    queries, keys, sentinel = torch.randn(50, 16), torch.randn(20, 16), torch.randn(16)
    whole = sentinel_gate(queries, keys, sentinel)
    chunked = R.gate_decisions(queries, keys, sentinel, chunk_size=7)
    assert torch.equal(whole.best_index, chunked.best_index)
    assert torch.equal(whole.accepted, chunked.accepted)
    # A matrix product of another shape may round the last bit differently.
    assert torch.allclose(whole.best_score, chunked.best_score, atol=1e-6)
    assert torch.allclose(whole.sentinel_score, chunked.sentinel_score, atol=1e-6)


def test_fit_fixed_threshold_separates_when_it_can() -> None:
    hits = torch.tensor([0.8, 0.9, 0.95])
    negatives = {"a": torch.tensor([0.1, 0.5]), "b": torch.tensor([0.6, 0.7])}
    threshold = R.fit_fixed_threshold(hits, negatives)
    assert 0.7 <= threshold < 0.8
    with pytest.raises(InvalidInputError, match="larger tuning set"):
        R.fit_fixed_threshold(torch.empty(0), negatives)


def test_sentinel_over_irrelevant_loss_with_extra_negatives() -> None:
    d = 16
    r, sentinel = torch.eye(d)[:4] * 8, torch.eye(d)[10] * 8
    v = r + torch.eye(d)[10] * 6  # near its own edit, the sentinel above the other edits
    base = losses.sentinel_over_irrelevant_loss(v, r, sentinel, hinge_scale=1.2)
    assert float(
        losses.sentinel_over_irrelevant_loss(v, r, sentinel, hinge_scale=1.2, extra_negatives=torch.empty(0, d))
    ) == float(base)
    # An irrelevant edit that beats the sentinel for the first query makes the loss positive.
    intruder = (v[0] / v[0].norm() * 20).unsqueeze(0)
    assert float(
        losses.sentinel_over_irrelevant_loss(v, r, sentinel, hinge_scale=1.2, extra_negatives=intruder)
    ) > float(base)


def test_benchmark_runs_and_caches_features(
    data_dir: Path, make_recipe_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_recipe_model()
    settings = R.RetrievalBenchSettings(
        models={"tiny": tmp_path / "unused"},
        data_dir=data_dir,
        knowedit=data_dir / "knowedit" / "wiki.jsonl",
        natural=data_dir / "natural" / "facts.jsonl",
        cache_dir=tmp_path / "cache",
        mix_size=60,
        hybrid_weights=(0.0, 1.0),
    )
    results = R.run_retrieval_benchmark(settings, load_model=lambda _path: model, log=lambda _msg: None)
    unseen = len(R.benchmark_sets(data_dir, knowedit=settings.knowedit, natural=settings.natural, mix_size=60)[2].edits)
    assert list(results["sets"]) == [
        "zsre-5",
        "counterfact-6",
        f"mix-unseen-{unseen}",
        "mix-60",
    ]
    for entry in results["sets"].values():
        for metrics in entry["results"].values():
            assert 0.0 <= metrics["own_top1"] <= 1.0
            assert all(0.0 <= v <= 1.0 for v in metrics["reject"].values())
    assert set(results["sets"]["mix-60"]["results"]["tiny"]["reject"]) == set(
        R.NEGATIVE_KINDS
    )  # the natural fact's too
    markdown = R.render_markdown(results)
    assert "mix-60 (60 stored)" in markdown and "| tiny | cosine |" in markdown
    assert (
        set(results["hybrid"]["tiny"]["stores"]) == set(results["sets"]) and "hybrid, cosine keys, mix-60" in markdown
    )
    assert list((tmp_path / "cache").glob("*.safetensors"))

    # A second run reads every feature from the cache: the encoder is not called again.
    def no_encoding(_texts: Any) -> torch.Tensor:
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(model, "pooled_features", no_encoding)
    again = R.run_retrieval_benchmark(settings, load_model=lambda _path: model, log=lambda _msg: None)
    assert again["sets"] == results["sets"]


def _synthetic_table(num_edits: int, hidden: int, seed: int) -> tuple[R.RetrievalSet, R.FeatureTable]:
    """Edits whose questions' mean embedding is a noisy copy of their statement's (cosine errs),
    while the first-token block carries an exact subject signal that trained heads can use."""
    generator = torch.Generator().manual_seed(seed)
    rows: dict[str, int] = {}
    features = []

    def add(text: str, vector: torch.Tensor) -> None:
        rows[text] = len(features)
        features.append(vector)

    edits, negatives = [], []
    for i in range(num_edits):
        subject = torch.randn(hidden, generator=generator)
        meaning = torch.randn(hidden, generator=generator)
        statement = torch.cat([subject, torch.nn.functional.normalize(meaning, dim=0), torch.zeros(2 * hidden)])
        add(f"statement {i}", statement)
        questions = []
        for j in range(2):
            noisy = torch.nn.functional.normalize(meaning + 3.0 * torch.randn(hidden, generator=generator), dim=0)
            add(f"question {i}.{j}", torch.cat([subject, noisy, torch.zeros(2 * hidden)]))
            questions.append(f"question {i}.{j}")
        edits.append(R.RetrievalEdit(f"statement {i}", tuple(questions), "synthetic"))
        unrelated = torch.cat(
            [
                torch.randn(hidden, generator=generator),
                torch.nn.functional.normalize(torch.randn(hidden, generator=generator), dim=0),
                torch.zeros(2 * hidden),
            ]
        )
        add(f"unrelated {i}", unrelated)
        negatives.append(R.RetrievalNegative(f"unrelated {i}", "zsre_nq"))
    return R.RetrievalSet(f"synthetic-{num_edits}", edits, negatives), R.FeatureTable(rows, torch.stack(features))


def test_trained_heads_do_not_score_below_cosine(make_recipe_model: Any) -> None:
    """On a fixed tiny set where the cosine errs, trained heads retrieve at least as well as the
    cosine and reject unrelated questions."""
    model = make_recipe_model()
    hidden = model.config.encoder_hidden_size
    rset, table = _synthetic_table(48, hidden, seed=0)
    # The toy's signal is in the first-token block, so every feature block trains, and the gate
    # terms train every parameter (the paper's coupling).
    config = RetrievalTrainingConfig(
        max_steps=60,
        batch_size=16,
        negatives_per_step=16,
        eval_every=20,
        warmup_steps=5,
        input_blocks="all",
        gate_terms_update="all",
        spare_query_bias=False,
        head_learning_rate=3e-3,
        head_bias_learning_rate=3e-2,
        sentinel_learning_rate=3e-2,
    )
    result = train_retrieval(model, rset, rset, table, config, log=lambda _msg: None)
    trained = R.evaluate_retrieval(R.SentinelScorer(model, "trained"), rset, table)
    cosine = R.evaluate_retrieval(R.CosineScorer(hidden, 0.0), rset, table)
    assert cosine["own_top1"] < 0.9  # the set is hard for the cosine
    assert trained["own_top1"] >= cosine["own_top1"]
    assert trained["reject"]["zsre_nq"] >= 0.9
    assert result["best_selection"] == pytest.approx(selection_score(trained))
    assert not math.isnan(result["history"][-1]["selection"])


def test_training_refuses_a_trained_encoder(make_recipe_model: Any) -> None:
    model = make_recipe_model(train_encoder=True)
    rset, table = _synthetic_table(4, model.config.encoder_hidden_size, seed=1)
    with pytest.raises(InvalidInputError, match="frozen encoder"):
        train_retrieval(model, rset, rset, table, RetrievalTrainingConfig(max_steps=1))


def test_lexical_index_is_bm25_with_qdrant_idf() -> None:
    index = R.LexicalIndex(["The cat sat", "the dog", "a cat, cat"])
    scores = index.scores(["Cat?", "unknown words"])
    idf = math.log((3 - 2 + 0.5) / (2 + 0.5) + 1)
    average = (3 + 2 + 3) / 3

    def saturated(tf: int, length: int) -> float:
        return tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))

    expected = torch.tensor([[saturated(1, 3) * idf, 0.0, saturated(2, 3) * idf], [0.0, 0.0, 0.0]])
    assert torch.allclose(scores, expected, atol=1e-6)


def test_hybrid_top1_finds_the_exact_name_the_dense_key_misses() -> None:
    """Dense keys that cannot tell two subjects apart; the lexical vector can."""
    hidden = 4
    same = torch.cat(
        [torch.zeros(hidden), torch.nn.functional.normalize(torch.ones(hidden), dim=0), torch.zeros(2 * hidden)]
    )
    texts = ["Zorblat plays the flute", "Quenvik plays the harp", "What does Quenvik play?", "What does Zorblat play?"]
    table = R.FeatureTable({t: i for i, t in enumerate(texts)}, same.repeat(4, 1))
    edits = [R.RetrievalEdit(texts[0], (texts[3],), "synthetic"), R.RetrievalEdit(texts[1], (texts[2],), "synthetic")]
    rset = R.RetrievalSet("names-2", edits, [])
    result = R.hybrid_top1(R.CosineScorer(hidden, 0.0), rset, table, [0.5])
    assert result["dense"] == 0.5  # a tie: both questions get the first edit
    assert result["bm25"] == 1.0
    assert result["weighted"][0.5] == 1.0
    assert result["rrf"] >= result["dense"]  # with two edits the rank sum ties again


def test_own_over_sentinel_loss_and_per_row_hinge() -> None:
    d = 8
    r, sentinel = torch.eye(d)[:3] * 8, torch.eye(d)[7] * 8
    good = r.clone()  # each query on its own edit, far from the sentinel
    assert float(losses.own_over_sentinel_loss(good, r, sentinel, hinge_scale=1.2)) == 0.0
    bad = good.clone()
    bad[0] = sentinel  # the first query prefers the sentinel to its own edit
    kept = losses.own_over_sentinel_loss(bad, r, sentinel, hinge_scale=1.2)
    per_row = losses.own_over_sentinel_loss(bad, r, sentinel, hinge_scale=1.2, per_row=True)
    assert float(kept) > 0
    # One violated row out of three: the per-row mean is a third of the kept-row mean.
    assert float(per_row) == pytest.approx(float(kept) / 3)
