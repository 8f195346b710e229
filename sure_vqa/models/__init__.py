"""Models: loading LLaVA-style VLMs through transformers, the shared prompt, fine-tuning methods."""
