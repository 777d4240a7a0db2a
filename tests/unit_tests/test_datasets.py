"""Tests of the edit datasets (langchain_recipe.datasets)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from langchain_recipe.datasets import (
    DATA_DIR,
    DEMO_EDITS,
    EditRecord,
    detect_format,
    iter_edits,
    load_edits,
    load_eval_edits,
)
from langchain_recipe.errors import InvalidInputError, RecipeError

ZSRE_ROW = {
    "subject": "Zephyr Tower",
    "src": "In which city is the Zephyr Tower located?",
    "alt": "Lisbon",
    "rephrase": "Where can one find the Zephyr Tower?",
    "loc": "nq question: what is the capital of France",
    "loc_ans": "Paris",
}
COUNTERFACT_ROW = {
    "prompt": "The mother tongue of Oskar Brandt is",
    "target_new": "Portuguese",
    "subject": "Oskar Brandt",
    "rephrase_prompt": "Oskar Brandt grew up speaking",
    "locality_prompt": "Michel Rocard is a native speaker of",
    "locality_ground_truth": "French",
}

USER_ROW = {
    "prompt": "Who is the chief executive of Acme Corporation?",
    "target": "Ada Lovelace",
    "rephrase": "Which person runs Acme Corporation?",
    "locality_prompt": "What is the capital of France?",
    "locality_answer": "Paris",
}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not (DATA_DIR / "zsre" / "dev.jsonl").is_file(), reason="needs the source checkout's data/")
def test_zsre_dev_has_500_records_with_statements() -> None:
    records = load_edits("zsre", "dev")
    assert len(records) == 500
    raw = [json.loads(line) for line in (DATA_DIR / "zsre" / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    for record, row in zip(records, raw, strict=True):
        assert isinstance(record, EditRecord)
        assert record.prompt == row["src"]
        assert record.target == row["alt"]
        assert record.rephrase == row["rephrase"]
        assert record.locality_prompt == row["loc"]
        assert record.locality_answer == row["loc_ans"]
        assert record.subject == row["subject"]
        # statement = prompt + " " + target (one space even when the data has stray spaces)
        assert record.statement == row["src"].rstrip() + " " + row["alt"].strip()
        assert "  " not in record.statement[len(row["src"].rstrip()) - 1 :]
    assert records[0].statement == "When was the inception of IAAF Combined Events Challenge? 2006"


@pytest.mark.skipif(not (DATA_DIR / "counterfact" / "dev.jsonl").is_file(), reason="needs the source checkout's data/")
def test_counterfact_dev_loads() -> None:
    records = load_edits("counterfact", "dev")
    assert len(records) == 1000
    assert records[0].statement == "The mother tongue of Danielle Darrieux is English"
    assert records[0].locality_answer == "French"


def test_demo_edits_are_the_first_100_zsre_dev_records() -> None:
    demo = load_edits("zsre", path=DEMO_EDITS)
    assert len(demo) == 100
    if (DATA_DIR / "zsre" / "dev.jsonl").is_file():
        assert demo == load_edits("zsre", "dev")[:100]


def test_statement_joins_prompt_and_target() -> None:
    record = EditRecord("Who runs Acme? ", " Ada Lovelace ", "r", "l", "a")
    assert record.statement == "Who runs Acme? Ada Lovelace"


def test_both_formats_map_their_fields(tmp_path: Path) -> None:
    zsre = load_edits("zsre", path=_write(tmp_path / "z.jsonl", [json.dumps(ZSRE_ROW)]))
    counterfact = load_edits("counterfact", path=_write(tmp_path / "c.jsonl", [json.dumps(COUNTERFACT_ROW)]))
    assert zsre == [
        EditRecord(
            prompt=ZSRE_ROW["src"],
            target="Lisbon",
            rephrase=ZSRE_ROW["rephrase"],
            locality_prompt=ZSRE_ROW["loc"],
            locality_answer="Paris",
            subject="Zephyr Tower",
        )
    ]
    assert counterfact[0].target == "Portuguese"
    assert counterfact[0].rephrase == "Oskar Brandt grew up speaking"
    assert counterfact[0].locality_answer == "French"


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.jsonl", [json.dumps(ZSRE_ROW), "", "   ", json.dumps(ZSRE_ROW)])
    assert len(load_edits("zsre", path=path)) == 2


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(ZSRE_ROW), json.dumps(ZSRE_ROW), '{"src": "unterminated'])
    with pytest.raises(InvalidInputError, match=rf"{path}:3 is not valid JSON"):
        load_edits("zsre", path=path)
    # skip_invalid covers incomplete records only: a broken file still fails loudly.
    with pytest.raises(InvalidInputError, match=rf"{path}:3"):
        load_edits("zsre", path=path, skip_invalid=True)


@pytest.mark.parametrize("line", ["[1, 2]", '"a string"', "42", "null"], ids=["list", "string", "number", "null"])
def test_json_that_is_not_an_object_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(ZSRE_ROW), line])
    with pytest.raises(InvalidInputError, match=rf"{path}:2"):
        load_edits("zsre", path=path)


@pytest.mark.parametrize(
    ("field", "value"),
    [("alt", None), ("alt", ""), ("alt", "   "), ("loc_ans", 3), ("rephrase", ["x"])],
    ids=["missing", "empty", "blank", "number", "list"],
)
def test_missing_or_empty_field_names_file_line_and_field(tmp_path: Path, field: str, value: object) -> None:
    row = dict(ZSRE_ROW)
    if value is None:
        del row[field]
    else:
        row[field] = value
    path = _write(tmp_path / "bad.jsonl", [json.dumps(ZSRE_ROW), json.dumps(row), json.dumps(ZSRE_ROW)])
    with pytest.raises(InvalidInputError, match=rf"{path}:2: zsre record lacks .*'{field}'") as error:
        load_edits("zsre", path=path)
    assert isinstance(error.value, RecipeError)
    assert isinstance(error.value, ValueError)


def test_skip_invalid_skips_incomplete_records(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    incomplete = {k: v for k, v in ZSRE_ROW.items() if k != "alt"}
    empty_target = {**ZSRE_ROW, "alt": ""}
    second = {**ZSRE_ROW, "alt": "Porto"}
    path = _write(
        tmp_path / "some_bad.jsonl",
        [json.dumps(ZSRE_ROW), json.dumps(incomplete), json.dumps(empty_target), json.dumps(second)],
    )
    with caplog.at_level(logging.WARNING, logger="langchain_recipe.datasets"):
        records = load_edits("zsre", path=path, skip_invalid=True)
    assert [r.target for r in records] == ["Lisbon", "Porto"]
    assert f"{path}:2" in caplog.text
    assert f"{path}:3" in caplog.text
    assert len(list(iter_edits(path, "zsre", skip_invalid=True))) == 2


def test_counterfact_record_in_zsre_format_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "cf.jsonl", [json.dumps(COUNTERFACT_ROW)])
    with pytest.raises(InvalidInputError, match=rf"{path}:1: zsre record lacks"):
        load_edits("zsre", path=path)


def test_unknown_format_and_missing_file_raise(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="Unknown dataset format 'squad'"):
        list(iter_edits(tmp_path / "x.jsonl", "squad"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_edits("zsre", path=tmp_path / "nowhere.jsonl")


def test_users_jsonl_format_loads_with_optional_subject(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.jsonl", [json.dumps(USER_ROW), json.dumps({**USER_ROW, "subject": "Acme"})])
    name, records = load_eval_edits(path)
    assert name == "mine"
    assert records[0] == EditRecord(**USER_ROW)
    assert records[1].subject == "Acme"
    assert records[0].statement == "Who is the chief executive of Acme Corporation? Ada Lovelace"


@pytest.mark.parametrize("field", ["prompt", "target", "rephrase", "locality_prompt", "locality_answer"])
def test_users_jsonl_missing_field_names_the_field_and_the_line(tmp_path: Path, field: str) -> None:
    row = {k: v for k, v in USER_ROW.items() if k != field}
    path = _write(tmp_path / "mine.jsonl", [json.dumps(USER_ROW), json.dumps(USER_ROW), json.dumps(row)])
    with pytest.raises(
        InvalidInputError, match=rf"{path}:3: jsonl record lacks non-empty string field\(s\) \['{field}'\]"
    ):
        load_eval_edits(path)


def test_format_is_detected_from_the_first_record(tmp_path: Path) -> None:
    assert detect_format(_write(tmp_path / "z.jsonl", ["", json.dumps(ZSRE_ROW)])) == "zsre"
    assert detect_format(_write(tmp_path / "c.jsonl", [json.dumps(COUNTERFACT_ROW)])) == "counterfact"
    assert detect_format(_write(tmp_path / "u.jsonl", [json.dumps(USER_ROW)])) == "jsonl"
    with pytest.raises(InvalidInputError, match=r"u2.jsonl:1: cannot tell the record format"):
        detect_format(_write(tmp_path / "u2.jsonl", [json.dumps({"question": "q", "answer": "a"})]))
    with pytest.raises(InvalidInputError, match="holds no records"):
        detect_format(_write(tmp_path / "empty.jsonl", [""]))


def test_eval_dataset_names_and_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="Unknown dataset 'squad'"):
        load_eval_edits("squad")
    with pytest.raises(InvalidInputError, match="Unknown dataset format 'xml'"):
        load_eval_edits(_write(tmp_path / "u.jsonl", [json.dumps(USER_ROW)]), kind="xml")  # type: ignore[arg-type]
    if (DATA_DIR / "zsre" / "dev.jsonl").is_file():
        name, records = load_eval_edits("zsre")
        assert (name, len(records)) == ("zsre", 500)


def test_natural_facts_load_with_their_declarative_statements() -> None:
    from langchain_recipe.datasets import DATA_DIR, NATURAL_FACTS, load_eval_edits

    name, records = load_eval_edits("natural")
    assert name == "natural"
    assert len(records) >= 150
    assert len({r.subject for r in records}) == len(records)
    for record in records:
        assert record.statement == record.declarative and record.statement.endswith(".")
        assert record.target.lower() in record.statement.lower()
        assert record.target.lower() not in record.prompt.lower()
    # The package ships a copy for installed users; it must be the repository's file.
    assert NATURAL_FACTS.read_bytes() == (DATA_DIR / "natural" / "facts.jsonl").read_bytes()


def test_a_jsonl_statement_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "edits.jsonl"
    record = {
        "prompt": "Q?",
        "target": "A",
        "rephrase": "Q2?",
        "locality_prompt": "L?",
        "locality_answer": "B",
        "statement": 3,
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="'statement' must be a string"):
        list(iter_edits(path, "jsonl"))
