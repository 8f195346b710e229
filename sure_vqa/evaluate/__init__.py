"""Stage 3, evaluation: the traditional metrics and the LLM judge, read from and written to the eval folder.

Nothing here imports torch at module level, so metrics can be computed on a machine without it.
"""
