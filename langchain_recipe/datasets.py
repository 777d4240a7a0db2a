"""Edit datasets: ZsRE and CounterFact records as :class:`EditRecord` objects.

Formats (see ``data/PROVENANCE.md``):

* ZsRE (MEND format): ``src`` question, ``alt`` new target, ``rephrase`` generality question,
  ``loc`` / ``loc_ans`` locality pair, ``subject``.
* CounterFact (RECIPE/EasyEdit format): ``prompt``, ``target_new``, ``rephrase_prompt``,
  ``locality_prompt``, ``locality_ground_truth``, ``subject``.
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

__all__ = ["DATA_DIR", "DEMO_EDITS", "EditRecord", "load_edits"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The repository's ``data/`` folder (ZsRE and CounterFact train/dev), present in a source checkout."""

DEMO_EDITS = Path(__file__).resolve().parent / "resources" / "zsre_demo.jsonl"
"""The first 100 ZsRE dev records, shipped with the package for ``recipe demo``."""

_FIELDS = {
    "zsre": {"prompt": "src", "target": "alt", "rephrase": "rephrase", "locality_prompt": "loc", "locality_answer": "loc_ans"},
    "counterfact": {
        "prompt": "prompt",
        "target": "target_new",
        "rephrase": "rephrase_prompt",
        "locality_prompt": "locality_prompt",
        "locality_answer": "locality_ground_truth",
    },
}


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
    """

    prompt: str
    target: str
    rephrase: str
    locality_prompt: str
    locality_answer: str
    subject: str = ""

    @property
    def statement(self) -> str:
        """The knowledge statement ``prompt + " " + target`` (RECIPE §3.2)."""
        return f"{self.prompt.rstrip()} {self.target.strip()}"


def _record(raw: dict, kind: str, where: str) -> EditRecord:
    fields = _FIELDS[kind]
    if not isinstance(raw, dict):
        msg = f"{where}: a {kind} record must be a JSON object, not {type(raw).__name__}."
        raise InvalidInputError(msg)
    missing = [source for source in fields.values() if not isinstance(raw.get(source), str) or not raw[source].strip()]
    if missing:
        msg = f"{where}: {kind} record lacks non-empty string field(s) {missing}."
        raise InvalidInputError(msg)
    values = {name: raw[source] for name, source in fields.items()}
    return EditRecord(**values, subject=str(raw.get("subject", "")))


def iter_edits(
    path: str | Path, kind: Literal["zsre", "counterfact"], *, skip_invalid: bool = False
) -> Iterator[EditRecord]:
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
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                msg = f"{where} is not valid JSON: {error}"
                raise InvalidInputError(msg) from error
            try:
                yield _record(raw, kind, where)
            except InvalidInputError as error:
                if not skip_invalid:
                    raise
                logger.warning("Skipping %s", error)


def load_edits(
    dataset: Literal["zsre", "counterfact"],
    split: Literal["train", "dev"] = "dev",
    *,
    path: str | Path | None = None,
    skip_invalid: bool = False,
) -> list[EditRecord]:
    """Load ZsRE or CounterFact records from ``data/<dataset>/<split>.jsonl`` (or ``path``).

    See :func:`iter_edits` for ``skip_invalid``.

    Raises:
        InvalidInputError: the file is missing or malformed.
    """
    file = Path(path) if path is not None else DATA_DIR / dataset / f"{split}.jsonl"
    if not file.is_file():
        msg = f"{file} does not exist; pass `path=` or run from a source checkout that has data/."
        raise InvalidInputError(msg)
    return list(iter_edits(file, dataset, skip_invalid=skip_invalid))
