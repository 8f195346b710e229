"""SURE-VQA: robustness of medical vision-language models in VQA under realistic shifts."""

__version__ = "0.1.0"
