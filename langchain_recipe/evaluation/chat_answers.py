"""What users see: greedy chat answers of the bare LM, the continuous prompt and the statement as text.

All edits are stored first; the three methods are then compared side by side.

The paper's metrics (RECIPE §4, :mod:`~langchain_recipe.evaluation.lifelong`) score the target's
tokens right after a raw question (teacher forcing). A chat model answers differently: it often
restates the question first and must produce the fact, often a name of several tokens, further
on. This module asks every question through :class:`~langchain_recipe.chat_models.RecipeChatModel`
(the LM's chat template, greedy, ``max_tokens`` new tokens) and scores the answer text:

* **answer accuracy**: the share of answers to the edit questions that contain the new target
  (case-insensitive, :func:`states_fact`);
* **paraphrase accuracy**: the same for the paraphrased questions;
* **unrelated unchanged**: the share of unrelated questions answered exactly as the bare LM
  answers them.

Protocol: all N edits are stored in one in-memory store, then every question is asked; the
same retrieval and knowledge-sentinel gate serve both injections. Each figure is also given
over the questions whose own edit was injected, which separates injection from retrieval.
A question whose gate rejects every edit is answered by the bare LM (the chat model's
invariant), so only gated-in questions are generated again per injection.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.datasets import EditRecord
from langchain_recipe.errors import EditConflictWarning, InvalidInputError
from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = [
    "CHAT_METHODS",
    "ChatAnswerReport",
    "ChatAnswerScores",
    "ask_chat_questions",
    "evaluate_chat_answers",
    "render_chat_markdown",
    "states_fact",
    "write_chat_report",
]

CHAT_METHODS: tuple[str, ...] = ("bare", "continuous_prompt", "text")
"""``bare`` (no edits), ``continuous_prompt`` (RECIPE) and ``text`` (the accepted edit's
statement before the question), the last two with the same retrieval and gate."""


def states_fact(answer: str, target: str) -> bool:
    """Whether an answer states the new fact: it contains the target, case-insensitive.

    Raises:
        InvalidInputError: the target is empty (every answer would "contain" it).
    """
    target = target.strip().lower()
    if not target:
        msg = "The target is empty; every answer would contain it. Give each edit a non-empty target."
        raise InvalidInputError(msg)
    return target in answer.lower()


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass
class ChatAnswerScores:
    """The three generation metrics of one method (shares in [0, 1]).

    Attributes:
        method: one of :data:`CHAT_METHODS`.
        answer_accuracy: answers to the edit questions that state the new target.
        paraphrase_accuracy: the same for the paraphrased questions.
        unrelated_unchanged: unrelated questions answered exactly as by the bare LM.
        answer_accuracy_own_edit: ``answer_accuracy`` over the questions whose own edit was
            injected (``None`` for ``bare`` or when there is none).
        paraphrase_accuracy_own_edit: the same for paraphrases.
        own_edit_injected: edit questions and paraphrases that got their own edit.
        unrelated_injected: unrelated questions that got an edit injected.
        added_input_positions: mean input positions an injection adds to a question that gets
            one (prompt vectors, or the statement's tokens and its newline).
    """

    method: str
    answer_accuracy: float
    paraphrase_accuracy: float
    unrelated_unchanged: float
    answer_accuracy_own_edit: float | None = None
    paraphrase_accuracy_own_edit: float | None = None
    own_edit_injected: float | None = None
    unrelated_injected: float | None = None
    added_input_positions: float = 0.0


@dataclass
class ChatAnswerReport:
    """Chat-answer scores of every method over one dataset, with every answer.

    Attributes:
        dataset: the dataset's name.
        num_edits: N, the edits stored before any question was asked.
        max_tokens: new tokens per answer.
        scores: one :class:`ChatAnswerScores` per method.
        answers: per record, the question, target and each method's three answers.
        seconds: wall-clock time of the evaluation (s).
    """

    dataset: str
    num_edits: int
    max_tokens: int
    scores: list[ChatAnswerScores]
    answers: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def score(self, method: str) -> ChatAnswerScores:
        """The scores of ``method``.

        Raises:
            KeyError: the method was not evaluated.
        """
        for scores in self.scores:
            if scores.method == method:
                return scores
        msg = f"No scores for {method!r}; evaluated: {[s.method for s in self.scores]}."
        raise KeyError(msg)


def _answers(
    chat: Any, questions: Sequence[str], rows: Sequence[int], batch_size: int, desc: str, progress: bool
) -> dict[int, str]:
    from tqdm.auto import tqdm

    # Similar lengths batch together (less padding); the answer of each row does not depend on its batch.
    order = sorted(rows, key=lambda i: len(questions[i]))
    found: dict[int, str] = {}
    # disable=None: bars only on a terminal, so logs and captured output stay readable.
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=None if progress else True):
        chunk = order[start : start + batch_size]
        for i, message in zip(chunk, chat.generate_batch([questions[i] for i in chunk]), strict=True):
            found[i] = message.content
    return found


def evaluate_chat_answers(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    records: Sequence[EditRecord],
    *,
    dataset: str = "edits",
    methods: Sequence[str] = CHAT_METHODS,
    max_tokens: int = 32,
    batch_size: int = 16,
    progress: bool = False,
) -> ChatAnswerReport:
    """Store all ``records`` as edits, then ask every question through the chat model.

    Args:
        recipe_model: the trained RecipeModel.
        base_model: the base LM it was trained for.
        records: the edits; each record's ``statement`` is stored, its ``prompt``, ``rephrase``
            and ``locality_prompt`` are asked.
        dataset: name for the report.
        methods: a subset of :data:`CHAT_METHODS`; ``bare`` is always computed (the reference
            of unrelated unchanged).
        max_tokens: new tokens per greedy answer.
        batch_size: answers generated together.
        progress: show progress bars.

    Returns:
        A :class:`ChatAnswerReport`.

    Raises:
        InvalidInputError: no records, an unknown method, or ``max_tokens``/``batch_size`` < 1.
    """
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    _check_arguments(records, methods, max_tokens, batch_size)
    started = time.perf_counter()
    store = RecipeKnowledgeStore(recipe_model, base_model, on_conflict="keep_both")
    try:
        ids = [f"edit-{i}" for i in range(len(records))]
        with warnings.catch_warnings():
            # Datasets hold several facts about one subject; conflicts are kept and not the point here.
            warnings.simplefilter("ignore", EditConflictWarning)
            for start in range(0, len(records), 256):
                store.add_knowledge([r.statement for r in records[start : start + 256]], ids=ids[start : start + 256])
        report = ask_chat_questions(
            store,
            records,
            ids,
            dataset=dataset,
            methods=methods,
            max_tokens=max_tokens,
            batch_size=batch_size,
            progress=progress,
        )
    finally:
        store.close()
    report.seconds = time.perf_counter() - started
    return report


def _check_arguments(records: Sequence[EditRecord], methods: Sequence[str], max_tokens: int, batch_size: int) -> None:
    unknown = set(methods) - set(CHAT_METHODS)
    if not records or unknown or max_tokens < 1 or batch_size < 1:
        msg = (
            f"The chat-answer evaluation needs records, methods from {CHAT_METHODS} and max_tokens, batch_size >= 1 "
            f"(got {len(records)} records, unknown methods {sorted(unknown)}, max_tokens={max_tokens}, "
            f"batch_size={batch_size})."
        )
        raise InvalidInputError(msg)


def ask_chat_questions(
    store: Any,
    records: Sequence[EditRecord],
    ids: Sequence[str],
    *,
    dataset: str = "edits",
    methods: Sequence[str] = CHAT_METHODS,
    max_tokens: int = 32,
    batch_size: int = 16,
    progress: bool = False,
) -> ChatAnswerReport:
    """Ask every record's question, paraphrase and unrelated question through the chat model.

    The store already holds the edits (``recipe demo`` uses its on-disk store).

    Args:
        store: a :class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore` holding the edits.
        records: the edits' records (questions and targets).
        ids: each record's edit id in ``store`` ("own edit injected" compares with it).
        dataset: name for the report.
        methods: a subset of :data:`CHAT_METHODS` (``bare`` is always computed).
        max_tokens: new tokens per greedy answer.
        batch_size: answers generated together.
        progress: show progress bars.

    Returns:
        A :class:`ChatAnswerReport`.

    Raises:
        InvalidInputError: no records, ``ids`` of another length, an unknown method, or
            ``max_tokens``/``batch_size`` < 1.
    """
    from langchain_recipe.chat_models import RecipeChatModel

    _check_arguments(records, methods, max_tokens, batch_size)
    if len(ids) != len(records):
        msg = f"Got {len(ids)} edit ids for {len(records)} records; give one id per record."
        raise InvalidInputError(msg)
    started = time.perf_counter()
    size = len(records)
    questions = [r.prompt for r in records] + [r.rephrase for r in records] + [r.locality_prompt for r in records]
    retrieved = store.retrieve_prompts(questions)
    bare_chat = RecipeChatModel.from_base_model(store.base_model, max_tokens=max_tokens)  # no store: the bare LM
    bare = _answers(bare_chat, questions, range(len(questions)), batch_size, "answering (bare LM)", progress)
    injected = [i for i, edit in enumerate(retrieved) if edit is not None]
    own = [edit is not None and edit.edit_id == ids[i % size] for i, edit in enumerate(retrieved[: 2 * size])]
    answers: dict[str, dict[int, str]] = {"bare": bare}
    added: dict[str, float] = {"bare": 0.0}
    for method in (m for m in methods if m != "bare"):
        chat = RecipeChatModel(knowledge_store=store, max_tokens=max_tokens, injection=method)
        answers[method] = {**bare, **_answers(chat, questions, injected, batch_size, f"answering ({method})", progress)}
        added[method] = _added_positions(store.base_model, questions, retrieved, injected, method, store.recipe_model)
    gated_unrelated = [edit is not None for edit in retrieved[2 * size :]]
    scores = [
        _method_scores(method, said, bare, records, own, gated_unrelated, added[method])
        for method, said in answers.items()
    ]
    rows = _answer_rows(records, answers, own)
    return ChatAnswerReport(dataset, size, max_tokens, scores, rows, time.perf_counter() - started)


def _method_scores(
    method: str,
    said: dict[int, str],
    bare: dict[int, str],
    records: Sequence[EditRecord],
    own: Sequence[bool],
    gated_unrelated: Sequence[bool],
    added_positions: float,
) -> ChatAnswerScores:
    """One method's scores from its answers, indexed as questions, then paraphrases, then unrelated questions."""
    size = len(records)
    stated = [states_fact(said[i], records[i % size].target) for i in range(2 * size)]
    unchanged = _share([said[2 * size + i] == bare[2 * size + i] for i in range(size)]) or 0.0
    if method == "bare":
        return ChatAnswerScores(method, _share(stated[:size]) or 0.0, _share(stated[size:]) or 0.0, unchanged)
    return ChatAnswerScores(
        method=method,
        answer_accuracy=_share(stated[:size]) or 0.0,
        paraphrase_accuracy=_share(stated[size:]) or 0.0,
        unrelated_unchanged=unchanged,
        answer_accuracy_own_edit=_share([s for s, o in zip(stated[:size], own[:size], strict=True) if o]),
        paraphrase_accuracy_own_edit=_share([s for s, o in zip(stated[size:], own[size:], strict=True) if o]),
        own_edit_injected=_share(own),
        unrelated_injected=_share(gated_unrelated),
        added_input_positions=added_positions,
    )


def _answer_rows(
    records: Sequence[EditRecord], answers: dict[str, dict[int, str]], own: Sequence[bool]
) -> list[dict[str, Any]]:
    """Per record: its texts, whether its own edit was injected, and each method's three answers."""
    size = len(records)
    return [
        {
            "statement": r.statement,
            "target": r.target,
            "question": r.prompt,
            "paraphrase": r.rephrase,
            "unrelated": r.locality_prompt,
            "own_edit_injected": own[i],
            "paraphrase_own_edit_injected": own[size + i],
            **{m: [answers[m][i], answers[m][size + i], answers[m][2 * size + i]] for m in answers},
        }
        for i, r in enumerate(records)
    ]


def _added_positions(
    base_model: HuggingFaceBaseModel,
    questions: Sequence[str],
    retrieved: Sequence[Any],
    injected: Sequence[int],
    method: str,
    recipe_model: RecipeModel,
) -> float:
    """Mean input positions the injection adds to a question that gets an edit."""
    if not injected:
        return 0.0
    if method == "continuous_prompt":
        return float(recipe_model.config.num_prompt_tokens)
    from langchain_recipe.injection import prepend_statement_text

    tokenizer = base_model.tokenizer
    extra = [
        len(
            tokenizer(prepend_statement_text(retrieved[i].statement, questions[i]), add_special_tokens=False)[
                "input_ids"
            ]
        )
        - len(tokenizer(questions[i], add_special_tokens=False)["input_ids"])
        for i in injected
    ]
    return sum(extra) / len(extra)


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"  # noqa: RUF001 (an en dash marks "no figure" in the table)


def write_chat_report(
    report: ChatAnswerReport, output_dir: str | Path, *, command: str | None = None
) -> dict[str, Path]:
    """Write ``chat_answers.json`` (scores and every answer) and ``chat_answers.md`` (the table).

    ``output_dir`` is created if missing.

    Returns:
        ``{"json": path, "markdown": path}``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict() if command is None else {**report.to_dict(), "command": command}
    json_path = output_dir / "chat_answers.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path = output_dir / "chat_answers.md"
    markdown_path.write_text(render_chat_markdown(report, command=command), encoding="utf-8")
    return {"json": json_path, "markdown": markdown_path}


def render_chat_markdown(report: ChatAnswerReport, *, command: str | None = None) -> str:
    """A Markdown table of the report's scores (one row per method)."""
    lines = [
        f"### What users see: {report.dataset}, {report.num_edits} edits stored, greedy chat answers "
        f"(max_tokens={report.max_tokens})",
        "",
        "| method | answer accuracy | paraphrase accuracy | unrelated unchanged | answer, own edit injected "
        "| paraphrase, own edit injected | own edit injected | unrelated injected | added input positions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.scores:
        lines.append(
            f"| {s.method} | {s.answer_accuracy:.3f} | {s.paraphrase_accuracy:.3f} | {s.unrelated_unchanged:.3f} "
            f"| {_figure(s.answer_accuracy_own_edit)} | {_figure(s.paraphrase_accuracy_own_edit)} "
            f"| {_figure(s.own_edit_injected)} | {_figure(s.unrelated_injected)} | {s.added_input_positions:.1f} |"
        )
    lines += ["", f"{report.seconds:.0f} s."]
    if command:
        lines += ["", f"Command: `{command}`"]
    return "\n".join(lines) + "\n"
