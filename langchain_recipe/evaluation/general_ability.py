"""The bundled general-ability check: a held-fixed text sample and a multiple-choice set.

Both were written for this project (no suitably licensed benchmark was available offline) and
are MIT-licensed with it; see ``data/PROVENANCE.md``. They are small on purpose: the check asks
whether the edits change what the base LM already does, not how good the base LM is.

* ``text_sample.txt``: 12 plain-English passages separated by blank lines (perplexity);
* ``multiple_choice.jsonl``: 48 easy general-knowledge questions, one JSON object per line with
  ``question`` (str), ``choices`` (list of 4 str) and ``answer`` (index of the right choice).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_recipe.datasets import read_json_lines
from langchain_recipe.errors import InvalidInputError

__all__ = ["GENERAL_ABILITY_DIR", "GeneralAbilityData", "load_bundled_general_ability", "load_general_ability"]

GENERAL_ABILITY_DIR = Path(__file__).resolve().parent.parent / "resources" / "general_ability"
"""Folder of the bundled ``text_sample.txt`` and ``multiple_choice.jsonl``."""


@dataclass(frozen=True)
class GeneralAbilityData:
    """A held-fixed text sample (perplexity) and a multiple-choice set.

    Attributes:
        passages: plain-text passages; perplexity is over each passage's tokens after its first word.
        questions: multiple-choice questions.
        choices: per question, its answer options.
        answers: per question, the index of the right option.
        source: provenance for the report (file names, licence).
    """

    passages: tuple[str, ...]
    questions: tuple[str, ...]
    choices: tuple[tuple[str, ...], ...]
    answers: tuple[int, ...]
    source: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def bundled(cls) -> GeneralAbilityData:
        """The set shipped in ``langchain_recipe/resources/general_ability`` (see data/PROVENANCE.md)."""
        return load_bundled_general_ability()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_general_ability(text_sample: str | Path, multiple_choice: str | Path) -> GeneralAbilityData:
    """Load a text sample (passages separated by blank lines) and a multiple-choice JSONL file.

    Returns:
        A :class:`GeneralAbilityData`.

    Raises:
        InvalidInputError: a file is missing, a passage has a single word, or a question lacks
            ``question``/``choices``/``answer`` or has an out-of-range answer (the message names
            the line).
    """
    text_path, choice_path = Path(text_sample), Path(multiple_choice)
    for path in (text_path, choice_path):
        if not path.is_file():
            msg = f"{path} does not exist."
            raise InvalidInputError(msg)
    passages = tuple(
        " ".join(block.split()) for block in text_path.read_text(encoding="utf-8").split("\n\n") if block.strip()
    )
    if not passages or any(" " not in p for p in passages):
        msg = f"{text_path}: give passages of several words separated by blank lines."
        raise InvalidInputError(msg)
    questions, choices, answers = [], [], []
    for where, raw in read_json_lines(choice_path):
        if not isinstance(raw, dict) or not isinstance(raw.get("question"), str) or not raw["question"].strip():
            msg = f"{where}: a multiple-choice record needs a non-empty string 'question'."
            raise InvalidInputError(msg)
        options = raw.get("choices")
        if (
            not isinstance(options, list)
            or len(options) < 2
            or not all(isinstance(o, str) and o.strip() for o in options)
        ):
            msg = f"{where}: 'choices' must be a list of at least 2 non-empty strings."
            raise InvalidInputError(msg)
        answer = raw.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
            msg = f"{where}: 'answer' must be the index (0..{len(options) - 1}) of the right choice."
            raise InvalidInputError(msg)
        questions.append(raw["question"])
        choices.append(tuple(options))
        answers.append(answer)
    if not questions:
        msg = f"{choice_path} holds no questions."
        raise InvalidInputError(msg)
    source = {
        "text_sample": {"file": text_path.name, "passages": len(passages), "sha256": _sha256(text_path)},
        "multiple_choice": {"file": choice_path.name, "questions": len(questions), "sha256": _sha256(choice_path)},
        "licence": "MIT (written for langchain-recipe; see data/PROVENANCE.md)",
    }
    return GeneralAbilityData(tuple(passages), tuple(questions), tuple(choices), tuple(answers), source)


def load_bundled_general_ability() -> GeneralAbilityData:
    """The bundled set (12 passages, 48 questions). See :func:`load_general_ability`."""
    return load_general_ability(GENERAL_ABILITY_DIR / "text_sample.txt", GENERAL_ABILITY_DIR / "multiple_choice.jsonl")
