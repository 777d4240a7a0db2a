"""The ``recipe`` command.

Subcommands: ``recipe demo``, ``recipe train``, ``recipe eval``, ``recipe bench``,
``recipe bench-retrieval`` and ``recipe train-retrieval``. Each loads what it needs from the
library, calls it and prints; scores come from ``evaluation/``, measurements from ``benchmarks/``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from langchain_recipe.base_models import HuggingFaceBaseModel
    from langchain_recipe.config import TrainingConfig
    from langchain_recipe.datasets import EditRecord
    from langchain_recipe.evaluation import EvaluationConfig
    from langchain_recipe.evaluation.chat_answers import ChatAnswerReport
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore
    from langchain_recipe.nn import RecipeModel
    from langchain_recipe.training.distillation import TeacherAnswer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Lifelong knowledge editing with RECIPE.")
console = Console()


@app.callback()
def _group() -> None:
    """Lifelong knowledge editing with RECIPE."""


def _setup(verbose: bool) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


_BaseModel = Annotated[
    str | None,
    typer.Option(
        "--base-model",
        help="Base LM: a Hugging Face model id or a local folder (default: the bundled SmolLM2-135M-Instruct).",
    ),
]
_GgufFile = Annotated[
    str | None, typer.Option(help="GGUF file inside the --base-model folder (de-quantised once, then cached).")
]
_Device = Annotated[str, typer.Option(help="Torch device of the base LM: cpu, cuda, cuda:1, mps.")]
_Dtype = Annotated[str, typer.Option(help="Base LM dtype: auto, float32, bfloat16.")]
_DeviceMap = Annotated[
    str | None,
    typer.Option(
        help="transformers device_map of the base LM, e.g. auto to spread it over every GPU (with --device cuda)."
    ),
]
_MixedPrecision = Annotated[
    str, typer.Option(help="Mixed precision of training on a GPU (accelerate): no, fp16 or bf16.")
]
_Checkpoint = Annotated[Path | None, typer.Option(help="RecipeModel folder (default: the shipped checkpoint).")]


def _lm_options(
    base_model: str | None, gguf_file: str | None, device: str, dtype: str, device_map: str | None
) -> dict[str, Any]:
    """The arguments of `load_base_model` that the base-LM options (--base-model ... --device-map) name."""
    options: dict[str, Any] = {"name_or_path": base_model, "gguf_file": gguf_file, "device": device, "dtype": dtype}
    return options | ({"device_map": device_map} if device_map else {})


def _load_lm(
    base_model: str | None, gguf_file: str | None, device: str, dtype: str, device_map: str | None
) -> HuggingFaceBaseModel:
    """The base LM that ``--base-model``, ``--gguf-file``, ``--device``, ``--dtype`` and ``--device-map`` name."""
    from langchain_recipe.base_models import load_base_model

    return load_base_model(**_lm_options(base_model, gguf_file, device, dtype, device_map))


def _open_models(
    base_model: str | None,
    gguf_file: str | None,
    device: str,
    dtype: str,
    device_map: str | None,
    checkpoint: Path | None,
) -> tuple[HuggingFaceBaseModel, RecipeModel]:
    """The base LM and the RecipeModel (``checkpoint`` or the shipped one) on its device; exits if they do not fit."""
    from langchain_recipe.base_models import default_recipe_model_path
    from langchain_recipe.nn import RecipeModel

    lm = _load_lm(base_model, gguf_file, device, dtype, device_map)
    recipe_model = RecipeModel.from_pretrained(checkpoint or default_recipe_model_path(), device=lm.device)
    _refuse_mismatch(recipe_model, lm)
    return lm, recipe_model


def _refuse_mismatch(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    """Exit with code 2 and both LMs' names when ``recipe_model`` was trained for another base LM."""
    from langchain_recipe.errors import BaseModelMismatchError

    try:
        recipe_model.check_base_model(base_model)
    except BaseModelMismatchError as error:
        console.print(str(error), style="red", markup=False, highlight=False)
        raise typer.Exit(2) from error


_InitFrom = Annotated[
    Path | None,
    typer.Option(help="Start from this RecipeModel folder (e.g. the shipped checkpoint) instead of a fresh model."),
]
_TeacherAnswers = Annotated[
    Path | None,
    typer.Option(
        help="JSONL cache of teacher chat answers for the answer distillation term (generated there if missing)."
    ),
]
_ModelConfigJson = Annotated[
    str | None, typer.Option(help="Extra RecipeConfig fields as JSON, e.g. '{\"num_prompt_tokens\": 8}'.")
]
_StopAtStep = Annotated[int | None, typer.Option(help="End at this step, keeping the schedule of --max-steps.")]
_Export = Annotated[Path | None, typer.Option(help="Also write the final model here in fp16 (the shipped checkpoint).")]


@app.command()
def train(
    output_dir: Annotated[Path, typer.Option(help="Run folder: checkpoint/, log.jsonl.")] = Path("runs/smollm2-135m"),
    max_minutes: Annotated[float, typer.Option(help="Wall-clock budget in minutes.")] = 50.0,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps (length of the learning-rate schedule).")] = 600,
    stop_at_step: _StopAtStep = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    export: _Export = None,
    config_json: Annotated[str | None, typer.Option(help="Extra TrainingConfig fields as JSON.")] = None,
    model_config_json: _ModelConfigJson = None,
    init_from: _InitFrom = None,
    teacher_answers: _TeacherAnswers = None,
    teacher_records: Annotated[
        int, typer.Option(help="Training edits per dataset whose teacher answers are generated.")
    ] = 400,
    verbose: Annotated[bool, typer.Option(help="Log progress.")] = True,
    base_model: _BaseModel = None,
    gguf_file: _GgufFile = None,
    device: _Device = "cpu",
    dtype: _Dtype = "auto",
    device_map: _DeviceMap = None,
    mixed_precision: _MixedPrecision = "no",
) -> None:
    """Train a RecipeModel for the bundled SmolLM2 on ZsRE + CounterFact train (resumes if interrupted)."""
    _setup(verbose)
    import torch

    from langchain_recipe.config import TrainingConfig
    from langchain_recipe.datasets import load_edits
    from langchain_recipe.evaluation import evaluate_edits
    from langchain_recipe.training import RecipeTrainer

    extra = {"lm_dtype": dtype, "mixed_precision": mixed_precision} | (json.loads(config_json) if config_json else {})
    if stop_at_step is not None:
        extra["stop_at_step"] = stop_at_step
    config = TrainingConfig(max_minutes=max_minutes, max_steps=max_steps, seed=seed, **extra)
    torch.manual_seed(config.seed)
    lm = _load_lm(base_model, gguf_file, _process_device(device), config.lm_dtype, device_map)
    model = _initial_model(lm, init_from, model_config_json)
    _refuse_mismatch(model, lm)
    train_data = {name: load_edits(name, "train", skip_invalid=True) for name in config.datasets}
    answers = None
    if config.answer_distillation_weight > 0:
        answers = _teacher_answers(lm, config, train_data, teacher_answers, teacher_records, verbose)
    # Model selection uses the *last* dev edits, disjoint from the first 100 ZsRE dev edits that the
    # demo reports on.
    # The natural facts' dev split is the hand-written evaluation set: never used for selection.
    dev = {name: load_edits(name, "dev")[-config.eval_size :] for name in config.datasets if name != "natural"}

    def evaluate(current: RecipeModel) -> dict:
        return {
            f"{name}/{method}": evaluate_edits(current, lm, records, method=method).as_dict()
            for name, records in dev.items()
            for method in ("recipe", "oracle")
        }

    trainer = RecipeTrainer(model, lm, config, train_data, output_dir, eval_fn=evaluate, teacher_answers=answers)
    checkpoint = trainer.train(progress=True)
    console.print(f"Checkpoint: {checkpoint} (step {trainer.step})")
    if export is not None:
        _export_best(model, output_dir, export)


def _process_device(device: str) -> str:
    """``cuda`` under ``accelerate launch`` means this process's own GPU (``cuda:<local rank>``)."""
    if device != "cuda":
        return device
    from accelerate import PartialState

    return str(PartialState().device)


def _initial_model(
    base_model: HuggingFaceBaseModel, init_from: Path | None, model_config_json: str | None
) -> RecipeModel:
    """The RecipeModel training starts from: ``init_from`` if given, else a fresh one for ``base_model``."""
    from langchain_recipe.nn import RecipeModel

    if init_from is not None:
        return RecipeModel.from_pretrained(init_from, device=base_model.device)
    return RecipeModel.for_base_model(base_model, **(json.loads(model_config_json) if model_config_json else {}))


def _teacher_answers(
    base_model: HuggingFaceBaseModel,
    config: TrainingConfig,
    train_data: dict[str, list[EditRecord]],
    cache: Path | None,
    records_per_dataset: int,
    verbose: bool,
) -> list[TeacherAnswer]:
    """The answer-distillation targets: the bare LM's chat answers that state their edit's target (cached)."""
    import random

    from langchain_recipe.training.distillation import teacher_answers as make_teacher_answers

    if cache is None:
        msg = "answer_distillation_weight > 0 needs --teacher-answers (a JSONL cache path)."
        raise typer.BadParameter(msg)
    rng = random.Random(config.seed)
    chosen = [
        r
        for name in config.datasets
        for r in rng.sample(train_data[name], min(records_per_dataset, len(train_data[name])))
    ]
    answers = make_teacher_answers(base_model, chosen, cache=cache, progress=verbose)
    console.print(f"{len(answers)} teacher answers state their target (of {2 * len(chosen)} asked).")
    return answers


def _export_best(model: RecipeModel, output_dir: Path, export: Path) -> None:
    """Write the run's best checkpoint in fp16 to ``export`` (the shipped checkpoint's format)."""
    import torch

    from langchain_recipe.nn import RecipeModel
    from langchain_recipe.training.trainer import BEST_DIR

    best = RecipeModel.from_pretrained(
        output_dir / BEST_DIR, encoder=model.encoder, encoder_tokenizer=model.encoder_tokenizer
    )
    best.save_pretrained(export, dtype=torch.float16)
    console.print(f"Exported the best model ({output_dir / BEST_DIR}) in fp16 to {export}")


def _wrapped(label: str, text: str, width: int = 80) -> str:
    """``label`` then ``text``, wrapped to ``width`` columns with the text's lines aligned."""
    import textwrap

    return textwrap.fill(
        " ".join(text.split()) or "(empty answer)",
        width=width,
        initial_indent=label,
        subsequent_indent=" " * len(label),
    )


def _fact_block(number: int, total: int, row: dict) -> str:
    """One demo block: the statement, then question, paraphrase and unrelated question with answers.

    ``[states it]`` is the chat-answer evaluation's rule
    (:func:`~langchain_recipe.evaluation.chat_answers.states_fact`); ``[unchanged]`` compares with
    the bare LM's answer, as its "unrelated unchanged" score does.
    """
    from langchain_recipe.evaluation.chat_answers import states_fact

    bare_answer, _, bare_unrelated = row["bare"]
    answer, paraphrase, unrelated = row["continuous_prompt"]

    def mark(text: str) -> str:
        return "[states it] " if states_fact(text, row["target"]) else "[misses it] "

    lines = [
        _wrapped(f"{number}/{total}  ", row["statement"]),
        _wrapped("  Q: ", row["question"]),
        _wrapped("     bare LM: ", bare_answer),
        _wrapped("     edited:  ", mark(answer) + answer),
        _wrapped("  Paraphrase: ", row["paraphrase"]),
        _wrapped("     edited:  ", mark(paraphrase) + paraphrase),
        _wrapped("  Unrelated: ", row["unrelated"]),
        _wrapped("     edited:  ", ("[unchanged] " if unrelated == bare_unrelated else "[CHANGED] ") + unrelated),
    ]
    return "\n".join(lines)


def _accuracy_summary(report: ChatAnswerReport) -> str:
    """The demo's closing table: the chat-answer evaluation's scores of each method."""
    recipe, text, bare = (report.score(m) for m in ("continuous_prompt", "text", "bare"))
    rows = [("RECIPE (continuous)", recipe), ("statement as text", text), ("bare LM", bare)]
    table = "".join(
        f"  {label:<19}  {s.answer_accuracy:5.1%}  {s.paraphrase_accuracy:9.1%}  {s.unrelated_unchanged:19.1%}\n"
        for label, s in rows
    )
    return (
        f"Greedy chat answers ({report.max_tokens} new tokens) that state the new fact, "
        f"{report.num_edits} facts stored:\n"
        f"                      answer  paraphrase  unrelated unchanged\n{table}"
        f"Own fact retrieved and passed by the knowledge sentinel: {recipe.own_edit_injected:.1%} of questions and "
        f"paraphrases; unrelated questions given a fact: {recipe.unrelated_injected:.1%}. "
        f"RECIPE adds {recipe.added_input_positions:.0f} input positions, the text {text.added_input_positions:.1f}."
    )


def _add_missing_facts(
    store: RecipeKnowledgeStore, records: list[EditRecord], ids: list[str], source: Path, store_path: Path
) -> None:
    """Add, one at a time, the facts not yet in ``store``; print how long each took, or that all were there."""
    import statistics
    import time

    from tqdm.auto import tqdm

    missing = [i for i, edit_id in enumerate(ids) if not store.get_by_ids([edit_id])]
    edit_seconds: list[float] = []
    for i in tqdm(missing, desc="adding facts", unit="fact", disable=None if missing else True):
        tick = time.perf_counter()
        store.add_knowledge(
            [records[i].statement], metadatas=[{"source": source.name, "subject": records[i].subject}], ids=[ids[i]]
        )
        edit_seconds.append(time.perf_counter() - tick)
    if edit_seconds:
        console.print(
            f"Added {len(missing)} facts one at a time, {1000 * statistics.mean(edit_seconds):.0f} ms per fact."
        )
    else:
        console.print(
            f"All {len(records)} facts already in the store: reusing them (delete {store_path} to start over)."
        )


def _demo_facts(source: Path, facts: int) -> tuple[list[EditRecord], list[str]]:
    """The demo's facts, ``facts`` of them evenly spread over ``source`` (0: all), and their ids."""
    from langchain_recipe.datasets import detect_format, iter_edits

    every = list(iter_edits(source, detect_format(source)))
    if facts < 0:
        msg = f"--facts must be 0 (all) or a positive number, not {facts}."
        raise typer.BadParameter(msg)
    # An even spread covers every kind of fact in a file ordered by kind (the natural facts are).
    chosen = range(len(every)) if not facts or facts >= len(every) else [i * len(every) // facts for i in range(facts)]
    records = [every[i] for i in chosen]
    return records, [f"{source.stem}-{i}" for i in chosen]  # the line in the file: stable across --facts


@app.command()
def demo(
    store_path: Annotated[Path, typer.Option(help="Folder of the embedded on-disk Qdrant store.")] = Path(
        "recipe_store"
    ),
    edits_file: Annotated[
        Path | None,
        typer.Option(
            help="JSONL of edits in any format of docs/evaluation.md (default: the 170 hand-written natural facts)."
        ),
    ] = None,
    facts: Annotated[
        int, typer.Option(help="How many facts to teach, evenly spread over the file (0: all of them).")
    ] = 40,
    show: Annotated[int, typer.Option(help="How many facts to print a block for.")] = 12,
    max_tokens: Annotated[int, typer.Option(help="New tokens per answer.")] = 32,
    verbose: Annotated[bool, typer.Option(help="Log details.")] = False,
    base_model: _BaseModel = None,
    gguf_file: _GgufFile = None,
    device: _Device = "cpu",
    dtype: _Dtype = "auto",
    device_map: _DeviceMap = None,
    checkpoint: _Checkpoint = None,
) -> None:
    """Teach the bundled SmolLM2 new facts through RECIPE, one at a time, and show what its answers say."""
    _setup(verbose)
    import time

    from langchain_recipe.datasets import NATURAL_FACTS
    from langchain_recipe.evaluation.chat_answers import ask_chat_questions
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    source = edits_file or NATURAL_FACTS
    records, ids = _demo_facts(source, facts)
    console.rule("langchain-recipe demo: new facts for a local LM")
    started = time.perf_counter()
    with console.status(f"Loading {base_model or 'SmolLM2-135M-Instruct'}, the RecipeModel and the store..."):
        lm, recipe_model = _open_models(base_model, gguf_file, device, dtype, device_map, checkpoint)
        # The demo's store holds demo data only: after an upgrade of the shipped RecipeModel it is
        # rebuilt from its statements instead of refusing to open (FingerprintMismatchError).
        store = RecipeKnowledgeStore(
            recipe_model, lm, path=store_path, collection_name=f"demo_{source.stem}", on_mismatch="reencode"
        )
    console.print(
        f"Loaded in {time.perf_counter() - started:.1f} s. Store: {store_path.resolve()} ({len(store)} edits stored)"
    )
    try:
        _add_missing_facts(store, records, ids, source, store_path)
        report = ask_chat_questions(store, records, ids, dataset=source.stem, max_tokens=max_tokens, progress=True)
    finally:
        store.close()
    for number, row in enumerate(report.answers[:show], start=1):
        console.print(_fact_block(number, len(records), row), markup=False, highlight=False)
        console.print()
    console.rule("Answer accuracy")
    console.print(_accuracy_summary(report), markup=False, highlight=False)
    console.print(f"Total demo time: {time.perf_counter() - started:.0f} s.")


def _int_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        msg = f"{text!r} is not a comma-separated list of integers (e.g. 0,1000,10000)."
        raise typer.BadParameter(msg) from None


_Sizes = Annotated[
    str | None,
    typer.Option(help="Background edits for answer and in-memory retrieval timing, e.g. 0,1000,10000,100000."),
]
_BackendSizes = Annotated[
    str | None, typer.Option(help="Store sizes for the qdrant-edge backend, e.g. 1000,10000,100000.")
]
_PathSizes = Annotated[
    str | None, typer.Option(help="Store sizes for the qdrant-client path= backend, e.g. 1000,10000.")
]
_Backends = Annotated[str | None, typer.Option(help="Other embedded backends to time: path,edge (empty string: none).")]
_EdgeHnsw = Annotated[
    bool, typer.Option(help="Also build qdrant-edge's HNSW index at the largest backend size and time it (slow).")
]
_BenchThreads = Annotated[
    int | None, typer.Option(help="Torch CPU threads (default: torch's choice; 1 on a busy shared machine).")
]


@app.command()
def bench(
    output_dir: Annotated[Path, typer.Option(help="Folder for bench.json and bench.md.")] = Path("benchmarks/results"),
    quick: Annotated[bool, typer.Option(help="Fewer repeats and sizes (about 10 minutes of CPU time).")] = False,
    sizes: _Sizes = None,
    backend_sizes: _BackendSizes = None,
    path_sizes: _PathSizes = None,
    backends: _Backends = None,
    repeats: Annotated[int | None, typer.Option(help="Interleaved repeats per answer-latency variant.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="New tokens per answer (forced).")] = None,
    edge_hnsw: _EdgeHnsw = False,
    threads: _BenchThreads = None,
    verbose: Annotated[bool, typer.Option(help="Log details.")] = False,
    base_model: _BaseModel = None,
    gguf_file: _GgufFile = None,
    device: _Device = "cpu",
    dtype: _Dtype = "auto",
    device_map: _DeviceMap = None,
    checkpoint: _Checkpoint = None,
) -> None:
    """Measure answer latency (bare / RECIPE / text-RAG), editing and retrieval speed, and memory, side by side."""
    if threads is not None:
        # Before NumPy loads: OpenBLAS threads busy-wait, which inflates the CPU time of Qdrant's
        # NumPy search on a shared machine (torch threads are set by the suite).
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, str(threads))
    _setup(verbose)
    from dataclasses import replace

    from langchain_recipe.benchmarks.report import write_report
    from langchain_recipe.benchmarks.suite import SuiteSettings, run_cpu_suite

    settings = SuiteSettings.quick() if quick else SuiteSettings()
    overrides: dict = {
        "sizes": _int_list(sizes),
        "backend_sizes": _int_list(backend_sizes),
        "path_sizes": _int_list(path_sizes),
        "backends": None if backends is None else [b.strip() for b in backends.split(",") if b.strip()],
        "repeats": repeats,
        "max_new_tokens": max_new_tokens,
        "threads": threads,
        "edge_hnsw": edge_hnsw or None,
        "base_model": _lm_options(base_model, gguf_file, device, dtype, device_map),
        "checkpoint": checkpoint,
    }
    unknown = set(overrides["backends"] or []) - {"path", "edge"}
    if unknown:
        msg = f"Unknown backend(s) {sorted(unknown)}; use path and/or edge."
        raise typer.BadParameter(msg)
    settings = replace(settings, **{name: value for name, value in overrides.items() if value is not None})
    console.rule("[bold]langchain-recipe benchmarks (CPU)")
    results = run_cpu_suite(settings, log=console.print)
    json_path, markdown_path = write_report(results, output_dir)
    for target in results["targets"]:
        verdict = "not measured" if target["met"] is None else "[green]met[/]" if target["met"] else "[red]missed[/]"
        measured = "-" if target["measured"] is None else f"{target['measured']:.3f}"
        console.print(f"{target['target']}: {measured} (goal {target['goal']}) {verdict}")
    console.print(f"Wrote {json_path} and {markdown_path} in {results['meta']['seconds']:.0f} s.")


def _named_paths(values: list[str] | None) -> dict[str, Path]:
    from langchain_recipe.base_models import default_recipe_model_path

    if not values:
        return {"shipped": default_recipe_model_path()}
    named = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            msg = f"{value!r} is not NAME=PATH (e.g. trained=runs/retrieval/heads)."
            raise typer.BadParameter(msg)
        named[name] = Path(path)
    return named


@app.command("bench-retrieval")
def bench_retrieval(
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=PATH of a RecipeModel checkpoint; repeat to compare (default: shipped=<the shipped checkpoint>)."
        ),
    ] = None,
    output_dir: Annotated[Path, typer.Option(help="Folder for retrieval.json and retrieval.md.")] = Path(
        "benchmarks/results/retrieval"
    ),
    cache_dir: Annotated[
        Path, typer.Option(help="Feature cache folder (encoder features of every text, computed once).")
    ] = Path("runs/retrieval_cache"),
    mix_size: Annotated[int, typer.Option(help="Stored edits of the mixed store.")] = 10_000,
    knowedit: Annotated[Path | None, typer.Option(help="KnowEdit file (missing: left out).")] = None,
    natural: Annotated[
        Path | None, typer.Option(help="Natural facts JSONL with a 'statement' field (missing: left out).")
    ] = None,
    cosine_threshold: Annotated[
        float | None, typer.Option(help="Fixed threshold of the cosine baseline (default: fitted on the val split).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch CPU threads.")] = 1,
    hybrid_weights: Annotated[
        str | None,
        typer.Option(
            help="Also measure dense + w × BM25 (and RRF) on every store; comma-separated weights w to try on val, "  # noqa: RUF001 (the multiplication sign, as printed by --help)
            "e.g. 0.5,1,2."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Log progress.")] = True,
) -> None:
    """Retrieval only, no LM: own-edit top-1 and the sentinel gate's verdicts at 500, 1000 and 10,000 stored edits."""
    _setup(verbose)
    from langchain_recipe.benchmarks.retrieval import (
        KNOWEDIT_FILE,
        NATURAL_FILE,
        RetrievalBenchSettings,
        render_markdown,
        run_retrieval_benchmark,
    )

    settings = RetrievalBenchSettings(
        models=_named_paths(model),
        knowedit=knowedit or KNOWEDIT_FILE,
        natural=natural or NATURAL_FILE,
        cache_dir=cache_dir,
        mix_size=mix_size,
        cosine_threshold=cosine_threshold,
        threads=threads,
        hybrid_weights=tuple(float(w) for w in hybrid_weights.split(",") if w.strip()) if hybrid_weights else (),
    )
    results = run_retrieval_benchmark(settings, log=console.print)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "retrieval.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render_markdown(results)
    (output_dir / "retrieval.md").write_text(markdown)
    console.print(markdown)
    console.print(f"Wrote {output_dir / 'retrieval.json'} and retrieval.md in {results['meta']['seconds']:.0f} s.")


@app.command("train-retrieval")
def train_retrieval_command(
    output_dir: Annotated[
        Path, typer.Option(help="Where the best model (shipped prompt encoder, new heads and sentinel) is saved.")
    ] = Path("runs/retrieval/heads"),
    init_from: Annotated[
        Path | None, typer.Option(help="RecipeModel to start from (default: the shipped checkpoint).")
    ] = None,
    cache_dir: Annotated[Path, typer.Option(help="Feature cache folder.")] = Path("runs/retrieval_cache"),
    knowedit: Annotated[Path | None, typer.Option(help="KnowEdit file (missing: left out).")] = None,
    config_json: Annotated[str | None, typer.Option(help="RetrievalTrainingConfig fields as JSON.")] = None,
    threads: Annotated[int, typer.Option(help="Torch CPU threads.")] = 1,
    verbose: Annotated[bool, typer.Option(help="Log progress.")] = True,
) -> None:
    """Train the knowledge/query heads and the knowledge sentinel on cached encoder features (no LM)."""
    _setup(verbose)
    import torch

    from langchain_recipe.base_models import default_recipe_model_path
    from langchain_recipe.benchmarks.retrieval import KNOWEDIT_FILE, NATURAL_FILE, prepare_features
    from langchain_recipe.nn import RecipeModel
    from langchain_recipe.training.retrieval import RetrievalTrainingConfig, train_retrieval

    torch.set_num_threads(threads)
    config = RetrievalTrainingConfig(**(json.loads(config_json) if config_json else {}))
    model = RecipeModel.from_pretrained(init_from or default_recipe_model_path())
    # The features of the benchmark's texts too, so both commands share one cache.
    _, train_set, val_set, table = prepare_features(
        model, knowedit=knowedit or KNOWEDIT_FILE, natural=NATURAL_FILE, cache_dir=cache_dir, log=console.print
    )
    result = train_retrieval(model, train_set, val_set, table, config, output_dir=output_dir, log=console.print)
    console.print(f"Saved the best model (step {result['best_step']}) to {output_dir}.")


def _parse_edit_counts(value: str) -> list[int | str]:
    counts: list[int | str] = []
    for part in value.split(","):
        part = part.strip().lower()
        if part == "all":
            counts.append("all")
        elif part.isdigit() and int(part) > 0:
            counts.append(int(part))
        else:
            msg = f"--edits: {part!r} is not a positive number of edits or 'all' (e.g. --edits 1,10,100,all)."
            raise typer.BadParameter(msg)
    return counts


_EvalDataset = Annotated[
    str,
    typer.Option(
        help="zsre, counterfact (their dev split), natural (the hand-written facts) or a JSONL file of edits "
        "(see docs/evaluation.md)."
    ),
]
_EditCounts = Annotated[
    str, typer.Option(help="Comma-separated N of the sequential protocol (chunks of N; 1 = single edit; 'all').")
]
_Methods = Annotated[
    str, typer.Option(help="Comma-separated methods: unedited, text_rag, recipe_no_sentinel, recipe, oracle.")
]
_PaperMode = Annotated[
    bool,
    typer.Option(
        "--paper-mode",
        help="Also run the retrieval methods with the reference code's leaky query (question + target minus its "
        "last token), reported as <method>_paper_mode.",
    ),
]
_FixedThreshold = Annotated[
    float | None,
    typer.Option(
        help="Threshold of recipe_no_sentinel (default: the mean sentinel score over the evaluated questions)."
    ),
]
_Chat = Annotated[
    bool,
    typer.Option(
        "--chat",
        help="Also measure what users see: greedy chat answers through RecipeChatModel with all edits stored "
        "(answer accuracy, paraphrase accuracy, unrelated unchanged) for the bare LM, the continuous prompt and "
        "the statement as text.",
    ),
]
_ChatTemplate = Annotated[
    bool,
    typer.Option(
        "--chat-template", help="Teacher-forced scoring inside the chat template (default: raw text, as the paper)."
    ),
]
_TeacherForced = Annotated[
    bool,
    typer.Option(help="Run the paper's teacher-forced protocol (--no-teacher-forced with --chat: chat answers only)."),
]
_GeneralAbility = Annotated[
    bool, typer.Option(help="Also measure perplexity and multiple-choice accuracy, bare vs edited.")
]


@app.command("eval")
def eval_(
    dataset: _EvalDataset = "zsre",
    edits: _EditCounts = "1,10,100,all",
    output: Annotated[Path, typer.Option(help="Folder for results.json, results.md and the PNG plots.")] = Path(
        "eval_results"
    ),
    methods: _Methods = "unedited,text_rag,recipe_no_sentinel,recipe",
    paper_mode: _PaperMode = False,
    seed: Annotated[int, typer.Option(help="Shuffles the edits.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first LIMIT edits after shuffling.")] = None,
    checkpoint: _Checkpoint = None,
    fixed_threshold: _FixedThreshold = None,
    exact_match: Annotated[bool, typer.Option(help="Also score greedy generation (exact match).")] = True,
    general_ability: _GeneralAbility = True,
    chat: _Chat = False,
    chat_template: _ChatTemplate = False,
    max_tokens: Annotated[int, typer.Option(help="New tokens per chat answer (--chat).")] = 32,
    teacher_forced: _TeacherForced = True,
    batch_size: Annotated[int, typer.Option(help="Rows per LM forward pass.")] = 16,
    dtype: _Dtype = "auto",
    verbose: Annotated[bool, typer.Option(help="Log details.")] = False,
    base_model: _BaseModel = None,
    gguf_file: _GgufFile = None,
    device: _Device = "cpu",
    device_map: _DeviceMap = None,
) -> None:
    """Evaluate lifelong editing (reliability, generality, locality) against baselines, after 1..N edits."""
    _setup(verbose)
    import shlex
    import sys
    import time

    from langchain_recipe.evaluation.lifelong import select_edits

    started = time.perf_counter()
    options = {"edit_counts": edits, "methods": methods, "paper_mode": paper_mode, "seed": seed, "limit": limit}
    options |= {"batch_size": batch_size, "exact_match": exact_match, "general_ability": general_ability}
    config, name, records = _evaluation_inputs(dataset, fixed_threshold=fixed_threshold, chat=chat_template, **options)
    with console.status("Loading the base LM and the RecipeModel..."):
        lm, recipe_model = _open_models(base_model, gguf_file, device, dtype, device_map, checkpoint)
    if not teacher_forced and not chat:
        console.print("[red]--no-teacher-forced leaves nothing to measure; add --chat.[/]")
        raise typer.Exit(2)
    command = "recipe " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if teacher_forced:
        _teacher_forced(recipe_model, lm, records, name, config, output, command, started)
    if chat:
        chosen = select_edits(records, seed=seed, limit=limit)
        _chat_answers(recipe_model, lm, chosen, name, max_tokens, batch_size, output, command)


def _evaluation_inputs(
    dataset: str, *, edit_counts: str, methods: str, **options: object
) -> tuple[EvaluationConfig, str, list[EditRecord]]:
    """The evaluation's settings and its dataset's name and edits; a bad option or dataset exits with code 2."""
    from pydantic import ValidationError

    from langchain_recipe.datasets import load_eval_edits
    from langchain_recipe.errors import RecipeError
    from langchain_recipe.evaluation import EvaluationConfig

    try:
        config = EvaluationConfig(
            edit_counts=_parse_edit_counts(edit_counts),
            methods=[m.strip() for m in methods.split(",") if m.strip()],
            **options,
        )
        name, records = load_eval_edits(dataset)
    except (ValidationError, RecipeError) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    return config, name, records


def _teacher_forced(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    records: list[EditRecord],
    name: str,
    config: EvaluationConfig,
    output: Path,
    command: str,
    started: float,
) -> None:
    """``recipe eval``'s paper protocol: run it, write results.json/.md and the plots, print the tables."""
    import time

    from langchain_recipe.errors import RecipeError
    from langchain_recipe.evaluation import LifelongEvaluation, write_report

    try:
        evaluation = LifelongEvaluation(recipe_model, base_model, records, config, dataset=name)
    except RecipeError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    report = evaluation.run()
    report.timings["wall_including_loading"] = time.perf_counter() - started
    written = write_report(report, output, command=command)
    console.print(written["markdown"].read_text(encoding="utf-8"), markup=False, highlight=False)
    plots = len(written["plots"])
    seconds = time.perf_counter() - started
    console.print(f"Wrote {written['json']}, {written['markdown']} and {plots} plots in {seconds:.0f} s.")


def _chat_answers(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    chosen: list[EditRecord],
    name: str,
    max_tokens: int,
    batch_size: int,
    output: Path,
    command: str,
) -> None:
    """``recipe eval --chat``: the chat-answer evaluation on the same (shuffled, limited) edits."""
    from langchain_recipe.evaluation.chat_answers import evaluate_chat_answers, render_chat_markdown, write_chat_report

    report = evaluate_chat_answers(
        recipe_model, base_model, chosen, dataset=name, max_tokens=max_tokens, batch_size=batch_size, progress=True
    )
    written = write_chat_report(report, output, command=command)
    console.print(render_chat_markdown(report, command=command), markup=False, highlight=False)
    console.print(f"Wrote {written['json']} and {written['markdown']}.")


def main() -> None:
    """Entry point for ``python -m langchain_recipe.cli``."""
    app()


if __name__ == "__main__":
    main()
