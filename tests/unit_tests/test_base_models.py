"""Choosing the base LM from the CLI, refusing a RecipeModel made for another LM, and Hub-style save/load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import ModelHubMixin
from typer.testing import CliRunner

from langchain_recipe import base_models, cli
from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.nn import RecipeModel
from langchain_recipe.nn.recipe_model import CONFIG_NAME, WEIGHTS_NAME

LM_OPTIONS = ["--base-model", "org/my-lm", "--gguf-file", "m.gguf", "--device", "cuda:1", "--dtype", "bfloat16"]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, base_model: HuggingFaceBaseModel) -> list[tuple[tuple, dict]]:
    """The calls of ``load_base_model`` (each answers the tiny LM)."""
    calls: list[tuple[tuple, dict]] = []

    def load(*args: Any, **kwargs: Any) -> HuggingFaceBaseModel:
        calls.append((args, kwargs))
        return base_model

    from langchain_recipe import chat_models
    from langchain_recipe.knowledge_store import _store

    for module in (base_models, chat_models, _store):
        monkeypatch.setattr(module, "load_base_model", load)
    return calls


def _patch_checkpoint(monkeypatch: pytest.MonkeyPatch, model: RecipeModel) -> None:
    monkeypatch.setattr(RecipeModel, "from_pretrained", classmethod(lambda cls, *args, **kwargs: model))


@pytest.mark.parametrize("command", ["eval", "demo"])
def test_the_base_lm_options_reach_load_base_model(
    command: str, loads: list, make_recipe_model: Callable[..., RecipeModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = make_recipe_model(lm_hidden_size=64, base_model_name="SmolLM2")  # stops the command after loading
    _patch_checkpoint(monkeypatch, wrong)
    result = CliRunner().invoke(cli.app, [command, *LM_OPTIONS, "--device-map", "auto"])
    assert result.exit_code == 2, result.output
    assert loads == [
        (
            (),
            {
                "name_or_path": "org/my-lm",
                "gguf_file": "m.gguf",
                "device": "cuda:1",
                "dtype": "bfloat16",
                "device_map": "auto",
            },
        )
    ]


def test_the_defaults_load_the_bundled_lm_on_the_cpu_as_before() -> None:
    assert cli._lm_options(None, None, "cpu", "auto", None) == {
        "name_or_path": None,
        "gguf_file": None,
        "device": "cpu",
        "dtype": "auto",
    }


@pytest.mark.parametrize("command", ["eval", "demo"])
def test_a_checkpoint_for_another_lm_is_refused_at_open_naming_both(
    command: str,
    loads: list,
    make_recipe_model: Callable[..., RecipeModel],
    base_model: HuggingFaceBaseModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4))
    fingerprint = HuggingFaceBaseModel(model=other, tokenizer=None, name="x").fingerprint
    _patch_checkpoint(monkeypatch, make_recipe_model(base_model_name="other-lm", base_model_fingerprint=fingerprint))
    result = CliRunner().invoke(cli.app, [command, "--base-model", "tiny-llama", "--checkpoint", "ckpt"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "trained for the base LM 'other-lm'" in message and "'tiny-llama'" in message


def test_train_refuses_an_init_checkpoint_for_another_lm(
    loads: list, make_recipe_model: Callable[..., RecipeModel], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _patch_checkpoint(monkeypatch, make_recipe_model(lm_hidden_size=64, base_model_name="big-lm"))
    result = CliRunner().invoke(cli.app, ["train", "--init-from", "ckpt", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "'big-lm'" in message and "'tiny-llama'" in message and "hidden size 32" in message


# ---------------------------------------------------------------------- Hub-style save and load
def test_recipe_model_is_a_model_hub_mixin_with_its_push_to_hub(recipe_model: RecipeModel) -> None:
    assert isinstance(recipe_model, ModelHubMixin)
    assert RecipeModel.push_to_hub is ModelHubMixin.push_to_hub
    assert recipe_model._hub_mixin_config is None  # recipe_config.json is the config, no config.json


def test_the_hub_save_path_writes_the_two_files_and_a_model_card_and_loads_back(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    recipe_model.save_pretrained(tmp_path / "hub", model_card_kwargs={}, dtype=torch.float16)
    assert {p.name for p in (tmp_path / "hub").iterdir()} == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    assert "langchain-recipe" in (tmp_path / "hub" / "README.md").read_text()
    loaded = RecipeModel.from_pretrained(
        str(tmp_path / "hub"), encoder=recipe_model.encoder, encoder_tokenizer=recipe_model.encoder_tokenizer
    )
    assert loaded.config == recipe_model.config
    with torch.no_grad():
        _, prompts_a = recipe_model.encode_edits(["The Moon orbits the Earth."], base_model)
        _, prompts_b = loaded.encode_edits(["The Moon orbits the Earth."], base_model)
    assert torch.allclose(prompts_a, prompts_b, atol=1e-3)


def test_push_to_hub_uploads_the_folder_save_pretrained_writes(
    recipe_model: RecipeModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub.hub_mixin as hub_mixin

    uploaded: dict[str, set[str]] = {}

    class _OfflineApi:
        def __init__(self, token: str | None = None) -> None:
            pass

        def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
            return type("Repo", (), {"repo_id": repo_id})()

        def upload_folder(self, *, repo_id: str, folder_path: Path, **kwargs: Any) -> str:
            uploaded[repo_id] = {p.name for p in Path(folder_path).iterdir()}
            return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(hub_mixin, "HfApi", _OfflineApi)
    assert recipe_model.push_to_hub("org/tiny-recipe") == "https://huggingface.co/org/tiny-recipe/commit/0"
    assert uploaded == {"org/tiny-recipe": {CONFIG_NAME, WEIGHTS_NAME, "README.md"}}


def test_a_hub_id_that_cannot_be_downloaded_names_the_fix(recipe_model: RecipeModel) -> None:
    from langchain_recipe.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"org/no-such-recipe is not a local folder.*HF_HUB_OFFLINE"):
        RecipeModel.from_pretrained("org/no-such-recipe", local_files_only=True)


def test_a_store_loads_its_base_lm_by_name_with_the_given_options(
    loads: list, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    options = {"gguf_file": "model.gguf", "dtype": "bfloat16", "device_map": "auto"}
    with RecipeKnowledgeStore(recipe_model, "org/some-llm", model_kwargs=options) as store:
        assert store.base_model is base_model
    assert loads == [(("org/some-llm",), options)]


def test_a_chat_models_device_map_and_model_kwargs_reach_from_pretrained(
    loads: list, base_model: HuggingFaceBaseModel
) -> None:
    from langchain_recipe.chat_models import RecipeChatModel

    llm = RecipeChatModel(
        model_name="org/some-llm", dtype="bfloat16", device_map="auto", model_kwargs={"revision": "v2"}
    )
    assert llm.base_model is base_model
    expected = {"gguf_file": None, "device": "cpu", "dtype": "bfloat16", "device_map": "auto", "revision": "v2"}
    assert loads == [(("org/some-llm",), expected)]
    assert RecipeChatModel(model_name="org/other").base_model is base_model
    assert "device_map" not in loads[1][1]
