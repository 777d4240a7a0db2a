"""Writing the suite's results: ``bench.json`` (everything) and ``bench.md`` (tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "write_report"]

_VARIANT_LABELS = {
    "bare_edit_questions": "bare LM (edit questions)",
    "recipe_hit": "RECIPE, edit hit",
    "text_rag_hit": "text-RAG, edit hit",
    "bare_unrelated_questions": "bare LM (unrelated questions)",
    "recipe_rejected": "RECIPE, sentinel-rejected",
}


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['median']:.1f} ({summary['min']:.1f}-{summary['max']:.1f})"


def _ratio(ratio: dict[str, float]) -> str:
    return f"{ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f})"


def _size(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables (medians, with min-max over repeats in parentheses).

    Args:
        results: what :func:`~langchain_recipe.benchmarks.suite.run_cpu_suite` returns (or ``bench.json``).

    Returns:
        The report, one section per measurement: targets, answer latency, editing, retrieval, memory.
    """
    lines = [
        *_header(results["meta"]),
        *_targets(results.get("targets", [])),
        *_answer_latency(results["answer_latency"], results["meta"]["settings"]),
        *_editing(results),
        *_retrieval(results["retrieval"]),
        *_memory(results["memory"]),
    ]
    return "\n".join(lines)


def _header(meta: dict[str, Any]) -> list[str]:
    machine, settings = meta["machine"], meta["settings"]
    return [
        "# langchain-recipe benchmark report",
        "",
        f"Run {meta['started']} to {meta.get('finished', '?')} ({meta.get('seconds', 0):.0f} s). "
        f"CPU: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch threads {machine['torch_threads']}, "
        f"AVX2 {'yes' if machine['avx2'] else 'no'}, AVX-512 {'yes' if machine['avx512f'] else 'no'}, "
        f"native bf16 {'yes' if machine['avx512_bf16'] or machine['amx_bf16'] else 'no'}; "
        f"torch {machine['torch']}, transformers {machine['transformers']}, qdrant-client {machine['qdrant_client']}, "
        f"qdrant-edge-py {machine['qdrant_edge'] or 'not installed'}.",
        "",
        f"Load average at start {machine['load_average']}, at end {meta.get('load_average_end')}: "
        "when it is above the number of CPUs other processes competed for the cores and the absolute "
        "times are noisy; ratios of variants measured back to back are more reliable than times.",
        "",
        f"Medians of {settings['repeats']} interleaved repeats; (min-max) over the repeats. Ratios are medians "
        "of per-repeat ratios of variants that ran back to back. Each measurement records wall time and the CPU "
        f"time this process used (torch threads: {settings.get('threads') or 'default'}); with one torch thread "
        "the CPU time is what the wall time would be on an idle machine, so on a shared machine the CPU-time "
        "figures are the ones to read and the targets are judged on them. Background edits are synthetic "
        "(random keys of the real keys' norm); the probed edits are real ZsRE edits.",
        "",
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"


def _targets(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "", "| target | goal | measured (CPU time) | wall clock | met |", "|---|---|---|---|---|"]
    for target in targets:
        measured = target["measured"] if target.get("basis") == "cpu" else None
        met = "-" if target["met"] is None else "yes" if target["met"] else "**no**"
        wall = _number(target.get("wall", target["measured"]))
        lines.append(f"| {target['target']} | {target['goal']} | {_number(measured)} | {wall} | {met} |")
    return lines


_LATENCY_HEADER = (
    "| background edits | bare ms | RECIPE hit ms | RECIPE rejected ms | text-RAG ms | RECIPE/bare | rejected/bare "
    "| text-RAG/bare | RECIPE/text-RAG | tokens/s bare / RECIPE / text-RAG |"
)


def _answer_latency(latency_rows: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    lines = ["", f"## 1. Answer latency (greedy, exactly {settings['max_new_tokens']} new tokens)", ""]
    for batch_size in settings["batch_sizes"]:
        rows = [r for r in latency_rows if r["batch_size"] == batch_size]
        if not rows:
            continue
        for basis, keys in (
            ("CPU time", ("cpu_ms", "cpu_ratios", "tokens_per_cpu_s")),
            ("wall clock", ("latency_ms", "ratios", "tokens_per_s")),
        ):
            if all(keys[0] in row for row in rows):
                lines += [
                    f"### Batch {batch_size}, {basis}",
                    "",
                    _LATENCY_HEADER,
                    "|---|---|---|---|---|---|---|---|---|---|",
                ]
                lines += [_latency_row(row[keys[0]], row[keys[1]], row[keys[2]], row) for row in rows]
                lines.append("")
        lines += [_checks_line(rows[-1]["checks"]), ""]
    return lines


def _latency_row(latency: dict[str, Any], ratios: dict[str, Any], tps: dict[str, Any], row: dict[str, Any]) -> str:
    return (
        f"| {row['background_edits']:,} | {_ms(latency['bare_edit_questions'])} | {_ms(latency['recipe_hit'])} | "
        f"{_ms(latency['recipe_rejected'])} | {_ms(latency['text_rag_hit'])} | {_ratio(ratios['recipe_hit/bare'])} | "
        f"{_ratio(ratios['recipe_rejected/bare'])} | {_ratio(ratios['text_rag/bare'])} | "
        f"{_ratio(ratios['recipe_hit/text_rag'])} | "
        f"{tps['bare_edit_questions']:.1f} / {tps['recipe_hit']:.1f} / {tps['text_rag_hit']:.1f} |"
    )


def _checks_line(checks: dict[str, dict[str, Any]]) -> str:
    def check(name: str, c: dict[str, Any]) -> str:
        text = f"{_VARIANT_LABELS.get(name, name)}: {c['exact_length']}/{c['answers']} answers of exact length"
        if name not in ("bare_edit_questions", "bare_unrelated_questions"):
            text += f", edit applied {c['edit_applied']}/{c['answers']}"
        return text

    return "Checks (largest store): " + "; ".join(check(name, c) for name, c in checks.items()) + "."


def _editing(results: dict[str, Any]) -> list[str]:
    lines = ["## 2. Editing", ""]
    throughput = results.get("edit_throughput")
    if throughput:
        t = throughput
        lines += [
            "| mode | call ms, CPU time | call ms, wall clock | edits per CPU second | edits/s, wall clock |",
            "|---|---|---|---|---|",
            f"| batched ({t['batch_size']} statements per call) | {_ms(t['batched_call_cpu_ms'])} "
            f"| {_ms(t['batched_call_ms'])} | {t['batched_edits_per_cpu_s']:.0f} | {t['batched_edits_per_s']:.0f} |",
            f"| single (one statement per call) | {_ms(t['single_call_cpu_ms'])} | {_ms(t['single_call_ms'])} | "
            f"{t['single_edits_per_cpu_s']:.1f} | {t['single_edits_per_s']:.1f} |",
            "",
        ]
    if results["time_to_retrievable"]:
        lines += [
            "Time from `add_knowledge` to the first query that retrieves the new edit:",
            "",
            "| background edits | ms, CPU time | ms, wall clock | retrievable on the first query |",
            "|---|---|---|---|",
        ]
        for row in results["time_to_retrievable"]:
            cpu = _ms(row["cpu_ms"]) if "cpu_ms" in row else "-"
            retrievable = f"{row['retrievable_on_first_query']}/{row['ms']['n']}"
            lines.append(f"| {row['background_edits']:,} | {cpu} | {_ms(row['ms'])} | {retrievable} |")
        lines.append("")
    if results.get("fill"):
        lines += [
            "Bulk writes of synthetic edits straight through the Qdrant client (no encoding):",
            "",
            "| backend | edits | edits/s |",
            "|---|---|---|",
        ]
        lines += [f"| {row['backend']} | {row['edits']:,} | {row['edits_per_s']:,.0f} |" for row in results["fill"]]
        lines.append("")
    return lines


def _retrieval(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 3. Retrieval latency",
        "",
        "`qdrant search` is Qdrant's own search for one question (query as a list of floats, "
        "best edit with payload and prompt, sentinel score as threshold: what `search_batch` sends to a server); "
        "`store search` is the search step of `RecipeKnowledgeStore.search_batch` for an embedded "
        "(qdrant-client local) store: "
        "the float32 key index, then the winner's payload by id (`batch 8`: eight questions in one call); "
        "`end to end` is `store.retrieve_prompts([question])` (query encoder, "
        "knowledge sentinel gate and search); `encode` is the query encoder and gate alone. CPU time of this "
        "process (qdrant-edge searches on its own threads, which count too); wall-clock p50 in the last column.",
        "",
        "| backend | stored edits | qdrant search p50 / p95 ms | store search p50 / p95 ms "
        "| store search, batch 8, p50 ms | end to end p50 / p95 ms | encode p50 ms | disk bytes/edit "
        "| qdrant search p50 ms, wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_retrieval_row(row) for row in rows]
    lines.append("")
    return lines


def _retrieval_row(row: dict[str, Any]) -> str:
    if "skipped" in row:
        return f"| {row['backend']} | - | skipped: {row['skipped']} | | | | | | |"
    ms = row.get("cpu_ms", row["ms"])
    wall = f"{row['ms']['qdrant_search']['median']:.2f}" if "qdrant_search" in row["ms"] else "-"

    def cell(name: str) -> str:
        return f"{ms[name]['median']:.2f} / {ms[name]['p95']:.2f}" if name in ms else "-"

    def median(name: str) -> str:
        return f"{ms[name]['median']:.2f}" if name in ms else "-"

    backend = f"{row['backend']} ({row['index']})" if "index" in row else row["backend"]
    return (
        f"| {backend} | {row['stored_edits']:,} | {cell('qdrant_search')} | {cell('store_search')} | "
        f"{median('store_search_batch8')} | {cell('end_to_end')} | {median('encode_query_and_gate')} | "
        f"{_size(row.get('disk_bytes_per_edit'))} | {wall} |"
    )


def _memory(memory: dict[str, Any]) -> list[str]:
    # Results written before the schema-2 store have no prompt_storage: their prompts were float32 multivectors.
    storage = memory.get("prompt_storage", "multivector (schema 1)")
    prompt_kind = "float32 multivector" if storage.startswith("multivector") else "float16 payload field"
    request = memory.get("request_bytes_per_edit")
    lines = [
        "## 4. Memory",
        "",
        f"Raw vector bytes per edit (float32 key + continuous prompt as a {prompt_kind}, prompt storage "
        f"`{storage}`): {memory.get('raw_vector_bytes_per_edit', 0):,}"
        + (f"; one edit's point as JSON in an upsert request: {request:,} bytes." if request else "."),
        "",
        "| background edits in the in-memory store | process RSS MiB |",
        "|---|---|",
        f"| none (models loaded, empty store) | {_size((memory.get('rss_after_load_bytes') or 0) / 2**20)} |",
    ]
    for row in memory.get("rss_bytes", []):
        lines.append(f"| {row['background_edits']:,} | {_size((row['rss_bytes'] or 0) / 2**20)} |")
    lines += [f"| peak over the whole in-memory part | {_size(memory.get('peak_rss_bytes', 0) / 2**20)} |", ""]
    for row in memory.get("rss_growth_bytes_per_edit", []):
        lines.append(
            f"- RSS growth from {row['from']:,} to {row['to']:,} edits: {row['bytes_per_edit']:,.0f} bytes per edit."
        )
    lines.append("")
    return lines


def write_report(results: dict[str, Any], output_dir: str | Path) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.md`` into ``output_dir`` (created); return their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = output_dir / "bench.json", output_dir / "bench.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    markdown_path.write_text(render_markdown(results), encoding="utf-8")
    return json_path, markdown_path
