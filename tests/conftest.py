"""Shared test configuration. Area fixtures live in tests/<area>/conftest.py."""

import atexit
import os
import shutil
import tempfile

# Everything the suite runs is offline: never let a test reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A fresh cache per run (assembled GGUFs, ONNX exports, tiktoken files): nothing shared between runs.
if "PROMPTPRESS_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="promptpress-test-cache-")
    os.environ["PROMPTPRESS_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

pytest_plugins = ["redis_fixtures"]
