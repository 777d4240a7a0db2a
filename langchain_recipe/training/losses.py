"""RECIPE's training losses (Chen et al., EMNLP 2024, §3.4; all weights 1 in the paper).

Notation: ``s(a, b) = a · b / sqrt(d_r)``; ``r`` knowledge keys of the batch, ``r_sentinel`` the
knowledge sentinel's key; ``u``, ``v`` representations of two phrasings of each edit's question
and ``w`` of its unrelated (locality) question.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from langchain_recipe.scoring import paired_retrieval_scores, retrieval_scores

__all__ = [
    "hinge_token_nll",
    "locality_kl",
    "locality_sentinel_loss",
    "own_over_sentinel_loss",
    "query_knowledge_loss",
    "sentinel_over_irrelevant_loss",
]


def _hinge_nll(
    logits: torch.Tensor, target: torch.Tensor, hinge_scale: float, *, per_row: bool = False
) -> torch.Tensor:
    """NLL of ``target`` over the rows not yet done (a hinge).

    A row is kept while its target probability is below ``hinge_scale`` times the best other
    probability. The mean is over the kept rows (the paper), or over all rows when ``per_row``; 0
    when every row is done.
    """
    log_probs = logits.float().log_softmax(-1)
    target_log_prob = log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    others = log_probs.scatter(-1, target.unsqueeze(-1), float("-inf")).amax(-1)
    keep = target_log_prob < others + math.log(hinge_scale)
    if not keep.any():
        return logits.sum() * 0.0
    if per_row:
        return -target_log_prob[keep].sum() / keep.numel()
    return -target_log_prob[keep].mean()


def _with_extra_negatives(r: torch.Tensor, extra_negatives: torch.Tensor | None) -> torch.Tensor:
    """``r`` followed by the extra negatives (if any), shape `(num_keys, knowledge_dim)`."""
    if extra_negatives is None or extra_negatives.shape[0] == 0:
        return r
    return torch.cat([r, extra_negatives.to(r.dtype)])


def query_knowledge_loss(
    u: torch.Tensor,
    r: torch.Tensor,
    r_sentinel: torch.Tensor,
    temperature: float = 1.0,
    extra_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_q1: each query prefers its own knowledge over the other edits and the sentinel.

    Logits ``τ1 · s(u_i, [r_1..r_B, r_Θ])``, cross-entropy with target i (no hinge).

    Args:
        u: query representations, shape `(batch_size, knowledge_dim)`.
        r: knowledge representations, shape `(batch_size, knowledge_dim)`.
        r_sentinel: shape `(knowledge_dim,)`.
        temperature: τ1.
        extra_negatives: more knowledge representations to rank below the query's own, shape
            `(num_negatives, knowledge_dim)` (e.g. detached keys of earlier batches; not in the
            paper).
    """
    logits = temperature * retrieval_scores(
        u, torch.cat([_with_extra_negatives(r, extra_negatives), r_sentinel.unsqueeze(0)])
    )
    return F.cross_entropy(logits, torch.arange(u.shape[0], device=u.device))


def own_over_sentinel_loss(
    u: torch.Tensor,
    r: torch.Tensor,
    r_sentinel: torch.Tensor,
    hinge_scale: float,
    temperature: float = 1.0,
    *,
    per_row: bool = False,
) -> torch.Tensor:
    """The part of L_q1 that the gate needs: each query's own knowledge beats the sentinel.

    Logits ``τ · [s(u_i, r_i), s(u_i, r_Θ)]``, target the own edit, hinge NLL with ``c_h``. L_q1
    already has the sentinel among its negatives, but among thousands of other edits its share of
    the gradient is small, while L_q2 and L_q3 push the sentinel up on every query; without this
    term the gate ends up rejecting the edits' own questions (not in the paper).

    Args:
        u: query representations, shape `(batch_size, knowledge_dim)`.
        r: their own knowledge representations, shape `(batch_size, knowledge_dim)`.
        r_sentinel: shape `(knowledge_dim,)`.
        hinge_scale: c_h.
        temperature: τ.
        per_row: average over all rows, not only the kept ones (see :func:`locality_sentinel_loss`).
    """
    own = paired_retrieval_scores(u, r)
    sentinel = retrieval_scores(u, r_sentinel.unsqueeze(0)).squeeze(-1)
    logits = temperature * torch.stack([own, sentinel], dim=-1)
    return _hinge_nll(logits, torch.zeros(u.shape[0], dtype=torch.long, device=u.device), hinge_scale, per_row=per_row)


def sentinel_over_irrelevant_loss(
    v: torch.Tensor,
    r: torch.Tensor,
    r_sentinel: torch.Tensor,
    hinge_scale: float,
    temperature: float = 1.0,
    extra_negatives: torch.Tensor | None = None,
    *,
    per_row: bool = False,
) -> torch.Tensor:
    """L_q2: the sentinel beats every irrelevant edit for a query.

    ``M_ij = s(v_i, r_j)`` with the diagonal (the query's own edit) replaced by ``s(v_i, r_Θ)``;
    target the diagonal; hinge NLL with ``c_h``. Shapes as in :func:`query_knowledge_loss`.

    Args:
        v: query representations, shape `(batch_size, knowledge_dim)`.
        r: their own knowledge representations, shape `(batch_size, knowledge_dim)`.
        r_sentinel: shape `(knowledge_dim,)`.
        hinge_scale: c_h.
        temperature: τ2.
        extra_negatives: more irrelevant knowledge representations the sentinel must beat, shape
            `(num_negatives, knowledge_dim)`, appended as columns (none of them may be a query's
            own edit; not in the paper, whose negatives are the batch's own edits).
        per_row: average over all rows, not only the kept ones (see :func:`locality_sentinel_loss`).
    """
    logits = temperature * retrieval_scores(v, _with_extra_negatives(r, extra_negatives))
    sentinel = temperature * retrieval_scores(v, r_sentinel.unsqueeze(0)).squeeze(-1)
    eye = torch.zeros(logits.shape, dtype=torch.bool, device=v.device)
    eye[:, : v.shape[0]] = torch.eye(v.shape[0], dtype=torch.bool, device=v.device)
    logits = torch.where(eye, sentinel.unsqueeze(-1).expand_as(logits), logits)
    return _hinge_nll(logits, torch.arange(v.shape[0], device=v.device), hinge_scale, per_row=per_row)


def locality_sentinel_loss(
    w: torch.Tensor,
    r: torch.Tensor,
    r_sentinel: torch.Tensor,
    hinge_scale: float,
    temperature: float = 1.0,
    extra_negatives: torch.Tensor | None = None,
    *,
    per_row: bool = False,
) -> torch.Tensor:
    """L_q3: an unrelated (locality) query prefers the sentinel to every edit of the batch.

    Logits ``τ2 · s(w_i, [r_1..r_B, r_Θ])``, target the sentinel, hinge NLL with ``c_h``.

    Args:
        w: locality query representations, shape `(batch_size, knowledge_dim)`.
        r: knowledge representations of the batch, shape `(batch_size, knowledge_dim)`.
        r_sentinel: shape `(knowledge_dim,)`.
        hinge_scale: c_h.
        temperature: τ2.
        extra_negatives: more knowledge representations the sentinel must beat, shape
            `(num_negatives, knowledge_dim)` (e.g. detached keys of earlier batches; not in the
            paper, whose negatives are the batch's own edits).
        per_row: average the NLL over all rows (kept or not) instead of the kept rows only. With
            the paper's mean over kept rows, the last few violated rows (the hardest, often
            impossible, negatives) pull the sentinel up as hard as a whole batch would, so the
            hinge terms keep raising it until the gate rejects the edits' own questions.
    """
    negatives = _with_extra_negatives(r, extra_negatives)
    logits = temperature * retrieval_scores(w, torch.cat([negatives, r_sentinel.unsqueeze(0)]))
    target = torch.full((w.shape[0],), negatives.shape[0], dtype=torch.long, device=w.device)
    return _hinge_nll(logits, target, hinge_scale, per_row=per_row)


def hinge_token_nll(logits: torch.Tensor, labels: torch.Tensor, hinge_scale: float) -> torch.Tensor:
    """Reliability/generality loss: token NLL, hinged.

    Over positions whose label probability is below ``e_h`` times the best other token's, averaged
    over the kept tokens of the batch.

    Args:
        logits: shape `(num_tokens, vocab_size)`.
        labels: shape `(num_tokens,)`.
        hinge_scale: e_h (1.2 in the paper).
    """
    return _hinge_nll(logits, labels, hinge_scale)


def locality_kl(logits_before: torch.Tensor, logits_after: torch.Tensor) -> torch.Tensor:
    """Mean over positions of ``KL(p_before || p_after)``.

    The unedited LM's distribution against the one with an (unrelated) continuous prompt prefixed.

    Args:
        logits_before: shape `(num_tokens, vocab_size)`, no gradient needed.
        logits_after: shape `(num_tokens, vocab_size)`.
    """
    before = logits_before.float().log_softmax(-1)
    after = logits_after.float().log_softmax(-1)
    return F.kl_div(after, before, log_target=True, reduction="batchmean")
