"""Pure PyTorch modules of RECIPE (no LangChain imports)."""

from langchain_recipe.nn.knowledge_encoder import RepresentationHead, format_retrieval_text, pool_hidden_states
from langchain_recipe.nn.knowledge_sentinel import GateDecision, KnowledgeSentinel, sentinel_gate
from langchain_recipe.nn.prompt_encoder import MLPPromptEncoder, StatementAttentionPromptEncoder
from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = [
    "GateDecision",
    "KnowledgeSentinel",
    "MLPPromptEncoder",
    "RecipeModel",
    "RepresentationHead",
    "StatementAttentionPromptEncoder",
    "format_retrieval_text",
    "pool_hidden_states",
    "sentinel_gate",
]
