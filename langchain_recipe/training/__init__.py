"""Training of RECIPE's small modules (imported only by training entry points)."""

from langchain_recipe.training.trainer import RecipeTrainer, StepResult

__all__ = ["RecipeTrainer", "StepResult"]
