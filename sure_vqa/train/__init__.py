"""Stage 1, fine-tuning: a plan from the settings, the training data, the Trainer and the experiment folder it writes."""
