"""langchain-recipe: lifelong knowledge editing for local Hugging Face LLMs in LangChain.

Implements RECIPE (Chen et al., EMNLP 2024, "Lifelong Knowledge Editing for LLMs with
Retrieval-Augmented Continuous Prompt Learning"): each fact becomes a short continuous prompt
plus a retrieval key, stored in Qdrant, and is prefixed to the LM's input embeddings only when
the query's match beats the learned knowledge sentinel.
"""

from langchain_recipe.base_models import HuggingFaceBaseModel, load_base_model
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.config import RecipeConfig, TrainingConfig
from langchain_recipe.errors import (
    BaseModelMismatchError,
    CheckpointError,
    DependencyMissingError,
    EditConflictError,
    EditConflictWarning,
    FingerprintMismatchError,
    InvalidInputError,
    QueryTruncatedWarning,
    RecipeError,
    StoreError,
    StoreLockedError,
)
from langchain_recipe.knowledge_store import KnowledgeEdit, RecipeKnowledgeStore, RetrievedEdit
from langchain_recipe.nn.recipe_model import RecipeModel
from langchain_recipe.retrievers import SentinelRetriever
from langchain_recipe.tools import RecipeToolkit

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Deprecated aliases: ``BaseLanguageModel`` (now :class:`HuggingFaceBaseModel`)."""
    if name == "BaseLanguageModel":
        from langchain_recipe import base_models

        return base_models.__getattr__(name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "BaseModelMismatchError",
    "CheckpointError",
    "DependencyMissingError",
    "EditConflictError",
    "EditConflictWarning",
    "FingerprintMismatchError",
    "HuggingFaceBaseModel",
    "InvalidInputError",
    "KnowledgeEdit",
    "QueryTruncatedWarning",
    "RecipeChatModel",
    "RecipeConfig",
    "RecipeError",
    "RecipeKnowledgeStore",
    "RecipeModel",
    "RecipeToolkit",
    "RetrievedEdit",
    "SentinelRetriever",
    "StoreError",
    "StoreLockedError",
    "TrainingConfig",
    "load_base_model",
]
