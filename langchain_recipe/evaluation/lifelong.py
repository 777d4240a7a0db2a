"""Lifelong evaluation: single and sequential editing, baselines side by side (RECIPE §4).

Protocol (the reference implementation's, RECIPE §4.1; docs/evaluation.md):

* the edits are shuffled with the seed and split into consecutive chunks of N (the last
  incomplete chunk is dropped); per chunk the knowledge repository is reset, all N edits are
  applied, then all N are tested (reliability, generality, locality); N = 1 is single editing;
* the locality reference is the unedited LM's prediction, computed once, with no repository at
  all (never the repository being edited);
* retrieval sees only the question (default) or, in paper mode, the reference implementation's
  leaky query: the teacher-forced input, i.e. the question plus the target minus its last token.
  Paper-mode methods carry a ``_paper_mode`` suffix and ``leaky_retrieval_query: true``.

Methods, all over the same edits and the same knowledge repository:

* ``unedited``: the bare LM;
* ``text_rag``: the same retrieval and knowledge-sentinel gate, the accepted edit's statement
  text prepended to the question (what a LangChain user would build with a retriever);
* ``recipe_no_sentinel``: the best edit's continuous prompt whenever its similarity beats one
  fixed threshold instead of the per-query sentinel score (the paper's "w/o KS" ablation);
* ``recipe``: the best edit's continuous prompt if it beats the knowledge sentinel;
* ``oracle`` (optional): each edit question gets its own edit's prompt and each locality
  question an unrelated edit's prompt (what the prompts carry, and the harm of a wrong
  retrieval), with no retrieval.

The repository here is in-memory tensors (:class:`EditRepository`), not Qdrant: it scores the
same keys, prompts and sentinel gate as :class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore`
(a unit test checks their decisions agree), and reset/apply per chunk costs nothing. Every edit is
encoded once and every question once; the LM runs once per distinct (question, injected edit)
pair, batched and sorted by length, and the results are shared by all methods and all N (the LM
is frozen and deterministic, so a row's result depends only on its text and its prompt).
"""

from __future__ import annotations

import logging
import math
import platform
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.datasets import EditRecord
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.evaluation.general_ability import GeneralAbilityData
from langchain_recipe.evaluation.metrics import (
    agreement,
    exact_match,
    greedy_continuations,
    perplexity,
    target_log_likelihoods,
    teacher_forced_predictions,
    token_accuracy,
)
from langchain_recipe.injection import IGNORE_INDEX, prepend_statement_text
from langchain_recipe.nn.knowledge_encoder import format_retrieval_text
from langchain_recipe.nn.recipe_model import RecipeModel
from langchain_recipe.scoring import passes_gate
from langchain_recipe.teacher_forcing import build_teacher_forced_batch

__all__ = [
    "ALL_METHODS",
    "DEFAULT_METHODS",
    "PAPER_MODE_SUFFIX",
    "EditRepository",
    "EvaluationConfig",
    "EvaluationReport",
    "EvaluationResult",
    "GeneralAbilityData",
    "LifelongEvaluation",
    "MethodResult",
    "RetrievalDiagnostics",
    "evaluate_edits",
    "select_edits",
    "text_rag_question",
]

logger = logging.getLogger(__name__)

DEFAULT_METHODS: tuple[str, ...] = ("unedited", "text_rag", "recipe_no_sentinel", "recipe")
"""Methods that ``recipe eval`` runs unless told otherwise."""

ALL_METHODS: tuple[str, ...] = (*DEFAULT_METHODS, "oracle")
"""Every method name :class:`EvaluationConfig` accepts."""

RETRIEVAL_METHODS: tuple[str, ...] = ("text_rag", "recipe_no_sentinel", "recipe")
PAPER_MODE_SUFFIX = "_paper_mode"
"""Suffix of the methods run with the reference implementation's leaky retrieval query."""

_PROMPT, _TEXT = "prompt", "text"
Injection = tuple[str, int] | None
"""``None`` (bare question), ``("prompt", j)`` (edit j's continuous prompt) or ``("text", j)``
(edit j's statement prepended)."""


def text_rag_question(statement: str, question: str) -> str:
    """The question as text-RAG sees it: :func:`~langchain_recipe.injection.prepend_statement_text`."""
    return prepend_statement_text(statement, question)


# ---------------------------------------------------------------------- configuration
def select_edits(
    records: Sequence[EditRecord], *, seed: int = 0, limit: int | None = None, shuffle: bool = True
) -> list[EditRecord]:
    """The edits an evaluation uses: shuffled with ``seed`` (the reference protocol), then the first ``limit``.

    ``recipe eval``'s teacher-forced and chat-answer runs both call it, so ``--seed`` and
    ``--limit`` pick the same edits for both.
    """
    order = list(range(len(records)))
    if shuffle:
        random.Random(seed).shuffle(order)
    if limit is not None:
        order = order[:limit]
    return [records[i] for i in order]


class EvaluationConfig(BaseModel):
    """What ``recipe eval`` runs.

    Attributes:
        edit_counts: the N of the sequential protocol (chunks of N edits, all applied, then all
            tested); ``"all"`` means every loaded edit in one chunk; 1 is single editing.
        methods: any of :data:`ALL_METHODS`.
        paper_mode: also run the retrieval methods with the reference implementation's leaky
            query (question + target minus its last token), reported as ``<method>_paper_mode``.
        seed: shuffles the edits (and seeds torch).
        shuffle: shuffle the edits with ``seed`` before chunking (the reference protocol); off
            keeps file order.
        limit: evaluate only the first ``limit`` edits (after shuffling).
        batch_size: rows per LM forward pass or ``generate`` call.
        extra_new_tokens: greedy generation may run this many tokens beyond the target's length.
        exact_match: also score greedy generation (slower: one ``generate`` per distinct row).
        general_ability: also measure perplexity and multiple-choice accuracy, bare vs edited.
        fixed_threshold: the scaled-dot-product threshold of ``recipe_no_sentinel``; ``None``
            uses the mean sentinel score ``s(q, Θ)`` over all evaluated questions (edit and
            locality), i.e. the sentinel's gate made static.
        chat: wrap questions in the base LM's chat template (default: raw text, as the paper).
    """

    model_config = ConfigDict(extra="forbid")

    edit_counts: list[int | Literal["all"]] = Field(default_factory=lambda: [1, 10, 100, "all"], min_length=1)
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1)
    paper_mode: bool = False
    seed: int = 0
    shuffle: bool = True
    limit: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=16, ge=1)
    extra_new_tokens: int = Field(default=3, ge=0)
    exact_match: bool = True
    general_ability: bool = True
    fixed_threshold: float | None = None
    chat: bool = False

    @field_validator("edit_counts")
    @classmethod
    def _positive_counts(cls, value: list[int | str]) -> list[int | str]:
        for count in value:
            if count != "all" and (not isinstance(count, int) or count < 1):
                msg = f"edit_counts: {count!r} is not a positive number of edits or 'all'."
                raise ValueError(msg)
        if len(set(value)) != len(value):
            msg = f"edit_counts: {value} repeats a value."
            raise ValueError(msg)
        return value

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in ALL_METHODS]
        if unknown:
            msg = f"methods: unknown {unknown}; choose from {list(ALL_METHODS)}."
            raise ValueError(msg)
        return list(dict.fromkeys(value))


# ---------------------------------------------------------------------- results
@dataclass
class RetrievalDiagnostics:
    """How retrieval and the gate behaved (fractions in [0, 1]).

    Attributes:
        top1_accuracy: edit questions (reliability and generality) whose best key is their own edit.
        gate_recall: edit questions that pass the gate.
        locality_rejection: locality questions that the gate rejects.
        correct_injection_rate: edit questions that pass the gate *and* get their own edit.
        cosine_top1_accuracy: top-1 accuracy of plain cosine similarity between the frozen
            encoder's mean-pooled question and statement embeddings (no learned heads), the
            baseline the learned heads must not fall below; ``None`` when not measured.
    """

    top1_accuracy: float
    gate_recall: float
    locality_rejection: float
    correct_injection_rate: float | None = None
    cosine_top1_accuracy: float | None = None


@dataclass
class EvaluationResult:
    """Mean reliability, generality and locality over the edits, plus retrieval diagnostics."""

    reliability: float
    generality: float
    locality: float
    retrieval: RetrievalDiagnostics | None = None
    per_edit: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, float]:
        """Flat dict of the metrics (rounded to 4 digits)."""
        out: dict[str, Any] = {
            "reliability": self.reliability,
            "generality": self.generality,
            "locality": self.locality,
        }
        if self.retrieval is not None:
            out |= {k: v for k, v in vars(self.retrieval).items() if v is not None}
        return {k: round(v, 4) for k, v in out.items()}


@dataclass
class MethodResult:
    """One method at one N: the row of ``results.json`` (schema in docs/evaluation.md).

    Attributes:
        method: method name (``recipe``, ``recipe_paper_mode``, ...).
        edits: N, the edits in the repository when testing.
        chunks: how many chunks of N were evaluated.
        edits_evaluated: ``chunks * N``.
        leaky_retrieval_query: whether retrieval saw the question plus the target minus its last
            token (paper mode).
        reliability, generality, locality: teacher-forced token accuracy / agreement, means over
            the evaluated edits, in [0, 1].
        exact_match: greedy-generation view: ``reliability``, ``generality`` (the continuation
            starts with the target) and ``locality`` (identical to the unedited continuation).
        retrieval: :class:`RetrievalDiagnostics` as a dict (``None`` without retrieval).
        general_ability: ``perplexity``, ``multiple_choice_accuracy`` and ``gate_fired_rate``
            with the repository holding the first chunk's N edits (``None`` if not measured).
        mean_added_input_tokens: input positions the method adds per question on average
            (prompt vectors or statement tokens), over all tested questions.
        timings: seconds: ``retrieval`` (query encoding excluded), ``lm`` (LM time of this
            method's rows; rows shared with other methods are counted for each) and
            ``edit_per_edit`` (encoding one edit).
        per_edit: per-edit values behind the means (not written to JSON).
    """

    method: str
    edits: int
    chunks: int
    edits_evaluated: int
    leaky_retrieval_query: bool
    reliability: float
    generality: float
    locality: float
    exact_match: dict[str, float] | None = None
    retrieval: dict[str, float | None] | None = None
    general_ability: dict[str, float] | None = None
    mean_added_input_tokens: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    per_edit: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (floats rounded to 4 digits, per-edit values left out)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float):
                return None if math.isnan(value) else round(value, 4)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        data = {k: v for k, v in vars(self).items() if k != "per_edit"}
        return clean(data)


@dataclass
class EvaluationReport:
    """Everything one ``recipe eval`` run measured (``results.json``)."""

    dataset: str
    num_records: int
    config: EvaluationConfig
    rows: list[MethodResult]
    fixed_threshold: float | None
    environment: dict[str, Any]
    timings: dict[str, float]
    general_ability_source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` document (schema version 1)."""
        return {
            "schema_version": 1,
            "dataset": self.dataset,
            "num_records": self.num_records,
            "config": self.config.model_dump(mode="json"),
            "fixed_threshold": None if self.fixed_threshold is None else round(self.fixed_threshold, 6),
            "methods": {name: describe_method(name) for name in dict.fromkeys(r.method for r in self.rows)},
            "results": [row.to_dict() for row in self.rows],
            "general_ability_data": self.general_ability_source,
            "environment": self.environment,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }

    def row(self, method: str, edits: int) -> MethodResult:
        """The result of ``method`` at N = ``edits``.

        Raises:
            KeyError: no such row.
        """
        for row in self.rows:
            if row.method == method and row.edits == edits:
                return row
        msg = f"No result for method {method!r} at {edits} edits."
        raise KeyError(msg)


_DESCRIPTIONS = {
    "unedited": "the bare base LM (no retrieval, no edits)",
    "text_rag": "same retrieval and knowledge-sentinel gate; the accepted statement's text prepended to the question",
    "recipe_no_sentinel": "RECIPE with a fixed similarity threshold instead of the knowledge sentinel",
    "recipe": "RECIPE: the accepted edit's continuous prompt prefixed (knowledge-sentinel gate)",
    "oracle": (
        "each edit question gets its own edit's prompt, each locality question an unrelated edit's (no retrieval)"
    ),
}


def describe_method(name: str) -> str:
    """One line on what a method name means (paper-mode names included)."""
    if name.endswith(PAPER_MODE_SUFFIX):
        base = name[: -len(PAPER_MODE_SUFFIX)]
        leak = "PAPER MODE: retrieval query = question + target minus its last token (leaks the answer)"
        return f"{_DESCRIPTIONS[base]}; {leak}"
    return _DESCRIPTIONS[name]


# ---------------------------------------------------------------------- repository
class EditRepository:
    """In-memory knowledge repository (RECIPE §3.2): the retrieval keys of the applied edits.

    Holds the same keys as :class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore` and
    scores them with the same scaled dot product; prompts stay with the caller, indexed by edit.

    Args:
        similarity: ``s(q, k)``, e.g. :meth:`RecipeModel.similarity`.
    """

    def __init__(self, similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self._similarity = similarity
        self._ids: list[int] = []
        self._keys: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def edit_ids(self) -> list[int]:
        """Indices of the stored edits, in insertion order."""
        return list(self._ids)

    def add(self, edit_ids: Sequence[int], keys: torch.Tensor) -> None:
        """Apply edits: store their keys `(num_edits, knowledge_dim)` under their indices.

        Raises:
            InvalidInputError: lengths differ or an edit is already stored.
        """
        if len(edit_ids) != keys.shape[0]:
            msg = f"Got {len(edit_ids)} edit ids for {keys.shape[0]} keys."
            raise InvalidInputError(msg)
        if set(edit_ids) & set(self._ids) or len(set(edit_ids)) != len(edit_ids):
            msg = "An edit is already in the repository; reset it between chunks."
            raise InvalidInputError(msg)
        self._ids.extend(int(i) for i in edit_ids)
        self._keys.extend(keys)

    def reset(self) -> None:
        """Remove every edit (the start of a new chunk)."""
        self._ids.clear()
        self._keys.clear()

    def top1(self, query_keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The best stored edit per query.

        Args:
            query_keys: shape `(num_queries, knowledge_dim)`.

        Returns:
            ``(edit_ids, scores)`` of shape `(num_queries,)`: the edit index (``-1`` if the
            repository is empty) and its scaled-dot-product similarity (``-inf`` if empty).
        """
        if not self._ids:
            count = query_keys.shape[0]
            return torch.full((count,), -1, dtype=torch.long), torch.full((count,), -math.inf)
        scores = self._similarity(query_keys, torch.stack(self._keys))
        best_score, best = scores.max(-1)
        return torch.tensor(self._ids, dtype=torch.long)[best.cpu()], best_score.cpu()


def multiple_choice_question(question: str) -> str:
    """The context before an option in the multiple-choice check."""
    return f"Question: {question}\nAnswer:"


# ---------------------------------------------------------------------- the evaluation
@dataclass
class _Plan:
    """Per (method, N): the injection for each tested question of each chunk."""

    injections: dict[int, Injection] = field(default_factory=dict)  # question index -> injection
    evaluated: list[int] = field(default_factory=list)  # record indices tested
    diagnostics: dict[str, list[float]] = field(default_factory=dict)
    retrieval_seconds: float = 0.0
    general_injections: dict[int, Injection] | None = None  # general-ability row -> injection


def _progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


class LifelongEvaluation:
    """Run the sequential-editing protocol for several methods and several N in one pass.

    Args:
        recipe_model: the trained RecipeModel.
        base_model: the frozen base LM.
        records: the edits, in file order (shuffled here with ``config.seed``).
        config: what to run.
        general_ability: the perplexity / multiple-choice data (the bundled set when ``None``).
        progress: show a progress bar per phase.
        dataset: the dataset's name in the report.

    Raises:
        InvalidInputError: an N larger than the number of edits, or no edits.
    """

    def __init__(
        self,
        recipe_model: RecipeModel,
        base_model: HuggingFaceBaseModel,
        records: Sequence[EditRecord],
        config: EvaluationConfig | None = None,
        *,
        general_ability: GeneralAbilityData | None = None,
        progress: bool = True,
        dataset: str = "edits",
    ) -> None:
        self.model = recipe_model
        self.lm = base_model
        self.config = config or EvaluationConfig()
        self.progress = progress
        self.dataset = dataset
        if not records:
            msg = "No edits to evaluate."
            raise InvalidInputError(msg)
        self.records = select_edits(
            records, seed=self.config.seed, limit=self.config.limit, shuffle=self.config.shuffle
        )
        self.size = len(self.records)
        self.edit_counts = [self.size if n == "all" else int(n) for n in self.config.edit_counts]
        too_many = [n for n in self.edit_counts if n > self.size]
        if too_many:
            msg = (
                f"Cannot evaluate chunks of {too_many} edits: only {self.size} edits are loaded"
                f"{' (after --limit)' if self.config.limit else ''}. Use smaller counts or 'all'."
            )
            raise InvalidInputError(msg)
        self.edit_counts = list(dict.fromkeys(self.edit_counts))
        self.general: GeneralAbilityData | None = None
        if self.config.general_ability:
            self.general = general_ability if general_ability is not None else GeneralAbilityData.bundled()
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ questions
    def _question(self, index: int) -> tuple[str, str]:
        """Question text and target of question ``index`` (0..3M-1: reliability, generality, locality)."""
        kind, i = divmod(index, self.size)
        record = self.records[i]
        if kind == 0:
            return record.prompt, record.target
        if kind == 1:
            return record.rephrase, record.target
        return record.locality_prompt, record.locality_answer

    def _leaky_query(self, question: str, target: str) -> str:
        """The reference implementation's retrieval query: the decoded teacher-forced input."""
        batch = build_teacher_forced_batch(self.lm.tokenizer, [question], [target])
        labelled = (batch.labels[0] != IGNORE_INDEX).nonzero().flatten()
        last = int(labelled[-1])  # the input position that predicts the target's last token
        ids = batch.input_ids[0][: last + 1][batch.attention_mask[0][: last + 1].bool()]
        return self.lm.tokenizer.decode(ids, skip_special_tokens=True)

    @torch.no_grad()
    def _encode_queries(self, texts: Sequence[str], desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        keys = []
        step = 64
        for start in _progress(range(0, len(texts), step), self.progress, desc=desc, unit="batch", leave=False):
            keys.append(self.model.encode_queries(list(texts[start : start + step])).float().cpu())
        query_keys = torch.cat(keys)
        sentinel = self.sentinel_key.unsqueeze(0)
        return query_keys, self.model.similarity(query_keys, sentinel).squeeze(-1)

    @torch.no_grad()
    def _cosine_features(self, texts: Sequence[str]) -> torch.Tensor:
        """The frozen encoder's L2-normalised mean-pooled embeddings (no heads)."""
        features = []
        tokenizer, encoder = self.model.encoder_tokenizer, self.model.encoder
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                [format_retrieval_text(t) for t in texts[start : start + 64]],
                padding=True,
                truncation=True,
                max_length=self.model.config.encoder_max_length,
                return_tensors="pt",
            ).to(self.model.device)
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            features.append(torch.nn.functional.normalize(mean, dim=-1).float().cpu())
        return torch.cat(features)

    # ------------------------------------------------------------------ run
    @torch.no_grad()
    def run(self) -> EvaluationReport:
        """Run every method at every N.

        Returns:
            The :class:`EvaluationReport`.
        """
        torch.manual_seed(self.config.seed)
        started = time.perf_counter()
        was_training = self.model.training
        self.model.eval()  # no dropout while evaluating; the caller's mode is restored below
        try:
            self._encode()
            plans = self._plan()
            self._score_teacher_forced(plans)
            if self.config.exact_match:
                self._generate(plans)
            if self.general is not None:
                self._score_general(plans)
            rows = self._aggregate(plans)
        finally:
            self.model.train(was_training)
        self.timings["total"] = time.perf_counter() - started
        return EvaluationReport(
            dataset=self.dataset,
            num_records=self.size,
            config=self.config,
            rows=rows,
            fixed_threshold=self.fixed_threshold if "recipe_no_sentinel" in self.config.methods else None,
            environment=self._environment(),
            timings={k: round(v, 2) for k, v in self.timings.items()},  # as written to results.json
            general_ability_source=None if self.general is None else self.general.source,
        )

    def _environment(self) -> dict[str, Any]:
        return {
            "base_model": self.lm.name,
            "base_model_dtype": str(self.lm.dtype).removeprefix("torch."),
            "device": str(self.lm.device),
            "recipe_model": {
                "prompt_encoder_type": str(self.model.config.prompt_encoder_type.value),
                "num_prompt_tokens": self.model.config.num_prompt_tokens,
                "encoder": self.model.config.encoder_name_or_path,
                "base_model_fingerprint": self.model.config.base_model_fingerprint,
            },
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
        }

    # ------------------------------------------------------------------ phase 1: encode
    def _encode(self) -> None:
        self._encode_edits()
        self._encode_questions()

    def _encode_edits(self) -> None:
        """Keys and continuous prompts of every edit, once (reused by every chunk and N)."""
        tick = time.perf_counter()
        self.sentinel_key = self.model.sentinel_key().float().cpu()
        statements = [r.statement for r in self.records]
        self.statements = statements
        keys, prompts = [], []
        step = 32
        for start in _progress(range(0, self.size, step), self.progress, desc="encoding edits", unit="batch"):
            k, p = self.model.encode_edits(statements[start : start + step], self.lm)
            keys.append(k.float().cpu())
            prompts.append(p.float().cpu())
        self.keys, self.prompts = torch.cat(keys), torch.cat(prompts)
        self.edit_seconds = (time.perf_counter() - tick) / self.size
        self.timings["encode_edits"] = time.perf_counter() - tick

    def _encode_questions(self) -> None:
        """Query keys and sentinel scores of every question, once; the frozen-encoder features."""
        tick = time.perf_counter()
        questions = [self._question(q) for q in range(3 * self.size)]
        self.query_keys, self.sentinel_scores = self._encode_queries([q for q, _ in questions], "encoding questions")
        self.leaky_keys = self.leaky_sentinel = None
        if self.config.paper_mode:
            leaky = [self._leaky_query(q, t) for q, t in questions]
            self.leaky_keys, self.leaky_sentinel = self._encode_queries(leaky, "encoding paper-mode queries")
        if self.config.fixed_threshold is not None:
            self.fixed_threshold = float(self.config.fixed_threshold)
        else:
            self.fixed_threshold = float(self.sentinel_scores.mean())
        if any(m in RETRIEVAL_METHODS for m in self.config.methods):
            self.question_cosine = self._cosine_features([q for q, _ in questions[: 2 * self.size]])
            self.statement_cosine = self._cosine_features(self.statements)
        self.timings["encode_questions"] = time.perf_counter() - tick

    # ------------------------------------------------------------------ phase 2: retrieval
    def _method_names(self) -> list[tuple[str, str, bool]]:
        """``(name, base method, leaky)`` for every reported method."""
        names = [(m, m, False) for m in self.config.methods]
        if self.config.paper_mode:
            names += [(m + PAPER_MODE_SUFFIX, m, True) for m in self.config.methods if m in RETRIEVAL_METHODS]
        return names

    def _chunks(self, n: int) -> list[list[int]]:
        return [list(range(s, s + n)) for s in range(0, self.size - n + 1, n)]

    def _plan(self) -> dict[tuple[str, int], _Plan]:
        tick = time.perf_counter()
        plans: dict[tuple[str, int], _Plan] = {}
        repository = EditRepository(self.model.similarity)
        self.chunk_sizes: dict[int, list[int]] = {}
        names = self._method_names()
        general_queries = None
        if self.general is not None:
            general_texts = list(self.general.questions) + list(self.general.passages)
            general_queries = self._encode_queries(general_texts, "encoding general-ability queries")
        for n in _progress(self.edit_counts, self.progress, desc="retrieval per N", unit="N"):
            for name, *_ in names:
                plans[(name, n)] = _Plan()
            sizes = self.chunk_sizes.setdefault(n, [])
            for chunk_number, chunk in enumerate(self._chunks(n)):
                repository.reset()
                repository.add(chunk, self.keys[chunk])
                sizes.append(len(repository))
                questions = [k * self.size + i for k in range(3) for i in chunk]
                for name, base, leaky in names:
                    plan = plans[(name, n)]
                    plan.evaluated.extend(chunk)
                    keys = self.leaky_keys if leaky else self.query_keys
                    sentinel = self.leaky_sentinel if leaky else self.sentinel_scores
                    clock = time.perf_counter()
                    self._decide(plan, base, repository, questions, keys[questions], sentinel[questions], chunk)
                    plan.retrieval_seconds += time.perf_counter() - clock
                    if chunk_number == 0 and general_queries is not None and not leaky and base != "oracle":
                        plan.general_injections = self._decide_general(base, repository, *general_queries)
            repository.reset()
        self.timings["retrieval"] = time.perf_counter() - tick
        return plans

    def _gate(self, base: str, scores: torch.Tensor, sentinel: torch.Tensor) -> torch.Tensor:
        if base == "recipe_no_sentinel":
            return passes_gate(scores, self.fixed_threshold)
        return passes_gate(scores, sentinel)

    def _decide(
        self,
        plan: _Plan,
        base: str,
        repository: EditRepository,
        questions: list[int],
        query_keys: torch.Tensor,
        sentinel: torch.Tensor,
        chunk: list[int],
    ) -> None:
        if base == "unedited":
            plan.injections.update(dict.fromkeys(questions))
            return
        if base == "oracle":
            for q in questions:
                kind, i = divmod(q, self.size)
                plan.injections[q] = (_PROMPT, i if kind < 2 else (i + 1) % self.size)
            return
        best, scores = repository.top1(query_keys)
        accepted = self._gate(base, scores, sentinel)
        kind = _TEXT if base == "text_rag" else _PROMPT
        for q, j, ok in zip(questions, best.tolist(), accepted.tolist(), strict=True):
            plan.injections[q] = (kind, j) if ok else None
        edit_rows = 2 * len(chunk)
        own = torch.tensor([q % self.size for q in questions[:edit_rows]])
        hit = best[:edit_rows] == own
        diag = plan.diagnostics
        diag.setdefault("top1_accuracy", []).extend(hit.float().tolist())
        diag.setdefault("gate_recall", []).extend(accepted[:edit_rows].float().tolist())
        diag.setdefault("locality_rejection", []).extend((~accepted[edit_rows:]).float().tolist())
        diag.setdefault("correct_injection_rate", []).extend((hit & accepted[:edit_rows]).float().tolist())
        cosine = self.question_cosine[questions[:edit_rows]] @ self.statement_cosine[chunk].T
        cosine_hit = torch.tensor(chunk)[cosine.argmax(-1)] == own
        diag.setdefault("cosine_top1_accuracy", []).extend(cosine_hit.float().tolist())

    def _decide_general(
        self, base: str, repository: EditRepository, query_keys: torch.Tensor, sentinel: torch.Tensor
    ) -> dict[int, Injection]:
        """Injections for the general-ability queries (MC questions, then passages)."""
        if base in ("unedited", "oracle"):
            return dict.fromkeys(range(query_keys.shape[0]))
        best, scores = repository.top1(query_keys)
        accepted = self._gate(base, scores, sentinel)
        kind = _TEXT if base == "text_rag" else _PROMPT
        return {
            g: (kind, j) if ok else None for g, (j, ok) in enumerate(zip(best.tolist(), accepted.tolist(), strict=True))
        }

    # ------------------------------------------------------------------ phase 3/4: the LM
    def _row_input(self, question: str, injection: Injection) -> tuple[str, torch.Tensor | None]:
        if injection is None:
            return question, None
        kind, j = injection
        if kind == _TEXT:
            return text_rag_question(self.statements[j], question), None
        return question, self.prompts[j]

    def _requests(self, plans: dict[tuple[str, int], _Plan]) -> list[tuple[int, Injection]]:
        needed: dict[tuple[int, Injection], None] = {}
        for q in range(2 * self.size, 3 * self.size):
            needed[(q, None)] = None  # the locality reference, from the bare LM
        for plan in plans.values():
            for q, injection in plan.injections.items():
                needed[(q, injection)] = None
        # Sorted by length, so that batches need little padding.
        return sorted(
            needed, key=lambda r: len(self._row_input(self._question(r[0])[0], r[1])[0]) + len(self._question(r[0])[1])
        )

    def _run_batches(
        self, requests: list[Any], build: Callable[[Any], tuple[str, str, torch.Tensor | None]], fn: Callable, desc: str
    ) -> tuple[dict[Any, Any], dict[Any, float]]:
        results: dict[Any, Any] = {}
        seconds: dict[Any, float] = {}
        size = self.config.batch_size
        for start in _progress(range(0, len(requests), size), self.progress, desc=desc, unit="batch"):
            batch = requests[start : start + size]
            rows = [build(r) for r in batch]
            tick = time.perf_counter()
            outputs = fn([q for q, _, _ in rows], [t for _, t, _ in rows], [p for _, _, p in rows])
            spent = (time.perf_counter() - tick) / len(batch)
            for request, output in zip(batch, outputs, strict=True):
                results[request] = output
                seconds[request] = spent
        return results, seconds

    def _edit_row(self, request: tuple[int, Injection]) -> tuple[str, str, torch.Tensor | None]:
        question, target = self._question(request[0])
        text, prompt = self._row_input(question, request[1])
        return text, target, prompt

    def _score_teacher_forced(self, plans: dict[tuple[str, int], _Plan]) -> None:
        tick = time.perf_counter()
        self.requests = self._requests(plans)
        chat, batch_size = self.config.chat, self.config.batch_size

        def forward(questions: list[str], targets: list[str], prompts: list[torch.Tensor | None]) -> list:
            return teacher_forced_predictions(self.lm, questions, targets, prompts, batch_size=batch_size, chat=chat)

        self.tf_results, self.tf_seconds = self._run_batches(self.requests, self._edit_row, forward, "teacher forcing")
        self.timings["teacher_forcing"] = time.perf_counter() - tick

    def _generate(self, plans: dict[tuple[str, int], _Plan]) -> None:
        tick = time.perf_counter()
        chat, batch_size, extra = self.config.chat, self.config.batch_size, self.config.extra_new_tokens

        def forward(questions: list[str], targets: list[str], prompts: list[torch.Tensor | None]) -> list:
            return greedy_continuations(
                self.lm, questions, targets, prompts, extra_new_tokens=extra, batch_size=batch_size, chat=chat
            )

        self.gen_results, self.gen_seconds = self._run_batches(
            self.requests, self._edit_row, forward, "greedy generation"
        )
        self.timings["generation"] = time.perf_counter() - tick

    def _general_row(self, request: tuple[int, Injection]) -> tuple[str, str, torch.Tensor | None]:
        """General-ability row: index < options count -> an MC option; else a passage."""
        row, injection = request
        general = self.general
        assert general is not None
        if row < len(self._mc_rows):
            question_index, option = self._mc_rows[row]
            context = multiple_choice_question(general.questions[question_index])
            target = general.choices[question_index][option]
        else:
            passage = general.passages[row - len(self._mc_rows)]
            head, _, tail = passage.partition(" ")
            context, target = head, tail
        text, prompt = self._row_input(context, injection)
        return text, target, prompt

    def _score_general(self, plans: dict[tuple[str, int], _Plan]) -> None:
        tick = time.perf_counter()
        general = self.general
        assert general is not None
        self._mc_rows = [(q, o) for q in range(len(general.questions)) for o in range(len(general.choices[q]))]
        n_questions = len(general.questions)

        def query_of(row: int) -> int:
            return self._mc_rows[row][0] if row < len(self._mc_rows) else n_questions + row - len(self._mc_rows)

        total_rows = len(self._mc_rows) + len(general.passages)
        needed: dict[tuple[int, Injection], None] = {(r, None): None for r in range(total_rows)}
        for plan in plans.values():
            if plan.general_injections is not None:
                for r in range(total_rows):
                    needed[(r, plan.general_injections[query_of(r)])] = None
        self._general_query_of = query_of
        chat, batch_size = self.config.chat, self.config.batch_size

        def forward(questions: list[str], targets: list[str], prompts: list[torch.Tensor | None]) -> list:
            return target_log_likelihoods(self.lm, questions, targets, prompts, batch_size=batch_size, chat=chat)

        requests = sorted(needed, key=lambda r: len(self._general_row(r)[0]) + len(self._general_row(r)[1]))
        self.general_results, _ = self._run_batches(requests, self._general_row, forward, "general ability")
        self.timings["general_ability"] = time.perf_counter() - tick

    # ------------------------------------------------------------------ phase 5: aggregate
    def _added_tokens(self, question: str, injection: Injection) -> int:
        if injection is None:
            return 0
        kind, j = injection
        if kind == _PROMPT:
            return int(self.prompts[j].shape[0])
        tokenizer = self.lm.tokenizer
        with_text = tokenizer(text_rag_question(self.statements[j], question))["input_ids"]
        return len(with_text) - len(tokenizer(question)["input_ids"])

    def _general_metrics(self, injections: dict[int, Injection]) -> dict[str, float]:
        general = self.general
        assert general is not None
        query_of = self._general_query_of
        rows = range(len(self._mc_rows) + len(general.passages))
        scores = {r: self.general_results[(r, injections[query_of(r)])] for r in rows}
        correct = 0
        for q in range(len(general.questions)):
            options = [r for r, (qq, _) in enumerate(self._mc_rows) if qq == q]
            mean_log_prob = [scores[r][0] / max(1, scores[r][1]) for r in options]
            correct += int(max(range(len(options)), key=lambda o: mean_log_prob[o]) == general.answers[q])
        passages = [scores[r] for r in rows if r >= len(self._mc_rows)]
        fired = [injections[g] is not None for g in range(len(general.questions) + len(general.passages))]
        return {
            "perplexity": perplexity(passages),
            "multiple_choice_accuracy": correct / len(general.questions),
            "gate_fired_rate": sum(fired) / len(fired),
        }

    def _aggregate(self, plans: dict[tuple[str, int], _Plan]) -> list[MethodResult]:
        return [self._method_result(name, n, plan) for (name, n), plan in plans.items()]

    def _per_edit_scores(self, plan: _Plan) -> tuple[dict[str, list[float]], float, list[int]]:
        """Per evaluated edit: each metric's value; the LM's seconds; the input positions added per question."""
        size, decode = self.size, self.lm.tokenizer.decode
        scores: dict[str, list[float]] = {k: [] for k in ("rel", "gen", "loc", "em_rel", "em_gen", "em_loc")}
        lm_seconds, added = 0.0, []
        for i in plan.evaluated:
            r_q, g_q, l_q = i, size + i, 2 * size + i
            requests = [(q, plan.injections[q]) for q in (r_q, g_q, l_q)]
            scores["rel"].extend(token_accuracy([self.tf_results[requests[0]]]))
            scores["gen"].extend(token_accuracy([self.tf_results[requests[1]]]))
            scores["loc"].extend(agreement([self.tf_results[requests[2]]], [self.tf_results[(l_q, None)]]))
            lm_seconds += sum(self.tf_seconds[r] for r in requests)
            added.extend(self._added_tokens(self._question(q)[0], inj) for q, inj in requests)
            if self.config.exact_match:
                target = self.records[i].target
                for key, request in (("em_rel", requests[0]), ("em_gen", requests[1])):
                    said = decode(self.gen_results[request], skip_special_tokens=True)
                    scores[key].append(float(exact_match(said, target)))
                scores["em_loc"].append(float(self.gen_results[requests[2]] == self.gen_results[(l_q, None)]))
                lm_seconds += sum(self.gen_seconds[r] for r in requests)
        return scores, lm_seconds, added

    def _method_result(self, name: str, n: int, plan: _Plan) -> MethodResult:
        scores, lm_seconds, added = self._per_edit_scores(plan)
        count = len(plan.evaluated)
        exact = self.config.exact_match
        return MethodResult(
            method=name,
            edits=n,
            chunks=count // n,
            edits_evaluated=count,
            leaky_retrieval_query=name.endswith(PAPER_MODE_SUFFIX),
            reliability=_mean(scores["rel"]),
            generality=_mean(scores["gen"]),
            locality=_mean(scores["loc"]),
            exact_match=(
                {k: _mean(scores[f"em_{k[:3]}"]) for k in ("reliability", "generality", "locality")} if exact else None
            ),
            retrieval={k: _mean(v) for k, v in plan.diagnostics.items()} or None,
            general_ability=(
                self._general_metrics(plan.general_injections)
                if self.general is not None and plan.general_injections is not None
                else None
            ),
            mean_added_input_tokens=_mean(added),
            timings={
                "retrieval": plan.retrieval_seconds,
                "lm": lm_seconds,
                "edit_per_edit": self.edit_seconds if name.removesuffix(PAPER_MODE_SUFFIX) != "unedited" else 0.0,
            },
            per_edit={"reliability": scores["rel"], "generality": scores["gen"], "locality": scores["loc"]}
            | ({"exact_match_reliability": scores["em_rel"]} if scores["em_rel"] else {}),
        )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


# ---------------------------------------------------------------------- one-call API
@torch.no_grad()
def evaluate_edits(
    model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    records: Sequence[EditRecord],
    *,
    method: str = "recipe",
    batch_size: int = 16,
) -> EvaluationResult:
    """Edit all ``records`` at once, then score every edit's questions (teacher forcing only).

    The trainer's periodic evaluation; ``recipe eval`` runs :class:`LifelongEvaluation` with
    more methods, several N and generation.

    Args:
        model: the trained RecipeModel.
        base_model: the frozen base LM.
        records: the edits (N of them, one chunk).
        method: one of :data:`ALL_METHODS`.
        batch_size: rows per LM forward pass.

    Returns:
        An :class:`EvaluationResult` (retrieval diagnostics for the retrieval methods).

    Raises:
        ValueError: unknown method.
    """
    if method not in ALL_METHODS:
        msg = f"Unknown method {method!r}; use one of {sorted(ALL_METHODS)}."
        raise ValueError(msg)
    config = EvaluationConfig(
        edit_counts=["all"],
        methods=[method],
        batch_size=batch_size,
        shuffle=False,
        exact_match=False,
        general_ability=False,
    )
    evaluation = LifelongEvaluation(model, base_model, records, config, progress=False)
    row = evaluation.run().rows[0]
    retrieval = None
    if row.retrieval is not None:
        retrieval = RetrievalDiagnostics(**row.retrieval)
    return EvaluationResult(
        reliability=row.reliability,
        generality=row.generality,
        locality=row.locality,
        retrieval=retrieval,
        per_edit=row.per_edit,
    )
