"""Agent tools that keep a knowledge store's facts current: add, update, forget and look up facts.

Each tool is a LangChain ``BaseTool`` with a pydantic input schema (sizes limited, so a runaway
planner cannot write a novel into the store; ``add_fact`` also stops at ``max_facts`` facts, so
it cannot flood it), a description written for the planner LLM, and a
short plain-text answer it can read. Mistakes the planner can fix (an unknown id, an id that is
already taken) come back as text starting with ``Error:`` instead of an exception, so the agent
loop goes on (``handle_tool_error=True``).

Local models often send a tool's arguments as one JSON string (``'{"statement": "..."}'``) rather
than an object: as a tool call's ``args``, as the whole input, or as the one value of an object
whose key is no argument (``{"__arg1": "..."}``). The tools parse a JSON object given that way.
Plain text is the first argument (LangChain's convention for string input), for the tools that
need no other; anything else gets an ``Error: invalid input (...)`` answer that says what was
received.

The tools use only the store's public API (``add_knowledge``, ``update_knowledge``, ``delete``,
``get_by_ids``, ``search``, ``len()``), so any object with that API works, e.g. a tenant-bound store.
``add_fact`` reports the conflicts that ``add_knowledge`` returns (its ``conflicts``).

Example:
    .. code-block:: python

        from langchain_recipe import RecipeKnowledgeStore
        from langchain_recipe.tools import RecipeToolkit

        tools = RecipeToolkit(store=RecipeKnowledgeStore()).get_tools()
        add_fact = tools[0]
        add_fact.invoke({"statement": "The CEO of Acme is Ada Lovelace.", "fact_id": "acme-ceo"})
        # "Added fact 'acme-ceo': The CEO of Acme is Ada Lovelace."
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langchain_recipe.errors import RecipeError

__all__ = [
    "DEFAULT_MAX_FACTS",
    "AddFactInput",
    "AddFactTool",
    "ForgetFactInput",
    "ForgetFactTool",
    "LookupFactsInput",
    "LookupFactsTool",
    "RecipeToolkit",
    "UpdateFactInput",
    "UpdateFactTool",
]

MAX_STATEMENT_CHARS = 1000
"""Longest knowledge statement a tool accepts (characters): a fact is one or two sentences."""
MAX_ID_CHARS = 200
"""Longest fact id a tool accepts (characters)."""
MAX_SUBJECT_CHARS = 300
"""Longest lookup subject or question a tool accepts (characters)."""
MAX_LOOKUP_RESULTS = 20
"""Most facts one lookup returns."""
DEFAULT_MAX_FACTS = 10_000
"""Most facts ``add_fact`` lets a store (tenant) hold, so a looping agent cannot flood it."""

_STATEMENT = Field(
    min_length=1,
    max_length=MAX_STATEMENT_CHARS,
    description=(
        "The fact as one short self-contained declarative sentence (at most about 40 words) that "
        "names its subject, e.g. 'The CEO of Acme Corporation is Ada Lovelace.' (no pronouns like "
        "'he' or 'it')."
    ),
)
_FACT_ID = Field(
    min_length=1,
    max_length=MAX_ID_CHARS,
    description="The id of a stored fact, as shown by add_fact or lookup_facts (e.g. 'acme-ceo').",
)


class AddFactInput(BaseModel):
    """Input of :class:`AddFactTool`."""

    statement: str = _STATEMENT
    fact_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="Optional short id to refer to this fact later (e.g. 'acme-ceo'); one is made up if omitted.",
    )


class UpdateFactInput(BaseModel):
    """Input of :class:`UpdateFactTool`."""

    fact_id: str = _FACT_ID
    statement: str = _STATEMENT


class ForgetFactInput(BaseModel):
    """Input of :class:`ForgetFactTool`."""

    fact_id: str = _FACT_ID


class LookupFactsInput(BaseModel):
    """Input of :class:`LookupFactsTool`."""

    subject: str = Field(
        min_length=1,
        max_length=MAX_SUBJECT_CHARS,
        description="A subject or a question, e.g. 'Acme Corporation' or 'Who runs Acme?'.",
    )
    k: int = Field(default=5, ge=1, le=MAX_LOOKUP_RESULTS, description="How many facts to list at most.")


MAX_RECEIVED_CHARS = 200
"""How much of a refused input an error answer repeats."""


def _received(value: Any) -> str:
    """What a tool received, as the planner wrote it (JSON where it can be), cut to a readable length."""
    shown = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    return shown if len(shown) <= MAX_RECEIVED_CHARS else shown[:MAX_RECEIVED_CHARS] + "..."


def _validation_message(error: ValidationError) -> str:
    """A planner-readable answer for input that breaks the schema (too long, empty, missing), with what was received."""
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in error.errors())
    received = min(error.errors(), key=lambda e: len(e["loc"]))["input"] if error.errors() else None
    return f"Error: invalid input ({problems}); received {_received(received)}. Fix it and call the tool again."


class _ArgumentText(str):
    """A tool call's ``args`` sent as one string; LangChain copies a call's ``args`` with ``.copy()``."""

    __slots__ = ()

    def copy(self) -> str:
        return str(self)


def _string_arguments_kept(value: Any) -> Any:
    """``value``, with a tool call's string (or missing) ``args`` made something LangChain can copy.

    The string then reaches :meth:`_FactTool._parse_input` as the tool's input; LangChain itself
    would fail on it with ``AttributeError: 'str' object has no attribute 'copy'``.
    """
    if isinstance(value, dict) and value.get("type") == "tool_call":
        args = value.get("args")
        if isinstance(args, str):
            return {**value, "args": _ArgumentText(args)}
        if args is None:
            return {**value, "args": {}}
    return value


class _FactTool(BaseTool):
    """A tool bound to a knowledge store; store errors become ``Error: ...`` answers.

    Its arguments may come as a JSON object, as one JSON string of that object, or (for a tool
    whose other arguments are optional) as plain text for the first one.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any
    """The knowledge store (a :class:`~langchain_recipe.RecipeKnowledgeStore` or an object with its API)."""
    handle_tool_error: bool = True
    handle_validation_error: Any = _validation_message

    def invoke(self, input: str | dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """``BaseTool.invoke``; a tool call's ``args`` may also be one JSON string of the arguments."""
        return super().invoke(_string_arguments_kept(input), config, **kwargs)

    async def ainvoke(self, input: str | dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """``BaseTool.ainvoke``; a tool call's ``args`` may also be one JSON string of the arguments."""
        return await super().ainvoke(_string_arguments_kept(input), config, **kwargs)

    def _parse_input(self, tool_input: str | dict[str, Any], tool_call_id: str | None) -> str | dict[str, Any]:
        if isinstance(tool_input, dict) and len(tool_input) == 1:
            ((key, value),) = tool_input.items()
            if key not in self.args_schema.model_fields and isinstance(value, str):
                tool_input = value  # one string under a name that is no argument ("__arg1", "input", ...)
        if isinstance(tool_input, str):
            tool_input = self._arguments_of_text(tool_input)
        return super()._parse_input(tool_input, tool_call_id)

    def _arguments_of_text(self, text: str) -> dict[str, Any]:
        """The arguments a string stands for: the JSON object it holds, or the first argument's value.

        A JSON string literal (the text in double quotes, as local models often send it) stands
        for its text.

        Raises:
            ToolException: the text is a broken JSON object, JSON that is not an object, or plain
                text for a tool that needs more than its first argument.
        """
        fields = self.args_schema.model_fields
        example = json.dumps({name: f"<{name}>" for name in fields})
        text = _unquoted(text)
        stripped = text.strip()
        problem = None
        if stripped.startswith(("{", "[")):
            try:
                value = json.loads(stripped)
            except ValueError as error:
                problem = f"the arguments are not valid JSON: {error}" if stripped.startswith("{") else None
            else:
                if isinstance(value, dict):
                    return value
                problem = "the arguments are not a JSON object"
        first, *others = fields
        missing = [name for name in others if fields[name].is_required()]
        if problem is None and missing:
            problem = "; ".join(f"{name}: Field required" for name in missing)
        if problem is not None:
            msg = (
                f"Error: invalid input ({problem}); received {_received(text)}. Send the arguments as one JSON "
                f"object, e.g. {example}."
            )
            raise ToolException(msg)
        return {first: text}

    def _statement_of(self, fact_id: str) -> str | None:
        documents = self.store.get_by_ids([fact_id])
        return documents[0].page_content if documents else None


def _unquoted(text: str) -> str:
    """``text`` without the quotes of a JSON string literal (``'"The CEO is Ada."'``), else as is."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        try:
            value = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(value, str):
            return value
    return text


class AddFactTool(_FactTool):
    """Store a new fact (one encoder pass; no training)."""

    name: str = "add_fact"
    description: str = (
        "Store a NEW fact so that the assistant answers with it from now on. Use it when the user "
        "tells you something new or corrects you and no stored fact covers it (check with "
        "lookup_facts first; to change a stored fact use update_fact). Input: the fact as one "
        "self-contained sentence, and optionally a short id. Returns the fact's id."
    )
    args_schema: type[BaseModel] = AddFactInput
    max_facts: int | None = Field(default=DEFAULT_MAX_FACTS, ge=1)
    """Refuse to add when the store (this tenant) already holds this many facts; ``None``: no limit."""

    def _run(self, statement: str, fact_id: str | None = None, **kwargs: Any) -> str:
        if self.max_facts is not None and len(self.store) >= self.max_facts:
            msg = (
                f"Error: the store already holds {len(self.store)} facts, the most these tools may keep "
                f"(max_facts={self.max_facts}). Update or forget facts instead of adding new ones."
            )
            raise ToolException(msg)
        if fact_id is not None:
            existing = self._statement_of(fact_id)
            if existing is not None:
                msg = f"Error: a fact with id {fact_id!r} already exists ({existing!r}); use update_fact to change it."
                raise ToolException(msg)
        try:
            written = self.store.add_knowledge(
                [statement],
                metadatas=[{"source": "agent"}],
                ids=None if fact_id is None else [fact_id],
                if_exists="refuse",
            )
        except RecipeError as error:
            msg = f"Error: {error}"
            raise ToolException(msg) from error
        (new_id,) = written
        return f"Added fact {new_id!r}: {statement.strip()}{_conflict_note(written, new_id)}"


def _conflict_note(written: Any, new_id: str) -> str:
    """A note on the stored facts the new one conflicts with, so the planner can forget the outdated one.

    The facts share the subject and relation and were kept; the note is empty when there are none.

    ``written`` is what ``add_knowledge`` returned: its ``conflicts`` (a
    :class:`~langchain_recipe.knowledge_store.WrittenEdits`) name the kept edits with their
    statements, so nothing is read back from the store. A store whose ``add_knowledge``
    returns a plain list gives no note.
    """
    kept = getattr(written, "conflicts", {}).get(new_id, [])[:3]
    if not kept:
        return ""
    facts = ", ".join(f"{edit.edit_id!r} ({edit.statement!r})" for edit in kept)
    return (
        f"\nNote: stored fact(s) {facts} state the same relation of the same subject and were kept. If the new "
        "fact replaces one, call forget_fact with its id (or use update_fact instead of add_fact next time)."
    )


class UpdateFactTool(_FactTool):
    """Replace a stored fact's statement (same id, new continuous prompt and key)."""

    name: str = "update_fact"
    description: str = (
        "Replace a stored fact that has become wrong or out of date with its new version. Input: "
        "the fact's id (from lookup_facts or add_fact) and the complete new sentence, e.g. "
        "'The CEO of Acme Corporation is Grace Hopper.'. Returns the old and the new sentence."
    )
    args_schema: type[BaseModel] = UpdateFactInput

    def _run(self, fact_id: str, statement: str, **kwargs: Any) -> str:
        old = self._statement_of(fact_id)
        if old is None:
            msg = (
                f"Error: no fact has id {fact_id!r}; use lookup_facts to find the id, or add_fact to store a new fact."
            )
            raise ToolException(msg)
        try:
            self.store.update_knowledge(fact_id, statement)
        except RecipeError as error:
            msg = f"Error: {error}"
            raise ToolException(msg) from error
        return f"Updated fact {fact_id!r}: was {old!r}, now {statement.strip()!r}"


class ForgetFactTool(_FactTool):
    """Delete a stored fact: the model answers as it did before the fact was added."""

    name: str = "forget_fact"
    description: str = (
        "Delete a stored fact so the assistant no longer uses it (its answers go back to what the "
        "model knew before). Input: the fact's id (from lookup_facts or add_fact)."
    )
    args_schema: type[BaseModel] = ForgetFactInput

    def _run(self, fact_id: str, **kwargs: Any) -> str:
        old = self._statement_of(fact_id)
        if old is None or not self.store.delete([fact_id]):
            msg = f"Error: no fact has id {fact_id!r}; use lookup_facts to find the id."
            raise ToolException(msg)
        return f"Forgot fact {fact_id!r}: {old}"


class LookupFactsTool(_FactTool):
    """List the stored facts closest to a subject, with their ids and whether they apply."""

    name: str = "lookup_facts"
    description: str = (
        "List the stored facts about a subject or question, closest first, with their ids (needed by "
        "update_fact and forget_fact). Facts marked 'applies' are the ones the assistant uses when "
        "asked this; the others are merely the nearest stored facts. Input: a subject or question."
    )
    args_schema: type[BaseModel] = LookupFactsInput

    def _run(self, subject: str, k: int = 5, **kwargs: Any) -> str:
        try:
            found = self.store.search(subject, k=k, gated=False)
        except RecipeError as error:
            msg = f"Error: {error}"
            raise ToolException(msg) from error
        if not found:
            return "No facts are stored yet."
        lines = [f"Stored facts closest to {subject!r} (id: statement):"]
        for edit in found:
            verdict = "applies" if edit.accepted else "does not apply"
            lines.append(f"- {edit.edit_id}: {edit.statement} [{verdict}]")
        return "\n".join(lines)


class RecipeToolkit(BaseToolkit):
    """The four fact tools bound to one knowledge store.

    Example:
        .. code-block:: python

            tools = RecipeToolkit(store=store).get_tools()
            planner = my_tool_calling_chat_model.bind_tools(tools)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any
    """The knowledge store the tools read and write."""
    max_facts: int | None = Field(default=DEFAULT_MAX_FACTS, ge=1)
    """Most facts ``add_fact`` lets the store (this tenant) hold; ``None``: no limit."""

    def get_tools(self) -> list[BaseTool]:
        """``add_fact``, ``update_fact``, ``forget_fact`` and ``lookup_facts``, in that order."""
        return [
            AddFactTool(store=self.store, max_facts=self.max_facts),
            UpdateFactTool(store=self.store),
            ForgetFactTool(store=self.store),
            LookupFactsTool(store=self.store),
        ]
