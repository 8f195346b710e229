"""The LLM judge (docs/method.md#llm-judge): versioned rubric prompts, routing, a strict parser, an on-disk cache, backends.

Modules: `rubrics` (prompts, routing, the exact-match shortcut), `parser` (reply -> score or failure), `cache`
(SQLite replies by fingerprint), `backends` (`hf`, `openai`), `registry` (judge settings, backend and model
provider registries), `scoring` (scoring rows), `smollm2` (the offline stand-in judge's weights).
"""
