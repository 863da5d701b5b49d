"""Training promptpress token-classification models: corpus, teachers, alignment, fine-tuning, evaluation."""
