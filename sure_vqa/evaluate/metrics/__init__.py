"""Answer metrics that need no model: normalisation, the open-metric registry (one module per metric in
`open/`), closed-question accuracy and the metrics files (`traditional`).

Nothing here imports torch or model code at import time, so the metrics run on a laptop without a GPU stack;
the embedding-similarity extra loads sentence-transformers only when it is computed.
"""
