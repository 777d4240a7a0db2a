"""Prompt encoders: from a knowledge representation to a continuous prompt.

Two designs share one interface, ``forward(keys, statement_embeds, statement_mask)``:

* :class:`MLPPromptEncoder` is the paper's ``MLP_P`` (RECIPE §3.2): a residual MLP of the key
  alone, reshaped into ``num_prompt_tokens`` vectors of the base LM's hidden size.
* :class:`StatementAttentionPromptEncoder` lets learned prompt queries cross-attend over the
  base LM's own input embeddings of the knowledge statement, so the prompt can copy the new
  fact's tokens instead of having to rebuild them from a sentence embedding.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLPPromptEncoder", "StatementAttentionPromptEncoder"]


class MLPPromptEncoder(nn.Module):
    """``h = ReLU(W3 r + b3) + r; p = W4 h + b4`` reshaped to `(num_prompt_tokens, lm_hidden_size)`.

    Source: RECIPE §3.2 (Chen et al., EMNLP 2024), the prompt encoder MLP_P.

    Input shape: keys `(batch_size, knowledge_dim)`; the statement arguments are ignored.
    Output shape: `(batch_size, num_prompt_tokens, lm_hidden_size)`.
    """

    def __init__(self, knowledge_dim: int, num_prompt_tokens: int, lm_hidden_size: int) -> None:
        super().__init__()
        self.num_prompt_tokens = num_prompt_tokens
        self.lm_hidden_size = lm_hidden_size
        self.hidden = nn.Linear(knowledge_dim, knowledge_dim)
        self.output = nn.Linear(knowledge_dim, num_prompt_tokens * lm_hidden_size)

    def forward(
        self,
        keys: torch.Tensor,
        statement_embeds: torch.Tensor | None = None,
        statement_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Keys `(batch_size, knowledge_dim)` to prompts `(batch_size, num_prompt_tokens, lm_hidden_size)`."""
        hidden = torch.relu(self.hidden(keys)) + keys
        return self.output(hidden).view(-1, self.num_prompt_tokens, self.lm_hidden_size)


class _CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention from prompt queries to statement tokens, then a feed-forward."""

    def __init__(self, hidden_size: int, num_heads: int, ffn_ratio: int) -> None:
        super().__init__()
        self.query_norm = nn.LayerNorm(hidden_size)
        self.memory_norm = nn.LayerNorm(hidden_size)
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.ffn_norm = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_size, ffn_ratio * hidden_size),
            nn.GELU(),
            nn.Linear(ffn_ratio * hidden_size, hidden_size),
        )

    def forward(self, queries: torch.Tensor, memory: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        memory = self.memory_norm(memory)
        attended, _ = self.attention(
            self.query_norm(queries), memory, memory, key_padding_mask=padding_mask, need_weights=False
        )
        queries = queries + attended
        return queries + self.ffn(self.ffn_norm(queries))


class StatementAttentionPromptEncoder(nn.Module):
    """Learned prompt queries that read the statement's base-LM token embeddings.

    Each of the ``num_prompt_tokens`` queries is a learned vector plus a projection of the
    knowledge key r_k (so the key still shapes the prompt, as in RECIPE §3.2). The queries pass
    through ``num_layers`` pre-norm blocks of cross-attention over the statement's token
    embeddings (tagged with a learned "distance from the end" embedding, since a statement's new
    fact is usually at its end) and a feed-forward layer. Each prompt vector is then a copy
    (attention-weighted sum of the statement's raw token embeddings, starting focused on the last
    ``num_prompt_tokens`` tokens, where the new answer usually is) plus a learned correction
    whose projection starts at zero and is multiplied by ``output_scale`` (about the base LM's
    embedding standard deviation), which keeps Adam's early updates from pushing the prompt far
    outside the embedding scale.

    Input shapes: keys `(batch_size, knowledge_dim)`, statement_embeds
    `(batch_size, statement_len, lm_hidden_size)`, statement_mask `(batch_size, statement_len)`
    with 1 on real tokens (right padding).
    Output shape: `(batch_size, num_prompt_tokens, lm_hidden_size)`.
    """

    def __init__(
        self,
        knowledge_dim: int,
        num_prompt_tokens: int,
        lm_hidden_size: int,
        *,
        num_layers: int,
        num_heads: int,
        ffn_ratio: int,
        max_statement_tokens: int,
        output_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.max_statement_tokens = max_statement_tokens
        self.output_scale = output_scale
        self.prompt_queries = nn.Parameter(torch.randn(num_prompt_tokens, lm_hidden_size) * 0.02)
        self.key_projection = nn.Linear(knowledge_dim, lm_hidden_size)
        self.distance_from_end = nn.Embedding(max_statement_tokens, lm_hidden_size)
        nn.init.normal_(self.distance_from_end.weight, std=0.02)
        self.blocks = nn.ModuleList(
            _CrossAttentionBlock(lm_hidden_size, num_heads, ffn_ratio) for _ in range(num_layers)
        )
        self.output_norm = nn.LayerNorm(lm_hidden_size)
        self.output = nn.Linear(lm_hidden_size, lm_hidden_size)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        # Copy path: prompt vector j is a weighted sum of the statement's raw LM embeddings. Its
        # weights start focused on the statement's last tokens (vector j on the token at distance
        # num_prompt_tokens - 1 - j from the end), where the new fact's answer sits, so at
        # initialisation the prompt reads like the answer's own tokens.
        self.copy_position_bias = nn.Parameter(torch.zeros(num_prompt_tokens, max_statement_tokens))
        with torch.no_grad():
            for j in range(num_prompt_tokens):
                self.copy_position_bias[j, min(num_prompt_tokens - 1 - j, max_statement_tokens - 1)] = 8.0
        self.copy_query = nn.Linear(lm_hidden_size, lm_hidden_size, bias=False)
        nn.init.zeros_(self.copy_query.weight)

    def forward(
        self,
        keys: torch.Tensor,
        statement_embeds: torch.Tensor | None = None,
        statement_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Prompts `(batch_size, num_prompt_tokens, lm_hidden_size)` from keys and the statements' tokens.

        Args:
            keys: `(batch_size, knowledge_dim)`.
            statement_embeds: the statements' LM input embeddings, `(batch_size, statement_len, lm_hidden_size)`.
            statement_mask: `(batch_size, statement_len)`, 1 on real tokens (right padding).

        Raises:
            ValueError: ``statement_embeds`` or ``statement_mask`` is missing.
        """
        if statement_embeds is None or statement_mask is None:
            msg = "StatementAttentionPromptEncoder needs the statement's token embeddings and mask."
            raise ValueError(msg)
        statement_embeds = statement_embeds.to(self.output.weight.dtype)
        lengths = statement_mask.sum(1, keepdim=True)  # (B, 1)
        positions = torch.arange(statement_mask.shape[1], device=statement_mask.device).unsqueeze(0)
        distance = (lengths - 1 - positions).clamp(0, self.max_statement_tokens - 1)  # (B, T)
        memory = statement_embeds + self.distance_from_end(distance)  # (B, T, D)
        queries = self.prompt_queries.unsqueeze(0) + self.key_projection(keys).unsqueeze(1)  # (B, l, D)
        padding_mask = statement_mask == 0
        for block in self.blocks:
            queries = block(queries, memory, padding_mask)
        # copy weights: content term (learned, starts at 0) + position-from-end bias
        content = torch.einsum("bld,btd->blt", self.copy_query(queries), memory) / memory.shape[-1] ** 0.5
        logits = content + self.copy_position_bias[:, distance].permute(1, 0, 2)  # (B, l, T)
        logits = logits.masked_fill(padding_mask.unsqueeze(1), float("-inf"))
        copied = torch.einsum("blt,btd->bld", logits.softmax(-1), statement_embeds)  # (B, l, D)
        return copied + self.output_scale * self.output(self.output_norm(queries))
