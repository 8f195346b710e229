"""Answer metrics that need no model: normalisation, traditional metrics, and optional extras.

Nothing here imports torch or model code at import time, so the metrics run on a laptop without a GPU stack
; the embedding-similarity extra loads sentence-transformers only when it is called.
"""
