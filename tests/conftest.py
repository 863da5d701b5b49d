"""Shared test configuration. Area fixtures live in tests/<area>/conftest.py."""

import os

# Everything the suite runs is offline: never let a test reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["redis_fixtures"]
