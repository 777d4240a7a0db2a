"""The knowledge sentinel: a learned pseudo-statement whose similarity is the retrieval threshold.

RECIPE §3.3 (Chen et al., EMNLP 2024): a learned sequence Θ of pseudo-token embeddings is encoded
like a knowledge statement (shared encoder, pooling, knowledge head) into r_Θ. A query q accepts
its best edit k only if s(q, k) > s(q, Θ), with s the scaled dot product, so the threshold is
per query ("dynamic") and there is no fixed scalar threshold. The score and the gate live in
:mod:`langchain_recipe.scoring` (re-exported here).
"""

from __future__ import annotations

import torch
from torch import nn

from langchain_recipe.scoring import GateDecision, sentinel_gate

__all__ = ["GateDecision", "KnowledgeSentinel", "sentinel_gate"]


class KnowledgeSentinel(nn.Module):
    """Learned pseudo-token embeddings Θ, initialised Uniform(-0.05, 0.05) as in the paper.

    The paper feeds Θ straight into the encoder layers; here it enters as the encoder's
    ``inputs_embeds`` (so the encoder adds its position embeddings and normalisation), which
    works for any Hugging Face encoder.

    Output shape of :meth:`forward`: `(1, num_sentinel_tokens, encoder_hidden_size)`.
    """

    def __init__(self, num_sentinel_tokens: int, encoder_hidden_size: int) -> None:
        super().__init__()
        self.embeddings = nn.Parameter(torch.empty(1, num_sentinel_tokens, encoder_hidden_size).uniform_(-0.05, 0.05))

    def forward(self) -> torch.Tensor:
        """The pseudo-token embeddings Θ, shape `(1, num_sentinel_tokens, encoder_hidden_size)`."""
        return self.embeddings
