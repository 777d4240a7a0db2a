"""Train the knowledge/query heads and the knowledge sentinel on cached encoder features (no LM).

With a frozen encoder (``RecipeConfig.train_encoder=False``) the heads read fixed pooled features
(:meth:`RecipeModel.pooled_features`), so retrieval trains apart from the prompt encoder, in
minutes on a CPU, on every training edit (ZsRE, CounterFact and KnowEdit train splits, see
:func:`~langchain_recipe.benchmarks.retrieval.training_sets`). Each step uses RECIPE's
contrastive terms (Chen et al., EMNLP 2024, §3.4; :mod:`langchain_recipe.training.losses`) with
thousands of negatives: besides the batch's own edits, the detached keys of **every** other
training edit (a bank refreshed every ``bank_refresh_every`` steps), so each question's hardest
competitors (same relation, same subject) are always among them:

* ``L_q1``: one phrasing of each edit's question (edit question or paraphrase, a fair coin)
  ranks its own knowledge above every other edit and the sentinel;
* ``L_q2``: for the other phrasing, the sentinel beats every *other* edit (hinge);
* ``L_q3``: unrelated questions (NQ questions, same-relation and same-subject prompts) prefer the
  sentinel to every edit (hinge).

The heads start as the frozen encoder's cosine (``RepresentationHead``'s identity block) unless
``init="given"``; model selection uses the ``val`` split (stored with the train edits), never
the benchmark's stores. Only the heads and the sentinel change: the prompt encoder reads the
keys, so a model with new heads needs its prompt encoder retrained before it serves edits.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from langchain_recipe.benchmarks.retrieval import (
    FeatureTable,
    RetrievalEdit,
    RetrievalSet,
    SentinelScorer,
    evaluate_retrieval,
)
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.training import losses

logger = logging.getLogger(__name__)

__all__ = ["RetrievalTrainingConfig", "selection_score", "train_retrieval"]


class RetrievalTrainingConfig(BaseModel):
    """Settings of :func:`train_retrieval`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_steps: int = Field(300, gt=0)
    """Optimizer steps (the length of the cosine learning-rate schedule)."""
    max_minutes: float = Field(20.0, gt=0)
    """Wall-clock budget in minutes."""
    batch_size: int = Field(256, gt=0)
    """Training edits per step (each with its edit question and paraphrase)."""
    negatives_per_step: int = Field(256, gt=0)
    """Unrelated questions per step, drawn equally from each kind of negative."""
    head_learning_rate: float = Field(2e-5, gt=0)
    """Adam learning rate of the knowledge and query heads' weights.

    Higher rates lower own-edit top-1 below the cosine start, as in the shipped heads (figures:
    docs/evaluation.md, "What training on cached features found")."""
    head_bias_learning_rate: float = Field(3e-3, gt=0)
    """Adam learning rate of the heads' biases. The gate needs a threshold that is nearly the
    same for every query; with a linear sentinel score ``s(q, Θ) = r_q · r_Θ / sqrt(d_r)`` that
    takes a key coordinate which every query shares (a query-head bias) and only the sentinel
    fills. A bias moves by about the learning rate per Adam step, so at the weights' rate it
    would take thousands of steps; a bias step does not add noise to the ranking of edits."""
    sentinel_learning_rate: float = Field(1e-3, gt=0)
    """Adam learning rate of the sentinel's pseudo-token embeddings."""
    warmup_steps: int = Field(20, ge=0)
    """Linear warm-up steps, then cosine decay to 10 %."""
    temperature: float = Field(1.0, gt=0)
    """τ1 = τ2 of the contrastive terms."""
    hinge_scale: float = Field(1.2, gt=0)
    """c_h of L_q2 and L_q3 (paper: 1.2)."""
    q0_weight: float = Field(1.0, ge=0)
    """Weight of :func:`~langchain_recipe.training.losses.own_over_sentinel_loss` (both
    phrasings): the own edit beats the sentinel."""
    q2_weight: float = Field(1.0, ge=0)
    """Weight of L_q2."""
    q3_weight: float = Field(1.0, ge=0)
    """Weight of L_q3."""
    bank_refresh_every: int = Field(10, gt=0)
    """Steps between recomputing the detached keys of every training edit (the negative bank)."""
    eval_every: int = Field(50, gt=0)
    """Steps between evaluations on the validation store (and model selection)."""
    input_blocks: Literal["mean", "all"] = "mean"
    """Which pooled-feature blocks the heads' input projections learn from. ``"mean"``: only the
    L2-normalised mean (the block the cosine uses; the other columns stay as they are, zero from
    a fresh start). ``"all"`` also trains the first-token, max and min columns, whose features
    are much larger, so Adam's equal-sized steps on their columns swamp the cosine signal within
    tens of steps (figures: docs/evaluation.md, "What training on cached features found")."""
    hinge_mean: Literal["kept", "rows"] = "rows"
    """How the hinge terms (L_q0, L_q2, L_q3) average: over the kept (still violated) rows, as the
    paper does, or over all rows (see :func:`~langchain_recipe.training.losses.locality_sentinel_loss`)."""
    gate_terms_update: Literal["all", "gate"] = "all"
    """What the gate terms (L_q0, L_q2, L_q3) train: ``"all"`` parameters, as in the paper, or
    only the ``"gate"``: the sentinel and the heads' biases, so that the heads' weights learn from
    L_q1 alone. ``"all"`` gives the better gate, ``"gate"`` a slightly better top-1 (figures:
    docs/evaluation.md, "What training on cached features found")."""
    spare_query_bias: bool = True
    """Train the query head's biases only in the key dimensions beyond
    ``encoder_hidden_size``, which the cosine start leaves empty for statements (a shared query
    coordinate for the sentinel to use as a threshold, without favouring any edit)."""
    init: Literal["cosine", "given"] = "cosine"
    """Start the heads and sentinel fresh (heads = the encoder's cosine) or from the given model
    (e.g. the shipped checkpoint, or an earlier stage)."""
    train_heads: bool = True
    """Whether the knowledge and query heads are trained (``False``: only the sentinel, e.g. a
    second stage calibrating the gate on heads trained with ``q2_weight = q3_weight = 0``)."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping (global L2 norm)."""
    seed: int = 0
    """Random seed (initialisation and sampling)."""


def selection_score(metrics: dict[str, Any]) -> float:
    """The worst of own-edit top-1, gate acceptance of right top-1s and each kind's rejection.

    The retrieval goals are all on these; the checkpoint is picked on the validation store by it.
    """
    values = [metrics["own_top1"], metrics["gate_accept"], *metrics["reject"].values()]
    return min(v for v in values if v is not None)


def _learning_rate_factor(step: int, config: RetrievalTrainingConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _reset_retrieval_modules(model: Any, seed: int) -> None:
    """Fresh heads (starting as the encoder's cosine) and a fresh sentinel, as a new RecipeModel has."""
    from langchain_recipe.nn.knowledge_encoder import RepresentationHead
    from langchain_recipe.nn.knowledge_sentinel import KnowledgeSentinel

    cfg = model.config
    torch.manual_seed(seed)
    model.knowledge_head = RepresentationHead(cfg.encoder_hidden_size, cfg.knowledge_dim, cfg.head_init_scale).to(
        model.device
    )
    model.query_head = RepresentationHead(cfg.encoder_hidden_size, cfg.knowledge_dim, cfg.head_init_scale).to(
        model.device
    )
    model.sentinel = KnowledgeSentinel(cfg.num_sentinel_tokens, cfg.encoder_hidden_size).to(model.device)


def train_retrieval(
    model: Any,
    train: RetrievalSet,
    val: RetrievalSet,
    table: FeatureTable,
    config: RetrievalTrainingConfig | None = None,
    *,
    output_dir: str | Path | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Train ``model``'s knowledge/query heads and knowledge sentinel in place; keep the best on ``val``.

    Args:
        model: a :class:`~langchain_recipe.nn.RecipeModel` with a frozen encoder; its prompt
            encoder is left as it is.
        train: training edits (each with at least one question) and unrelated questions.
        val: the validation store (scored with :func:`evaluate_retrieval` for model selection).
        table: cached features of every text of ``train`` and ``val``
            (:func:`~langchain_recipe.benchmarks.retrieval.build_feature_table`).
        config: settings (defaults if ``None``).
        output_dir: when given, the best model is saved there (``save_pretrained``) with
            ``retrieval_training.json`` (config and history).
        log: progress messages.

    Returns:
        ``{"config", "history": [{"step", "loss", ... , "val": metrics, "selection"}], "best_step",
        "best_selection", "seconds"}``.

    Raises:
        InvalidInputError: the encoder is trained, or ``train`` has no edit with a question or no
            unrelated question.
    """
    config = config or RetrievalTrainingConfig()
    edits = _trainable_edits(model, train)
    tick = time.perf_counter()
    run = _RetrievalRun(model, edits, train, val, table, config, log)
    run.evaluate(0)
    step = 0
    for step in range(1, config.max_steps + 1):
        if (time.perf_counter() - tick) / 60 > config.max_minutes:
            log(f"stopping at step {step - 1}: max_minutes={config.max_minutes} reached")
            step -= 1
            break
        run.step(step)
        if step % config.eval_every == 0 or step == config.max_steps:
            run.evaluate(step)
    if not run.history or run.history[-1]["step"] != step:
        run.evaluate(step)
    result = run.finish(time.perf_counter() - tick)
    if output_dir is not None:
        model.save_pretrained(Path(output_dir))
        (Path(output_dir) / "retrieval_training.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _trainable_edits(model: Any, train: RetrievalSet) -> list[RetrievalEdit]:
    """The training edits that have a question.

    Raises:
        InvalidInputError: the encoder is trained, or there is no such edit or no unrelated question.
    """
    if model.config.train_encoder:
        msg = (
            "train_retrieval trains on cached features, which needs a frozen encoder "
            "(RecipeConfig.train_encoder=False); load or build the model with it."
        )
        raise InvalidInputError(msg)
    edits = [e for e in train.stored if e.questions]
    if not edits or not train.negatives:
        msg = (
            f"The training set {train.name!r} needs edits with questions and unrelated questions; check the data files."
        )
        raise InvalidInputError(msg)
    return edits


class _RetrievalRun:
    """The state of one :func:`train_retrieval` run: cached features, optimizer, history and best model."""

    def __init__(
        self,
        model: Any,
        edits: list[RetrievalEdit],
        train: RetrievalSet,
        val: RetrievalSet,
        table: FeatureTable,
        config: RetrievalTrainingConfig,
        log: Callable[[str], None],
    ) -> None:
        self.model, self.config, self.table, self.log = model, config, table, log
        self.train_name, self.val = train.name, val
        self.rng = random.Random(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        if config.init == "cosine":
            _reset_retrieval_modules(model, config.seed)
        model.train()
        self.hooks = _gradient_masks(model, config)
        self.statements = table([e.statement for e in edits])  # (n, F)
        self.first = table([e.questions[0] for e in edits])  # (n, F)
        self.second = table([e.questions[-1] for e in edits])  # paraphrase (or the question again)
        self.kinds: dict[str, list[int]] = {}
        for i, negative in enumerate(train.negatives):
            self.kinds.setdefault(negative.kind, []).append(i)
        self.negative_features = table([n.text for n in train.negatives])
        self.heads = [*model.knowledge_head.parameters(), *model.query_head.parameters()]
        for parameter in self.heads:
            parameter.requires_grad_(config.train_heads)
        self.params, self.weights = _parameter_groups(model, config)
        self.optimizer = torch.optim.Adam(self.params)
        self.base_rates = [group["lr"] for group in self.optimizer.param_groups]
        self.history: list[dict[str, Any]] = []
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self.bank = torch.empty(0)

    def evaluate(self, step: int) -> None:
        """Score the model on the validation store; keep its retrieval modules if it is the best so far."""
        self.model.eval()
        metrics = evaluate_retrieval(SentinelScorer(self.model, "training"), self.val, self.table)
        self.model.train()
        score = selection_score(metrics)
        self.history.append({"step": step, "val": metrics, "selection": score})
        self.log(
            f"step {step}: val top-1 {metrics['own_top1']:.3f} accept {metrics['gate_accept']:.3f} "
            + " ".join(f"{k} {v:.3f}" for k, v in metrics["reject"].items())
            + f" (selection {score:.3f})"
        )
        if self.best is None or score > self.best[0]:
            state = {
                k: v.detach().clone()
                for k, v in self.model.state_dict().items()
                if not k.startswith(("encoder.", "prompt_encoder."))
            }
            self.best = (score, step, state)

    def step(self, step: int) -> None:
        """One optimizer step (1-based); the loss and its terms are logged every 10 steps."""
        config, count = self.config, self.statements.shape[0]
        if (step - 1) % config.bank_refresh_every == 0:
            with torch.no_grad():
                heads = self.model.knowledge_head
                self.bank = torch.cat([heads(self.statements[i : i + 4096]) for i in range(0, count, 4096)])
        factor = _learning_rate_factor(step - 1, config)
        for group, rate in zip(self.optimizer.param_groups, self.base_rates, strict=True):
            group["lr"] = rate * factor
        batch = torch.tensor(self.rng.sample(range(count), min(config.batch_size, count)), dtype=torch.long)
        terms = self._losses(batch)
        gate = config.q0_weight * terms["q0"] + config.q2_weight * terms["q2"] + config.q3_weight * terms["q3"]
        total = terms["q1"] + gate
        self.optimizer.zero_grad(set_to_none=True)
        self._backward(terms["q1"], gate, total)
        torch.nn.utils.clip_grad_norm_([p for group in self.params for p in group["params"]], config.max_grad_norm)
        self.optimizer.step()
        if step % 10 == 0:
            self.log(
                f"step {step}: loss {float(total.detach()):.4f} "
                + " ".join(f"{k} {float(t.detach()):.4f}" for k, t in terms.items())
            )

    def _losses(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """RECIPE's retrieval terms (paper §3.4) on a batch of edits and sampled negatives."""
        config, model = self.config, self.model
        outside = torch.ones(self.statements.shape[0], dtype=torch.bool)
        outside[batch] = False
        negatives_bank = self.bank[outside]
        per_kind = max(1, config.negatives_per_step // len(self.kinds))
        chosen = [i for rows in self.kinds.values() for i in self.rng.sample(rows, min(per_kind, len(rows)))]
        r = model.knowledge_head(self.statements[batch])
        queries = model.query_head(
            torch.cat([self.first[batch], self.second[batch], self.negative_features[torch.tensor(chosen)]])
        )
        size = batch.shape[0]
        u, v, w = queries[:size], queries[size : 2 * size], queries[2 * size :]
        # A fair coin per edit picks which phrasing ranks its own knowledge (q1) and which makes
        # the sentinel beat the other edits (q2), as in the paper.
        flip = torch.rand(size, 1, generator=self.generator) < 0.5
        u, v = torch.where(flip, u, v), torch.where(flip, v, u)
        sentinel = model.sentinel_key()
        scale, tau, per_row = config.hinge_scale, config.temperature, config.hinge_mean == "rows"
        return {
            "q1": losses.query_knowledge_loss(u, r, sentinel, tau, extra_negatives=negatives_bank),
            "q2": losses.sentinel_over_irrelevant_loss(
                v, r, sentinel, scale, tau, extra_negatives=negatives_bank, per_row=per_row
            ),
            "q3": losses.locality_sentinel_loss(
                w, r, sentinel, scale, tau, extra_negatives=negatives_bank, per_row=per_row
            ),
            "q0": 0.5
            * (
                losses.own_over_sentinel_loss(u, r, sentinel, scale, tau, per_row=per_row)
                + losses.own_over_sentinel_loss(v, r, sentinel, scale, tau, per_row=per_row)
            ),
        }

    def _backward(self, retrieval_loss: torch.Tensor, gate: torch.Tensor, total: torch.Tensor) -> None:
        """Gradients of ``total``; with ``gate_terms_update="gate"`` the gate terms reach only the gate."""
        if self.config.gate_terms_update == "all":
            total.backward()
            return
        # The gate terms move only the sentinel and the heads' biases; the weights learn
        # retrieval (L_q1) alone.
        trainable = [p for group in self.params for p in group["params"]]
        gate_params = [p for p in trainable if all(p is not w for w in self.weights)]
        retrieval = torch.autograd.grad(retrieval_loss, trainable, retain_graph=True, allow_unused=True)
        gating = dict(zip(map(id, gate_params), torch.autograd.grad(gate, gate_params, allow_unused=True), strict=True))
        for p, g in zip(trainable, retrieval, strict=True):
            extra = gating.get(id(p))
            p.grad = sum(x for x in (g, extra) if x is not None) if (g is not None or extra is not None) else None

    def finish(self, seconds: float) -> dict[str, Any]:
        """Remove the gradient masks and load the best retrieval modules; the run's summary (see train_retrieval)."""
        for hook in self.hooks:
            hook.remove()
        for parameter in self.heads:
            parameter.requires_grad_(True)
        assert self.best is not None
        best_selection, best_step, state = self.best
        self.model.load_state_dict(state, strict=False)
        self.model.eval()
        self.log(f"best step {best_step} (selection {best_selection:.3f}) after {seconds:.0f} s")
        return {
            "config": self.config.model_dump(),
            "train_set": self.train_name,
            "val_set": self.val.name,
            "history": self.history,
            "best_step": best_step,
            "best_selection": best_selection,
            "seconds": seconds,
        }


def _gradient_masks(model: Any, config: RetrievalTrainingConfig) -> list[Any]:
    """Gradient hooks for ``input_blocks="mean"`` and ``spare_query_bias`` (see the config)."""
    hooks = []
    if config.input_blocks == "mean" and config.train_heads:
        hidden = model.config.encoder_hidden_size
        keep = torch.zeros(model.config.knowledge_dim, 4 * hidden, device=model.device)
        keep[:, hidden : 2 * hidden] = 1
        hooks = [
            head.input_projection.weight.register_hook(lambda grad: grad * keep)
            for head in (model.knowledge_head, model.query_head)
        ]
    if config.train_heads and config.spare_query_bias:
        # A query-head bias along the statements' own key dimensions would add b · r_k to every
        # score, a key-dependent term that makes some edits win every query (hubs).
        spare = torch.zeros(model.config.knowledge_dim, device=model.device)
        spare[model.config.encoder_hidden_size :] = 1
        hooks += [model.query_head.input_projection.bias.register_hook(lambda grad: grad * spare)]
        hooks += [model.query_head.residual.bias.register_hook(lambda grad: grad * spare)]
    return hooks


def _parameter_groups(model: Any, config: RetrievalTrainingConfig) -> tuple[list[dict[str, Any]], list[Any]]:
    """Adam's parameter groups (sentinel; heads' weights and biases when trained) and the heads' weights."""
    params = [{"params": list(model.sentinel.parameters()), "lr": config.sentinel_learning_rate}]
    weights: list[torch.nn.Parameter] = []
    if config.train_heads:
        head_modules = (model.knowledge_head, model.query_head)
        weights = [p for m in head_modules for n, p in m.named_parameters() if not n.endswith("bias")]
        biases = [p for m in head_modules for n, p in m.named_parameters() if n.endswith("bias")]
        params.append({"params": weights, "lr": config.head_learning_rate})
        params.append({"params": biases, "lr": config.head_bias_learning_rate})
    return params, weights
