"""Tests of RECIPE's losses and RecipeTrainer (langchain_recipe.training) on tiny random models."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.config import TrainingConfig
from langchain_recipe.datasets import EditRecord
from langchain_recipe.nn import RecipeModel
from langchain_recipe.training import RecipeTrainer, losses
from langchain_recipe.training.trainer import (
    BEST_DIR,
    CHECKPOINT_DIR,
    OPTIMIZER_CONFIG,
    OPTIMIZER_WEIGHTS,
    TRAINER_STATE,
)

TERMS = {"q1", "q2", "q3", "reliability", "generality", "locality"}


def _config(**overrides: object) -> TrainingConfig:
    """Deterministic, raw-text-only settings with no warm-up."""
    settings = {
        "batch_size": 4,
        "warmup_steps": 0,
        "max_steps": 1000,
        "learning_rate": 1e-2,
        "head_learning_rate": 1e-2,
        "chat_format_probability": 0.0,
        "seed": 0,
    }
    return TrainingConfig(**{**settings, **overrides})


def _trainer(
    model: RecipeModel, base_model: HuggingFaceBaseModel, records: list[EditRecord], tmp_path: Path, **overrides: object
) -> RecipeTrainer:
    return RecipeTrainer(model, base_model, _config(**overrides), {"zsre": records}, tmp_path)


def _snapshot(parameters: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in parameters}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {name for name, p in module.named_parameters() if name in before and not torch.equal(before[name], p)}


def _trainable_names(trainer: RecipeTrainer) -> set[str]:
    ids = {id(p) for p in trainer.trainable_parameters()}
    return {name for name, p in trainer.model.named_parameters() if id(p) in ids}


# ---------------------------------------------------------------------- one step
def test_a_step_updates_every_trainable_parameter_and_nothing_else(
    any_recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    lm_state: dict[str, torch.Tensor],
    tmp_path: Path,
) -> None:
    model = any_recipe_model
    trainer = _trainer(model, base_model, edit_records, tmp_path)
    trainable = _trainable_names(trainer)
    assert trainable == {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {name for name, _ in model.named_parameters() if not name.startswith("encoder.")}
    encoder_before = _snapshot(list(model.encoder.named_parameters()))

    before = _snapshot(list(model.named_parameters()))
    result = trainer.train_step(edit_records)
    after_first = _snapshot(list(model.named_parameters()))
    changed_first = _changed(before, model)
    trainer.train_step(edit_records)
    changed_second = {
        name for name in trainable if not torch.equal(after_first[name], dict(model.named_parameters())[name])
    }

    assert set(result.terms) == TERMS
    assert all(math.isfinite(v) for v in result.terms.values())
    assert trainer.step == 2
    # The statement-attention prompt encoder's output and copy-query projections start at zero,
    # so in the very first step no gradient reaches the layers before them; they move from the
    # second step on.
    upstream_of_zero_output = {
        name
        for name in trainable
        if name.startswith("prompt_encoder.")
        and not name.startswith(("prompt_encoder.output.", "prompt_encoder.copy_"))
    }
    if model.config.prompt_encoder_type.value == "mlp":
        upstream_of_zero_output = set()
    assert changed_first == trainable - upstream_of_zero_output
    assert changed_second == trainable
    # Neither the frozen encoder nor the base LM moves, and the LM never gets gradients.
    assert not _changed(encoder_before, model.encoder)
    for name, value in base_model.model.state_dict().items():
        assert torch.equal(value, lm_state[name]), name
    assert all(p.grad is None for p in base_model.model.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())


def _evaluate(trainer: RecipeTrainer, batch: list[EditRecord]) -> dict[str, float]:
    """Loss terms with fixed phrasing coin flips (so evaluations are comparable)."""
    rng = trainer.rng
    trainer.rng = random.Random(1234)
    try:
        with torch.no_grad():
            return {k: float(v) for k, v in trainer.compute_losses(batch).items()}
    finally:
        trainer.rng = rng


def test_repeated_steps_on_a_fixed_batch_lower_every_loss_term(
    any_recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    trainer = _trainer(
        any_recipe_model, base_model, edit_records, tmp_path, learning_rate=3e-3, head_learning_rate=3e-3
    )
    start = _evaluate(trainer, edit_records)
    history = [trainer.train_step(edit_records) for _ in range(40)]
    end = _evaluate(trainer, edit_records)

    for term in ("q1", "q2", "q3", "reliability", "generality"):
        assert end[term] < start[term], (term, start[term], end[term])
    # Locality starts near 0 (the prompt barely changes the LM's answer) and stays finite.
    assert 0 <= start["locality"] < 0.05
    assert all(math.isfinite(step.terms["locality"]) for step in history)
    assert math.isfinite(end["locality"])
    assert all(math.isfinite(step.total) for step in history)


def test_compute_losses_gives_finite_scalars_in_chat_format(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    trainer = _trainer(recipe_model, base_model, edit_records, tmp_path, chat_format_probability=1.0)
    terms = trainer.compute_losses(edit_records[:2])
    assert set(terms) == TERMS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    total = trainer.weighted_total(terms)
    assert torch.allclose(total, sum(terms.values()))
    total.backward()


def test_trainer_needs_two_edits_per_dataset(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="at least 2 edits"):
        RecipeTrainer(
            recipe_model, base_model, _config(), {"zsre": edit_records, "counterfact": edit_records[:1]}, tmp_path
        )
    with pytest.raises(ValueError, match="at least 2 edits"):
        RecipeTrainer(recipe_model, base_model, _config(), {}, tmp_path)


def test_sample_batch_draws_distinct_edits_from_one_dataset(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    other = [EditRecord(f"Q{i}?", f"A{i}", f"R{i}?", f"L{i}?", f"B{i}") for i in range(5)]
    trainer = RecipeTrainer(
        recipe_model, base_model, _config(batch_size=3), {"zsre": edit_records, "counterfact": other}, tmp_path
    )
    for _ in range(10):
        batch = trainer.sample_batch()
        assert len(batch) == 3
        assert len(set(batch)) == 3
        assert set(batch) <= set(edit_records) or set(batch) <= set(other)


def test_learning_rate_schedule(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    trainer = _trainer(recipe_model, base_model, edit_records, tmp_path, warmup_steps=10, max_steps=110)
    assert trainer.learning_rate_factor(0) == pytest.approx(0.1)
    assert trainer.learning_rate_factor(9) == pytest.approx(1.0)
    assert trainer.learning_rate_factor(10) == pytest.approx(1.0)
    assert trainer.learning_rate_factor(60) == pytest.approx(0.55)
    assert trainer.learning_rate_factor(110) == pytest.approx(0.1)
    assert trainer.learning_rate_factor(500) == pytest.approx(0.1)


# ---------------------------------------------------------------------- losses on hand-made tensors
def test_hinge_drops_rows_already_above_the_runner_up() -> None:
    # Row 0: target (index 0) twice as likely as the runner-up -> done (dropped).
    # Row 1: target 1.1x the runner-up -> still below 1.2x, kept.
    # Row 2: target less likely than another token -> kept.
    logits = torch.tensor(
        [
            [math.log(2.0), 0.0, -5.0],
            [math.log(1.1), 0.0, -5.0],
            [0.0, 1.0, -5.0],
        ]
    )
    target = torch.tensor([0, 0, 0])
    loss = losses.hinge_token_nll(logits, target, hinge_scale=1.2)
    log_probs = logits.log_softmax(-1)
    assert loss == pytest.approx(float(-(log_probs[1, 0] + log_probs[2, 0]) / 2), abs=1e-6)
    # Row 0 alone (ratio 2 > 1.3) gives zero loss with a usable (zero) gradient.
    row0 = logits[:1].clone().requires_grad_(True)
    zero = losses.hinge_token_nll(row0, target[:1], hinge_scale=1.3)
    assert float(zero.detach()) == 0.0
    zero.backward()
    assert torch.equal(row0.grad, torch.zeros_like(row0))
    # With a hinge scale above 2, row 0 counts again: the plain mean NLL of all rows.
    everything = losses.hinge_token_nll(logits, target, hinge_scale=2.5)
    assert everything == pytest.approx(float(F.cross_entropy(logits, target)), abs=1e-6)


def test_locality_kl() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 11)
    assert float(losses.locality_kl(logits, logits.clone())) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.locality_kl(logits, logits + 3.0)) == pytest.approx(0.0, abs=1e-5)  # shift-invariant
    other = torch.randn(5, 11)
    p, q = logits.softmax(-1), other.softmax(-1)
    expected = (p * (p.log() - q.log())).sum(-1).mean()  # KL(before || after), mean over positions
    assert float(losses.locality_kl(logits, other)) == pytest.approx(float(expected), rel=1e-5)
    assert float(losses.locality_kl(logits, other)) > 0
    # bf16 logits are handled in float32.
    assert losses.locality_kl(logits.bfloat16(), other.bfloat16()).dtype == torch.float32


def _orthogonal_keys(n: int, dim: int = 16, scale: float = 8.0) -> torch.Tensor:
    return torch.eye(dim)[:n] * scale


def test_query_knowledge_loss_prefers_matching_keys() -> None:
    r = _orthogonal_keys(3)
    sentinel = torch.eye(16)[5] * 8.0
    matching = losses.query_knowledge_loss(r.clone(), r, sentinel)
    shuffled = losses.query_knowledge_loss(r[[1, 2, 0]], r, sentinel)
    on_sentinel = losses.query_knowledge_loss(sentinel.expand(3, -1), r, sentinel)
    assert float(matching) < 1e-3
    assert float(shuffled) > 10.0
    assert float(on_sentinel) > 10.0
    # It is the cross-entropy over [r_1..r_B, r_sentinel] with target i.
    u = torch.randn(3, 16)
    logits = torch.cat([r, sentinel.unsqueeze(0)]) @ u.T
    expected = F.cross_entropy(logits.T / 4.0, torch.arange(3))
    assert float(losses.query_knowledge_loss(u, r, sentinel)) == pytest.approx(float(expected), rel=1e-5)
    assert float(losses.query_knowledge_loss(u, r, sentinel, temperature=2.0)) == pytest.approx(
        float(F.cross_entropy(logits.T / 2.0, torch.arange(3))), rel=1e-5
    )


def test_sentinel_over_irrelevant_loss() -> None:
    r = _orthogonal_keys(3)
    sentinel = torch.ones(16) * 2.0
    # Each query is its own edit plus the sentinel direction: its own edit is masked out, the
    # sentinel beats the irrelevant edits by far -> every row is done.
    v = r + sentinel
    assert float(losses.sentinel_over_irrelevant_loss(v, r, sentinel, hinge_scale=1.2)) == 0.0
    # A query that points at an irrelevant edit (row 0 -> edit 1) is penalised.
    v_bad = torch.stack([r[1] * 2, r[1] + sentinel, r[2] + sentinel])
    bad = losses.sentinel_over_irrelevant_loss(v_bad, r, sentinel, hinge_scale=1.2)
    assert float(bad) > 1.0
    # Only the diagonal is replaced: its own edit's score never counts against the sentinel.
    v_own = r * 3
    assert (
        float(losses.sentinel_over_irrelevant_loss(v_own, r, sentinel * 0 + torch.eye(16)[10] * 8, hinge_scale=1.2)) > 0
    )


def test_locality_sentinel_loss() -> None:
    r = _orthogonal_keys(3)
    sentinel = torch.eye(16)[7] * 8.0
    unrelated = sentinel.expand(2, -1).clone()
    assert float(losses.locality_sentinel_loss(unrelated, r, sentinel, hinge_scale=1.2)) == 0.0
    confusable = torch.stack([r[0], r[2]])
    loss = losses.locality_sentinel_loss(confusable, r, sentinel, hinge_scale=1.2)
    logits = confusable @ torch.cat([r, sentinel.unsqueeze(0)]).T / 4.0
    assert float(loss) == pytest.approx(float(F.cross_entropy(logits, torch.tensor([3, 3]))), rel=1e-5)


def test_locality_sentinel_loss_with_extra_negatives() -> None:
    """A locality query that no batch key confuses still pays when an earlier batch's key
    (the negative queue) beats the sentinel; the target index moves past the extra negatives."""
    r = _orthogonal_keys(4)
    sentinel = torch.eye(16)[7] * 8.0
    query = (0.5 * r[3] + 0.3 * sentinel).unsqueeze(0)  # beats the batch keys' sentinel, but the queued r[3] beats it
    assert float(losses.locality_sentinel_loss(query, r[:3], sentinel, hinge_scale=1.2)) == 0.0
    loss = losses.locality_sentinel_loss(query, r[:3], sentinel, hinge_scale=1.2, extra_negatives=r[3:])
    logits = query @ torch.cat([r, sentinel.unsqueeze(0)]).T / 4.0
    assert float(loss) == pytest.approx(float(F.cross_entropy(logits, torch.tensor([4]))), rel=1e-5)
    empty = losses.locality_sentinel_loss(query, r[:3], sentinel, hinge_scale=1.2, extra_negatives=torch.empty(0, 16))
    assert float(empty) == 0.0


def test_query_knowledge_loss_with_extra_negatives() -> None:
    """An edit question whose own key wins the batch still pays when a queued key outranks it."""
    r = _orthogonal_keys(4)
    sentinel = torch.eye(16)[7] * 8.0
    query = (0.3 * r[0] + 0.5 * r[3]).unsqueeze(0)  # own key r[0]; the queued r[3] scores higher
    batch_only = losses.query_knowledge_loss(query, r[:1], sentinel)
    with_queue = losses.query_knowledge_loss(query, r[:1], sentinel, extra_negatives=r[3:])
    logits = query @ torch.cat([r[:1], r[3:], sentinel.unsqueeze(0)]).T / 4.0
    assert float(with_queue) == pytest.approx(float(F.cross_entropy(logits, torch.tensor([0]))), rel=1e-5)
    assert float(with_queue) > float(batch_only) + 1.0


def test_negative_queue_keeps_the_newest_detached_keys(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    trainer = _trainer(recipe_model, base_model, edit_records, tmp_path, negative_queue_size=3)
    trainer.train_step(edit_records[:2])
    first = trainer._negative_queue.clone()
    assert first.shape == (2, recipe_model.config.knowledge_dim) and not first.requires_grad
    trainer.train_step(edit_records[2:4])
    assert trainer._negative_queue.shape[0] == 3
    assert torch.equal(trainer._negative_queue[2], first[0])  # newest first, oldest dropped
    both = _trainer(
        recipe_model,
        base_model,
        edit_records,
        tmp_path / "both",
        negative_queue_size=3,
        negative_queue_terms=["q1", "q3"],
    )
    both.train_step(edit_records[:2])
    terms = both.compute_losses(edit_records[2:4])
    assert all(torch.isfinite(v) for v in terms.values())
    plain = _trainer(recipe_model, base_model, edit_records, tmp_path / "plain")
    plain.train_step(edit_records[:2])
    assert plain._negative_queue.shape[0] == 0


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_resumes_step_model_and_optimizer(
    make_recipe_model: Callable[..., RecipeModel],
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    tmp_path: Path,
) -> None:
    first = _trainer(make_recipe_model(), base_model, edit_records, tmp_path)
    assert not first.load_checkpoint()  # nothing saved yet
    first.train_step(edit_records)
    first.save_checkpoint()
    first.train_step(edit_records)
    directory = first.save_checkpoint()  # replaces the previous checkpoint
    assert directory == tmp_path / CHECKPOINT_DIR
    assert {p.name for p in tmp_path.iterdir()} == {CHECKPOINT_DIR}
    assert {OPTIMIZER_CONFIG, OPTIMIZER_WEIGHTS, TRAINER_STATE} <= {p.name for p in directory.iterdir()}

    model = make_recipe_model()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(1.0)
    second = _trainer(model, base_model, edit_records, tmp_path)
    assert second.load_checkpoint()

    assert second.step == first.step == 2
    assert second.rng.getstate() == first.rng.getstate()
    for key, value in first.model.trained_state_dict().items():
        assert torch.equal(value, second.model.trained_state_dict()[key]), key
    state_a, state_b = first.optimizer.state_dict(), second.optimizer.state_dict()
    assert state_a["state"].keys() == state_b["state"].keys()
    for index, values in state_a["state"].items():
        assert values.keys() == state_b["state"][index].keys()
        for name, value in values.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b["state"][index][name])), (index, name)
    for group_a, group_b in zip(state_a["param_groups"], state_b["param_groups"], strict=True):
        assert group_a["lr"] == group_b["lr"]
        assert group_a["name"] == group_b["name"]
        assert group_a["params"] == group_b["params"]

    # The next step is the same in both.
    result_a, result_b = first.train_step(edit_records), second.train_step(edit_records)
    assert result_a.terms == pytest.approx(result_b.terms, abs=1e-6)
    for (name, a), (_, b) in zip(first.model.named_parameters(), second.model.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_early_stopping_after_patience_evaluations_without_improvement(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    """Scores 0.5, 0.6, 0.6, 0.4 with patience 2: the best is at the second evaluation, the next
    two do not beat it, so training stops there and the stop count survives a resume."""
    scores = iter([0.5, 0.6, 0.6, 0.4, 0.9])
    evaluations: list[int] = []

    def evaluate(model: RecipeModel) -> dict:
        evaluations.append(len(evaluations))
        value = next(scores)
        return {
            "zsre/recipe": {
                "reliability": value,
                "generality": value,
                "locality": value,
                "gate_recall": 1.0,
                "gate_rejection": 1.0,
            }
        }

    config = TrainingConfig(max_steps=20, eval_every=1, early_stopping_patience=2, log_every=1, warmup_steps=0)
    trainer = RecipeTrainer(recipe_model, base_model, config, {"zsre": edit_records}, tmp_path, eval_fn=evaluate)
    trainer.train(progress=False)
    assert len(evaluations) == 4  # initial model + after steps 1, 2, 3
    assert trainer.step == 3
    assert trainer.should_stop_early()
    assert json.loads((tmp_path / BEST_DIR / TRAINER_STATE).read_text())["step"] == 1

    resumed = RecipeTrainer(recipe_model, base_model, config, {"zsre": edit_records}, tmp_path, eval_fn=evaluate)
    assert resumed.load_checkpoint()
    assert resumed.should_stop_early()
    resumed.train(progress=False)
    assert resumed.step == 3  # nothing more to do


def test_stop_at_step_keeps_the_schedule_of_max_steps(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    config = TrainingConfig(max_steps=10, stop_at_step=2, warmup_steps=0, eval_every=100)
    trainer = RecipeTrainer(recipe_model, base_model, config, {"zsre": edit_records}, tmp_path)
    trainer.train(progress=False)
    assert trainer.step == 2
    # The learning rate after step 2 follows the 10-step cosine, not a 2-step one.
    assert trainer.learning_rate_factor(2) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.2)))
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(
        config.learning_rate * trainer.learning_rate_factor(1)
    )
