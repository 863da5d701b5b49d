"""CompLLM-style segment-wise soft compression (concept embeddings for a local decoder)."""
