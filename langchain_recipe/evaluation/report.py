"""Writing an evaluation: ``results.json``, ``results.md`` (the tables) and PNG plots.

The JSON schema is documented in docs/evaluation.md. Plots are drawn with matplotlib's
non-interactive Agg backend, so they work on a headless machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_recipe.errors import DependencyMissingError
from langchain_recipe.evaluation.lifelong import (
    PAPER_MODE_SUFFIX,
    EvaluationConfig,
    EvaluationReport,
    MethodResult,
    describe_method,
)

__all__ = ["PLOT_NAMES", "load_report", "render_markdown", "write_plots", "write_report"]

PLOT_NAMES = ("editing_vs_edits.png", "retrieval_vs_edits.png", "general_ability_vs_edits.png")
"""The PNG files :func:`write_plots` writes (the last two only when there is data for them)."""


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"  # noqa: RUF001 (an en dash marks "no figure" in the tables)
    return f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _editing_rows(rows: list[MethodResult]) -> list[list[str]]:
    out = []
    for r in rows:
        em = r.exact_match or {}
        ret = r.retrieval or {}
        out.append(
            [
                r.method,
                _fmt(r.reliability),
                _fmt(r.generality),
                _fmt(r.locality),
                _fmt(em.get("reliability")),
                _fmt(em.get("generality")),
                _fmt(em.get("locality")),
                _fmt(ret.get("top1_accuracy")),
                _fmt(ret.get("gate_recall")),
                _fmt(ret.get("locality_rejection")),
                _fmt(ret.get("cosine_top1_accuracy")),
                _fmt(r.mean_added_input_tokens, 1),
            ]
        )
    return out


_EDIT_HEADERS = [
    "method",
    "reliability",
    "generality",
    "locality",
    "EM rel.",
    "EM gen.",
    "EM loc.",
    "top-1",
    "gate recall",
    "loc. rejection",
    "cosine top-1",
    "added tokens",
]


def render_markdown(report: EvaluationReport, *, command: str | None = None) -> str:
    """The tables of ``results.md``.

    One editing table per N (paper mode apart), general ability bare vs edited, the methods and
    the timings.

    Args:
        report: what :meth:`LifelongEvaluation.run` returned (or :func:`load_report` read).
        command: the command line, shown first.

    Returns:
        The Markdown text.
    """
    lines = [
        *_preamble(report, command),
        *_editing_tables(report),
        *_paper_mode_table(report),
        *_general_ability_table(report),
        *_methods_and_timings(report),
    ]
    return "\n".join(lines)


def _preamble(report: EvaluationReport, command: str | None) -> list[str]:
    config = report.config
    lines = [f"# Lifelong editing evaluation: {report.dataset}", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    lines += [
        f"{report.num_records} edits (shuffled with seed {config.seed}), sequential protocol: chunks of N edits, "
        "all N applied, then all N tested, repository reset per chunk; retrieval sees the question only "
        "unless marked PAPER MODE. Reliability/generality: teacher-forced token accuracy on the new target; "
        "locality: agreement with the unedited LM's argmax on the locality answer. EM: greedy generation "
        f"(target length + {config.extra_new_tokens} tokens) starts with the target / equals the unedited "
        "continuation. Diagnostics: top-1 = edit questions whose best key is their own edit; gate recall = "
        "edit questions accepted; loc. rejection = locality questions rejected; cosine top-1 = the frozen "
        "encoder's plain cosine retrieval; added tokens = input positions added per question.",
        "",
    ]
    if report.fixed_threshold is not None:
        source = (
            "given"
            if config.fixed_threshold is not None
            else "the mean sentinel score s(q, Θ) over all evaluated questions"
        )
        lines += [f"`recipe_no_sentinel` threshold: {report.fixed_threshold:.4f} ({source}).", ""]
    return lines


def _editing_tables(report: EvaluationReport) -> list[str]:
    lines = []
    for n in dict.fromkeys(r.edits for r in report.rows):
        honest = [r for r in report.rows if r.edits == n and not r.leaky_retrieval_query]
        chunks = honest[0].chunks if honest else 0
        lines += [f"## N = {n} edits ({chunks} chunk{'s' if chunks != 1 else ''}, {chunks * n} edits tested)", ""]
        lines += [*_table(_EDIT_HEADERS, _editing_rows(honest)), ""]
    return lines


def _paper_mode_table(report: EvaluationReport) -> list[str]:
    leaky = [r for r in report.rows if r.leaky_retrieval_query]
    if not leaky:
        return []
    rows = [[str(r.edits), *row] for r, row in zip(leaky, _editing_rows(leaky), strict=True)]
    return [
        "## PAPER MODE (leaky retrieval query: question + target minus its last token)",
        "",
        "The reference implementation's retrieval query, which contains most of a multi-token answer. "
        "Shown only for comparison with published numbers; not comparable with the tables above.",
        "",
        *_table(["N", *_EDIT_HEADERS], rows),
        "",
    ]


def _general_ability_table(report: EvaluationReport) -> list[str]:
    general = [r for r in report.rows if r.general_ability is not None]
    if not general:
        return []
    rows = [
        [
            str(r.edits),
            r.method,
            _fmt(r.general_ability["perplexity"], 2),
            _fmt(r.general_ability["multiple_choice_accuracy"]),
            _fmt(r.general_ability["gate_fired_rate"]),
        ]
        for r in general
    ]
    return [
        "## General ability, bare vs edited",
        "",
        "Perplexity on the bundled text sample and accuracy on the bundled multiple-choice set (option "
        "with the highest mean token log-likelihood), with the repository holding the first chunk's N "
        "edits, so gated injections can fire on these inputs too (gate fired = share of these inputs "
        "that got an injection). `unedited` is the bare LM.",
        "",
        *_table(["N", "method", "perplexity", "MC accuracy", "gate fired"], rows),
        "",
    ]


def _methods_and_timings(report: EvaluationReport) -> list[str]:
    lines = ["## Methods", ""]
    lines += [f"- `{name}`: {describe_method(name)}" for name in dict.fromkeys(r.method for r in report.rows)]
    lines += ["", "## Timings (seconds)", ""]
    lines += [*_table(["phase", "seconds"], [[k, _fmt(v, 1)] for k, v in report.timings.items()]), ""]
    edit_ms = next((r.timings.get("edit_per_edit", 0.0) for r in report.rows if r.timings.get("edit_per_edit")), None)
    if edit_ms:
        lines += [f"Encoding one edit (RecipeModel, batched): {1000 * edit_ms:.1f} ms.", ""]
    env = report.environment
    lines += [
        f"Base LM {env.get('base_model')} ({env.get('base_model_dtype')}, {env.get('device')}), "
        f"torch {env.get('torch')}, {env.get('torch_threads')} threads; timings on a shared machine are noisy.",
        "",
    ]
    return lines


def _field(group: str, key: str) -> Callable[[MethodResult], float | None]:
    """A getter of ``row.<group>[key]`` (``None`` when the row has no such group)."""
    return lambda row: (getattr(row, group) or {}).get(key)


_PLOTS: tuple[tuple[str, tuple[tuple[str, Callable[[MethodResult], float | None]], ...]], ...] = (
    (
        PLOT_NAMES[0],
        (
            ("reliability", lambda r: r.reliability),
            ("generality", lambda r: r.generality),
            ("locality", lambda r: r.locality),
            ("exact match (reliability)", _field("exact_match", "reliability")),
        ),
    ),
    (
        PLOT_NAMES[1],
        (
            ("top-1 accuracy", _field("retrieval", "top1_accuracy")),
            ("gate recall (edit questions)", _field("retrieval", "gate_recall")),
            ("rejection (locality questions)", _field("retrieval", "locality_rejection")),
            ("cosine top-1 (frozen encoder, no heads)", _field("retrieval", "cosine_top1_accuracy")),
        ),
    ),
    (
        PLOT_NAMES[2],
        (
            ("perplexity (text sample)", _field("general_ability", "perplexity")),
            ("multiple-choice accuracy", _field("general_ability", "multiple_choice_accuracy")),
        ),
    ),
)
"""Per PNG file: its panels, each a title and the metric it draws against N."""


def write_plots(report: EvaluationReport, output_dir: str | Path) -> list[Path]:
    """Metric vs N per method: editing metrics, retrieval diagnostics, general ability.

    Returns:
        The PNG files written (a file whose panels all lack data is skipped).

    Raises:
        DependencyMissingError: matplotlib is not installed.
    """
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        msg = "Plots need matplotlib: `pip install matplotlib` (a dependency of langchain-recipe)."
        raise DependencyMissingError(msg) from error
    methods = list(dict.fromkeys(r.method for r in report.rows))
    by_method = {m: sorted((r for r in report.rows if r.method == m), key=lambda r: r.edits) for m in methods}
    bases = list(dict.fromkeys(m.removesuffix(PAPER_MODE_SUFFIX) for m in methods))
    # The same colour for a method in every plot; its paper mode dashed in that colour.
    colours = {m: f"C{bases.index(m.removesuffix(PAPER_MODE_SUFFIX)) % 10}" for m in methods}
    written = []
    for name, panels in _PLOTS:
        shown = [p for p in panels if any(p[1](r) is not None for r in report.rows)]  # drop empty panels
        if not shown:
            continue
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.8), squeeze=False)
        drawn = [
            _panel(ax, title, getter, by_method, colours) for ax, (title, getter) in zip(axes[0], shown, strict=True)
        ]
        if any(drawn):
            handles, labels = next(ax.get_legend_handles_labels() for ax, d in zip(axes[0], drawn, strict=True) if d)
            fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize="small")
            fig.suptitle(f"{report.dataset}: {report.num_records} edits, sequential chunks of N")
            fig.tight_layout(rect=(0, 0.12, 1, 0.95))
            fig.savefig(Path(output_dir) / name, dpi=110)
            written.append(Path(output_dir) / name)
        plt.close(fig)
    return written


def _panel(
    ax: Any,
    title: str,
    getter: Callable[[MethodResult], float | None],
    by_method: dict[str, list[MethodResult]],
    colours: dict[str, str],
) -> bool:
    """One metric against N (log scale), a line per method; whether any line was drawn."""
    drawn = False
    for method, rows in by_method.items():
        points = [(r.edits, getter(r)) for r in rows if getter(r) is not None]
        if not points:
            continue
        style = "--" if method.endswith(PAPER_MODE_SUFFIX) else "-"
        ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", color=colours[method], label=method)
        drawn = True
    ax.set_title(title)
    ax.set_xscale("log")
    ax.set_xlabel("N (edits in the repository)")
    ax.grid(visible=True, alpha=0.3)
    return drawn


def write_report(
    report: EvaluationReport, output_dir: str | Path, *, command: str | None = None, plots: bool = True
) -> dict[str, Any]:
    """Write ``results.json``, ``results.md`` and the plots into ``output_dir`` (created).

    Args:
        report: what :meth:`LifelongEvaluation.run` returned.
        output_dir: the folder.
        command: the command line, recorded in both files.
        plots: also draw the PNG plots.

    Returns:
        ``{"json": path, "markdown": path, "plots": [paths]}``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    if command:
        data["command"] = command
    json_path = output_dir / "results.json"
    json_path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path = output_dir / "results.md"
    md_path.write_text(render_markdown(report, command=command), encoding="utf-8")
    written = write_plots(report, output_dir) if plots else []
    return {"json": json_path, "markdown": md_path, "plots": written}


def load_report(path: str | Path) -> tuple[EvaluationReport, str | None]:
    """Read a ``results.json`` back (to re-draw plots or re-render the tables).

    Returns:
        ``(report, command)``; per-edit values are not in the file, so rows have none.

    Raises:
        ValueError: the file is not a schema-1 ``results.json``.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        msg = f"{path} is not a results.json of schema version 1."
        raise ValueError(msg)
    rows = [MethodResult(**row) for row in data["results"]]
    report = EvaluationReport(
        dataset=data["dataset"],
        num_records=data["num_records"],
        config=EvaluationConfig(**data["config"]),
        rows=rows,
        fixed_threshold=data.get("fixed_threshold"),
        environment=data.get("environment", {}),
        timings=data.get("timings", {}),
        general_ability_source=data.get("general_ability_data"),
    )
    return report, data.get("command")
