"""RecipeTrainer: trains a RecipeModel for one frozen base LM (RECIPE §3.4).

Each step takes a batch of edits from one dataset (chosen with equal probability) and adds:
the contrastive terms with the knowledge sentinel (L_q1 + L_q2 + L_q3), hinge token NLL for
reliability and generality with the edit's own continuous prompt, and the locality KL between the
unedited LM and the LM with that (unrelated) prompt prefixed to the locality question.

Checkpoints (``<output_dir>/checkpoint/``) hold the model (safetensors + JSON), the optimizer
state (safetensors + JSON, no pickle) and ``trainer_state.json``; training resumes from them.

Device placement, mixed precision (``TrainingConfig.mixed_precision``) and data-parallel training
on several GPUs (``accelerate launch``) go through :class:`accelerate.Accelerator`; on one CPU a step
is the plain PyTorch step (same loss, same update).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.config import TrainingConfig
from langchain_recipe.datasets import EditRecord
from langchain_recipe.nn.recipe_model import RecipeModel
from langchain_recipe.teacher_forcing import build_teacher_forced_batch, label_logits
from langchain_recipe.training import losses
from langchain_recipe.training.distillation import TeacherAnswer, answer_distillation_loss, build_answer_batch

__all__ = ["RecipeTrainer", "StepResult"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
OPTIMIZER_WEIGHTS = "optimizer.safetensors"
OPTIMIZER_CONFIG = "optimizer.json"
TRAINER_STATE = "trainer_state.json"
BEST_DIR = "best"


def selection_score(metrics: dict[str, Any]) -> float:
    """The score that selects the best checkpoint.

    The mean of every reliability, generality and locality figure of the gated ("recipe")
    evaluations in ``metrics``.
    """
    values = [
        value
        for name, result in metrics.items()
        if name.endswith("/recipe") and isinstance(result, dict)
        for key, value in result.items()
        if key in ("reliability", "generality", "locality")
    ]
    return sum(values) / len(values) if values else float("-inf")


@dataclass
class StepResult:
    """One training step: the losses, batch accuracies and duration.

    The weighted total loss, each loss term (before weighting), plain token accuracies of the batch
    (``reliability_accuracy``, ``generality_accuracy``, ``locality_agreement``; for the log only)
    and the step's duration in seconds.
    """

    total: float
    terms: dict[str, float]
    seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)


def _save_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = value
    save_file(tensors, directory / OPTIMIZER_WEIGHTS)
    (directory / OPTIMIZER_CONFIG).write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def _load_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    meta = json.loads((directory / OPTIMIZER_CONFIG).read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, value in load_file(directory / OPTIMIZER_WEIGHTS).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class _StepLosses(torch.nn.Module):
    """The module accelerate prepares: it holds the RecipeModel, and its forward is one batch's loss terms.

    Data-parallel training (DDP) synchronises gradients of the parameters used in a wrapped forward; the
    RecipeModel has none of its own (its encoders are separate methods), so the step's losses are it.
    """

    def __init__(
        self, model: RecipeModel, compute_losses: Callable[[list[EditRecord]], dict[str, torch.Tensor]]
    ) -> None:
        super().__init__()
        self.model = model
        self._compute_losses = compute_losses

    def forward(self, batch: list[EditRecord]) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of :meth:`RecipeTrainer.compute_losses`, scalars."""
        return self._compute_losses(batch)


def _check_lm_device(base_model: HuggingFaceBaseModel, accelerator: Accelerator) -> None:
    """Refuse a base LM on another kind of device than the one accelerate trains on.

    Raises:
        ValueError: e.g. the LM is on the CPU while training runs on CUDA.
    """
    if base_model.device.type != accelerator.device.type:
        msg = (
            f"The base LM {base_model.name!r} is on {base_model.device} but training runs on {accelerator.device}; "
            f"load it there (load_base_model(..., device={str(accelerator.device)!r}), or `recipe train --device`)."
        )
        raise ValueError(msg)


class RecipeTrainer:
    """Trains the small RECIPE modules of a :class:`RecipeModel` against a frozen base LM.

    Args:
        model: the RecipeModel to train (its encoder stays frozen unless
            ``RecipeConfig.train_encoder``).
        base_model: the frozen base LM; gradients flow through it, never into it.
        config: optimisation settings.
        train_data: edits per dataset name, e.g. ``{"zsre": [...], "counterfact": [...]}``.
        output_dir: where checkpoints and ``log.jsonl`` go.
        eval_fn: optional callable ``(model) -> dict`` run every ``config.eval_every`` steps;
            its result is logged.
        teacher_answers: chat answers of the LM with the statement as text
            (:func:`~langchain_recipe.training.distillation.teacher_answers`), used when
            ``config.answer_distillation_weight > 0``.
        accelerator: the :class:`accelerate.Accelerator` to train with (``None``: a new one with
            ``config.mixed_precision``). It moves the RecipeModel to its device; the base LM must
            already be on a device of that kind. Under ``accelerate launch`` each process draws its
            own batches (seed + process index) and the main process writes checkpoints.

    Raises:
        ValueError: a dataset has fewer than 2 edits, the distillation weight is set without
            teacher answers, or the base LM is on another kind of device than the accelerator's.
    """

    def __init__(
        self,
        model: RecipeModel,
        base_model: HuggingFaceBaseModel,
        config: TrainingConfig,
        train_data: dict[str, list[EditRecord]],
        output_dir: str | Path,
        eval_fn: Callable[[RecipeModel], dict[str, Any]] | None = None,
        teacher_answers: list[TeacherAnswer] | None = None,
        accelerator: Accelerator | None = None,
    ) -> None:
        empty = [name for name, records in train_data.items() if len(records) < 2]
        if not train_data or empty:
            msg = f"Every training dataset needs at least 2 edits; too few in {empty or 'train_data'}."
            raise ValueError(msg)
        if config.answer_distillation_weight > 0 and not teacher_answers:
            msg = (
                "answer_distillation_weight > 0 needs teacher answers "
                "(langchain_recipe.training.distillation.teacher_answers)."
            )
            raise ValueError(msg)
        self.teacher_answers = list(teacher_answers or [])
        self.model = model
        self.base_model = base_model
        self.config = config
        self.train_data = train_data
        self.output_dir = Path(output_dir)
        self.eval_fn = eval_fn
        self.step = 0
        self.last_accuracies: dict[str, float] = {}
        self.evaluations_without_improvement = 0
        self.accelerator = accelerator or Accelerator(mixed_precision=config.mixed_precision)
        _check_lm_device(base_model, self.accelerator)
        self.rng = random.Random(config.seed + self.accelerator.process_index)
        # Detached knowledge representations of earlier batches, newest first (config.negative_queue_size).
        self._negative_queue = torch.empty(0, model.config.knowledge_dim)
        self._step_losses, self.optimizer = self.accelerator.prepare(
            _StepLosses(model, self.compute_losses), torch.optim.Adam(self._parameter_groups())
        )
        self._base_lrs = [group["lr"] for group in self.optimizer.param_groups]

    # ------------------------------------------------------------------ set-up
    def _parameter_groups(self) -> list[dict[str, Any]]:
        model, cfg = self.model, self.config
        groups = [
            {"name": "prompt_encoder", "params": list(model.prompt_encoder.parameters()), "lr": cfg.learning_rate}
        ]
        if cfg.train_retrieval:
            groups.append(
                {
                    "name": "heads_and_sentinel",
                    "params": [
                        *model.knowledge_head.parameters(),
                        *model.query_head.parameters(),
                        *model.sentinel.parameters(),
                    ],
                    "lr": cfg.head_learning_rate,
                }
            )
        if model.config.train_encoder:
            groups.append(
                {"name": "encoder", "params": list(model.encoder.parameters()), "lr": cfg.encoder_learning_rate}
            )
        return groups

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Every parameter the optimizer updates."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def learning_rate_factor(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 10 % at ``max_steps``."""
        cfg = self.config
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    def sample_batch(self) -> list[EditRecord]:
        """A batch of distinct edits from one dataset chosen uniformly at random."""
        name = self.rng.choice(sorted(self.train_data))
        records = self.train_data[name]
        return self.rng.sample(records, min(self.config.batch_size, len(records)))

    # ------------------------------------------------------------------ one step
    def compute_losses(self, batch: list[EditRecord]) -> dict[str, torch.Tensor]:
        """All loss terms of RECIPE §3.4 for one batch (unweighted).

        Returns:
            ``{"q1", "q2", "q3", "reliability", "generality", "locality"}`` scalar tensors, plus
            ``"answer"`` (the chat-answer distillation term) when its weight is set. The
            contrastive terms are 0 when ``config.train_retrieval`` is off.
        """
        model, cfg, lm = self.model, self.config, self.base_model
        size = len(batch)
        statements = [r.statement for r in batch]
        keys, prompts = model.encode_edits(statements, lm)  # (B, d_r), (B, l, D)
        terms = (
            self._contrastive_terms(batch, keys)
            if cfg.train_retrieval
            else {n: keys.sum() * 0.0 for n in ("q1", "q2", "q3")}
        )
        if cfg.answer_distillation_weight > 0:
            terms["answer"] = self._answer_term()
        if cfg.negative_queue_size:
            self._negative_queue = torch.cat([keys.detach(), self._negative_queue.to(keys.device)])[
                : cfg.negative_queue_size
            ]
        # One format per step: mixing chat rows (long) with raw rows (short) would pad every row
        # to the chat length and triple the LM's work.
        chat = self.rng.random() < cfg.chat_format_probability
        questions = [r.prompt for r in batch] + [r.rephrase for r in batch] + [r.locality_prompt for r in batch]
        targets = [r.target for r in batch] * 2 + [r.locality_answer for r in batch]
        tf_batch = build_teacher_forced_batch(lm.tokenizer, questions, targets, chat=chat)
        row_prompts = [prompts[i % size] for i in range(3 * size)]
        logits, labels, rows = label_logits(lm, tf_batch, row_prompts)
        reliability, generality, locality = rows < size, (rows >= size) & (rows < 2 * size), rows >= 2 * size
        locality_batch = build_teacher_forced_batch(lm.tokenizer, questions[2 * size :], targets[2 * size :], chat=chat)
        with torch.no_grad():
            logits_before, _, _ = label_logits(lm, locality_batch, None)
        terms["reliability"] = losses.hinge_token_nll(logits[reliability], labels[reliability], cfg.edit_hinge_scale)
        terms["generality"] = losses.hinge_token_nll(logits[generality], labels[generality], cfg.edit_hinge_scale)
        terms["locality"] = losses.locality_kl(logits_before, logits[locality])
        with torch.no_grad():  # plain token accuracies of this batch, for the log only
            correct = (logits.argmax(-1) == labels).float()
            self.last_accuracies = {
                "reliability_accuracy": float(correct[reliability].mean()),
                "generality_accuracy": float(correct[generality].mean()),
                "locality_agreement": float((logits[locality].argmax(-1) == logits_before.argmax(-1)).float().mean()),
            }
        return terms

    def _contrastive_terms(self, batch: list[EditRecord], keys: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_q1, L_q2 and L_q3 (RECIPE §3.4) of one batch."""
        model, cfg, size = self.model, self.config, len(batch)
        # A fair coin per edit decides which phrasing is q1 (vs. own knowledge) and which q2.
        flips = [self.rng.random() < 0.5 for _ in batch]
        first = [r.prompt if f else r.rephrase for r, f in zip(batch, flips, strict=True)]
        second = [r.rephrase if f else r.prompt for r, f in zip(batch, flips, strict=True)]
        queries = model.encode_queries(first + second + [r.locality_prompt for r in batch])
        u, v, w = queries[:size], queries[size : 2 * size], queries[2 * size :]
        sentinel = model.sentinel_key()
        return {
            "q1": losses.query_knowledge_loss(
                u, keys, sentinel, extra_negatives=self._negative_queue if "q1" in cfg.negative_queue_terms else None
            ),
            "q2": losses.sentinel_over_irrelevant_loss(v, keys, sentinel, cfg.contrastive_hinge_scale),
            "q3": losses.locality_sentinel_loss(
                w,
                keys,
                sentinel,
                cfg.contrastive_hinge_scale,
                extra_negatives=self._negative_queue if "q3" in cfg.negative_queue_terms else None,
            ),
        }

    def _answer_term(self) -> torch.Tensor:
        """The chat-answer distillation loss on a random sample of the teacher answers."""
        cfg, lm = self.config, self.base_model
        items = self.rng.sample(self.teacher_answers, min(cfg.answer_batch_size, len(self.teacher_answers)))
        _, prompts = self.model.encode_edits([item.statement for item in items], lm)
        batch = build_answer_batch(lm.tokenizer, items, target_weight=cfg.answer_target_weight)
        return answer_distillation_loss(lm, batch, prompts)

    def weighted_total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted total loss.

        ``contrastive_weight·(q1+q2+q3) + Σ weight·term`` for the editing terms (and the chat-answer
        distillation term when present).
        """
        cfg = self.config
        total = (
            cfg.contrastive_weight * (terms["q1"] + terms["q2"] + terms["q3"])
            + cfg.reliability_weight * terms["reliability"]
            + cfg.generality_weight * terms["generality"]
            + cfg.locality_weight * terms["locality"]
        )
        if "answer" in terms:
            total = total + cfg.answer_distillation_weight * terms["answer"]
        return total

    def train_step(self, batch: list[EditRecord] | None = None) -> StepResult:
        """One optimizer step (warm-up/cosine learning rate, gradient clipping), through the accelerator."""
        started = time.perf_counter()
        self.model.train()
        factor = self.learning_rate_factor(self.step)
        for group, base_lr in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
            group["lr"] = base_lr * factor
        terms = self._step_losses(batch if batch is not None else self.sample_batch())
        total = self.weighted_total(terms)
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(total)
        self.accelerator.clip_grad_norm_(self.trainable_parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.step += 1
        return StepResult(
            float(total.detach()),
            {k: float(v.detach()) for k, v in terms.items()},
            time.perf_counter() - started,
            dict(self.last_accuracies),
        )

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write model, optimizer and trainer state to ``<output_dir>/checkpoint`` atomically (main process)."""
        target = self.output_dir / CHECKPOINT_DIR
        if not self.accelerator.is_main_process:
            self.accelerator.wait_for_everyone()
            return target
        partial = self.output_dir / (CHECKPOINT_DIR + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(partial)
        _save_optimizer(self.optimizer, partial)
        state = {
            "step": self.step,
            "rng": self.rng.getstate()[1],
            "evaluations_without_improvement": self.evaluations_without_improvement,
            "config": self.config.model_dump(mode="json"),
        }
        (partial / TRAINER_STATE).write_text(json.dumps(state))
        if target.exists():
            old = self.output_dir / (CHECKPOINT_DIR + ".old")
            target.rename(old)
            partial.rename(target)
            for file in old.iterdir():
                file.unlink()
            old.rmdir()
        else:
            partial.rename(target)
        self.accelerator.wait_for_everyone()
        return target

    def load_checkpoint(self, directory: str | Path | None = None) -> bool:
        """Resume model weights, optimizer and step from a checkpoint; ``False`` if none exists."""
        directory = Path(directory) if directory is not None else self.output_dir / CHECKPOINT_DIR
        if not (directory / TRAINER_STATE).is_file():
            return False
        restored = RecipeModel.from_pretrained(
            directory, encoder=self.model.encoder, encoder_tokenizer=self.model.encoder_tokenizer
        )
        self.model.load_state_dict(restored.state_dict())
        _load_optimizer(self.optimizer, directory)
        state = json.loads((directory / TRAINER_STATE).read_text())
        self.step = int(state["step"])
        self.evaluations_without_improvement = int(state.get("evaluations_without_improvement", 0))
        self.rng.setstate((3, tuple(state["rng"]), None))
        if self.accelerator.process_index:  # the saved state is the main process's: draw other batches
            self.rng.seed(f"{self.config.seed}-{self.accelerator.process_index}-{self.step}")
        logger.info("Resumed from %s at step %d.", directory, self.step)
        return True

    # ------------------------------------------------------------------ loop
    def train(self, *, progress: bool = True) -> Path:
        """Run until ``max_steps`` (or ``stop_at_step``) or ``max_minutes``; return the checkpoint.

        Each step is logged to ``log.jsonl``.

        Resumes from ``<output_dir>/checkpoint`` when present. With an ``eval_fn``, the model with
        the best :func:`selection_score` (the initial one included) is kept in ``<output_dir>/best``.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        last_step = min(cfg.max_steps, cfg.stop_at_step or cfg.max_steps)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.load_checkpoint()
        deadline = time.monotonic() + cfg.max_minutes * 60
        log = (self.output_dir / "log.jsonl" if self.accelerator.is_main_process else Path(os.devnull)).open("a")
        if self.step == 0 and self.eval_fn is not None:  # the initial model is a candidate too
            self._evaluate_and_checkpoint(log)
        averages: dict[str, float] = {}
        bar = tqdm(total=last_step, initial=self.step, disable=not progress, desc="training")
        try:
            while self.step < last_step and time.monotonic() < deadline and not self.should_stop_early():
                result = self.train_step()
                for name, value in {"total": result.total, **result.terms, **result.diagnostics}.items():
                    averages[name] = value if name not in averages else 0.9 * averages[name] + 0.1 * value
                bar.update(1)
                bar.set_postfix(loss=f"{averages['total']:.3f}", acc=f"{averages.get('reliability_accuracy', 0):.2f}")
                if self.step % cfg.log_every == 0:
                    record = {
                        "step": self.step,
                        "seconds_per_step": round(result.seconds, 3),
                        **{k: round(v, 4) for k, v in averages.items()},
                    }
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if self.step % cfg.eval_every == 0:
                    self._evaluate_and_checkpoint(log)
            if self.step % cfg.eval_every and not self.should_stop_early():
                self._evaluate_and_checkpoint(log)
        finally:
            bar.close()
            log.close()
        return self.output_dir / CHECKPOINT_DIR

    def should_stop_early(self) -> bool:
        """Whether early stopping is due.

        True once ``early_stopping_patience`` dev evaluations in a row did not improve the best
        selection score.
        """
        patience = self.config.early_stopping_patience
        return patience is not None and self.evaluations_without_improvement >= patience

    def _evaluate_and_checkpoint(self, log: Any) -> None:
        """Evaluate on dev (keeping the best model), then write the resumable checkpoint.

        So a resumed run carries the early-stopping count of the evaluations it has already done.
        """
        if self.eval_fn is not None:
            self.model.eval()
            with torch.no_grad():
                metrics = self.eval_fn(self.model)
            score = selection_score(metrics)
            state_path = self.output_dir / BEST_DIR / TRAINER_STATE
            best = json.loads(state_path.read_text())["score"] if state_path.is_file() else float("-inf")
            self.accelerator.wait_for_everyone()  # every process has read the best score before it changes
            if score > best:
                if self.accelerator.is_main_process:
                    self.model.save_pretrained(self.output_dir / BEST_DIR)
                    state_path.write_text(json.dumps({"step": self.step, "score": score, "eval": metrics}))
                self.evaluations_without_improvement = 0
            else:
                self.evaluations_without_improvement += 1
            log.write(json.dumps({"step": self.step, "eval": metrics, "selection_score": round(score, 4)}) + "\n")
            log.flush()
            logger.info(
                "step %d eval %s (selection score %.4f, best %.4f)", self.step, metrics, score, max(score, best)
            )
        self.save_checkpoint()
