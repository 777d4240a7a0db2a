"""Retrieval-only benchmark (no LM): own-edit top-1 and the knowledge sentinel's verdicts.

The knowledge/query encoder is frozen (``RecipeConfig.train_encoder=False``), so its pooled
features of every knowledge statement and question are computed once and cached on disk
(:func:`build_feature_table`); the knowledge and query heads and the sentinel then score
thousands of stored edits in seconds. Each store holds all of its N edits at once and every other
edit is a distractor (RECIPE's lifelong setting, Chen et al., EMNLP 2024, §4):

* ``zsre-500``: the 500 ZsRE dev edits; unrelated questions are ZsRE's NQ questions (``loc``).
* ``counterfact-1000``: the 1000 CounterFact dev edits; unrelated questions are CounterFact's
  ``locality_prompt`` (another subject, the **same relation**).
* ``mix-10000``: ZsRE dev, CounterFact dev, the held-out parts of CounterFact train and KnowEdit,
  and the natural facts if present, all queried; the store is filled up to 10,000 edits with
  training-split edits that are never queried (distractors). Unrelated questions of all three
  kinds, plus KnowEdit's ``Relation_Specificity`` prompts (the **same subject**, another
  relation).

Measured for each scorer (:class:`SentinelScorer`: a RecipeModel's heads and knowledge
sentinel; :class:`CosineScorer`: the frozen encoder's cosine with a fixed threshold), with the
project's one gate rule, :func:`~langchain_recipe.scoring.sentinel_gate`:

* ``own_top1``: edit and paraphrase questions whose best stored edit is their own;
* ``gate_accept``: of those, the share the gate accepts;
* ``reject[kind]``: unrelated questions the gate rejects, per kind of negative.

Splits (:func:`split_of`): CounterFact train and KnowEdit are split by a hash of the subject into
``heldout`` (30 %), ``val`` (10 %) and ``train`` (60 %); ZsRE train into ``val`` (10 %) and
``train``. Training uses ``train``; thresholds and model selection use ``val``; the tables use the
dev files and ``heldout``.

Run ``recipe bench-retrieval`` (see ``docs/evaluation.md``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from langchain_recipe.datasets import DATA_DIR, EditRecord, load_edits, read_json_lines
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.knowledge_store._sparse import lexical_tokens
from langchain_recipe.nn.knowledge_encoder import format_retrieval_text
from langchain_recipe.scoring import GateDecision, retrieval_scores, sentinel_gate

logger = logging.getLogger(__name__)

__all__ = [
    "GOALS",
    "NEGATIVE_KINDS",
    "CosineScorer",
    "FeatureTable",
    "LexicalIndex",
    "RetrievalBenchSettings",
    "RetrievalEdit",
    "RetrievalNegative",
    "RetrievalScorer",
    "RetrievalSet",
    "SentinelScorer",
    "benchmark_sets",
    "build_feature_table",
    "evaluate_retrieval",
    "fit_fixed_threshold",
    "gate_decisions",
    "hybrid_top1",
    "lexical_tokens",
    "load_knowedit",
    "load_natural_facts",
    "prepare_features",
    "records_to_set",
    "render_markdown",
    "run_retrieval_benchmark",
    "split_of",
    "training_sets",
]

NEGATIVE_KINDS: dict[str, str] = {
    "zsre_nq": "ZsRE NQ questions (`loc`)",
    "counterfact_same_relation": "CounterFact same-relation prompts (`locality_prompt`)",
    "knowedit_same_subject": "KnowEdit same-subject prompts (`Relation_Specificity`)",
    "natural_unrelated": "natural facts' unrelated questions (`locality_prompt`)",
}
"""Kinds of unrelated question, each reported separately."""

GOALS: dict[str, float] = {"own_top1_500": 0.97, "own_top1_10000": 0.95, "gate_accept": 0.98, "reject": 0.98}
"""Issue 15's bars: own-edit top-1 at 500 (ZsRE) and 10,000 stored edits, gate acceptance of
right top-1s, and rejection of each kind of unrelated question."""

KNOWEDIT_FILE = DATA_DIR / "knowedit" / "wiki_counterfact_train.jsonl"
NATURAL_FILE = DATA_DIR / "natural" / "facts.jsonl"
_POOLING_VERSION = "first-normmean-max-min/1"
Split = Literal["train", "val", "heldout"]


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True)
class RetrievalEdit:
    """One stored edit and the questions that must retrieve it.

    Attributes:
        statement: the knowledge statement that is stored (its knowledge key is computed from it).
        questions: the edit question first, then its paraphrases; empty for an edit that is only
            a distractor.
        source: the dataset it comes from (``"zsre"``, ``"counterfact"``, ``"knowedit"``, ...).
        subject: the entity it is about.
    """

    statement: str
    questions: tuple[str, ...]
    source: str
    subject: str = ""


@dataclass(frozen=True)
class RetrievalNegative:
    """A question that no stored edit answers, so the gate must reject it.

    Attributes:
        text: the question.
        kind: one of :data:`NEGATIVE_KINDS`.
        subject: the subject of the edit it was paired with in its dataset.
    """

    text: str
    kind: str
    subject: str = ""


@dataclass
class RetrievalSet:
    """A store to measure: queried edits, distractors (stored, never queried) and unrelated questions.

    Attributes:
        name: e.g. ``"zsre-500"``.
        edits: stored edits whose questions are asked.
        negatives: unrelated questions.
        distractors: stored edits whose questions are not asked.
        note: where the parts come from (for the report).
    """

    name: str
    edits: list[RetrievalEdit]
    negatives: list[RetrievalNegative]
    distractors: list[RetrievalEdit] = field(default_factory=list)
    note: str = ""

    @property
    def stored(self) -> list[RetrievalEdit]:
        """Every stored edit: the queried ones first, then the distractors."""
        return self.edits + self.distractors

    def texts(self) -> list[str]:
        """Every statement and question of the set (for feature caching)."""
        out = [e.statement for e in self.stored]
        out += [q for e in self.stored for q in e.questions]
        out += [n.text for n in self.negatives]
        return out


def _norm(text: str) -> str:
    return format_retrieval_text(text).lower().rstrip(" ?.")


def split_of(source: str, subject: str, *, heldout: bool = True) -> Split:
    """The split of an edit of a training file, from a hash of its source and subject.

    Edits about one subject share a split, so a held-out question never asks about a subject that
    training saw in the same file.

    Args:
        source: the dataset name.
        subject: the edit's subject (or its statement when it has none).
        heldout: whether the file gives up a held-out part (30 %); otherwise buckets 0-2 train.

    Returns:
        ``"heldout"`` (buckets 0-2 when ``heldout``), ``"val"`` (bucket 3) or ``"train"``.
    """
    bucket = int(hashlib.sha256(f"{source}\x00{subject}".encode()).hexdigest(), 16) % 10
    if bucket < 3 and heldout:
        return "heldout"
    return "val" if bucket == 3 else "train"


def records_to_set(
    records: Sequence[EditRecord], source: str, negative_kind: str
) -> tuple[list[RetrievalEdit], list[RetrievalNegative]]:
    """Edits (statement; edit question and paraphrase) and unrelated questions of ZsRE/CounterFact records.

    Raises:
        InvalidInputError: ``negative_kind`` is not one of :data:`NEGATIVE_KINDS`.
    """
    if negative_kind not in NEGATIVE_KINDS:
        msg = f"Unknown kind of negative {negative_kind!r}; use one of {sorted(NEGATIVE_KINDS)}."
        raise InvalidInputError(msg)
    edits = [RetrievalEdit(r.statement, (r.prompt, r.rephrase), source, r.subject) for r in records]
    negatives = [RetrievalNegative(r.locality_prompt, negative_kind, r.subject) for r in records]
    return edits, negatives


def load_knowedit(path: str | Path) -> list[tuple[RetrievalEdit, list[RetrievalNegative]]]:
    """KnowEdit (WikiData-counterfact) records as edits with their same-subject negatives.

    The statement is ``prompt + " " + target_new``; the questions are ``prompt`` and the first
    ``portability.Subject_Aliasing`` prompt (the fact asked under another name of the subject);
    the negatives are the ``locality.Relation_Specificity`` prompts (another fact of the same
    subject). Records without a prompt or a new target are skipped.

    Raises:
        InvalidInputError: the file is missing or a line is not JSON.
    """
    file = Path(path)
    if not file.is_file():
        msg = (
            f"{file} does not exist; copy shared/data/knowedit/wiki_counterfact_train.jsonl there "
            "(see data/PROVENANCE.md) or pass another KnowEdit file."
        )
        raise InvalidInputError(msg)
    out = []
    for _, raw in read_json_lines(file):
        if (
            not isinstance(raw, dict)
            or not str(raw.get("prompt", "")).strip()
            or not str(raw.get("target_new", "")).strip()
        ):
            continue
        subject = str(raw.get("subject", ""))
        aliases = [p["prompt"] for p in (raw.get("portability") or {}).get("Subject_Aliasing", []) if p.get("prompt")]
        edit = RetrievalEdit(
            f"{raw['prompt'].rstrip()} {raw['target_new'].strip()}", (raw["prompt"], *aliases[:1]), "knowedit", subject
        )
        specific = (raw.get("locality") or {}).get("Relation_Specificity", [])
        out.append(
            (
                edit,
                [RetrievalNegative(p["prompt"], "knowedit_same_subject", subject) for p in specific if p.get("prompt")],
            )
        )
    return out


def load_natural_facts(path: str | Path) -> tuple[list[RetrievalEdit], list[RetrievalNegative]]:
    """Natural-language facts as edits and unrelated questions.

    The file is ``data/natural/facts.jsonl``: one JSON object a line with a declarative
    ``statement``.

    Questions come from the optional fields ``prompt`` (or ``question``) then ``rephrase``; a fact
    without any is stored as a distractor only. ``locality_prompt`` is an unrelated question
    (kind ``natural_unrelated``).

    Raises:
        InvalidInputError: the file is missing, a line is not JSON, or a record has no statement.
    """
    file = Path(path)
    if not file.is_file():
        msg = f"{file} does not exist."
        raise InvalidInputError(msg)
    edits, negatives = [], []
    for where, raw in read_json_lines(file):
        if not isinstance(raw, dict) or not isinstance(raw.get("statement"), str) or not raw["statement"].strip():
            msg = f"{where}: a natural fact needs a non-empty string field 'statement'."
            raise InvalidInputError(msg)
        subject = str(raw.get("subject", ""))
        questions = [raw.get(name) for name in ("prompt", "question", "rephrase")]
        edits.append(
            RetrievalEdit(
                raw["statement"], tuple(q for q in questions if isinstance(q, str) and q.strip()), "natural", subject
            )
        )
        if isinstance(raw.get("locality_prompt"), str) and raw["locality_prompt"].strip():
            negatives.append(RetrievalNegative(raw["locality_prompt"], "natural_unrelated", subject))
    return edits, negatives


def _without_stored_questions(
    negatives: Iterable[RetrievalNegative], stored: Sequence[RetrievalEdit]
) -> tuple[list[RetrievalNegative], int]:
    """Drop unrelated questions that are the question of a stored edit, and repeats.

    Accepting such a question would be right. Returns the rest and how many were dropped.
    """
    negatives = list(negatives)
    asked = {_norm(q) for e in stored for q in e.questions} | {_norm(e.statement) for e in stored}
    seen: set[tuple[str, str]] = set()
    kept = []
    for negative in negatives:
        key = _norm(negative.text)
        if key in asked or (negative.kind, key) in seen:
            continue
        seen.add((negative.kind, key))
        kept.append(negative)
    return kept, len(negatives) - len(kept)


def _split_parts(
    data_dir: Path, knowedit: Path | None
) -> dict[Split, tuple[list[RetrievalEdit], list[RetrievalNegative]]]:
    """The training files' edits and negatives by split (ZsRE train has no held-out part)."""
    parts: dict[Split, tuple[list[RetrievalEdit], list[RetrievalNegative]]] = {
        s: ([], []) for s in ("train", "val", "heldout")
    }
    for name, kind, heldout in (("zsre", "zsre_nq", False), ("counterfact", "counterfact_same_relation", True)):
        records = load_edits(name, "train", path=data_dir / name / "train.jsonl", skip_invalid=True)  # type: ignore[arg-type]
        for edit, negative in zip(*records_to_set(records, name, kind), strict=True):
            split = split_of(name, edit.subject or edit.statement, heldout=heldout)
            parts[split][0].append(edit)
            parts[split][1].append(negative)
    if knowedit is not None and Path(knowedit).is_file():
        for edit, negatives in load_knowedit(knowedit):
            split = split_of("knowedit", edit.subject or edit.statement)
            parts[split][0].append(edit)
            parts[split][1].extend(negatives)
    return parts


def training_sets(
    data_dir: str | Path = DATA_DIR, knowedit: str | Path | None = KNOWEDIT_FILE
) -> tuple[RetrievalSet, RetrievalSet]:
    """The ``train`` and ``val`` splits.

    ``train`` trains the heads and sentinel; ``val`` sets thresholds and selects models, stored
    together with the train edits as distractors.

    Raises:
        InvalidInputError: a training file is missing or malformed.
    """
    parts = _split_parts(Path(data_dir), Path(knowedit) if knowedit else None)
    train_edits, train_negatives = parts["train"]
    val_edits, val_negatives = parts["val"]
    train_negatives, _ = _without_stored_questions(train_negatives, train_edits)
    val_negatives, _ = _without_stored_questions(val_negatives, val_edits + train_edits)
    train = RetrievalSet(f"train-{len(train_edits)}", train_edits, train_negatives, note="training split")
    val = RetrievalSet(
        f"val-{len(val_edits) + len(train_edits)}",
        val_edits,
        val_negatives,
        train_edits,
        note="val split queried; train split as distractors",
    )
    return train, val


def benchmark_sets(
    data_dir: str | Path = DATA_DIR,
    *,
    knowedit: str | Path | None = KNOWEDIT_FILE,
    natural: str | Path | None = NATURAL_FILE,
    mix_size: int = 10_000,
    seed: int = 0,
) -> list[RetrievalSet]:
    """The measured stores: ZsRE dev, CounterFact dev, and the mix of ``mix_size`` edits.

    The mix queries every evaluation edit (ZsRE dev, CounterFact dev, the held-out parts of
    CounterFact train and KnowEdit, and the natural facts when ``natural`` exists) and is filled
    with ``val`` then ``train`` edits (in a seeded random order) that are stored but never asked.
    A fourth set, ``mix-unseen-N``, is the mix without those distractors, so no stored edit was
    seen in training.

    Raises:
        InvalidInputError: a data file is missing or malformed, or ``mix_size`` is smaller than
            the number of evaluation edits.
    """
    data_dir = Path(data_dir)
    sets = []
    dev = {}
    for name, kind in (("zsre", "zsre_nq"), ("counterfact", "counterfact_same_relation")):
        records = load_edits(name, "dev", path=data_dir / name / "dev.jsonl")  # type: ignore[arg-type]
        edits, negatives = records_to_set(records, name, kind)
        dev[name] = (edits, negatives)
        negatives, dropped = _without_stored_questions(negatives, edits)
        note = f"{name} dev" + (
            f"; {dropped} unrelated questions dropped (repeats, or a stored edit's own question)" if dropped else ""
        )
        sets.append(RetrievalSet(f"{name}-{len(edits)}", edits, negatives, note=note))
    parts = _split_parts(data_dir, Path(knowedit) if knowedit else None)
    queried = dev["zsre"][0] + dev["counterfact"][0] + parts["heldout"][0]
    negatives = dev["zsre"][1] + dev["counterfact"][1] + parts["heldout"][1]
    sources = "ZsRE dev, CounterFact dev, held-out CounterFact train" + (
        ", held-out KnowEdit" if knowedit and Path(knowedit).is_file() else ""
    )
    if natural is not None and Path(natural).is_file():
        facts, unrelated = load_natural_facts(natural)
        queried += [f for f in facts if f.questions]
        negatives += unrelated
        sources += f", {len(facts)} natural facts"
    distractors = [
        e for split in ("val", "train") for e in random.Random(seed).sample(parts[split][0], len(parts[split][0]))
    ]  # type: ignore[index]
    unseen_negatives, dropped = _without_stored_questions(negatives, queried)
    sets.append(
        RetrievalSet(f"mix-unseen-{len(queried)}", queried, unseen_negatives, note=f"{sources}; no distractors")
    )
    if mix_size < len(queried):
        msg = (
            f"mix_size={mix_size} is smaller than the {len(queried)} evaluation edits; ask for at least {len(queried)}."
        )
        raise InvalidInputError(msg)
    filler = distractors[: mix_size - len(queried)]
    mix_negatives, dropped = _without_stored_questions(negatives, queried + filler)
    note = f"{sources}; {len(filler)} train/val edits as never-asked distractors"
    sets.append(RetrievalSet(f"mix-{len(queried) + len(filler)}", queried, mix_negatives, filler, note=note))
    return sets


# ---------------------------------------------------------------------------- features
@dataclass
class FeatureTable:
    """Pooled encoder features by text.

    Attributes:
        rows: row of each text (after :func:`format_retrieval_text`).
        features: shape `(num_texts, 4 * encoder_hidden_size)`, float32.
    """

    rows: dict[str, int]
    features: torch.Tensor

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Features of ``texts``, shape `(len(texts), 4 * encoder_hidden_size)`.

        Raises:
            KeyError: a text was not encoded (build the table with it).
        """
        if not texts:
            return self.features[:0]
        return self.features[torch.tensor([self.rows[format_retrieval_text(t)] for t in texts])]


def encoder_fingerprint(model: Any) -> str:
    """A short hash of the encoder's name, length limit, pooling and weights (the cache key's model part)."""
    digest = hashlib.sha256()
    digest.update(
        f"{model.config.encoder_name_or_path}\x00{model.config.encoder_max_length}\x00{_POOLING_VERSION}".encode()
    )
    for name, tensor in model.encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def build_feature_table(
    model: Any,
    groups: dict[str, Sequence[str]],
    cache_dir: str | Path | None,
    *,
    batch_size: int = 64,
    log: Callable[[str], None] = logger.info,
) -> FeatureTable:
    """Encode each group of texts once with ``model``'s frozen encoder, caching each group on disk.

    A group's file is ``<cache_dir>/<group>-<hash>.safetensors``, the hash covering the encoder
    (:func:`encoder_fingerprint`) and the group's set of distinct texts, so a changed text or
    encoder never reads stale features.

    Args:
        model: a :class:`~langchain_recipe.nn.RecipeModel` (its ``pooled_features`` are cached).
        groups: texts by group name (e.g. one group per data file).
        cache_dir: folder for the cache files; ``None`` disables caching.
        batch_size: texts per encoder pass.
        log: progress messages.

    Returns:
        The table of every distinct text of every group.

    Raises:
        InvalidInputError: the model's encoder is trained (features would change with training).
    """
    from safetensors.torch import load_file, save_file

    if model.config.train_encoder:
        msg = (
            "The RecipeModel trains its encoder (train_encoder=True), so its features cannot be cached; "
            "use a model with a frozen encoder."
        )
        raise InvalidInputError(msg)
    model_key = encoder_fingerprint(model)
    rows: dict[str, int] = {}
    parts = []
    for group, texts in groups.items():
        distinct = sorted({format_retrieval_text(t) for t in texts})  # the key ignores order and repeats
        key = hashlib.sha256(json.dumps([model_key, distinct]).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"{group}-{key}.safetensors" if cache_dir is not None else None
        if path is not None and path.is_file():
            features = load_file(path)["features"]
        else:
            tick = time.perf_counter()
            features = _encode_features(model, distinct, batch_size)
            log(f"encoded {len(distinct)} texts of {group} in {time.perf_counter() - tick:.0f} s")
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                metadata = {"encoder": model_key, "count": str(len(distinct))}
                save_file({"features": features.contiguous()}, path, metadata=metadata)
        offset = sum(p.shape[0] for p in parts)
        new = [i for i, t in enumerate(distinct) if t not in rows]
        for j, i in enumerate(new):
            rows[distinct[i]] = offset + j
        parts.append(features[torch.tensor(new, dtype=torch.long)] if new else features[:0])
    return FeatureTable(rows, torch.cat(parts) if parts else torch.empty(0, 4 * model.config.encoder_hidden_size))


def _encode_features(model: Any, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    """``model.pooled_features`` of ``texts`` in batches of similar length: ``(len(texts), 4 * hidden)`` float32."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    features = torch.empty(len(texts), 4 * model.config.encoder_hidden_size)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        features[torch.tensor(chunk, dtype=torch.long)] = model.pooled_features([texts[i] for i in chunk]).float().cpu()
    return features


# ---------------------------------------------------------------------------- scorers
def gate_decisions(
    query_keys: torch.Tensor, knowledge_keys: torch.Tensor, sentinel_key: torch.Tensor, *, chunk_size: int = 1024
) -> GateDecision:
    """:func:`~langchain_recipe.scoring.sentinel_gate` over query chunks (bounded memory).

    Args:
        query_keys: shape `(num_queries, knowledge_dim)`.
        knowledge_keys: shape `(num_edits, knowledge_dim)`.
        sentinel_key: shape `(knowledge_dim,)`.
        chunk_size: queries scored at once.

    Returns:
        The concatenated :class:`~langchain_recipe.nn.knowledge_sentinel.GateDecision`.
    """
    parts = [
        sentinel_gate(query_keys[i : i + chunk_size], knowledge_keys, sentinel_key)
        for i in range(0, max(query_keys.shape[0], 1), chunk_size)
    ]
    return GateDecision(*(torch.cat([p[n] for p in parts]) for n in range(4)))


class RetrievalScorer(Protocol):
    """Maps cached features to keys and decides with the gate."""

    name: str

    def knowledge_keys(self, features: torch.Tensor) -> torch.Tensor:
        """Keys of stored statements, `(num_edits, key_dim)` from `(num_edits, num_features)`."""

    def query_keys(self, features: torch.Tensor) -> torch.Tensor:
        """Keys of questions, `(num_queries, key_dim)` from `(num_queries, num_features)`."""

    def decide(self, query_keys: torch.Tensor, knowledge_keys: torch.Tensor) -> GateDecision:
        """Best stored edit per query and the gate's verdict."""


class SentinelScorer:
    """A RecipeModel's knowledge/query heads and knowledge sentinel (what the store serves).

    Args:
        model: the :class:`~langchain_recipe.nn.RecipeModel`.
        name: its name in the report.
    """

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name
        with torch.no_grad():
            self.sentinel_key = model.sentinel_key().float().cpu()

    @torch.no_grad()
    def knowledge_keys(self, features: torch.Tensor) -> torch.Tensor:
        """``MLP_K(features)``, shape `(num_edits, knowledge_dim)`."""
        return torch.cat(
            [self.model.knowledge_head(features[i : i + 4096]) for i in range(0, max(len(features), 1), 4096)]
        )

    @torch.no_grad()
    def query_keys(self, features: torch.Tensor) -> torch.Tensor:
        """``MLP_Q(features)``, shape `(num_queries, knowledge_dim)`."""
        return torch.cat([self.model.query_head(features[i : i + 4096]) for i in range(0, max(len(features), 1), 4096)])

    def decide(self, query_keys: torch.Tensor, knowledge_keys: torch.Tensor) -> GateDecision:
        """:func:`gate_decisions` with this model's sentinel key."""
        return gate_decisions(query_keys, knowledge_keys, self.sentinel_key)


class CosineScorer:
    """The frozen encoder's cosine similarity (normalised mean pooling, no heads) with a fixed threshold.

    The fixed threshold is expressed as a knowledge sentinel, so the one gate rule
    (:func:`~langchain_recipe.scoring.sentinel_gate`, strict ``>``) decides: keys
    get one more coordinate (``sqrt(d + 1)`` for queries, 0 for statements) and the sentinel key
    is ``(0, ..., 0, threshold)``, so ``s(q, k)`` is the cosine and ``s(q, Θ)`` the threshold.

    Args:
        encoder_hidden_size: size H of the encoder's states (features are `(n, 4 H)`).
        threshold: the cosine a best match must exceed.
        name: its name in the report.
    """

    def __init__(self, encoder_hidden_size: int, threshold: float, name: str = "cosine") -> None:
        self.hidden = encoder_hidden_size
        self.threshold = float(threshold)
        self.name = name
        self.sentinel_key = torch.zeros(encoder_hidden_size + 1)
        self.sentinel_key[-1] = self.threshold

    def _mean(self, features: torch.Tensor) -> torch.Tensor:
        return features[:, self.hidden : 2 * self.hidden]

    def knowledge_keys(self, features: torch.Tensor) -> torch.Tensor:
        """``[m; 0]`` with ``m`` the normalised mean, shape `(num_edits, H + 1)`."""
        mean = self._mean(features)
        return torch.cat([mean, mean.new_zeros(mean.shape[0], 1)], dim=-1)

    def query_keys(self, features: torch.Tensor) -> torch.Tensor:
        """``sqrt(H + 1) [m; 1]``, shape `(num_queries, H + 1)`."""
        mean = self._mean(features)
        return torch.cat([mean, mean.new_ones(mean.shape[0], 1)], dim=-1) * math.sqrt(self.hidden + 1)

    def decide(self, query_keys: torch.Tensor, knowledge_keys: torch.Tensor) -> GateDecision:
        """:func:`gate_decisions` with the threshold as the sentinel key."""
        return gate_decisions(query_keys, knowledge_keys, self.sentinel_key)


# ---------------------------------------------------------------------------- metrics
def _rate(mask: torch.Tensor) -> float | None:
    return float(mask.float().mean()) if mask.numel() else None


def _decisions(scorer: RetrievalScorer, rset: RetrievalSet, table: FeatureTable) -> dict[str, Any]:
    stored = rset.stored
    keys = scorer.knowledge_keys(table([e.statement for e in stored]))
    owners, kinds, texts = [], [], []
    for i, edit in enumerate(rset.edits):
        for j, question in enumerate(edit.questions):
            owners.append(i)
            kinds.append("edit" if j == 0 else "paraphrase")
            texts.append(question)
    decision = scorer.decide(scorer.query_keys(table(texts)), keys)
    statements = [_norm(e.statement) for e in stored]
    best = decision.best_index.tolist()
    # A stored edit with the very same statement is as right as the question's own.
    hit = torch.tensor(
        [b == o or (b >= 0 and statements[b] == statements[o]) for b, o in zip(best, owners, strict=True)],
        dtype=torch.bool,
    )
    negative = scorer.decide(scorer.query_keys(table([n.text for n in rset.negatives])), keys)
    return {"owners": owners, "kinds": kinds, "hit": hit, "decision": decision, "negative": negative}


def evaluate_retrieval(scorer: RetrievalScorer, rset: RetrievalSet, table: FeatureTable) -> dict[str, Any]:
    """Measure one scorer on one store (all its edits stored at once).

    Returns:
        A dict with ``own_top1`` (edit and paraphrase questions whose best edit is their own),
        ``own_top1_by_question`` (``edit`` / ``paraphrase``), ``own_top1_by_source``,
        ``gate_accept`` (accepted among right top-1s), ``wrong_accept`` (accepted among wrong
        top-1s: a wrong edit injected), ``correct_injection`` (right and accepted), ``reject``
        (by kind of negative) and the counts.

    Raises:
        KeyError: a text of the set is missing from ``table``.
    """
    out = _decisions(scorer, rset, table)
    hit, accepted = out["hit"], out["decision"].accepted
    kinds = torch.tensor([k == "edit" for k in out["kinds"]], dtype=torch.bool)
    sources = [rset.edits[o].source for o in out["owners"]]
    negative_kinds = [n.kind for n in rset.negatives]
    reject = {
        kind: _rate(~out["negative"].accepted[torch.tensor([k == kind for k in negative_kinds], dtype=torch.bool)])
        for kind in NEGATIVE_KINDS
        if kind in negative_kinds
    }
    return {
        "own_top1": _rate(hit),
        "own_top1_by_question": {"edit": _rate(hit[kinds]), "paraphrase": _rate(hit[~kinds])},
        "own_top1_by_source": {
            s: _rate(hit[torch.tensor([x == s for x in sources], dtype=torch.bool)]) for s in dict.fromkeys(sources)
        },
        "gate_accept": _rate(accepted[hit]),
        "wrong_accept": _rate(accepted[~hit]),
        "correct_injection": _rate(hit & accepted),
        "reject": reject,
        "counts": {
            "stored": len(rset.stored),
            "questions": len(hit),
            "negatives": dict(zip(*_count(negative_kinds), strict=True)),
        },
    }


def _count(values: Sequence[str]) -> tuple[list[str], list[int]]:
    keys = list(dict.fromkeys(values))
    return keys, [sum(1 for v in values if v == k) for k in keys]


def fit_fixed_threshold(hit_scores: torch.Tensor, negative_scores: dict[str, torch.Tensor]) -> float:
    """The threshold that maximises the worst rate of the gate.

    The rates are the acceptance of right top-1s and the rejection of each kind of negative (the
    retrieval goals are all on these rates).

    Args:
        hit_scores: best scores of questions whose top-1 is right, shape `(num_hits,)`.
        negative_scores: best scores of unrelated questions by kind, each shape `(num_negatives,)`.

    Returns:
        The threshold (a midpoint between two observed scores).

    Raises:
        InvalidInputError: there are no right top-1s or no negatives.
    """
    if hit_scores.numel() == 0 or not any(s.numel() for s in negative_scores.values()):
        msg = "Fitting a threshold needs questions with a right top-1 and unrelated questions; use a larger tuning set."
        raise InvalidInputError(msg)
    every = torch.cat([hit_scores, *negative_scores.values()]).sort().values
    candidates = torch.cat([every[:1] - 1e-3, (every[1:] + every[:-1]) / 2, every[-1:] + 1e-3])
    worst = (hit_scores.unsqueeze(0) > candidates.unsqueeze(1)).float().mean(1)
    for scores in negative_scores.values():
        if scores.numel():
            worst = torch.minimum(worst, (scores.unsqueeze(0) <= candidates.unsqueeze(1)).float().mean(1))
    return float(candidates[int(worst.argmax())])


def tune_cosine_threshold(encoder_hidden_size: int, tuning: RetrievalSet, table: FeatureTable) -> float:
    """Fit :class:`CosineScorer`'s threshold on a tuning store with :func:`fit_fixed_threshold`.

    The tuning store is the ``val`` split, never a measured store.
    """
    out = _decisions(CosineScorer(encoder_hidden_size, 0.0), tuning, table)
    kinds = [n.kind for n in tuning.negatives]
    negatives = {
        k: out["negative"].best_score[torch.tensor([x == k for x in kinds], dtype=torch.bool)]
        for k in dict.fromkeys(kinds)
    }
    return fit_fixed_threshold(out["decision"].best_score[out["hit"]], negatives)


# ---------------------------------------------------------------------------- the run
@dataclass
class RetrievalBenchSettings:
    """What ``recipe bench-retrieval`` measures.

    Attributes:
        models: RecipeModel checkpoints to compare, by name (all with the same frozen encoder).
        data_dir: folder with ``zsre/`` and ``counterfact/`` train and dev files.
        knowedit: KnowEdit file (``None`` or missing: left out).
        natural: natural facts file (``None`` or missing: left out).
        cache_dir: feature cache folder (``None``: no cache).
        mix_size: stored edits of the mixed store.
        cosine_threshold: fixed threshold of the cosine baseline (``None``: fitted on ``val``).
        threads: torch CPU threads.
        seed: order of the mix's distractors.
        hybrid_weights: lexical weights to try for hybrid retrieval (:func:`hybrid_top1`); the
            best on ``val`` is reported on every store (empty: no hybrid measurement).
    """

    models: dict[str, Path]
    data_dir: Path = DATA_DIR
    knowedit: Path | None = KNOWEDIT_FILE
    natural: Path | None = NATURAL_FILE
    cache_dir: Path | None = Path("runs/retrieval_cache")
    mix_size: int = 10_000
    cosine_threshold: float | None = None
    threads: int = 1
    seed: int = 0
    hybrid_weights: tuple[float, ...] = ()


def feature_groups(sets: Sequence[RetrievalSet]) -> dict[str, list[str]]:
    """Texts grouped by source file (so adding one file re-encodes only that file)."""
    groups: dict[str, list[str]] = {}
    for rset in sets:
        for edit in rset.stored:
            groups.setdefault(edit.source, []).extend([edit.statement, *edit.questions])
        for negative in rset.negatives:
            groups.setdefault(negative.kind, []).append(negative.text)
    return groups


def prepare_features(
    model: Any,
    data_dir: str | Path = DATA_DIR,
    *,
    knowedit: str | Path | None = KNOWEDIT_FILE,
    natural: str | Path | None = NATURAL_FILE,
    mix_size: int = 10_000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = logger.info,
) -> tuple[list[RetrievalSet], RetrievalSet, RetrievalSet, FeatureTable]:
    """The measured stores, the train and val sets, and one feature table covering all of them.

    Benchmark and training encode the same groups of texts, so they share one cache.

    Returns:
        ``(benchmark_sets, train, val, table)``.

    Raises:
        InvalidInputError: data is missing or malformed.
    """
    sets = benchmark_sets(data_dir, knowedit=knowedit, natural=natural, mix_size=mix_size, seed=seed)
    train, val = training_sets(data_dir, knowedit)
    table = build_feature_table(model, feature_groups([*sets, train, val]), cache_dir, log=log)
    return sets, train, val, table


def run_retrieval_benchmark(
    settings: RetrievalBenchSettings,
    *,
    load_model: Callable[[Path], Any] | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Measure every model of ``settings`` and the cosine baseline on every store.

    Args:
        settings: what to measure.
        load_model: loads a checkpoint folder (default :meth:`RecipeModel.from_pretrained`; tests
            pass tiny encoders).
        log: progress messages.

    Returns:
        ``{"meta", "cosine_threshold", "sets": {name: {"note", "size", "results": {scorer: metrics}}}}``.

    Raises:
        InvalidInputError: no model is given, models differ in their encoder, or data is missing.
    """
    if not settings.models:
        msg = "Give at least one RecipeModel checkpoint to measure (e.g. the shipped one)."
        raise InvalidInputError(msg)
    torch.set_num_threads(settings.threads)
    tick = time.perf_counter()
    models, fingerprint = _load_models(settings.models, load_model)
    first = next(iter(models.values()))
    sets, _, val, table = prepare_features(
        first,
        settings.data_dir,
        knowedit=settings.knowedit,
        natural=settings.natural,
        mix_size=settings.mix_size,
        seed=settings.seed,
        cache_dir=settings.cache_dir,
        log=log,
    )
    hidden = first.config.encoder_hidden_size
    threshold = settings.cosine_threshold
    if threshold is None:
        threshold = tune_cosine_threshold(hidden, val, table)
        log(f"cosine threshold {threshold:.4f} (fitted on {val.name})")
    scorers: list[RetrievalScorer] = [SentinelScorer(m, name) for name, m in models.items()]
    scorers.append(CosineScorer(hidden, threshold))
    results = {rset.name: _measure_store(rset, scorers, table, log) for rset in sets}
    weights = settings.hybrid_weights
    hybrid = {s.name: _hybrid(s, sets, val, table, weights, log) for s in scorers} if weights else {}
    return {
        "hybrid": hybrid,
        "meta": {
            "models": {name: str(path) for name, path in settings.models.items()},
            "encoder": first.config.encoder_name_or_path,
            "encoder_fingerprint": fingerprint,
            "tuning_set": val.name,
            "seconds": time.perf_counter() - tick,
        },
        "cosine_threshold": threshold,
        "sets": results,
    }


def _measure_store(
    rset: RetrievalSet, scorers: Sequence[RetrievalScorer], table: FeatureTable, log: Callable[[str], None]
) -> dict[str, Any]:
    """``{"note", "size", "results": {scorer: metrics}}`` of one store."""
    measured = {scorer.name: evaluate_retrieval(scorer, rset, table) for scorer in scorers}
    log(f"{rset.name}: " + ", ".join(f"{n} top-1 {r['own_top1']:.3f}" for n, r in measured.items()))
    return {"note": rset.note, "size": len(rset.stored), "results": measured}


def _load_models(paths: dict[str, Path], load_model: Callable[[Path], Any] | None) -> tuple[dict[str, Any], str]:
    """The checkpoints in eval mode, and their one encoder fingerprint.

    Raises:
        InvalidInputError: the models differ in their encoder.
    """
    if load_model is None:
        from langchain_recipe.nn import RecipeModel

        load_model = RecipeModel.from_pretrained
    models = {name: load_model(Path(path)).eval() for name, path in paths.items()}
    fingerprints = {name: encoder_fingerprint(m) for name, m in models.items()}
    if len(set(fingerprints.values())) > 1:
        msg = (
            f"The models use different encoders ({fingerprints}); cached features fit one encoder. "
            "Compare models with the same frozen encoder."
        )
        raise InvalidInputError(msg)
    return models, next(iter(fingerprints.values()))


def _hybrid(
    scorer: RetrievalScorer,
    sets: Sequence[RetrievalSet],
    val: RetrievalSet,
    table: FeatureTable,
    weights: Sequence[float],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Dense + w x BM25 for one scorer: ``w`` tuned on ``val``, then measured on every store."""
    tuned = hybrid_top1(scorer, val, table, weights)
    weight = max(tuned["weighted"], key=lambda w: tuned["weighted"][w])
    stores = {}
    for rset in sets:
        measured = stores[rset.name] = hybrid_top1(scorer, rset, table, [weight])
        log(
            f"hybrid {scorer.name} on {rset.name}: dense {measured['dense']:.3f}, bm25 {measured['bm25']:.3f}, "
            f"rrf {measured['rrf']:.3f}, dense + {weight} bm25 {measured['weighted'][weight]:.3f}"
        )
    return {"weight": weight, "val": tuned, "stores": stores}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_markdown(results: dict[str, Any]) -> str:
    """The goal table (one row per measure and store, one column per scorer) and per-source detail."""
    sets = results["sets"]
    scorers = list(next(iter(sets.values()))["results"]) if sets else []
    lines = ["| store | measure | goal | " + " | ".join(scorers) + " |", "|---|---|---|" + "---|" * len(scorers)]
    for name, entry in sets.items():
        res = entry["results"]
        goal_top1 = (
            GOALS["own_top1_500"]
            if name.startswith("zsre")
            else GOALS["own_top1_10000"]
            if entry["size"] >= 10_000
            else None
        )
        rows = [("own edit is top-1 (edit + paraphrase questions)", goal_top1, lambda r: r["own_top1"])]
        rows.append(("gate accepts right top-1s", GOALS["gate_accept"], lambda r: r["gate_accept"]))
        kinds = [k for k in NEGATIVE_KINDS if any(k in r["reject"] for r in res.values())]
        rows += [
            (f"gate rejects {NEGATIVE_KINDS[k]}", GOALS["reject"], lambda r, k=k: r["reject"].get(k)) for k in kinds
        ]
        rows.append(("wrong edit injected (of wrong top-1s)", None, lambda r: r["wrong_accept"]))
        for i, (label, goal, get) in enumerate(rows):
            store = f"{name} ({entry['size']} stored)" if i == 0 else ""
            goal_text = "" if goal is None else f"≥ {goal:.2f}"
            lines.append(
                f"| {store} | {label} | {goal_text} | " + " | ".join(_fmt(get(res[s])) for s in scorers) + " |"
            )
    lines.append("")
    lines.append(f"Cosine threshold {results['cosine_threshold']:.4f}, fitted on {results['meta']['tuning_set']}.")
    for name, entry in results.get("hybrid", {}).items():
        weight = entry["weight"]
        for store, measured in entry["stores"].items():
            lines.append(
                f"- hybrid, {name} keys, {store}: own-edit top-1 dense {_fmt(measured['dense'])}, "
                f"BM25 alone {_fmt(measured['bm25'])}, RRF {_fmt(measured['rrf'])}, "
                f"dense + {weight} * BM25/max {_fmt(measured['weighted'][weight])} (weight chosen on val)"
            )
    for name, entry in sets.items():
        by_source = {s: entry["results"][s]["own_top1_by_source"] for s in scorers}
        parts = "; ".join(
            f"{s}: " + ", ".join(f"{src} {_fmt(v)}" for src, v in by.items()) for s, by in by_source.items()
        )
        lines.append(f"- {name} ({entry['note']}): top-1 by source — {parts}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- hybrid (lexical + dense)
class LexicalIndex:
    """BM25 scores of questions against stored statements, as Qdrant computes them.

    That is, for a sparse vector with ``modifier=IDF``: the stored value of a word is its saturated
    term frequency ``tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len))``, the query's value is 1 per
    distinct word, and Qdrant multiplies by ``idf = ln((N - n + 0.5) / (n + 0.5) + 1)`` over the
    ``N`` stored points (``n`` of them holding the word).

    Args:
        statements: the stored knowledge statements.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    def __init__(self, statements: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        tokens = [lexical_tokens(s) for s in statements]
        self.vocabulary: dict[str, int] = {}
        for words in tokens:
            for word in words:
                self.vocabulary.setdefault(word, len(self.vocabulary))
        lengths = torch.tensor([max(len(w), 1) for w in tokens], dtype=torch.float32)
        average = float(lengths.mean()) if len(tokens) else 1.0
        rows, cols, values = [], [], []
        frequency = torch.zeros(len(self.vocabulary))
        for row, words in enumerate(tokens):
            counts: dict[int, int] = {}
            for word in words:
                counts[self.vocabulary[word]] = counts.get(self.vocabulary[word], 0) + 1
            norm = k1 * (1 - b + b * float(lengths[row]) / average)
            for col, tf in counts.items():
                rows.append(row)
                cols.append(col)
                values.append(tf * (k1 + 1) / (tf + norm))
                frequency[col] += 1
        count = len(tokens)
        self.idf = torch.log((count - frequency + 0.5) / (frequency + 0.5) + 1)
        self.weights = torch.sparse_coo_tensor(
            torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1),
            torch.tensor(values, dtype=torch.float32),
            (count, len(self.vocabulary)),
            check_invariants=True,
        ).coalesce()

    def scores(self, queries: Sequence[str], *, chunk_size: int = 256) -> torch.Tensor:
        """BM25 scores, shape `(len(queries), num_statements)`."""
        parts = []
        for start in range(0, len(queries), chunk_size):
            chunk = queries[start : start + chunk_size]
            dense = torch.zeros(len(self.vocabulary), len(chunk))
            for j, query in enumerate(chunk):
                for word in set(lexical_tokens(query)):
                    col = self.vocabulary.get(word)
                    if col is not None:
                        dense[col, j] = self.idf[col]
            parts.append(torch.sparse.mm(self.weights, dense).T)
        return torch.cat(parts) if parts else torch.empty(0, self.weights.shape[0])


def hybrid_top1(
    scorer: RetrievalScorer,
    rset: RetrievalSet,
    table: FeatureTable,
    lexical_weights: Sequence[float],
    *,
    rrf_k: float = 60.0,
) -> dict[str, Any]:
    """Own-edit top-1 of dense retrieval fused with BM25 (:class:`LexicalIndex`), in process.

    Two fusions: ``weighted[w]`` ranks by ``s_dense + w * bm25 / max_query_bm25`` (per query, so
    ``w`` is in units of the dense score), and ``rrf`` by reciprocal-rank fusion
    ``1 / (rrf_k + rank_dense) + 1 / (rrf_k + rank_bm25)`` (Qdrant's ``Fusion.RRF``).

    Returns:
        ``{"dense": top1, "bm25": top1, "rrf": top1, "weighted": {w: top1}}``.
    """
    stored = rset.stored
    index = LexicalIndex([e.statement for e in stored])
    keys = scorer.knowledge_keys(table([e.statement for e in stored]))
    owners = [i for i, e in enumerate(rset.edits) for _ in e.questions]
    texts = [q for e in rset.edits for q in e.questions]
    statements = [_norm(e.statement) for e in stored]
    hits: dict[str, list[bool]] = {"dense": [], "bm25": [], "rrf": []}
    weighted: dict[float, list[bool]] = {float(w): [] for w in lexical_weights}

    def right(best: torch.Tensor, own: list[int]) -> list[bool]:
        return [b == o or statements[b] == statements[o] for b, o in zip(best.tolist(), own, strict=True)]

    for start in range(0, len(texts), 512):
        chunk, own = texts[start : start + 512], owners[start : start + 512]
        query_keys = scorer.query_keys(table(chunk))
        dense = scorer.decide(query_keys, keys)
        dense_scores = retrieval_scores(query_keys, keys)
        lexical = index.scores(chunk)
        hits["dense"] += right(dense.best_index, own)
        hits["bm25"] += right(lexical.argmax(-1), own)
        rank_dense = dense_scores.argsort(-1, descending=True).argsort(-1).float()
        rank_lexical = lexical.argsort(-1, descending=True).argsort(-1).float()
        hits["rrf"] += right((1 / (rrf_k + rank_dense + 1) + 1 / (rrf_k + rank_lexical + 1)).argmax(-1), own)
        normalised = lexical / lexical.amax(-1, keepdim=True).clamp_min(1e-6)
        for w in weighted:
            weighted[w] += right((dense_scores + w * normalised).argmax(-1), own)
    rate = lambda values: sum(values) / len(values) if values else None  # noqa: E731
    return {**{k: rate(v) for k, v in hits.items()}, "weighted": {w: rate(v) for w, v in weighted.items()}}
