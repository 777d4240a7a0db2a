"""Edit datasets: ZsRE, CounterFact and your own edits as :class:`EditRecord` objects.

Formats, one JSON object per line (see ``data/PROVENANCE.md`` and ``docs/evaluation.md``):

* ZsRE (MEND format): ``src`` question, ``alt`` new target, ``rephrase`` generality question,
  ``loc`` / ``loc_ans`` locality pair, ``subject``.
* CounterFact (RECIPE/EasyEdit format): ``prompt``, ``target_new``, ``rephrase_prompt``,
  ``locality_prompt``, ``locality_ground_truth``, ``subject``.
* ``jsonl`` (this library's format for your own edits): ``prompt``, ``target``, ``rephrase``,
  ``locality_prompt``, ``locality_answer`` (non-empty strings) and optionally ``subject`` and
  ``statement`` (the knowledge statement as a plain sentence, e.g. "The CEO of Acme is Ada
  Lovelace."; without it the statement is ``prompt + " " + target``). ``data/natural/facts.jsonl``
  (170 hand-written facts, ``load_eval_edits("natural")``) is in this format.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from langchain_recipe.errors import InvalidInputError

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_DIR",
    "DEMO_EDITS",
    "EDIT_FORMATS",
    "NATURAL_FACTS",
    "EditRecord",
    "detect_format",
    "iter_edits",
    "load_edits",
    "load_eval_edits",
    "read_json_lines",
]

EditFormat = Literal["zsre", "counterfact", "jsonl"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The repository's ``data/`` folder (ZsRE and CounterFact train/dev), present in a source checkout."""

NATURAL_FACTS = Path(__file__).resolve().parent / "resources" / "natural_facts.jsonl"
"""The 170 hand-written natural facts (``data/natural/facts.jsonl``, see its PROVENANCE.md),
shipped with the package for ``recipe demo`` and ``recipe eval --dataset natural``."""

DEMO_EDITS = Path(__file__).resolve().parent / "resources" / "zsre_demo.jsonl"
"""The first 100 ZsRE dev records, shipped with the package for ``recipe demo``."""

_FIELDS = {
    "zsre": {
        "prompt": "src",
        "target": "alt",
        "rephrase": "rephrase",
        "locality_prompt": "loc",
        "locality_answer": "loc_ans",
    },
    "counterfact": {
        "prompt": "prompt",
        "target": "target_new",
        "rephrase": "rephrase_prompt",
        "locality_prompt": "locality_prompt",
        "locality_answer": "locality_ground_truth",
    },
    "jsonl": {
        "prompt": "prompt",
        "target": "target",
        "rephrase": "rephrase",
        "locality_prompt": "locality_prompt",
        "locality_answer": "locality_answer",
    },
}

EDIT_FORMATS: tuple[str, ...] = tuple(_FIELDS)
"""The record formats :func:`iter_edits` reads: ``"zsre"``, ``"counterfact"`` and ``"jsonl"``."""


@dataclass(frozen=True)
class EditRecord:
    """One edit with its evaluation questions.

    Attributes:
        prompt: the edit question or sentence prefix (reliability).
        target: the new answer.
        rephrase: a paraphrase of ``prompt`` (generality).
        locality_prompt: an unrelated question whose answer must not change (locality).
        locality_answer: the dataset's answer to ``locality_prompt``.
        subject: the entity the edit is about.
        declarative: the knowledge statement as a plain sentence, when the record has one.
    """

    prompt: str
    target: str
    rephrase: str
    locality_prompt: str
    locality_answer: str
    subject: str = ""
    declarative: str = ""

    @property
    def statement(self) -> str:
        """The knowledge statement.

        ``declarative`` if the record has one, else ``prompt + " " + target`` (RECIPE §3.2, as the
        paper builds it from ZsRE and CounterFact).
        """
        if self.declarative.strip():
            return self.declarative.strip()
        return f"{self.prompt.rstrip()} {self.target.strip()}"


def read_json_lines(path: str | Path) -> Iterator[tuple[str, object]]:
    """The parsed records of a JSON Lines file, each with its ``"<path>:<line>"`` location.

    Blank lines are skipped.

    Raises:
        InvalidInputError: a line is not UTF-8 or not valid JSON (the message names the file and
            line).
    """
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                msg = f"{where} is not UTF-8 text ({error}); convert the file to UTF-8."
                raise InvalidInputError(msg) from None
            if not line.strip():
                continue
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as error:
                msg = f"{where} is not valid JSON: {error}"
                raise InvalidInputError(msg) from error


def _record(raw: dict, kind: str, where: str) -> EditRecord:
    fields = _FIELDS[kind]
    if not isinstance(raw, dict):
        msg = f"{where}: a {kind} record must be a JSON object, not {type(raw).__name__}."
        raise InvalidInputError(msg)
    missing = [source for source in fields.values() if not isinstance(raw.get(source), str) or not raw[source].strip()]
    if missing:
        msg = (
            f"{where}: {kind} record lacks non-empty string field(s) {missing}; a {kind} record needs "
            f"{sorted(fields.values())} (see docs/evaluation.md for the formats)."
        )
        raise InvalidInputError(msg)
    values = {name: raw[source] for name, source in fields.items()}
    declarative = raw.get("statement", "") if kind == "jsonl" else ""
    if not isinstance(declarative, str):
        msg = f"{where}: the optional field 'statement' must be a string, not {type(declarative).__name__}."
        raise InvalidInputError(msg)
    return EditRecord(**values, subject=str(raw.get("subject", "")), declarative=declarative)


def iter_edits(path: str | Path, kind: EditFormat, *, skip_invalid: bool = False) -> Iterator[EditRecord]:
    """Yield the records of a JSON Lines file.

    Args:
        path: the file.
        kind: its format.
        skip_invalid: log and skip records with a missing or empty field instead of raising
            (two records of ZsRE train have an empty new target).

    Raises:
        InvalidInputError: unknown ``kind``, a line is not JSON, or a record lacks a field.
    """
    if kind not in _FIELDS:
        msg = f"Unknown dataset format {kind!r}; use one of {sorted(_FIELDS)}."
        raise InvalidInputError(msg)
    for where, raw in read_json_lines(path):
        try:
            yield _record(raw, kind, where)
        except InvalidInputError as error:
            if not skip_invalid:
                raise
            logger.warning("Skipping %s", error)


def load_edits(
    dataset: EditFormat | Literal["natural"],
    split: Literal["train", "dev"] = "dev",
    *,
    path: str | Path | None = None,
    skip_invalid: bool = False,
) -> list[EditRecord]:
    """Load ZsRE, CounterFact or natural-fact records.

    ZsRE and CounterFact come from ``data/<dataset>/<split>.jsonl`` (or ``path``). For the natural
    facts, ``train`` is ``data/natural/train.jsonl`` (synthetic, from
    ``scripts/make_natural_train.py``) and ``dev`` the hand-written facts (:data:`NATURAL_FACTS`).

    See :func:`iter_edits` for ``skip_invalid``.

    Raises:
        InvalidInputError: the file is missing or malformed.
    """
    kind: EditFormat = "jsonl" if dataset == "natural" else dataset  # type: ignore[assignment]
    if path is not None:
        file = Path(path)
    elif dataset == "natural" and split == "dev":
        file = NATURAL_FACTS
    else:
        file = DATA_DIR / dataset / f"{split}.jsonl"
    if not file.is_file():
        msg = f"{file} does not exist; pass `path=` or run from a source checkout that has data/."
        raise InvalidInputError(msg)
    return list(iter_edits(file, kind, skip_invalid=skip_invalid))


def detect_format(path: str | Path) -> EditFormat:
    """Guess a JSON Lines file's record format from the fields of its first record.

    ``src`` and ``alt`` mean ZsRE, ``target_new`` means CounterFact, ``target`` means this
    library's ``jsonl`` format.

    Raises:
        InvalidInputError: the file is missing or empty, its first record is not a JSON object,
            or its fields match no format.
    """
    file = Path(path)
    if not file.is_file():
        msg = f"{file} does not exist; give a JSON Lines file of edits (format in docs/evaluation.md)."
        raise InvalidInputError(msg)
    for where, raw in read_json_lines(file):
        if not isinstance(raw, dict):
            msg = f"{where}: an edit record must be a JSON object, not {type(raw).__name__}."
            raise InvalidInputError(msg)
        if "src" in raw and "alt" in raw:
            return "zsre"
        if "target_new" in raw:
            return "counterfact"
        if "target" in raw:
            return "jsonl"
        msg = (
            f"{where}: cannot tell the record format from the fields {sorted(raw)}; a jsonl edit "
            f"needs {sorted(_FIELDS['jsonl'].values())} (or use the ZsRE or CounterFact format)."
        )
        raise InvalidInputError(msg)
    msg = f"{file} holds no records."
    raise InvalidInputError(msg)


def load_eval_edits(dataset: str | Path, *, kind: EditFormat | None = None) -> tuple[str, list[EditRecord]]:
    """Load the edits that ``recipe eval`` evaluates.

    Args:
        dataset: ``"zsre"`` or ``"counterfact"`` (their dev split in ``data/``), ``"natural"``
            (the hand-written natural facts, :data:`NATURAL_FACTS`), or the path of a JSON Lines
            file in any of :data:`EDIT_FORMATS`.
        kind: the file's format; detected from its first record when ``None``.

    Returns:
        ``(name, records)``: a short dataset name for reports (``"zsre"``, ``"counterfact"``,
        ``"natural"`` or the file name) and the records in file order.

    Raises:
        InvalidInputError: unknown dataset, missing file, or a malformed or incomplete record
            (the message names the file, the line and the missing field).
    """
    if str(dataset) in ("zsre", "counterfact", "natural"):
        name = str(dataset)
        return name, load_edits(name, "dev")  # type: ignore[arg-type]
    file = Path(dataset)
    if not file.is_file():
        msg = (
            f"Unknown dataset {str(dataset)!r}: use 'zsre', 'counterfact', 'natural' or the path of a JSON Lines "
            "file of edits."
        )
        raise InvalidInputError(msg)
    if kind is not None and kind not in _FIELDS:
        msg = f"Unknown dataset format {kind!r}; use one of {sorted(_FIELDS)}."
        raise InvalidInputError(msg)
    records = list(iter_edits(file, kind or detect_format(file)))
    if not records:
        msg = f"{file} holds no records."
        raise InvalidInputError(msg)
    return file.stem, records
