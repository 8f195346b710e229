"""The study over the stages: the grid of runs, the baselines, the report and the bundled demo."""
