"""Knowledge/query encoder: a shared text encoder, pooling, and the knowledge and query heads.

RECIPE §3.1 (Chen et al., EMNLP 2024) calls this the knowledge representation model: one
encoder ``f_rm`` shared by knowledge statements, queries and the knowledge sentinel, followed by
two residual MLP heads, ``MLP_K`` for knowledge and ``MLP_Q`` for queries.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["RepresentationHead", "format_retrieval_text", "pool_hidden_states"]

_LARGE = 1e4  # pushes padded positions out of the max/min pooling


def format_retrieval_text(text: str) -> str:
    """The one text format that the knowledge/query encoder sees, in training, evaluation and serving.

    Queries are the user's question as plain text (never the chat-templated prompt, the system
    prompt or earlier turns) and knowledge statements are plain text too; both only have their
    whitespace collapsed to single spaces. :meth:`RecipeModel.encode_queries` and
    :meth:`RecipeModel.encode_knowledge` call this, so training, ``recipe eval`` and
    ``RecipeChatModel`` cannot disagree on the format.

    Args:
        text: a question or a knowledge statement.

    Returns:
        The text with leading/trailing whitespace removed and inner runs of whitespace (spaces,
        tabs, newlines) replaced by one space.
    """
    return " ".join(text.split())


def pool_hidden_states(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Concatenate first-token, normalised mean, max and min pooling of encoder states.

    The paper pools with masked mean, max and min (RECIPE §3.1); its code also prepends the
    first-token state. The mean is L2-normalised here because that is how sentence encoders such
    as all-MiniLM-L6-v2 were trained, which lets the heads start from cosine retrieval.

    Args:
        hidden_states: encoder output, shape `(batch_size, seq_len, encoder_hidden_size)`.
        attention_mask: 1 for real tokens, 0 for padding, shape `(batch_size, seq_len)`.

    Returns:
        Pooled features of shape `(batch_size, 4 * encoder_hidden_size)`, ordered
        `[first token; normalised mean; max; min]`.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # (B, T, 1)
    first = hidden_states[:, 0]
    mean = (hidden_states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    mean = nn.functional.normalize(mean, dim=-1)
    maximum = (hidden_states - (1 - mask) * _LARGE).amax(1)
    minimum = (hidden_states + (1 - mask) * _LARGE).amin(1)
    return torch.cat([first, mean, maximum, minimum], dim=-1)


class RepresentationHead(nn.Module):
    """Residual MLP head, ``h = W1 x + b1; r = ReLU(W2 h + b2) + h`` (RECIPE §3.1, MLP_K / MLP_Q).

    At initialisation ``W1`` copies the normalised-mean block of the pooled features, scaled by
    ``init_scale``, into the first ``encoder_hidden_size`` dimensions and ``W2`` is near zero,
    so the scaled dot product of two representations starts as
    ``init_scale**2 / sqrt(knowledge_dim)`` times the encoder's cosine similarity.

    Input shape: `(batch_size, 4 * encoder_hidden_size)`.
    Output shape: `(batch_size, knowledge_dim)`.
    """

    def __init__(self, encoder_hidden_size: int, knowledge_dim: int, init_scale: float) -> None:
        super().__init__()
        if knowledge_dim < encoder_hidden_size:
            msg = (
                f"knowledge_dim={knowledge_dim} is smaller than encoder_hidden_size="
                f"{encoder_hidden_size}; use a knowledge_dim of at least the encoder's size."
            )
            raise ValueError(msg)
        self.input_projection = nn.Linear(4 * encoder_hidden_size, knowledge_dim)
        self.residual = nn.Linear(knowledge_dim, knowledge_dim)
        with torch.no_grad():
            self.input_projection.weight.zero_()
            self.input_projection.bias.zero_()
            block = torch.eye(encoder_hidden_size) * init_scale
            self.input_projection.weight[:encoder_hidden_size, encoder_hidden_size : 2 * encoder_hidden_size] = block
            nn.init.normal_(self.residual.weight, std=0.01 / math.sqrt(knowledge_dim))
            self.residual.bias.zero_()

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled features `(batch_size, 4 * encoder_hidden_size)` to representations `(batch_size, knowledge_dim)`."""
        hidden = self.input_projection(pooled)
        return torch.relu(self.residual(hidden)) + hidden
