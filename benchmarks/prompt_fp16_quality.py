"""Does storing continuous prompts in float16 change what the edited LM says?

Encodes the bundled ZsRE demo edits with the shipped RecipeModel, then, for each edit's question,
runs SmolLM2 with the float32 continuous prompt and with its float16 round trip (what the store's
default ``payload_fp16`` layout returns) and compares greedy answers (8 new tokens) and first-token
logits. Run:

    nice -n 5 .venv/bin/python benchmarks/prompt_fp16_quality.py --edits 40
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's langchain_recipe

from langchain_recipe.base_models import default_recipe_model_path, load_base_model
from langchain_recipe.datasets import DEMO_EDITS, iter_edits
from langchain_recipe.injection import prepend_continuous_prompts
from langchain_recipe.knowledge_store import decode_prompt_payload, encode_prompt_payload
from langchain_recipe.nn import RecipeModel


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--new-tokens", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lm = load_base_model()
    recipe = RecipeModel.from_pretrained(default_recipe_model_path()).eval()
    records = list(iter_edits(DEMO_EDITS, "zsre"))[: args.edits]
    _, prompts = recipe.encode_edits([r.statement for r in records], lm, batch_size=16)
    same_answer = 0
    max_logit_diff = 0.0
    max_relative_error = 0.0
    for record, prompt in zip(records, prompts, strict=True):
        rounded = decode_prompt_payload(encode_prompt_payload(prompt))
        max_relative_error = max(max_relative_error, float((rounded - prompt).abs().max() / prompt.abs().max()))
        inputs = lm.tokenizer.apply_chat_template(
            [{"role": "user", "content": record.prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        answers, logits = [], []
        for p in (prompt, rounded):
            prefixed = prepend_continuous_prompts(
                lm.embed(inputs["input_ids"]), inputs["attention_mask"], [p.to(lm.dtype)]
            )
            out = lm.model(
                inputs_embeds=prefixed.inputs_embeds,
                attention_mask=prefixed.attention_mask,
                position_ids=prefixed.position_ids,
            )
            logits.append(out.logits[0, -1].float())
            generated = lm.model.generate(
                inputs_embeds=prefixed.inputs_embeds,
                attention_mask=prefixed.attention_mask,
                max_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=lm.tokenizer.pad_token_id,
            )
            answers.append(generated[0].tolist())
        same_answer += answers[0] == answers[1]
        max_logit_diff = max(max_logit_diff, float((logits[0] - logits[1]).abs().max()))
    print(
        json.dumps(
            {
                "edits": len(records),
                "same_greedy_answer": same_answer,
                "max_first_token_logit_abs_diff": round(max_logit_diff, 5),
                "max_prompt_relative_error": round(max_relative_error, 6),
            }
        )
    )


if __name__ == "__main__":
    main()
