"""The ``recipe`` command: ``recipe demo`` and ``recipe train``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Lifelong knowledge editing with RECIPE.")
console = Console()


@app.callback()
def _group() -> None:
    """Lifelong knowledge editing with RECIPE."""


def _setup(verbose: bool) -> None:  # noqa: FBT001
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@app.command()
def train(
    output_dir: Annotated[Path, typer.Option(help="Run folder: checkpoint/, log.jsonl.")] = Path("runs/smollm2-135m"),
    max_minutes: Annotated[float, typer.Option(help="Wall-clock budget in minutes.")] = 60.0,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    export: Annotated[Path | None, typer.Option(help="Also write the final model here in fp16 (the shipped checkpoint).")] = None,
    config_json: Annotated[str | None, typer.Option(help="Extra TrainingConfig fields as JSON.")] = None,
    verbose: Annotated[bool, typer.Option(help="Log progress.")] = True,  # noqa: FBT002
) -> None:
    """Train a RecipeModel for the bundled SmolLM2 on ZsRE + CounterFact train (resumes if interrupted)."""
    _setup(verbose)
    import torch

    from langchain_recipe.base_models import load_base_model
    from langchain_recipe.config import RecipeConfig, TrainingConfig
    from langchain_recipe.datasets import load_edits
    from langchain_recipe.evaluation import evaluate_edits
    from langchain_recipe.nn import RecipeModel
    from langchain_recipe.training import RecipeTrainer

    extra = json.loads(config_json) if config_json else {}
    config = TrainingConfig(max_minutes=max_minutes, max_steps=max_steps, seed=seed, **extra)
    torch.manual_seed(config.seed)
    base_model = load_base_model(dtype=config.lm_dtype)
    model = RecipeModel(
        RecipeConfig(
            lm_hidden_size=base_model.hidden_size,
            base_model_name=base_model.name,
            base_model_fingerprint=base_model.fingerprint,
        )
    )
    train_data = {name: load_edits(name, "train", skip_invalid=True) for name in config.datasets}
    dev = {name: load_edits(name, "dev")[: config.eval_size] for name in config.datasets}

    def evaluate(current: RecipeModel) -> dict:
        return {
            f"{name}/{method}": evaluate_edits(current, base_model, records, method=method).as_dict()
            for name, records in dev.items()
            for method in ("recipe", "oracle")
        }

    trainer = RecipeTrainer(model, base_model, config, train_data, output_dir, eval_fn=evaluate)
    checkpoint = trainer.train(progress=True)
    console.print(f"Checkpoint: {checkpoint} (step {trainer.step})")
    if export is not None:
        model.save_pretrained(export, dtype=torch.float16)
        console.print(f"Exported fp16 model to {export}")


def main() -> None:
    """Entry point for ``python -m langchain_recipe.cli``."""
    app()


if __name__ == "__main__":
    main()
