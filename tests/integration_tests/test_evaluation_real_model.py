"""The evaluation harness on the real SmolLM2 tokenizer and model with the shipped RecipeModel."""

from __future__ import annotations

from langchain_recipe.evaluation import EvaluationConfig, LifelongEvaluation, greedy_continuations
from langchain_recipe.injection import IGNORE_INDEX
from langchain_recipe.teacher_forcing import build_teacher_forced_batch

QUESTION = "On which continent is Abrit Nunatak located?"
TARGET = "South America"


def test_label_ids_are_the_tail_of_the_joint_tokenisation_with_the_leading_space(base_model):
    tokenizer = base_model.tokenizer
    batch = build_teacher_forced_batch(tokenizer, [QUESTION], [TARGET])
    labels = batch.labels[0][batch.labels[0] != IGNORE_INDEX].tolist()
    joint = tokenizer(f"{QUESTION} {TARGET}")["input_ids"]
    assert labels == joint[-len(labels) :]
    assert tokenizer.decode(labels) == " South America"  # the space stays with the target
    question_ids = tokenizer(QUESTION)["input_ids"]
    assert joint[: len(joint) - len(labels)] == question_ids
    # The teacher-forced input is the joint text minus its last token.
    real = batch.input_ids[0][batch.attention_mask[0].bool()].tolist()
    assert real == joint[:-1]


def test_greedy_generation_starts_where_the_target_would(base_model):
    generated = greedy_continuations(base_model, [QUESTION], [TARGET], extra_new_tokens=2)
    target_tokens = len(base_model.tokenizer(" " + TARGET)["input_ids"])
    assert 1 <= len(generated[0]) <= target_tokens + 2


def test_small_sequential_run_on_real_edits(base_model, recipe_model, demo_records):
    config = EvaluationConfig(
        edit_counts=[1, 6], methods=["unedited", "text_rag", "recipe"], general_ability=False, exact_match=True, seed=0
    )
    report = LifelongEvaluation(recipe_model, base_model, demo_records[:6], config, progress=False).run()
    for n in (1, 6):
        unedited, recipe = report.row("unedited", n), report.row("recipe", n)
        assert unedited.locality == 1.0
        assert unedited.exact_match["locality"] == 1.0
        assert recipe.retrieval["top1_accuracy"] >= 0.5
        assert recipe.reliability >= unedited.reliability
        assert report.row("text_rag", n).mean_added_input_tokens > recipe.mean_added_input_tokens / 2
    assert report.row("recipe", 1).retrieval["top1_accuracy"] == 1.0  # one edit stored: it is the best
