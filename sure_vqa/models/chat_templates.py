"""Chat templates that SURE-VQA writes into model folders it builds (the converter, the tiny test model).

LLaVA-Med v1.5 was trained with LLaVA's `mistral_instruct` conversation format: `<s>[INST] <image>\\nQUESTION
[/INST] ANSWER</s>`. Transformers renders it from the processor's chat template; this one also understands the
multimodal message format (`{"type": "image"}` becomes `<image>` where the processor expands the image tokens).
"""

from __future__ import annotations

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
