"""langchain-recipe: lifelong knowledge editing for local Hugging Face LLMs in LangChain (RECIPE)."""
