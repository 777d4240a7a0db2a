"""Evaluation of knowledge editing: metrics and the lifelong (sequential) protocol."""

from langchain_recipe.evaluation.lifelong import EvaluationResult, RetrievalDiagnostics, evaluate_edits
from langchain_recipe.evaluation.metrics import agreement, teacher_forced_predictions, token_accuracy

__all__ = [
    "EvaluationResult",
    "RetrievalDiagnostics",
    "agreement",
    "evaluate_edits",
    "teacher_forced_predictions",
    "token_accuracy",
]
