"""Evaluation of knowledge editing: metrics, the lifelong (sequential) protocol, baselines and reports."""

from langchain_recipe.evaluation.general_ability import load_bundled_general_ability, load_general_ability
from langchain_recipe.evaluation.lifelong import (
    ALL_METHODS,
    DEFAULT_METHODS,
    PAPER_MODE_SUFFIX,
    EditRepository,
    EvaluationConfig,
    EvaluationReport,
    EvaluationResult,
    GeneralAbilityData,
    LifelongEvaluation,
    MethodResult,
    RetrievalDiagnostics,
    evaluate_edits,
    text_rag_question,
)
from langchain_recipe.evaluation.metrics import (
    agreement,
    exact_match,
    greedy_continuations,
    perplexity,
    target_log_likelihoods,
    teacher_forced_predictions,
    token_accuracy,
)
from langchain_recipe.evaluation.report import load_report, render_markdown, write_plots, write_report

__all__ = [
    "ALL_METHODS",
    "DEFAULT_METHODS",
    "PAPER_MODE_SUFFIX",
    "EditRepository",
    "EvaluationConfig",
    "EvaluationReport",
    "EvaluationResult",
    "GeneralAbilityData",
    "LifelongEvaluation",
    "MethodResult",
    "RetrievalDiagnostics",
    "agreement",
    "evaluate_edits",
    "exact_match",
    "greedy_continuations",
    "load_bundled_general_ability",
    "load_general_ability",
    "load_report",
    "perplexity",
    "render_markdown",
    "target_log_likelihoods",
    "teacher_forced_predictions",
    "text_rag_question",
    "token_accuracy",
    "write_plots",
    "write_report",
]
