"""The human rater study (docs/method.md#human-rater-study): select questions, rate them in a browser, correlate with the metrics.

selection.py -> study folder (study.py) -> rating app (app.py, ratings in db.py, scales in rubric.py)
-> export.py -> analysis.py; commands.py turns the composed config into these calls for human_rater_study/.
Nothing here imports torch or a model: the study runs on any laptop.
"""
