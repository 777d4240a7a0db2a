"""RecipeModel: the small trained modules of RECIPE for one base LM.

Bundles the knowledge/query encoder with its two heads, the knowledge sentinel and the prompt
encoder (Chen et al., EMNLP 2024, §3). Saved as ``recipe_config.json`` + ``model.safetensors``;
never pickled. Only trained weights are saved: with a frozen encoder the encoder is re-loaded
from its name. Shared through the Hugging Face Hub with huggingface_hub's ``ModelHubMixin``
(``RecipeModel.from_pretrained("org/name")``, ``push_to_hub``), in the same two files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import ModelHubMixin, snapshot_download
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from langchain_recipe.base_models import fingerprints_match, tokenizer_lock
from langchain_recipe.config import PromptEncoderType, RecipeConfig
from langchain_recipe.errors import BaseModelMismatchError, CheckpointError, InvalidInputError
from langchain_recipe.injection import pad_rows
from langchain_recipe.nn.knowledge_encoder import RepresentationHead, format_retrieval_text, pool_hidden_states
from langchain_recipe.nn.knowledge_sentinel import KnowledgeSentinel
from langchain_recipe.nn.prompt_encoder import MLPPromptEncoder, StatementAttentionPromptEncoder
from langchain_recipe.scoring import retrieval_scores

if TYPE_CHECKING:
    from langchain_recipe.base_models import HuggingFaceBaseModel

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "RecipeModel"]

CONFIG_NAME = "recipe_config.json"
WEIGHTS_NAME = "model.safetensors"
_FORMAT_VERSION = 1


class RecipeModel(
    nn.Module,
    ModelHubMixin,
    library_name="langchain-recipe",
    tags=["knowledge-editing", "recipe", "langchain"],
    paper_url="https://arxiv.org/abs/2405.03279",
):
    """Knowledge/query encoder, heads, knowledge sentinel and prompt encoder.

    Args:
        config: the architecture.
        encoder: an already built Hugging Face encoder (e.g. a tiny random ``BertModel`` in
            tests); loaded from ``config.encoder_name_or_path`` when ``None``.
        encoder_tokenizer: its tokenizer; loaded likewise when ``None``.

    Example:
        >>> model = RecipeModel.from_pretrained(path)  # doctest: +SKIP
        >>> keys = model.encode_knowledge(["The CEO of Acme is Ada Lovelace."])  # (1, knowledge_dim)
    """

    def __init__(self, config: RecipeConfig, encoder: nn.Module | None = None, encoder_tokenizer: Any = None) -> None:
        super().__init__()
        self._hub_mixin_config = None  # recipe_config.json is the config: no config.json beside it
        self.config = config
        if encoder is None or encoder_tokenizer is None:
            from transformers import AutoModel, AutoTokenizer

            from langchain_recipe.base_models import from_pretrained_safetensors, resolve_encoder_path

            path = resolve_encoder_path(config.encoder_name_or_path)
            encoder = encoder if encoder is not None else from_pretrained_safetensors(AutoModel, path)
            encoder_tokenizer = (
                encoder_tokenizer if encoder_tokenizer is not None else AutoTokenizer.from_pretrained(path)
            )
        if encoder.config.hidden_size != config.encoder_hidden_size:
            msg = (
                f"The encoder's hidden size is {encoder.config.hidden_size} but "
                f"RecipeConfig.encoder_hidden_size is {config.encoder_hidden_size}; set it to "
                f"{encoder.config.hidden_size}."
            )
            raise InvalidInputError(msg)
        self.encoder = encoder
        self.encoder_tokenizer = encoder_tokenizer
        self.encoder.requires_grad_(config.train_encoder)
        self.knowledge_head = RepresentationHead(
            config.encoder_hidden_size, config.knowledge_dim, config.head_init_scale
        )
        self.query_head = RepresentationHead(config.encoder_hidden_size, config.knowledge_dim, config.head_init_scale)
        self.sentinel = KnowledgeSentinel(config.num_sentinel_tokens, config.encoder_hidden_size)
        if config.prompt_encoder_type == PromptEncoderType.MLP:
            self.prompt_encoder: nn.Module = MLPPromptEncoder(
                config.knowledge_dim, config.num_prompt_tokens, config.lm_hidden_size
            )
        else:
            self.prompt_encoder = StatementAttentionPromptEncoder(
                config.knowledge_dim,
                config.num_prompt_tokens,
                config.lm_hidden_size,
                num_layers=config.prompt_encoder_layers,
                num_heads=config.prompt_encoder_heads,
                ffn_ratio=config.prompt_encoder_ffn_ratio,
                max_statement_tokens=config.max_statement_tokens,
                output_scale=config.prompt_output_scale,
            )
        if not config.train_encoder:
            self.encoder.eval()

    @classmethod
    def for_base_model(
        cls,
        base_model: HuggingFaceBaseModel,
        *,
        encoder: nn.Module | None = None,
        encoder_tokenizer: Any = None,
        **config_fields: Any,
    ) -> RecipeModel:
        """A fresh (untrained) RecipeModel bound to ``base_model``.

        Its config records the LM's hidden size, name and embedding fingerprint, and scales
        ``prompt_output_scale`` by the factor the LM's embedding module multiplies token embeddings
        by (``sqrt(hidden_size)`` for Gemma 3, 1 for Llama or SmolLM2), so the prompts start in the
        embedding space the LM reads. ``config_fields`` override any :class:`RecipeConfig` field;
        ``encoder`` and ``encoder_tokenizer`` are as in the constructor.

        Raises:
            pydantic.ValidationError: a field is invalid, e.g. ``prompt_encoder_heads`` does not
                divide the LM's hidden size.
        """
        default_scale = RecipeConfig.model_fields["prompt_output_scale"].default
        bound = {
            "lm_hidden_size": base_model.hidden_size,
            "base_model_name": base_model.name,
            "base_model_fingerprint": base_model.fingerprint,
            "prompt_output_scale": default_scale * base_model.embedding_scale,
        }
        return cls(RecipeConfig(**{**bound, **config_fields}), encoder=encoder, encoder_tokenizer=encoder_tokenizer)

    # ------------------------------------------------------------------ modes and parameters
    def train(self, mode: bool = True) -> RecipeModel:
        """Set training mode; a frozen encoder stays in eval mode (no dropout)."""
        super().train(mode)
        if not self.config.train_encoder:
            self.encoder.eval()
        return self

    @property
    def device(self) -> torch.device:
        """Device of the trained modules."""
        return self.sentinel.embeddings.device

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict without the encoder when the encoder is frozen (what is saved)."""
        state = self.state_dict()
        if self.config.train_encoder:
            return state
        return {k: v for k, v in state.items() if not k.startswith("encoder.")}

    # ------------------------------------------------------------------ encoding
    def similarity(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Scaled dot product ``s(q, k) = r_q · r_k / sqrt(d_r)`` (RECIPE §3.3).

        Args:
            queries: shape `(num_queries, knowledge_dim)`.
            keys: shape `(num_keys, knowledge_dim)`.

        Returns:
            Similarities of shape `(num_queries, num_keys)`.
        """
        return retrieval_scores(queries, keys)

    def pooled_features(self, texts: Sequence[str]) -> torch.Tensor:
        """The frozen part of the knowledge/query encoder: pooled encoder states of the texts.

        Both heads read these features (``r_k = MLP_K(features)``, ``r_q = MLP_Q(features)``), so
        with a frozen encoder they can be computed once and cached (``recipe bench-retrieval``).

        Args:
            texts: knowledge statements or questions (formatted by :func:`format_retrieval_text`).

        Returns:
            Shape `(len(texts), 4 * encoder_hidden_size)`, ordered as in
            :func:`~langchain_recipe.nn.knowledge_encoder.pool_hidden_states`.
        """
        return self._pooled(texts)

    def _pooled(self, texts: Sequence[str]) -> torch.Tensor:
        with tokenizer_lock(self.encoder_tokenizer):
            batch = self.encoder_tokenizer(
                [format_retrieval_text(text) for text in texts],
                padding=True,
                truncation=True,
                max_length=self.config.encoder_max_length,
                return_tensors="pt",
            )
        batch = batch.to(self.device)
        with torch.set_grad_enabled(self.config.train_encoder and torch.is_grad_enabled()):
            hidden = self.encoder(**batch).last_hidden_state
        return pool_hidden_states(hidden, batch["attention_mask"])

    def encode_knowledge(self, statements: Sequence[str]) -> torch.Tensor:
        """Knowledge representations r_k = MLP_K(pool(f(statement))), shape `(batch_size, knowledge_dim)`."""
        return self.knowledge_head(self._pooled(statements))

    def encode_queries(self, queries: Sequence[str]) -> torch.Tensor:
        """Query representations r_q = MLP_Q(pool(f(query))), shape `(batch_size, knowledge_dim)`."""
        return self.query_head(self._pooled(queries))

    def sentinel_key(self) -> torch.Tensor:
        """The knowledge sentinel's representation r_Θ in knowledge space, shape `(knowledge_dim,)`."""
        embeds = self.sentinel()
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return self.knowledge_head(pool_hidden_states(hidden, mask))[0]

    def statement_embeddings(
        self, statements: Sequence[str], base_model: HuggingFaceBaseModel
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The base LM's input embeddings of the statements.

        Right-padded, and truncated to the last ``max_statement_tokens`` tokens.

        Returns:
            ``(embeds, mask)`` of shapes `(batch_size, statement_len, lm_hidden_size)` (float32,
            on this model's device) and `(batch_size, statement_len)`.
        """
        tokenizer = base_model.tokenizer
        with tokenizer_lock(tokenizer):
            ids = [
                tokenizer(s, add_special_tokens=False)["input_ids"][-self.config.max_statement_tokens :]
                or [tokenizer.pad_token_id]
                for s in statements
            ]
        input_ids, mask = pad_rows(ids, tokenizer.pad_token_id, side="right")
        with torch.no_grad():
            embeds = base_model.embed(input_ids)
        return embeds.to(self.device, torch.float32), mask.to(self.device)

    def encode_prompts(
        self,
        keys: torch.Tensor,
        statement_embeds: torch.Tensor | None = None,
        statement_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Continuous prompts from knowledge keys.

        The statement-attention encoder also reads the statements' LM token embeddings.

        Returns:
            Shape `(batch_size, num_prompt_tokens, lm_hidden_size)`.
        """
        return self.prompt_encoder(keys, statement_embeds, statement_mask)

    def check_base_model(self, base_model: HuggingFaceBaseModel) -> None:
        """Make sure the continuous prompts fit ``base_model``.

        It must have the same hidden size and, when the config records one, input embeddings with a
        matching fingerprint (:func:`~langchain_recipe.base_models.fingerprints_match`, which
        ignores the dtype).

        Raises:
            BaseModelMismatchError: ``base_model``'s hidden size differs from ``lm_hidden_size``, or
                its input embeddings are not those of the base LM this model was trained for.
        """
        if base_model.hidden_size != self.config.lm_hidden_size:
            msg = (
                f"This RecipeModel was trained for the base LM {self.config.base_model_name or '(unnamed)'!r} and "
                f"makes prompts of size {self.config.lm_hidden_size}, but the base LM {base_model.name!r} has hidden "
                f"size {base_model.hidden_size}; use a RecipeModel trained for this base LM (`recipe train "
                "--base-model`)."
            )
            raise BaseModelMismatchError(msg)
        expected = self.config.base_model_fingerprint
        if expected and not fingerprints_match(expected, base_model.fingerprint):
            msg = (
                f"This RecipeModel was trained for the base LM {self.config.base_model_name or '(unnamed)'!r} "
                f"(embedding fingerprint {expected}), but {base_model.name!r} has other input embeddings "
                f"(fingerprint {base_model.fingerprint}); its continuous prompts would be noise there. Load "
                "the base LM it was trained for, or train a RecipeModel for this one (`recipe train`)."
            )
            raise BaseModelMismatchError(msg)

    def check_statements(self, statements: Sequence[str], base_model: HuggingFaceBaseModel) -> None:
        """Refuse knowledge statements that this model cannot turn into a faithful edit.

        * Too long: the knowledge encoder reads ``encoder_max_length`` encoder tokens and the
          statement-attention prompt encoder the last ``max_statement_tokens`` base-LM tokens;
          a longer statement would be cut silently, and its edit would miss part of the fact.
        * Holding one of the base LM's control tokens (e.g. ``<|im_start|>``): the tokenizer
          would read it as a turn marker, not as text, so a statement injected as text could
          open a system turn. A statement is data; it never steers the conversation's format.

        Raises:
            InvalidInputError: a statement is too long or holds a control token (its index, and
                its length and the limit or the token, are named).
        """
        control = sorted(token.content for token in base_model.tokenizer.added_tokens_decoder.values() if token.special)
        for index, statement in enumerate(statements):
            found = [token for token in control if token in statement]
            if found:
                msg = (
                    f"Statement {index} ({statement[:60]!r}) holds the base LM's control token(s) {found[:3]}, which "
                    "the tokenizer reads as conversation markers, not text. Remove them. Nothing was written."
                )
                raise InvalidInputError(msg)
        limits = [("knowledge encoder", self.encoder_tokenizer, self.config.encoder_max_length, True)]
        if self.config.prompt_encoder_type == PromptEncoderType.STATEMENT_ATTENTION:
            limits.append(("base LM", base_model.tokenizer, self.config.max_statement_tokens, False))
        for name, tokenizer, limit, special in limits:
            for index, count in _token_counts(tokenizer, statements, limit, special=special).items():
                if count > limit:
                    msg = (
                        f"Statement {index} is {count} {name} tokens long ({statements[index][:60]!r}...); this "
                        f"RecipeModel reads at most {limit}, so its edit would miss part of it. Split it into "
                        "shorter statements, one fact each. Nothing was written."
                    )
                    raise InvalidInputError(msg)

    def truncated_queries(self, queries: Sequence[str]) -> list[int]:
        """Indices of the queries that :meth:`encode_queries` truncates.

        They are longer than ``encoder_max_length`` encoder tokens (special tokens included).
        """
        limit = self.config.encoder_max_length
        return [
            i
            for i, count in _token_counts(self.encoder_tokenizer, queries, limit, special=True).items()
            if count > limit
        ]

    def encode_edits(
        self, statements: Sequence[str], base_model: HuggingFaceBaseModel, *, batch_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Turn knowledge statements into retrieval keys and continuous prompts (an edit).

        Args:
            statements: knowledge statements, e.g. ``"The CEO of Acme is Ada Lovelace."``.
            base_model: the base LM the prompts are for (its token embeddings are read).
            batch_size: encode at most this many statements per forward pass (``None``: all at
                once).

        Returns:
            ``(keys, prompts)`` of shapes `(batch_size, knowledge_dim)` and
            `(batch_size, num_prompt_tokens, lm_hidden_size)`.

        Raises:
            InvalidInputError: ``base_model``'s hidden size differs from ``lm_hidden_size``.
        """
        self.check_base_model(base_model)
        if batch_size is not None and len(statements) > batch_size:
            parts = [
                self.encode_edits(statements[i : i + batch_size], base_model)
                for i in range(0, len(statements), batch_size)
            ]
            return torch.cat([k for k, _ in parts]), torch.cat([p for _, p in parts])
        keys, prompts, _ = self._encode_edit_batch(statements, base_model, with_queries=False)
        return keys, prompts

    def _encode_edit_batch(
        self, statements: Sequence[str], base_model: HuggingFaceBaseModel, *, with_queries: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Keys, prompts and (``with_queries``) query representations of one batch.

        All from one encoder pass.
        """
        pooled = self._pooled(statements)
        keys = self.knowledge_head(pooled)
        embeds, mask = self.statement_embeddings(statements, base_model)
        return keys, self.encode_prompts(keys, embeds, mask), self.query_head(pooled) if with_queries else None

    def encode_edits_with_queries(
        self, statements: Sequence[str], base_model: HuggingFaceBaseModel, *, batch_size: int = 32
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`encode_edits` plus each statement's query representation, from one encoder pass.

        The knowledge store runs every new statement as a query too (to find conflicting edits);
        both heads read the same pooled encoder features (RECIPE §3.1: r_k = MLP_K(pool(f(x))),
        r_q = MLP_Q(pool(f(x)))), so the encoder runs once. Statements are batched by token length
        (less padding) and returned in the given order.

        Args:
            statements: knowledge statements.
            base_model: the base LM the prompts are for.
            batch_size: statements per forward pass.

        Returns:
            ``(keys, prompts, query_keys)`` of shapes `(num_statements, knowledge_dim)`,
            `(num_statements, num_prompt_tokens, lm_hidden_size)` and `(num_statements, knowledge_dim)`.

        Raises:
            InvalidInputError: ``base_model``'s hidden size differs from ``lm_hidden_size``.
        """
        self.check_base_model(base_model)
        order = sorted(range(len(statements)), key=lambda i: len(statements[i]))
        parts = []
        for start in range(0, len(order), batch_size):
            chunk = [statements[i] for i in order[start : start + batch_size]]
            parts.append(self._encode_edit_batch(chunk, base_model, with_queries=True))
        keys, prompts, query_keys = (torch.cat([part[n] for part in parts]) for n in range(3))
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return keys[inverse], prompts[inverse], query_keys[inverse]

    # ------------------------------------------------------------------ persistence
    def save_pretrained(
        self, save_directory: str | Path, *, dtype: torch.dtype | None = None, **hub_kwargs: Any
    ) -> str | None:
        """Write ``recipe_config.json`` and ``model.safetensors`` (trained weights only).

        Args:
            save_directory: created if missing.
            dtype: store floating-point weights in this dtype (e.g. ``torch.float16`` to halve
                the file); ``None`` keeps float32.
            **hub_kwargs: arguments of ``ModelHubMixin.save_pretrained`` (``push_to_hub=True``,
                ``repo_id``, ``model_card_kwargs``...); with any of them a ``README.md`` model card
                is written too, and the folder is pushed if asked.

        Returns:
            The commit URL when pushed to the Hub, else ``None``.
        """
        if not hub_kwargs:
            self._save_pretrained(Path(save_directory), dtype=dtype)
            return None
        self._save_dtype = dtype
        try:
            return super().save_pretrained(save_directory, **hub_kwargs)
        finally:
            self._save_dtype = None

    _save_dtype: torch.dtype | None = None

    def _save_pretrained(self, save_directory: Path, *, dtype: torch.dtype | None = None) -> None:
        """The checkpoint's two files (``ModelHubMixin``'s hook; ``push_to_hub`` writes through it)."""
        dtype = dtype or self._save_dtype
        save_directory.mkdir(parents=True, exist_ok=True)
        state = {
            k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous().cpu()
            for k, v in self.trained_state_dict().items()
        }
        save_file(
            state,
            save_directory / WEIGHTS_NAME,
            metadata={"format": "pt", "recipe_format_version": str(_FORMAT_VERSION)},
        )
        payload = {"recipe_format_version": _FORMAT_VERSION, **self.config.model_dump(mode="json")}
        (save_directory / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        encoder: nn.Module | None = None,
        encoder_tokenizer: Any = None,
        device: str | torch.device = "cpu",
        **hub_kwargs: Any,
    ) -> RecipeModel:
        """Load a model written by :meth:`save_pretrained` (weights become float32).

        Args:
            pretrained_model_name_or_path: a local folder (a ``Path``, or a string naming an
                existing folder or one that is not a Hub id), or a Hub repository id such as
                ``"org/name"`` (its two files are downloaded into the Hugging Face cache).
            encoder: an already loaded knowledge/query encoder (else loaded from the config's name).
            encoder_tokenizer: its tokenizer.
            device: torch device of the loaded modules.
            **hub_kwargs: ``revision``, ``cache_dir``, ``force_download``, ``local_files_only``,
                ``token`` for a Hub id.

        Raises:
            CheckpointError: a file is missing or corrupted, the format version is newer than this
                library, or the weights do not fit the config.
        """
        model_kwargs = {"encoder": encoder, "encoder_tokenizer": encoder_tokenizer, "device": device}
        source = pretrained_model_name_or_path
        if isinstance(source, Path) or Path(source).exists() or not _is_hub_id(source):
            return cls._from_folder(Path(source), **model_kwargs)
        options = {"revision": None, "cache_dir": None, "force_download": False, "local_files_only": False}
        return cls._from_pretrained(model_id=source, **{**options, "token": None, **hub_kwargs}, **model_kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        **model_kwargs: Any,
    ) -> RecipeModel:
        """``ModelHubMixin``'s hook: download the checkpoint's two files from the Hub, then load them.

        Raises:
            CheckpointError: ``model_id`` is no local folder and cannot be downloaded (offline, no
                such repository, no access), or the downloaded files are not a valid checkpoint.
        """
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

        try:
            folder = snapshot_download(
                repo_id=model_id,
                allow_patterns=[CONFIG_NAME, WEIGHTS_NAME],
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=local_files_only,
                token=token,
            )
        except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled) as error:
            msg = (
                f"{model_id} is not a local folder (its {CONFIG_NAME} is missing) and cannot be downloaded from the "
                f"Hugging Face Hub ({type(error).__name__}: {error}). Check the path or the repository id, the "
                "network (HF_HUB_OFFLINE) and your token."
            )
            raise CheckpointError(msg) from error
        return cls._from_folder(Path(folder), **model_kwargs)

    @classmethod
    def _from_folder(
        cls, directory: Path, *, encoder: nn.Module | None, encoder_tokenizer: Any, device: str | torch.device
    ) -> RecipeModel:
        """Load the two files of a local checkpoint folder (see :meth:`from_pretrained`)."""
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.is_file():
                msg = f"{path} is missing; a RecipeModel checkpoint needs {CONFIG_NAME} and {WEIGHTS_NAME}."
                raise CheckpointError(msg)
        config = _read_config(config_path)
        state = _read_weights(weights_path)
        model = cls(config, encoder=encoder, encoder_tokenizer=encoder_tokenizer)
        expected = set(model.trained_state_dict())
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            msg = f"{weights_path} does not fit its config: missing {missing[:5]}, unexpected {unexpected[:5]}."
            raise CheckpointError(msg)
        try:
            model.load_state_dict(
                {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False
            )
        except RuntimeError as error:
            msg = f"{weights_path} does not fit its config: {error}"
            raise CheckpointError(msg) from error
        return model.to(device)


def _is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a Hub repository id ``"org/name"`` rather than a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if "/" not in name or name.startswith((".", "/", "~")) or "\\" in name:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _token_counts(tokenizer: Any, texts: Sequence[str], limit: int, *, special: bool) -> dict[int, int]:
    """Token counts of the texts that might exceed ``limit`` tokens, by index.

    A token covers at least one byte of UTF-8, so shorter texts are not tokenized; ``special``
    counts the encoder's special tokens and its text format (:func:`format_retrieval_text`).
    """
    reserve = 2 if special else 1  # the encoder's [CLS]/[SEP]; a SentencePiece word-start piece
    candidates = [i for i, text in enumerate(texts) if len(text.encode("utf-8")) + reserve > limit]
    if not candidates:
        return {}
    inputs = [format_retrieval_text(texts[i]) if special else texts[i] for i in candidates]
    with tokenizer_lock(tokenizer):
        tokenized = tokenizer(inputs, add_special_tokens=special, verbose=False)["input_ids"]
    return {i: len(ids) for i, ids in zip(candidates, tokenized, strict=True)}


def _read_config(config_path: Path) -> RecipeConfig:
    """The :class:`RecipeConfig` of a checkpoint's ``config.json``.

    Raises:
        CheckpointError: the file is not a JSON object of valid fields, or its format version is
            not an int or is newer than this library reads.
    """
    try:
        payload = json.loads(config_path.read_text(encoding="utf-8"))
        if not isinstance(payload, dict):
            msg = f"expected a JSON object, got {type(payload).__name__}"
            raise TypeError(msg)
        version = payload.pop("recipe_format_version", 1)
        config = RecipeConfig.model_validate(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, ValidationError) as error:
        msg = f"{config_path} is not a valid RecipeModel config: {error}"
        raise CheckpointError(msg) from error
    if isinstance(version, bool) or not isinstance(version, int):
        msg = f"{config_path} is not a valid RecipeModel config: recipe_format_version {version!r} is not an int."
        raise CheckpointError(msg)
    if version > _FORMAT_VERSION:
        msg = (
            f"{config_path.parent} has checkpoint format {version}; this langchain-recipe reads up to "
            f"{_FORMAT_VERSION}. Upgrade langchain-recipe."
        )
        raise CheckpointError(msg)
    return config


def _read_weights(weights_path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's safetensors file, all finite.

    Raises:
        CheckpointError: the file cannot be read, or a floating-point tensor holds NaN or inf.
    """
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as error:
        msg = (
            f"{weights_path} cannot be read ({error}); the file is corrupted or incomplete, re-download or re-train it."
        )
        raise CheckpointError(msg) from error
    broken = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if broken:
        msg = (
            f"{weights_path} holds NaN or infinite weights in {broken[:5]}; the training diverged or the file "
            "is corrupted. Re-train it or use another checkpoint."
        )
        raise CheckpointError(msg)
    return state
