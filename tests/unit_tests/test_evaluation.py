"""Tests of the evaluation harness (langchain_recipe.evaluation) with the tiny models.

Hand-checkable values: a 2-token target with one argmax right scores 0.5; perplexity of two
tokens of probability 1/2 each is 2; the label boundary keeps the target as the tail of the
joint tokenisation; the locality reference comes from the bare LM, never the edited repository;
single-edit chunks leave nothing behind for the next edit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.datasets import EditRecord
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.evaluation import (
    EditRepository,
    EvaluationConfig,
    GeneralAbilityData,
    LifelongEvaluation,
    agreement,
    evaluate_edits,
    exact_match,
    greedy_continuations,
    load_bundled_general_ability,
    load_general_ability,
    load_report,
    perplexity,
    render_markdown,
    target_log_likelihoods,
    teacher_forced_predictions,
    text_rag_question,
    token_accuracy,
    write_report,
)
from langchain_recipe.evaluation import metrics as metrics_module
from langchain_recipe.injection import IGNORE_INDEX
from langchain_recipe.nn import RecipeModel
from langchain_recipe.teacher_forcing import build_teacher_forced_batch

ABRIT_QUESTION = "On which continent is Abrit Nunatak located?"
ABRIT_TARGET = "South America"

SMALL_GENERAL = GeneralAbilityData(
    passages=("The river runs to the sea.", "Bread needs flour and water."),
    questions=("What is the capital of France?", "How many legs does a spider have?"),
    choices=(("Paris", "Rome"), ("six", "eight")),
    answers=(0, 1),
    source={"test": True},
)


def _config(**overrides: Any) -> EvaluationConfig:
    values: dict[str, Any] = {"edit_counts": ["all"], "exact_match": False, "general_ability": False, "shuffle": False}
    return EvaluationConfig(**{**values, **overrides})


def _run(model: RecipeModel, lm: HuggingFaceBaseModel, records: list[EditRecord], **overrides: Any) -> Any:
    general = overrides.pop("general", None)
    evaluation = LifelongEvaluation(model, lm, records, _config(**overrides), general_ability=general, progress=False)
    return evaluation, evaluation.run()


# ---------------------------------------------------------------------- metrics, hand-checkable
def test_two_token_target_with_one_argmax_right_scores_one_half() -> None:
    predicted, labels = torch.tensor([101, 7]), torch.tensor([101, 9])
    assert token_accuracy([(predicted, labels)]) == [0.5]
    assert token_accuracy([(labels, labels), (torch.tensor([1, 2]), labels)]) == [1.0, 0.0]


def test_teacher_forced_pipeline_scores_one_half_from_hand_made_logits(
    base_model: HuggingFaceBaseModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From logits to score: argmax right on the first of two target tokens only."""
    tokenizer = base_model.tokenizer
    target_ids = tokenizer("lisbon portugal", add_special_tokens=False)["input_ids"]
    assert len(target_ids) == 2
    vocab = len(tokenizer)

    def fake_label_logits(lm: Any, batch: Any, prompts: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labels = batch.labels[batch.labels != IGNORE_INDEX]
        assert labels.tolist() == target_ids
        logits = torch.zeros(2, vocab)
        logits[0, target_ids[0]] = 5.0  # right
        logits[1, target_ids[0]] = 5.0  # wrong: predicts the first token again
        return logits, labels, torch.zeros(2, dtype=torch.long)

    monkeypatch.setattr(metrics_module, "label_logits", fake_label_logits)
    predictions = teacher_forced_predictions(base_model, ["Where is the Zephyr Tower?"], ["Lisbon Portugal"])
    assert token_accuracy(predictions) == [0.5]
    assert agreement(predictions, [(torch.tensor(target_ids), torch.tensor(target_ids))]) == [0.5]


def test_label_boundary_keeps_the_target_as_the_tail_of_the_joint_tokenisation(tokenizer: Any) -> None:
    batch = build_teacher_forced_batch(tokenizer, [ABRIT_QUESTION], [ABRIT_TARGET])
    labels = batch.labels[0][batch.labels[0] != IGNORE_INDEX].tolist()
    joint = tokenizer(f"{ABRIT_QUESTION} {ABRIT_TARGET}", add_special_tokens=False)["input_ids"]
    target = tokenizer(ABRIT_TARGET, add_special_tokens=False)["input_ids"]
    assert labels == joint[-len(labels) :]
    assert labels == target
    assert tokenizer.decode(labels) == "south america"


def test_agreement_rejects_rows_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="same texts"):
        agreement([(torch.tensor([1, 2]), torch.tensor([1, 2]))], [(torch.tensor([1]), torch.tensor([1]))])


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        (" Lisbon, the capital", "Lisbon", True),
        ("lisbon.", "Lisbon", True),
        ("  South   America is", "South America", True),
        ("Lisbonne", "Lisbon", False),
        ("It is Lisbon", "Lisbon", False),
        ("", "Lisbon", False),
    ],
)
def test_exact_match(generated: str, target: str, expected: bool) -> None:
    assert exact_match(generated, target) is expected


def test_perplexity_is_pooled_over_tokens() -> None:
    assert perplexity([(2 * math.log(0.5), 2)]) == pytest.approx(2.0)
    assert perplexity([(math.log(0.5), 1), (3 * math.log(0.5), 3)]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least one"):
        perplexity([])


def test_target_log_likelihoods_match_the_softmax(base_model: HuggingFaceBaseModel) -> None:
    ((total, count),) = target_log_likelihoods(base_model, [ABRIT_QUESTION], [ABRIT_TARGET])
    batch = build_teacher_forced_batch(base_model.tokenizer, [ABRIT_QUESTION], [ABRIT_TARGET])
    with torch.no_grad():
        logits = base_model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[0]
    mask = batch.labels[0] != IGNORE_INDEX
    expected = logits[mask].log_softmax(-1).gather(-1, batch.labels[0][mask][:, None]).sum()
    assert count == 2
    assert total == pytest.approx(float(expected), abs=1e-4)


def test_greedy_continuations_follow_the_teacher_forced_argmax(base_model: HuggingFaceBaseModel) -> None:
    """Greedy decoding from the teacher-forced prefix: its first token is the argmax at the
    target's first position; budgets are the target length plus the extra tokens."""
    questions = [ABRIT_QUESTION, "Who wrote Hamlet?"]
    targets = [ABRIT_TARGET, "William Shakespeare the playwright"]
    generated = greedy_continuations(base_model, questions, targets, extra_new_tokens=1)
    predictions = teacher_forced_predictions(base_model, questions, targets)
    for tokens, (predicted, labels) in zip(generated, predictions, strict=True):
        assert 1 <= len(tokens) <= labels.numel() + 1
        assert tokens[0] == int(predicted[0])
    alone = greedy_continuations(base_model, questions[1:], targets[1:], extra_new_tokens=1)
    assert alone[0] == generated[1]  # batching (left padding) does not change a row


# ---------------------------------------------------------------------- the protocol
def test_locality_reference_comes_from_the_bare_lm_not_the_edited_repository(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    """Always inject (threshold -inf): locality must be agreement with the *bare* LM's argmax,
    computed independently here; a reference taken from the edited repository would give 1.0."""
    with torch.no_grad():
        for p in recipe_model.prompt_encoder.parameters():  # make prompts strong enough to matter
            p.mul_(30.0)
    evaluation, report = _run(
        recipe_model, base_model, edit_records, methods=["recipe_no_sentinel"], fixed_threshold=-1e9
    )
    row = report.row("recipe_no_sentinel", len(edit_records))
    assert row.retrieval["locality_rejection"] == 0.0  # every locality question got a prompt
    questions = [r.locality_prompt for r in edit_records]
    answers = [r.locality_answer for r in edit_records]
    bare = teacher_forced_predictions(base_model, questions, answers)
    best, _ = _repository_with(evaluation, range(len(edit_records))).top1(
        recipe_model.encode_queries(questions).float()
    )
    edited = teacher_forced_predictions(base_model, questions, answers, [evaluation.prompts[j] for j in best.tolist()])
    expected = agreement(edited, bare)
    assert row.per_edit["locality"] == pytest.approx(expected)
    assert row.locality < 1.0, "the test needs injections that change an argmax"
    # The unedited model agrees with itself.
    _, unedited = _run(recipe_model, base_model, edit_records, methods=["unedited"])
    assert unedited.rows[0].locality == 1.0


def _repository_with(evaluation: LifelongEvaluation, indices: Any) -> EditRepository:
    repository = EditRepository(evaluation.model.similarity)
    indices = list(indices)
    repository.add(indices, evaluation.keys[indices])
    return repository


def test_single_edit_chunks_leave_no_state_behind(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    """N = 1: each edit is tested with only itself in the repository, and its scores equal those
    of a run on that edit alone."""
    evaluation, report = _run(recipe_model, base_model, edit_records, edit_counts=[1], methods=["recipe", "text_rag"])
    assert evaluation.chunk_sizes[1] == [1] * len(edit_records)
    row = report.row("recipe", 1)
    assert row.chunks == len(edit_records)
    assert row.retrieval["top1_accuracy"] == 1.0  # the only stored edit is always the best
    for i, record in enumerate(edit_records):
        _, alone = _run(recipe_model, base_model, [record], edit_counts=[1], methods=["recipe", "text_rag"])
        for method in ("recipe", "text_rag"):
            single = alone.row(method, 1)
            for metric in ("reliability", "generality", "locality"):
                assert report.row(method, 1).per_edit[metric][i] == pytest.approx(single.per_edit[metric][0])


def test_repository_reset_and_top1() -> None:
    repository = EditRepository(lambda q, k: q @ k.T)
    ids, scores = repository.top1(torch.ones(2, 3))
    assert ids.tolist() == [-1, -1]
    assert scores.tolist() == [-math.inf, -math.inf]
    repository.add([7, 3], torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    ids, scores = repository.top1(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert ids.tolist() == [7, 3]
    assert scores.tolist() == [1.0, 2.0]
    with pytest.raises(InvalidInputError, match="already in the repository"):
        repository.add([7], torch.zeros(1, 3))
    repository.reset()
    assert len(repository) == 0


def test_repository_decisions_match_the_knowledge_store(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], force_gate: Any
) -> None:
    """The in-memory repository picks the same edit and gate verdict as RecipeKnowledgeStore."""
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    recipe_model.eval()
    store = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, location=":memory:")
    try:
        ids = [f"e{i}" for i in range(len(edit_records))]
        store.add_knowledge([r.statement for r in edit_records], ids=ids)
        queries = [r.prompt for r in edit_records] + [r.locality_prompt for r in edit_records]
        force_gate(store, accept=queries[:4], reject=queries[4:])
        found = store.search_batch(queries, k=1)
        evaluation = LifelongEvaluation(recipe_model, base_model, edit_records, _config(), progress=False)
        evaluation._encode_edits()
        evaluation.sentinel_key = store._sentinel_key  # the same (forced) sentinel
        query_keys, sentinel_scores = evaluation._encode_queries(queries, "queries")
        best, scores = _repository_with(evaluation, range(len(edit_records))).top1(query_keys)
        assert [ids[j] for j in best.tolist()] == [hits[0].edit_id for hits in found]
        assert (scores > sentinel_scores).tolist() == [hits[0].accepted for hits in found]
        assert scores.tolist() == pytest.approx([hits[0].score for hits in found], abs=1e-4)
    finally:
        store.close()


def test_recipe_and_text_rag_inject_what_was_retrieved(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], list[Any]]] = []
    original = metrics_module.teacher_forced_predictions

    def spy(lm: Any, questions: Any, targets: Any, prompts: Any = None, **kwargs: Any) -> Any:
        calls.append((list(questions), list(prompts) if prompts is not None else []))
        return original(lm, questions, targets, prompts, **kwargs)

    import langchain_recipe.evaluation.lifelong as lifelong

    monkeypatch.setattr(lifelong, "teacher_forced_predictions", spy)
    _, report = _run(
        recipe_model, base_model, edit_records, methods=["text_rag", "recipe_no_sentinel"], fixed_threshold=-1e9
    )
    rows = [(q, p) for questions, prompts in calls for q, p in zip(questions, prompts, strict=True)]
    statements = {r.statement for r in edit_records}
    with_text = [q for q, p in rows if "\n" in q]
    assert with_text, "text_rag prepended no statement"
    for question in with_text:
        statement, _, rest = question.partition("\n")
        assert statement in statements
        assert text_rag_question(statement, rest) == question
    assert all(p is None for q, p in rows if "\n" in q)  # text-RAG never adds a prompt
    assert any(p is not None for _, p in rows)
    assert report.row("recipe_no_sentinel", 4).mean_added_input_tokens == recipe_model.config.num_prompt_tokens
    assert report.row("text_rag", 4).mean_added_input_tokens >= 0


def test_paper_mode_is_reported_apart_with_the_leaky_query(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    evaluation, report = _run(recipe_model, base_model, edit_records, methods=["unedited", "recipe"], paper_mode=True)
    names = [(r.method, r.leaky_retrieval_query) for r in report.rows]
    assert names == [("unedited", False), ("recipe", False), ("recipe_paper_mode", True)]
    leaky = evaluation._leaky_query(ABRIT_QUESTION, ABRIT_TARGET)
    assert leaky.lower().startswith("on which continent is abrit nunatak located")
    assert leaky.lower().endswith("south")  # the target minus its last token
    assert "america" not in leaky.lower()
    assert "PAPER MODE" in report.to_dict()["methods"]["recipe_paper_mode"]


def test_oracle_injects_own_prompts_and_unrelated_ones_on_locality(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    result = evaluate_edits(recipe_model, base_model, edit_records, method="oracle")
    assert result.retrieval is None
    recipe = evaluate_edits(recipe_model, base_model, edit_records, method="recipe")
    assert set(recipe.as_dict()) >= {"reliability", "generality", "locality", "top1_accuracy", "gate_recall"}
    assert len(recipe.per_edit["reliability"]) == len(edit_records)
    with pytest.raises(ValueError, match="Unknown method"):
        evaluate_edits(recipe_model, base_model, edit_records, method="rome")


def test_evaluation_restores_the_training_mode(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    """The trainer evaluates mid-training: the model must come back in training mode."""
    recipe_model.train()
    evaluate_edits(recipe_model, base_model, edit_records[:2], method="recipe")
    assert recipe_model.training
    recipe_model.eval()
    evaluate_edits(recipe_model, base_model, edit_records[:2], method="recipe")
    assert not recipe_model.training


def test_config_validation_names_the_field(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    with pytest.raises(ValueError, match="methods: unknown"):
        EvaluationConfig(methods=["recipe", "memit"])
    with pytest.raises(ValueError, match="edit_counts"):
        EvaluationConfig(edit_counts=[0])
    with pytest.raises(ValueError, match="edit_counts"):
        EvaluationConfig(edit_counts=[10, 10])
    with pytest.raises(InvalidInputError, match="only 4 edits are loaded"):
        LifelongEvaluation(recipe_model, base_model, edit_records, _config(edit_counts=[1, 10]), progress=False)


def test_last_incomplete_chunk_is_dropped_and_limit_applies(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    _, report = _run(recipe_model, base_model, edit_records, edit_counts=[3, 1], methods=["recipe"], limit=3)
    assert report.num_records == 3
    assert report.row("recipe", 3).edits_evaluated == 3
    assert report.row("recipe", 1).edits_evaluated == 3
    _, report = _run(recipe_model, base_model, edit_records, edit_counts=[3], methods=["recipe"])
    assert report.row("recipe", 3).chunks == 1
    assert report.row("recipe", 3).edits_evaluated == 3


def test_full_run_writes_json_markdown_and_plots_deterministically(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    overrides = {
        "edit_counts": [1, 2, "all"],
        "methods": ["unedited", "text_rag", "recipe_no_sentinel", "recipe"],
        "paper_mode": True,
        "exact_match": True,
        "general_ability": True,
        "shuffle": True,
        "seed": 3,
        "general": SMALL_GENERAL,
    }
    _, report = _run(recipe_model, base_model, edit_records, **dict(overrides))
    written = write_report(report, tmp_path / "out", command="recipe eval --test")
    data = json.loads(written["json"].read_text())
    assert data["schema_version"] == 1
    assert data["command"] == "recipe eval --test"
    assert {(r["method"], r["edits"]) for r in data["results"]} >= {("recipe", 1), ("recipe", 2), ("recipe", 4)}
    for row in data["results"]:
        for metric in ("reliability", "generality", "locality"):
            assert 0.0 <= row[metric] <= 1.0
        assert set(row["exact_match"]) == {"reliability", "generality", "locality"}
        assert set(row["timings"]) == {"retrieval", "lm", "edit_per_edit"}
        if row["method"] in ("text_rag", "recipe", "recipe_no_sentinel"):
            assert set(row["retrieval"]) >= {
                "top1_accuracy",
                "gate_recall",
                "locality_rejection",
                "cosine_top1_accuracy",
            }
            assert set(row["general_ability"]) == {"perplexity", "multiple_choice_accuracy", "gate_fired_rate"}
        if row["method"].endswith("_paper_mode"):
            assert row["leaky_retrieval_query"] is True
            assert row["general_ability"] is None
    unedited = [r for r in data["results"] if r["method"] == "unedited"]
    assert all(r["locality"] == 1.0 and r["exact_match"]["locality"] == 1.0 for r in unedited)
    markdown = written["markdown"].read_text()
    assert "| recipe |" in markdown and "PAPER MODE" in markdown and "General ability" in markdown
    assert [p.name for p in written["plots"]] == [
        "editing_vs_edits.png",
        "retrieval_vs_edits.png",
        "general_ability_vs_edits.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written["plots"])
    # results.json reads back into the same rows (to re-draw plots or tables later).
    loaded, command = load_report(written["json"])
    assert command == "recipe eval --test"
    assert [r.to_dict() for r in loaded.rows] == data["results"]
    assert render_markdown(loaded) == render_markdown(report)
    # Same seed, same numbers.
    _, again = _run(recipe_model, base_model, edit_records, **dict(overrides))
    strip = lambda rows: [{k: v for k, v in r.to_dict().items() if k != "timings"} for r in rows]  # noqa: E731
    assert strip(again.rows) == strip(report.rows)


def test_general_ability_bare_equals_edited_when_the_gate_rejects_everything(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    _, report = _run(
        recipe_model,
        base_model,
        edit_records,
        methods=["unedited", "recipe_no_sentinel"],
        fixed_threshold=1e9,
        general=SMALL_GENERAL,
        general_ability=True,
    )
    bare = report.row("unedited", 4).general_ability
    edited = report.row("recipe_no_sentinel", 4).general_ability
    assert edited["gate_fired_rate"] == 0.0
    assert edited["perplexity"] == pytest.approx(bare["perplexity"])
    assert edited["multiple_choice_accuracy"] == bare["multiple_choice_accuracy"]
    assert 1.0 < bare["perplexity"] < 10 * len(base_model.tokenizer)


def test_bundled_general_ability_set_loads() -> None:
    data = load_bundled_general_ability()
    assert len(data.passages) == 12
    assert len(data.questions) == 48
    assert all(len(c) == 4 for c in data.choices)
    assert "MIT" in data.source["licence"]


def test_general_ability_loader_names_the_bad_line(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("One passage here.\n\nAnother one.\n")
    choices = tmp_path / "mc.jsonl"
    choices.write_text(
        json.dumps({"question": "Q?", "choices": ["a", "b"], "answer": 1})
        + "\n"
        + json.dumps({"question": "Q?", "choices": ["a", "b"], "answer": 2})
        + "\n"
    )
    with pytest.raises(InvalidInputError, match=r"mc.jsonl:2: 'answer'"):
        load_general_ability(text, choices)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--edits", "0"], "not a positive number of edits"),
        (["--edits", "1,ten"], "not a positive number of edits"),
        (["--methods", "recipe,memit"], "methods: unknown"),
        (["--dataset", "squad"], "Unknown dataset 'squad'"),
    ],
)
def test_cli_eval_rejects_bad_arguments_before_loading_models(arguments: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from langchain_recipe.cli import app

    result = CliRunner().invoke(app, ["eval", *arguments])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
