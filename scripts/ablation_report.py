"""Tables and curves for docs/ablations.md from the training logs of scripts/ablations.sh.

Usage: .venv/bin/python scripts/ablation_report.py [--output docs/ablations]

Reads the training logs kept in docs/training_logs/ (copied there from runs/<name>/log.jsonl) and
writes <output>/curves.png (dev metrics vs training step per variant) and prints a Markdown table
of every dev evaluation (gated RECIPE, retrieval on the question only; last 30 dev edits per
dataset) with the median seconds per step of each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "docs" / "training_logs"
RUNS = {
    "statement attention, 8 vectors (shipped)": LOGS / "statement-attention-8.jsonl",
    "statement attention, 3 vectors (previous)": LOGS / "statement-attention-3.jsonl",
    "paper MLP prompt encoder, 3 vectors": LOGS / "paper-mlp-3.jsonl",
    "statement attention, 16 vectors": LOGS / "statement-attention-16.jsonl",
    "tuned encoder, 3 vectors": LOGS / "tuned-encoder.jsonl",
    "8 vectors + negative queue (1024 keys in L_q3)": LOGS / "negative-queue-8.jsonl",
    "8 vectors + negative queue in L_q1 and L_q3": LOGS / "negative-queue-q1-8.jsonl",
}
COLUMNS = [
    ("zsre/recipe", "reliability"),
    ("zsre/recipe", "generality"),
    ("zsre/recipe", "locality"),
    ("counterfact/recipe", "reliability"),
    ("counterfact/recipe", "generality"),
    ("counterfact/recipe", "locality"),
    ("counterfact/recipe", "locality_rejection"),
    ("zsre/oracle", "reliability"),
    ("counterfact/oracle", "reliability"),
]


def read(path: Path) -> tuple[list[dict], float | None]:
    evaluations, seconds = [], []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "eval" in record:
            evaluations.append(record)
        elif "seconds_per_step" in record:
            seconds.append(record["seconds_per_step"])
    return evaluations, (statistics.median(seconds) if seconds else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "ablations")
    args = parser.parse_args()
    runs = {name: read(path) for name, path in RUNS.items() if path.is_file()}
    header = (
        "| variant | step | s/step | "
        + " | ".join(f"{d.split('/')[0]} {d.split('/')[1]} {m}" for d, m in COLUMNS)
        + " |"
    )
    print(header)
    print("|" + "---|" * (3 + len(COLUMNS)))
    for name, (evaluations, seconds) in runs.items():
        for record in evaluations:
            values = [record["eval"].get(d, {}).get(m) for d, m in COLUMNS]
            cells = " | ".join("–" if v is None else f"{v:.2f}" for v in values)  # noqa: RUF001 (en dash: no figure)
            print(f"| {name} | {record['step']} | {seconds or 0:.1f} | {cells} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("zsre/recipe", "reliability"),
        ("zsre/recipe", "locality"),
        ("counterfact/recipe", "reliability"),
        ("counterfact/recipe", "locality"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), sharex=True)
    for axis, (dataset, metric) in zip(axes, panels, strict=True):
        for name, (evaluations, _) in runs.items():
            steps = [r["step"] for r in evaluations if dataset in r["eval"]]
            values = [r["eval"][dataset][metric] for r in evaluations if dataset in r["eval"]]
            axis.plot(steps, values, marker="o", label=name)
        axis.set_title(f"{dataset.split('/')[0]} {metric}")
        axis.set_xlabel("training step (batch 8)")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("dev, last 30 edits, gated")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    args.output.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output / "curves.png", dpi=110)
    print(f"\nwrote {args.output / 'curves.png'}")


if __name__ == "__main__":
    main()
