"""Shared test configuration. Area fixtures live in tests/<area>/conftest.py."""

import os
import tempfile

# Everything the suite runs is offline: never let a test reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A fresh cache per run (assembled GGUFs, ONNX exports, tiktoken files): nothing shared between runs.
os.environ.setdefault("PROMPTPRESS_CACHE_DIR", tempfile.mkdtemp(prefix="promptpress-test-cache-"))

pytest_plugins = ["redis_fixtures"]
