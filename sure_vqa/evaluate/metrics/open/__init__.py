"""One module per open-question metric; each registers itself with sure_vqa.evaluate.metrics.registry."""
