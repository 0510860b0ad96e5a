"""Local judge: any transformers image-text-to-text VLM by hub id or local path.

Loaded with ``AutoProcessor.from_pretrained`` + ``AutoModelForImageTextToText.from_pretrained``;
prompts go through the processor's chat template (images first, then the prompt text), batched with
left padding, generated greedily (``do_sample=False``) under ``torch.no_grad()``.
"""

from __future__ import annotations

from typing import Any, Sequence

from mira_env.validate import check_choice, check_int

from mira_env.rewards.devices import ModelCache, resolve_device
from mira_env.rewards.errors import RewardConfigError, describe, missing_extra
from mira_env.rewards.judge.core import JudgeRequest, PromptedBackend

_MODELS = ModelCache()
DTYPES = ("auto", "float32", "float16", "bfloat16")


def load_vlm(model: str, device: str, dtype: str = "auto", trust_remote_code: bool = False):
    """``(processor, model)`` for ``model`` on ``device``, cached per process."""
    key = (str(model), device, dtype, trust_remote_code)

    def build() -> tuple[Any, Any]:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError:
            raise missing_extra("transformers", "rewards", "the local VLM judge") from None
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
        vlm = AutoModelForImageTextToText.from_pretrained(model, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        return processor, vlm.to(device).eval()

    return _MODELS.get(key, build)


class TransformersJudge(PromptedBackend):
    """A local VLM judge (see the module docstring).

    Args:
        model: hub id (``"Qwen/Qwen2.5-VL-7B-Instruct"``) or local folder.
        device / dtype: where and how to load it (``"auto"`` = CUDA when available / the checkpoint's dtype).
        max_new_tokens: answer budget (the JSON answer with short reasoning fits in 256).
        batch_size: prompts per ``generate`` call.
        generate_kwargs: extra ``model.generate`` arguments (``suppress_tokens``, ``logits_processor``, ...).
    """

    def __init__(self, model: str, device: str | None = "auto", dtype: str = "auto", max_new_tokens: int = 256,
                 batch_size: int = 8, trust_remote_code: bool = False, generate_kwargs: dict | None = None,
                 reduction: str = "min") -> None:
        super().__init__(reduction=reduction)
        if not isinstance(model, str) or not model:
            raise RewardConfigError(f"judge model={describe(model)} must be a hub id or a local path")
        check_choice("judge dtype", dtype, DTYPES, error=RewardConfigError)
        for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
            check_int(f"judge {name}", value, error=RewardConfigError)
        self.model_name, self.device, self.dtype = model, device, dtype
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.trust_remote_code = trust_remote_code
        self.generate_kwargs = dict(generate_kwargs or {})
        self.id = f"transformers:{model}:greedy:{max_new_tokens}:{reduction}"

    def _load(self):
        return load_vlm(self.model_name, resolve_device(self.device), self.dtype, self.trust_remote_code)

    @staticmethod
    def messages(request: JudgeRequest) -> list[dict]:
        content = [{"type": "image", "image": image} for image in request.images()]
        content.append({"type": "text", "text": request.prompt()})
        return [{"role": "user", "content": content}]

    def generate(self, requests: Sequence[JudgeRequest]) -> list[str | Exception]:
        return self.generate_messages([self.messages(r) for r in requests])

    def generate_messages(self, conversations: Sequence[list[dict]], max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers for chat ``conversations`` (transformers message lists with PIL images), in batches.

        The judge service (``mira serve judge``) calls this with the conversations of its requests.
        """
        import torch

        processor, model = self._load()
        tokenizer = getattr(processor, "tokenizer", processor)
        answers: list[str | Exception] = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start:start + self.batch_size]
            old_side = getattr(tokenizer, "padding_side", "left")
            tokenizer.padding_side = "left"
            try:
                inputs = processor.apply_chat_template(
                    list(chunk), tokenize=True, add_generation_prompt=True,
                    return_dict=True, return_tensors="pt", processor_kwargs={"padding": True})
            finally:
                tokenizer.padding_side = old_side
            inputs = inputs.to(model.device)
            with torch.no_grad():
                output = model.generate(**inputs, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                                        **self.generate_kwargs)
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            answers.extend(processor.batch_decode(new_tokens, skip_special_tokens=True))
        return answers

    def __repr__(self) -> str:
        return f"TransformersJudge(model={self.model_name!r}, device={self.device!r})"
