"""Generation backends, one module each (sure_vqa.infer.generation): each registers a GenerationBackend."""
