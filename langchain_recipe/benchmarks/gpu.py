"""The GPU check: RECIPE training speed and memory, and answer latency against the bare LM.

Real weights cannot travel to a lent GPU machine, and speed does not depend on the weights'
values, so the base LM is a ``LlamaForCausalLM`` built from a config with random weights. The
default is Llama 3.2 1B's shape (hidden size 2048, 16 layers, 32 heads, 8 key/value heads, MLP
8192, vocabulary 128256, tied embeddings: 1.24B parameters) in bf16 on CUDA; ``--preset 7b`` is
Llama 2 7B's shape. The RecipeModel is randomly initialised for the LM
(:meth:`RecipeModel.for_base_model`, 8 prompt vectors) with a MiniLM-shaped knowledge/query
encoder (6 layers, hidden size 384). The tokenizer is a WordPiece one built in memory whose
vocabulary holds every word of the benchmark's texts, so a word is about one token, as with a
real subword tokenizer.

One run measures two things:

1. **Training**: :class:`~langchain_recipe.training.RecipeTrainer` steps (the real trainer step
   through its :class:`accelerate.Accelerator`, ``TrainingConfig.mixed_precision``, bf16 on a
   GPU) on synthetic ZsRE-like edits: steps per second and the peak of
   ``torch.cuda.max_memory_allocated`` over the steps.
2. **Answers**: per request the RECIPE variant does what the chat model does: encode the
   questions with the query encoder, score them against the stored keys and the knowledge
   sentinel (RECIPE §3.3), take each row's best edit's continuous prompt
   `(num_prompt_tokens, hidden_size)`, prefix it to the input embeddings
   (:func:`~langchain_recipe.injection.prepend_continuous_prompts`) and generate. The stored keys
   and prompts live in device memory (as the store's key index holds its keys in one matrix; a
   Qdrant search on the CPU is measured by the CPU suite). With random weights the gate's verdict
   is arbitrary, so every row gets its best edit's prompt (the slower case) and the verdicts are
   only counted. The bare variant generates from the token ids. Both produce exactly
   ``new_tokens`` tokens (``min_new_tokens``), timed interleaved at batch 1 and 8.

Command (writes ``gpu.json`` and ``gpu.md`` beside it)::

    python -m langchain_recipe.benchmarks.gpu --output benchmarks/results/gpu.json

``--tiny`` runs a tiny config on the CPU in seconds (a unit test does this).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from langchain_recipe.benchmarks.measure import Samples, interleaved, paired_ratio
from langchain_recipe.scoring import sentinel_gate

if TYPE_CHECKING:
    from langchain_recipe.base_models import HuggingFaceBaseModel
    from langchain_recipe.datasets import EditRecord
    from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = ["GpuBenchmarkSettings", "build_models", "main", "render_gpu_markdown", "run_gpu_benchmark"]

logger = logging.getLogger(__name__)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Turn markers around each message, then the assistant's (a Llama-3-like template, in words of the vocabulary)."""

_COMPANIES = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell"]
_PEOPLE = ["ada lovelace", "alan turing", "grace hopper", "edsger dijkstra", "barbara liskov", "donald knuth"]
_WORDS = (
    "who is the chief executive officer of which person leads company as its what capital city country "
    "question about subject corporation ltd inc user assistant system"
).split()


@dataclass
class GpuBenchmarkSettings:
    """Shapes and options of the GPU check (defaults: Llama 3.2 1B shape, bf16, CUDA).

    Attributes:
        hidden_size: base LM hidden size (d_llm).
        num_layers: decoder layers (fewer for a quick smoke run).
        num_heads: attention heads.
        num_kv_heads: key/value heads (``None``: as many as ``num_heads``).
        intermediate_size: MLP width.
        vocab_size: vocabulary size (the LM's embedding rows; at least the tokenizer's size).
        tie_word_embeddings: whether the output layer shares the input embeddings (Llama 3.2 1B does).
        encoder_hidden_size / encoder_layers / encoder_heads: the MiniLM-shaped knowledge/query encoder.
        knowledge_dim: size of retrieval keys.
        num_prompt_tokens: continuous prompt vectors per edit.
        stored_edits: edits (keys + prompts) held in device memory for the answers.
        batch_sizes: answer batch sizes.
        prompt_length: tokens per question row.
        new_tokens: generated tokens per answer (forced).
        repeats: interleaved repeats per variant and batch size.
        train_steps: timed trainer steps (0: no training measurement).
        train_warmup_steps: trainer steps run before timing (kernels, allocator, optimizer state).
        train_batch_size: edits per trainer step (``TrainingConfig.batch_size``; the LM runs on 3 rows per edit).
        mixed_precision: ``TrainingConfig.mixed_precision`` of the trainer (``"bf16"``, ``"fp16"`` or ``"no"``).
        device: torch device (``"cuda"``; ``"cpu"`` for a smoke run).
        dtype: the base LM's weights, ``"bfloat16"``, ``"float16"`` or ``"float32"``.
        seed: random seed.
    """

    hidden_size: int = 2048
    num_layers: int = 16
    num_heads: int = 32
    num_kv_heads: int | None = 8
    intermediate_size: int = 8192
    vocab_size: int = 128256
    tie_word_embeddings: bool = True
    encoder_hidden_size: int = 384
    encoder_layers: int = 6
    encoder_heads: int = 12
    knowledge_dim: int = 1024
    num_prompt_tokens: int = 8
    stored_edits: int = 10_000
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8])
    prompt_length: int = 32
    new_tokens: int = 32
    repeats: int = 5
    train_steps: int = 20
    train_warmup_steps: int = 3
    train_batch_size: int = 8
    mixed_precision: str = "bf16"
    device: str = "cuda"
    dtype: str = "bfloat16"
    seed: int = 0

    @classmethod
    def llama_7b(cls, **overrides: Any) -> GpuBenchmarkSettings:
        """Llama 2 7B's shape (hidden 4096, 32 layers, 32 heads, MLP 11008, vocabulary 32000, untied)."""
        values: dict[str, Any] = {
            "hidden_size": 4096,
            "num_layers": 32,
            "num_kv_heads": None,
            "intermediate_size": 11008,
            "vocab_size": 32000,
            "tie_word_embeddings": False,
        }
        return cls(**{**values, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> GpuBenchmarkSettings:
        """A config small enough for a CPU smoke test (seconds): float32, no mixed precision."""
        values: dict[str, Any] = {
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "num_kv_heads": 2,
            "intermediate_size": 128,
            "vocab_size": 512,
            "encoder_hidden_size": 32,
            "encoder_layers": 1,
            "encoder_heads": 2,
            "knowledge_dim": 64,
            "num_prompt_tokens": 3,
            "stored_edits": 100,
            "batch_sizes": [1, 4],
            "prompt_length": 8,
            "new_tokens": 8,
            "repeats": 2,
            "train_steps": 2,
            "train_warmup_steps": 1,
            "train_batch_size": 2,
            "mixed_precision": "no",
            "device": "cpu",
            "dtype": "float32",
        }
        return cls(**{**values, **overrides})


PRESETS = {"1b": GpuBenchmarkSettings, "7b": GpuBenchmarkSettings.llama_7b, "tiny": GpuBenchmarkSettings.tiny}
"""``--preset`` name -> settings factory (keyword overrides)."""


def synthetic_records(count: int) -> list[EditRecord]:
    """``count`` deterministic ZsRE-like edits (a question of about 10 words, a 2-word answer).

    Record ``i`` names company ``i`` and a person; its locality question asks about another
    subject. Only the lengths matter to the speed measured here.
    """
    from langchain_recipe.datasets import EditRecord

    records = []
    for i in range(count):
        subject = f"{_COMPANIES[i % len(_COMPANIES)]} corporation {i}"
        person = _PEOPLE[i % len(_PEOPLE)]
        records.append(
            EditRecord(
                prompt=f"Who is the chief executive officer of {subject}?",
                target=person.title(),
                rephrase=f"Which person leads the company {subject} as its chief executive?",
                locality_prompt=f"What is the capital city of country {i}?",
                locality_answer=f"City {i}",
                subject=subject,
                declarative=f"The chief executive officer of {subject} is {person.title()}.",
            )
        )
    return records


def benchmark_tokenizer() -> Any:
    """A BERT-style WordPiece fast tokenizer built in memory (lower-cased, ``[CLS] ... [SEP]``).

    Its vocabulary holds every word of :func:`synthetic_records` and of the answer questions (one
    token each, as a subword tokenizer gives common words), plus letters and digits for the rest;
    it has the chat template :data:`CHAT_TEMPLATE`. About 100 entries.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = list("abcdefghijklmnopqrstuvwxyz0123456789?.,!:'|<>-_")
    words = sorted({w for phrase in [*_COMPANIES, *_PEOPLE, *_WORDS] for w in phrase.split()} - set(characters))
    vocab = {token: i for i, token in enumerate([*specials, *characters, *(f"##{c}" for c in characters), *words])}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _random_lm(settings: GpuBenchmarkSettings, tokenizer: Any) -> Any:
    """The random ``LlamaForCausalLM`` of the settings' shape, frozen, in eval mode, on the device."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from langchain_recipe.base_models import to_dtype

    config = LlamaConfig(
        vocab_size=max(settings.vocab_size, len(tokenizer)),
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_kv_heads or settings.num_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=settings.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(settings.seed)
    with torch.device(settings.device):
        lm = LlamaForCausalLM(config).to(to_dtype(settings.dtype, settings.device))
    return lm.eval().requires_grad_(False)


def build_models(settings: GpuBenchmarkSettings) -> tuple[HuggingFaceBaseModel, RecipeModel]:
    """The random base LM (frozen, on the device) and a random RecipeModel bound to it (float32, on the device).

    Raises:
        pydantic.ValidationError: ``num_heads`` does not divide ``hidden_size``.
    """
    from transformers import BertConfig, BertModel

    from langchain_recipe.base_models import HuggingFaceBaseModel
    from langchain_recipe.nn.recipe_model import RecipeModel

    tokenizer = benchmark_tokenizer()
    name = f"random-llama-{settings.num_layers}x{settings.hidden_size}"
    base = HuggingFaceBaseModel(model=_random_lm(settings, tokenizer), tokenizer=tokenizer, name=name)
    encoder = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=settings.encoder_hidden_size,
            num_hidden_layers=settings.encoder_layers,
            num_attention_heads=settings.encoder_heads,
            intermediate_size=4 * settings.encoder_hidden_size,
        ),
        add_pooling_layer=False,
    )
    recipe = RecipeModel.for_base_model(
        base,
        encoder=encoder,
        encoder_tokenizer=tokenizer,
        encoder_hidden_size=settings.encoder_hidden_size,
        knowledge_dim=settings.knowledge_dim,
        num_prompt_tokens=settings.num_prompt_tokens,
        prompt_encoder_heads=settings.num_heads,
    )
    return base, recipe.to(settings.device).eval()


def _synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on a CPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _reset_peak_memory(device: str) -> int | None:
    """Free cached blocks, start a new peak; the bytes allocated now (``None`` off CUDA)."""
    gc.collect()
    if not device.startswith("cuda"):
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def _peak_memory(device: str) -> int | None:
    """``torch.cuda.max_memory_allocated`` since the last reset, in bytes (``None`` off CUDA)."""
    return torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None


def measure_training(
    settings: GpuBenchmarkSettings, base: HuggingFaceBaseModel, recipe: RecipeModel, log: Any = print
) -> dict[str, Any]:
    """Time ``settings.train_steps`` RecipeTrainer steps after ``train_warmup_steps`` untimed ones.

    The trainer is built as ``recipe train`` builds it (its own Accelerator with
    ``settings.mixed_precision``), over :func:`synthetic_records`; checkpoints go to a temporary
    folder that is removed.

    Returns:
        ``{"steps", "rows_per_step", "mixed_precision", "lm_dtype", "steps_per_s", "seconds_per_step"
        (median/min/max, seconds), "peak_memory_bytes", "allocated_before_bytes" (``None`` off CUDA),
        "loss_first", "loss_last"}``; the peak covers the warm-up and timed steps.
    """
    from langchain_recipe.config import TrainingConfig
    from langchain_recipe.training import RecipeTrainer

    config = TrainingConfig(
        batch_size=settings.train_batch_size,
        max_steps=settings.train_warmup_steps + settings.train_steps,
        warmup_steps=1,
        mixed_precision=settings.mixed_precision,
        seed=settings.seed,
    )
    records = {"synthetic": synthetic_records(max(64, 4 * settings.train_batch_size))}
    before = _reset_peak_memory(settings.device)
    with tempfile.TemporaryDirectory(prefix="recipe-gpu-check-") as output_dir:
        trainer = RecipeTrainer(recipe, base, config, records, output_dir)
        losses = [trainer.train_step().total for _ in range(settings.train_warmup_steps)]
        step_seconds = Samples()
        for _ in range(settings.train_steps):
            _synchronize(settings.device)
            started = time.perf_counter()
            losses.append(trainer.train_step().total)
            _synchronize(settings.device)
            step_seconds.add(time.perf_counter() - started)
        del trainer
    recipe.eval()
    row = {
        "steps": settings.train_steps,
        "rows_per_step": 3 * settings.train_batch_size,
        "mixed_precision": settings.mixed_precision,
        "lm_dtype": str(base.dtype).removeprefix("torch."),
        "steps_per_s": settings.train_steps / sum(step_seconds.values) if step_seconds.values else None,
        "seconds_per_step": step_seconds.summary() if step_seconds.values else None,
        "peak_memory_bytes": _peak_memory(settings.device),
        "allocated_before_bytes": before,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
    }
    log(f"training: {row['steps_per_s'] or 0:.2f} steps/s, peak {_gib(row['peak_memory_bytes'])} allocated")
    return row


def _gib(value: int | None) -> str:
    """Bytes as GiB with two decimals, or ``"-"``."""
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def _check_device(settings: GpuBenchmarkSettings) -> None:
    """Raises RuntimeError: ``settings.device`` is CUDA and no CUDA device is available."""
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        msg = "No CUDA device is available; run with --device cpu (and --tiny for a smoke run)."
        raise RuntimeError(msg)


def _meta(settings: GpuBenchmarkSettings, base: HuggingFaceBaseModel, build_seconds: float) -> dict[str, Any]:
    """The run's description: settings, device, versions, parameter count, build time."""
    import transformers

    is_cuda = settings.device.startswith("cuda")
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "device_name": torch.cuda.get_device_name(settings.device) if is_cuda else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda if is_cuda else None,
        "lm_parameters": sum(p.numel() for p in base.model.parameters()),
        "lm_vocab_size": int(base.model.config.vocab_size),
        "build_seconds": build_seconds,
    }


def run_gpu_benchmark(settings: GpuBenchmarkSettings, log: Any = print) -> dict[str, Any]:
    """Build the models, time the trainer's steps, then bare vs RECIPE answers per batch size.

    Returns:
        ``{"meta": {...}, "training": {...} | None, "batches": [{"batch_size", "new_tokens",
        "latency_ms", "tokens_per_s", "recipe/bare", "peak_memory_bytes"}]}``: latencies in
        milliseconds, throughput in generated tokens per second, memory in bytes (``None`` off
        CUDA); ``training`` as :func:`measure_training` (``None`` when ``train_steps`` is 0).

    Raises:
        RuntimeError: ``settings.device`` is CUDA and no CUDA device is available.
    """
    _check_device(settings)
    started = time.perf_counter()
    base, recipe = build_models(settings)
    build_seconds = time.perf_counter() - started
    log(f"Built the random {settings.num_layers}-layer LM and the RecipeModel in {build_seconds:.1f} s.")
    results: dict[str, Any] = {"meta": _meta(settings, base, build_seconds), "training": None, "batches": []}
    if settings.train_steps:
        results["training"] = measure_training(settings, base, recipe, log)
    bench = _Bench(settings, base.model, recipe)
    for batch_size in settings.batch_sizes:
        _reset_peak_memory(settings.device)
        row = {**bench.measure(batch_size), "peak_memory_bytes": _peak_memory(settings.device)}
        results["batches"].append(row)
        log(
            f"batch {batch_size}: bare {row['latency_ms']['bare']['median']:.0f} ms, "
            f"RECIPE {row['latency_ms']['recipe']['median']:.0f} ms (x{row['recipe/bare']['median']:.3f}), "
            f"{row['tokens_per_s']['recipe']:.0f} tokens/s with RECIPE"
        )
    results["meta"]["gate_accepted_rows"] = bench.gate_accepted
    if settings.device.startswith("cuda"):
        results["meta"]["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated(settings.device)
    return results


class _Bench:
    """The two answer variants over one LM and RecipeModel, with random stored edits in device memory."""

    def __init__(self, settings: GpuBenchmarkSettings, lm: Any, recipe: RecipeModel) -> None:
        self.settings, self.lm, self.recipe = settings, lm, recipe
        self.generator = torch.Generator().manual_seed(settings.seed)
        dtype = lm.get_input_embeddings().weight.dtype
        shape = (settings.stored_edits, settings.num_prompt_tokens, settings.hidden_size)
        with torch.no_grad():
            self.keys = torch.randn(settings.stored_edits, settings.knowledge_dim, generator=self.generator)
            self.keys = self.keys.to(settings.device)  # (stored_edits, knowledge_dim)
            self.prompts = (0.1 * torch.randn(shape, generator=self.generator)).to(settings.device, dtype)
            self.sentinel_key = recipe.sentinel_key()
        self.options = {
            "max_new_tokens": settings.new_tokens,
            "min_new_tokens": settings.new_tokens,
            "do_sample": False,
            "pad_token_id": lm.config.pad_token_id,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        self.synchronize = torch.cuda.synchronize if settings.device.startswith("cuda") else None
        self.gate_accepted = 0

    @torch.no_grad()
    def bare(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The bare LM from token ids: ``(batch, prompt_length + new_tokens)`` ids."""
        return self.lm.generate(input_ids=input_ids, attention_mask=attention_mask, **self.options)

    @torch.no_grad()
    def with_recipe(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, questions: list[str]) -> torch.Tensor:
        """Encode, gate (counted only), prefix each row's best prompt, generate: ``(batch, new_tokens)`` ids."""
        from langchain_recipe.injection import prepend_continuous_prompts

        decision = sentinel_gate(self.recipe.encode_queries(questions), self.keys, self.sentinel_key)
        self.gate_accepted += int(decision.accepted.sum())
        embeds = self.lm.get_input_embeddings()(input_ids)
        prefixed = prepend_continuous_prompts(embeds, attention_mask, self.prompts[decision.best_index])
        return self.lm.generate(
            inputs_embeds=prefixed.inputs_embeds, attention_mask=prefixed.attention_mask, **self.options
        )

    def measure(self, batch_size: int) -> dict[str, Any]:
        """One warm-up of each variant, then ``settings.repeats`` interleaved repeats; the batch's row."""
        settings = self.settings
        shape = (batch_size, settings.prompt_length)
        input_ids = torch.randint(5, settings.vocab_size, shape, generator=self.generator).to(settings.device)
        attention_mask = torch.ones_like(input_ids)
        questions = [f"question {i} about subject {i * 7 % 13}?" for i in range(batch_size)]
        lengths: dict[str, int] = {}

        def bare(_: int = 0) -> None:
            lengths["bare"] = int(self.bare(input_ids, attention_mask).shape[1] - input_ids.shape[1])

        def recipe(_: int = 0) -> None:
            lengths["recipe"] = int(self.with_recipe(input_ids, attention_mask, questions).shape[1])

        bare()
        recipe()  # warm-up (kernels, caches)
        samples = interleaved({"bare": bare, "recipe": recipe}, settings.repeats, synchronize=self.synchronize)
        return {
            "batch_size": batch_size,
            "new_tokens": lengths,
            "latency_ms": {name: s.summary(1000) for name, s in samples.items()},
            "tokens_per_s": {name: batch_size * settings.new_tokens / s.median for name, s in samples.items()},
            "recipe/bare": paired_ratio(samples["recipe"], samples["bare"]),
        }


def render_gpu_markdown(results: dict[str, Any]) -> str:
    """The GPU check's results as a markdown report: the device, a training table and an answer table."""
    meta, settings, training = results["meta"], results["meta"]["settings"], results["training"]
    lines = [
        f"# GPU check: {meta['device_name']}",
        "",
        f"Started {meta['started']}; torch {meta['torch']}, transformers {meta['transformers']}, CUDA {meta['cuda']}.",
        f"Base LM: random Llama, {meta['lm_parameters'] / 1e6:,.1f}M parameters ({settings['num_layers']} layers, "
        f"hidden {settings['hidden_size']}, vocabulary {meta['lm_vocab_size']}), weights in {settings['dtype']}; "
        f"RecipeModel with {settings['num_prompt_tokens']} prompt vectors.",
        "",
    ]
    if training is not None:
        seconds = training["seconds_per_step"] or {}
        lines += [
            "| training | steps timed | LM rows per step | mixed precision | steps/s | s per step (min-max) "
            "| peak allocated | allocated before |",
            "|---|---|---|---|---|---|---|---|",
            f"| RecipeTrainer.train_step | {training['steps']} | {training['rows_per_step']} "
            f"| {training['mixed_precision']} | {training['steps_per_s'] or 0:.2f} "
            f"| {seconds.get('median', 0):.3f} ({seconds.get('min', 0):.3f}-{seconds.get('max', 0):.3f}) "
            f"| {_gib(training['peak_memory_bytes'])} | {_gib(training['allocated_before_bytes'])} |",
            "",
        ]
    lines += [
        f"Answers: {settings['new_tokens']} forced new tokens after {settings['prompt_length']}-token questions, "
        f"retrieval over {settings['stored_edits']} stored edits included, median of {settings['repeats']} "
        "interleaved repeats.",
        "",
        "| batch | bare ms | RECIPE ms | RECIPE/bare (min-max) | tokens/s bare | tokens/s RECIPE | peak allocated |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["batches"]:
        ratio = row["recipe/bare"]
        lines.append(
            f"| {row['batch_size']} | {row['latency_ms']['bare']['median']:.1f} "
            f"| {row['latency_ms']['recipe']['median']:.1f} "
            f"| {ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f}) "
            f"| {row['tokens_per_s']['bare']:.0f} | {row['tokens_per_s']['recipe']:.0f} "
            f"| {_gib(row['peak_memory_bytes'])} |"
        )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    """The command line's options (each ``None`` unless given: the preset's value then)."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_recipe.benchmarks.gpu",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/gpu.json"), help="JSON file; the .md goes beside it."
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="1b", help="LM shape: Llama 3.2 1B, Llama 2 7B.")
    parser.add_argument("--tiny", action="store_true", help="Same as --preset tiny: a CPU smoke test.")
    parser.add_argument("--device", help="Torch device (default: cuda, or cpu with --tiny).")
    parser.add_argument("--dtype", help="LM weights: bfloat16, float16 or float32 (default: bfloat16; float32 tiny).")
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], help="Trainer's (default bf16; no tiny).")
    parser.add_argument("--layers", type=int, help="Decoder layers (fewer for a smoke run).")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="Answer batch sizes (default 1 8).")
    parser.add_argument("--repeats", type=int, help="Interleaved answer repeats (default 5).")
    parser.add_argument("--new-tokens", type=int, help="Tokens per answer (default 32).")
    parser.add_argument("--stored-edits", type=int, help="Edits held on the device (default 10000).")
    parser.add_argument("--train-steps", type=int, help="Timed trainer steps (default 20; 0 skips training).")
    parser.add_argument("--train-batch-size", type=int, help="Edits per trainer step (default 8).")
    return parser


_OPTION_FIELDS = {
    "device": "device",
    "dtype": "dtype",
    "mixed_precision": "mixed_precision",
    "layers": "num_layers",
    "batch_sizes": "batch_sizes",
    "repeats": "repeats",
    "new_tokens": "new_tokens",
    "stored_edits": "stored_edits",
    "train_steps": "train_steps",
    "train_batch_size": "train_batch_size",
}
"""Command-line option -> :class:`GpuBenchmarkSettings` field."""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: ``python -m langchain_recipe.benchmarks.gpu [--preset 1b|7b|tiny] --output gpu.json``.

    Writes the JSON results to ``--output`` and :func:`render_gpu_markdown` beside it (``.md``).

    Raises:
        RuntimeError: a CUDA device is asked for and none is available.
    """
    args = _parser().parse_args(argv)
    overrides = {name: getattr(args, option) for option, name in _OPTION_FIELDS.items()}
    settings = PRESETS["tiny" if args.tiny else args.preset](**{k: v for k, v in overrides.items() if v is not None})
    results = run_gpu_benchmark(settings)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = args.output.with_suffix(".md")
    markdown.write_text(render_gpu_markdown(results), encoding="utf-8")
    logger.info("Wrote %s and %s", args.output, markdown)
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
