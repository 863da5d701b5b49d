"""``promptpress models``: the models shipped in packages and in promptpress itself."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("models", help="list the models shipped in packages")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from promptpress.compressor.assets import PACKAGED
    from promptpress.compressor.builtin import available
    from promptpress.compressor.model import DEFAULT_MODEL

    def marker(spec: str) -> str:
        return " (default compressor)" if spec == DEFAULT_MODEL else ""

    for name, asset in sorted(PACKAGED.items()):
        print(f"package:{name}{marker(f'package:{name}')}\n    {asset.description}")
    for name in available():
        spec = f"builtin:{name}"
        print(f"{spec}{marker(spec)}\n    trained by promptpress (see compressor/models/README.md)")
    return 0
