"""The local llama.cpp decoder (GGUF through xllamacpp), shared by the proxy's ``--with-backend``, the
teacher that labels training data and the evaluation's reader.

`LocalBackend` runs llama.cpp's OpenAI-compatible server in a child process
(``python -m promptpress.compressor.llamacpp``) and stops it with its owner.
"""

from __future__ import annotations

from .server import DEFAULT_MODEL, BackendError, LocalBackend

__all__ = ["DEFAULT_MODEL", "BackendError", "LocalBackend"]
