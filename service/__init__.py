"""HTTP service, OpenAI-compatible proxy, backend launcher and the command line."""
