"""The one prompt used in training and inference (docs/method.md#prompting).

The question goes to the model through its own chat template, the image first; closed yes/no questions get a
fixed suffix. Training and inference both call `prompt_text`, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

YES_NO_SUFFIX = " Please choose from the following two options: [yes, no]."


def is_yes_no(answer_type: str, categories: Sequence[str] | None) -> bool:
    return answer_type.upper() == "CLOSED" and categories is not None and sorted(c.lower() for c in categories) == [
        "no",
        "yes",
    ]


def question_text(question: str, answer_type: str, categories: Sequence[str] | None) -> str:
    question = question.strip()
    return question + YES_NO_SUFFIX if is_yes_no(answer_type, categories) else question


def messages(question: str, with_image: bool, answer: str | None = None) -> list[dict[str, Any]]:
    """Chat messages in the transformers multimodal format, the image placed before the text."""
    content: list[dict[str, Any]] = [{"type": "image"}] if with_image else []
    content.append({"type": "text", "text": question})
    conversation = [{"role": "user", "content": content}]
    if answer is not None:
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return conversation


def prompt_text(processor: Any, question: str, answer_type: str, categories: Sequence[str] | None,
                with_image: bool) -> str:
    """The generation prompt (ending where the model's answer starts; a template's thinking switch off)."""
    from sure_vqa.models.chat_templates import render

    return render(processor, messages(question_text(question, answer_type, categories), with_image),
                  add_generation_prompt=True)
