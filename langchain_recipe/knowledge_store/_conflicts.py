"""When a new knowledge statement conflicts with a stored edit: one rule, :func:`is_conflict`.

Two statements conflict when they are about the same subject and the same relation, so that
they answer the same question (differently, or, for a restatement, alike). The knowledge
sentinel gate alone is not that test: it is a retrieval decision ("would this statement, asked
as a question, apply that edit?"), and it also passes statements about other subjects that
share a relation ("What is the date of birth for Darryl Herrod? 1952" retrieved "What is the
date of birth for Darrell Spencer? 1944" with the shipped checkpoint) and other relations of one
subject ("The CEO of Acme is Ada Lovelace." retrieved "Acme is headquartered in Oslo."). So the
gate is the rule's first, cheap step and two checks follow; docs/qdrant.md gives the measurements.

Words: NFKC-normalised, case-folded runs of letters and digits (``MAT-49``, ``O'Brien`` and
``U.S`` stay one word; a possessive ``'s`` is dropped). Function words (articles, auxiliaries,
prepositions, pronouns) are left out of the comparisons; question words are kept, since
"When was X born?" and "Where was X born?" ask different questions. A *name* is a word with a
capital letter that is not a function or question word, a digit, or two capitals (``NGC``).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

import torch

from langchain_recipe.scoring import gate_scores, passes_gate, retrieval_scores, stored_key

__all__ = ["CONFLICT_KEY_COSINE", "earlier_candidates", "is_conflict", "subject_of"]

CONFLICT_KEY_COSINE = 0.93
"""Cosine (in [-1, 1]) between two statements' knowledge keys above which two statements about
one subject count as the same relation even when their wording differs. Calibrated on the
shipped checkpoint: same-subject pairs of different relations reached 0.916 at most, same-relation
paraphrases 0.74-0.99 (docs/qdrant.md)."""

_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")  # noqa: RUF001 - the typographic apostrophe (U+2019) users type
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)  # noqa: RUF001 - the typographic apostrophe (U+2019)
_FUNCTION_WORDS = frozenset(
    """a an the of in on at to for by with from into onto about as and or but not no is are was were be been being am
    do does did has have had will would can could shall should may might must that this these those it its he she his
    her him they their them we our you your i my me than then so such there here during after before since until while
    under over between among through""".split()
)
_QUESTION_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})


def _words(text: str) -> list[tuple[str, bool]]:
    """``(word, is_name)`` for every word of ``text``, in order (see the module docstring)."""
    found = []
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text)):
        word = _POSSESSIVE.sub("", match.group(0))
        folded = word.casefold()
        is_name = (
            any(c.isdigit() for c in word)
            or sum(c.isupper() for c in word) > 1
            or (word[:1].isupper() and folded not in _FUNCTION_WORDS and folded not in _QUESTION_WORDS)
        )
        found.append((folded, is_name))
    return found


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def subject_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The subject an edit's metadata names (``metadata["subject"]``, a non-blank string), else ``None``."""
    subject = (metadata or {}).get("subject")
    return subject if isinstance(subject, str) and subject.strip() else None


def is_conflict(
    new_statement: str,
    old_statement: str,
    *,
    score: float,
    sentinel_score: float,
    key_cosine: float | None = None,
    new_subject: str | None = None,
    old_subject: str | None = None,
) -> bool:
    """Whether a new knowledge statement conflicts with an existing one: same subject, same relation.

    1. **Gate** (a cheap pre-filter): the new statement, run as a query, passes the knowledge
       sentinel gate against the old edit, ``score > sentinel_score`` (RECIPE §3.3).
    2. **Same subject.** When both edits give ``metadata["subject"]``, the subjects are equal
       (same words, ignoring case). When one gives it, its words occur, in order, in the other
       statement. When neither does, the two statements share a name (a capitalised word, a
       number or a code).
    3. **Same relation.** Either the two statements' words (function words aside) differ in at
       most one contiguous stretch, the answer, and they share a word besides the subject (with
       no subject given: besides one run of shared names), as in "The CEO of Acme is Ada
       Lovelace." / "The CEO of Acme is Grace Hopper."; or their knowledge keys are nearly
       parallel, ``key_cosine >= CONFLICT_KEY_COSINE``, which catches reworded questions.

    Args:
        new_statement: the statement being added.
        old_statement: a stored edit's statement (or an earlier statement of the same batch).
        score: ``s(q, k)``, the new statement's query representation against the old key.
        sentinel_score: ``s(q, Θ)``, the new statement's query representation against the
            knowledge sentinel.
        key_cosine: cosine (in [-1, 1]) between the two statements' knowledge keys; ``None``
            skips the key test.
        new_subject: the new edit's ``metadata["subject"]`` (see :func:`subject_of`), if any.
        old_subject: the old edit's ``metadata["subject"]``, if any.

    Returns:
        ``True`` if the two statements conflict.
    """
    if not passes_gate(score, sentinel_score):
        return False
    new_words, old_words = _words(new_statement), _words(old_statement)
    subject = _shared_subject(new_words, old_words, new_subject, old_subject)
    if subject is False:
        return False
    # 3. Same relation: reworded (nearly parallel keys) ...
    if key_cosine is not None and key_cosine >= CONFLICT_KEY_COSINE:
        return True
    return _one_differing_stretch(new_words, old_words, subject)


def _shared_subject(
    new_words: list[tuple[str, bool]],
    old_words: list[tuple[str, bool]],
    new_subject: str | None,
    old_subject: str | None,
) -> set[str] | Literal[False] | None:
    """Step 2 of :func:`is_conflict`: the subject's words.

    ``None`` when the statements share a name and no subject is given, ``False`` when the subjects differ.
    """
    new_text, old_text = [w for w, _ in new_words], [w for w, _ in old_words]
    if new_subject is not None and old_subject is not None:
        new_phrase, old_phrase = [w for w, _ in _words(new_subject)], [w for w, _ in _words(old_subject)]
        return set(new_phrase) if new_phrase == old_phrase else False
    if new_subject is not None or old_subject is not None:
        phrase = [w for w, _ in _words(new_subject or old_subject or "")]
        return set(phrase) if _contains(old_text if new_subject is not None else new_text, phrase) else False
    if not {w for w, name in new_words if name} & {w for w, name in old_words if name}:
        return False
    return None


def _one_differing_stretch(
    new_words: list[tuple[str, bool]], old_words: list[tuple[str, bool]], subject: set[str] | None
) -> bool:
    """Step 3 of :func:`is_conflict` without keys.

    Whether there is one differing stretch (the answer) and a shared word besides the subject.
    """
    new_text, old_text = [w for w, _ in new_words], [w for w, _ in old_words]
    new_content = [i for i, w in enumerate(new_text) if w not in _FUNCTION_WORDS]
    old_content = [w for w in old_text if w not in _FUNCTION_WORDS]
    blocks = difflib.SequenceMatcher(
        None, [new_text[i] for i in new_content], old_content, autojunk=False
    ).get_opcodes()
    if sum(tag != "equal" for tag, *_ in blocks) > 1:
        return False
    shared = [
        new_content[k] for tag, start, end, _, _ in blocks if tag == "equal" for k in range(start, end)
    ]  # new_words positions
    if subject is not None:
        return any(new_text[i] not in subject for i in shared)
    if not any(new_words[i][1] for i in shared):
        return False
    name_runs = sum(
        1
        for k, i in enumerate(shared)
        if new_words[i][1] and not (k and shared[k - 1] == i - 1 and new_words[i - 1][1])
    )
    return name_runs > 1 or any(not new_words[i][1] for i in shared)


def earlier_candidates(
    query_keys: torch.Tensor, keys: torch.Tensor, sentinel_scores: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each statement of a batch, its ``count`` best earlier statements that pass the gate.

    These are the batch's conflict candidates for :func:`is_conflict`. Ranked by the float32
    ``s(q, k)`` of every pair (one tensor operation: a Python loop over every pair took seconds
    for 600 statements), then the ``count`` best scored and gated as a read scores and gates a
    stored edit (``_read.score_hits``): :func:`~langchain_recipe.scoring.gate_scores` against
    the key as it would be stored, so a tie with the sentinel is no candidate.

    Args:
        query_keys: the statements' r_q, shape `(n, knowledge_dim)`.
        keys: their r_k, shape `(n, knowledge_dim)`.
        sentinel_scores: their ``s(q, Θ)``, shape `(n,)`
            (:func:`~langchain_recipe.scoring.sentinel_scores`).
        count: candidates per statement.

    Returns:
        Scores (float64 ``s(q, k)``, ``-inf`` where none) and indices into the batch, both of
        shape `(n, min(count, n))`, best first.
    """
    within = retrieval_scores(query_keys, keys)  # (new, new), for ranking only
    earlier = torch.ones_like(within, dtype=torch.bool).tril(diagonal=-1)
    ranked = within.masked_fill(~earlier, float("-inf")).topk(min(count, keys.shape[0]), dim=-1)
    scores = gate_scores(query_keys.unsqueeze(1), stored_key(keys)[ranked.indices])
    keep = earlier.gather(1, ranked.indices) & passes_gate(scores, sentinel_scores.double().unsqueeze(-1))
    values, order = scores.masked_fill(~keep, float("-inf")).sort(dim=-1, descending=True, stable=True)
    return values, ranked.indices.gather(1, order)
