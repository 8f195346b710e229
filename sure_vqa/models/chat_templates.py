"""Chat templates that SURE-VQA writes into model folders it builds (the converter, the tiny test model), and how
any model's chat template is rendered (its thinking switch off).

LLaVA-Med v1.5 was trained with LLaVA's `mistral_instruct` conversation format: `<s>[INST] <image>\\nQUESTION
[/INST] ANSWER</s>`. Transformers renders it from the processor's chat template; this one also understands the
multimodal message format (`{"type": "image"}` becomes `<image>` where the processor expands the image tokens).
"""

from __future__ import annotations

from typing import Any

LLAVA_MED_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ '[INST] ' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for c in message['content'] -%}"
    "{%- if c['type'] == 'image' -%}{{ '<image>\\n' }}{%- elif c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{{ ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ ' ' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for c in message['content'] -%}{%- if c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{{ eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# The keyword that this year's chat templates (Qwen3, Qwen3.5, Gemma 4) read to open a reasoning block before
# the reply. SURE-VQA asks for the answer itself (the model's and the judge's), so a template that has the
# switch is always rendered with it off (docs/models.md#thinking).
THINKING_SWITCH = "enable_thinking"


def template_switches(template: str | None) -> dict[str, bool]:
    """The keyword arguments a chat template is rendered with: thinking off where the template can think."""
    return {THINKING_SWITCH: False} if template and THINKING_SWITCH in template else {}


def render(processor: Any, conversation: list[dict[str, Any]], add_generation_prompt: bool) -> str:
    """A conversation through the processor's (or tokenizer's) own chat template, with `template_switches`."""
    template = getattr(processor, "chat_template", None)
    return processor.apply_chat_template(conversation, add_generation_prompt=add_generation_prompt, tokenize=False,
                                         **template_switches(template if isinstance(template, str) else None))
