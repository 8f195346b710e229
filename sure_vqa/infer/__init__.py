"""Stage 2, inference: a checked run from the settings, the generation backends, the prediction log and
`test_results.json`."""
