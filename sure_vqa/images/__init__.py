"""Images as the models see them: loading and padding (`loading`) and the synthetic corruptions (`corruptions`)."""
