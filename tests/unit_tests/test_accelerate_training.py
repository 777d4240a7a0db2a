"""The trainer's step through accelerate equals the plain PyTorch step on a CPU (same loss, same update)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.config import TrainingConfig
from langchain_recipe.datasets import EditRecord
from langchain_recipe.nn import RecipeModel
from langchain_recipe.training import RecipeTrainer


def _config() -> TrainingConfig:
    return TrainingConfig(batch_size=4, warmup_steps=2, max_steps=10, chat_format_probability=0.5, seed=0)


def _plain_step(trainer: RecipeTrainer, batch: list[EditRecord]) -> float:
    """Today's step without accelerate: the bare torch optimizer, ``backward`` and torch's clipping."""
    optimizer = trainer.optimizer.optimizer  # the torch.optim.Adam inside accelerate's wrapper
    for group, base_lr in zip(optimizer.param_groups, trainer._base_lrs, strict=True):
        group["lr"] = base_lr * trainer.learning_rate_factor(trainer.step)
    trainer.model.train()
    total = trainer.weighted_total(trainer.compute_losses(batch))
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(trainer.trainable_parameters(), trainer.config.max_grad_norm)
    optimizer.step()
    return float(total.detach())


@pytest.mark.parametrize("steps", [1, 2])
def test_a_step_through_accelerate_equals_the_plain_step(
    make_recipe_model: Callable[..., RecipeModel],
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    tmp_path: Path,
    steps: int,
) -> None:
    accelerated = RecipeTrainer(make_recipe_model(), base_model, _config(), {"zsre": edit_records}, tmp_path / "a")
    plain = RecipeTrainer(make_recipe_model(), base_model, _config(), {"zsre": edit_records}, tmp_path / "p")
    assert accelerated.accelerator.device.type == "cpu"
    assert accelerated.accelerator.mixed_precision == "no"
    for _ in range(steps):
        result = accelerated.train_step(edit_records)
        assert result.total == _plain_step(plain, edit_records)
        plain.step += 1
    for (name, a), (_, b) in zip(accelerated.model.named_parameters(), plain.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    assert accelerated.optimizer.state_dict()["state"].keys() == plain.optimizer.state_dict()["state"].keys()


def test_checkpoint_and_resume_through_accelerate(
    make_recipe_model: Callable[..., RecipeModel],
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    tmp_path: Path,
) -> None:
    first = RecipeTrainer(make_recipe_model(), base_model, _config(), {"zsre": edit_records}, tmp_path)
    first.train_step()
    first.save_checkpoint()
    resumed = RecipeTrainer(make_recipe_model(), base_model, _config(), {"zsre": edit_records}, tmp_path)
    assert resumed.load_checkpoint()
    assert resumed.step == 1
    assert resumed.train_step(edit_records).total == first.train_step(edit_records).total


def test_a_base_lm_on_another_device_kind_is_refused(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    class _FakeAccelerator:
        device = torch.device("cuda")

    with pytest.raises(ValueError, match=r"on cpu but training runs on cuda.*--device"):
        RecipeTrainer(
            recipe_model, base_model, _config(), {"zsre": edit_records}, tmp_path, accelerator=_FakeAccelerator()
        )
