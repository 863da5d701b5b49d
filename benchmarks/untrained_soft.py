"""Save an untrained soft encoder, to score what the frozen decoder makes of concept embeddings
before any training (``promptpress eval run --methods soft:DIR``).

With ``--merge-tokens`` the untrained encoder's concept embeddings are the mean of each run of C
token embeddings (rescaled to their mean norm): the floor any trained ``--merge-tokens`` checkpoint
starts from. Without it they are the decoder's last hidden states at the query positions (the
projection is the identity, not calibrated here), which the decoder cannot read.

    python benchmarks/untrained_soft.py --merge-tokens --out runs/untrained-merge
    promptpress eval run --data runs/squad-short --datasets squad_longdoc --methods soft:runs/untrained-merge \\
        --rates 0.5 --limit 36 --soft-precision fp32 --threads 1 --out runs/f1-untrained-merge
"""

from __future__ import annotations

import argparse

from promptpress.compressor.assets import DEFAULT_DECODER
from promptpress.compressor.soft.decoder import load_decoder
from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="folder for soft_config.json + weights")
    parser.add_argument("--merge-tokens", action="store_true")
    parser.add_argument("--concept-norm", action="store_true")
    parser.add_argument("--rate", type=int, default=2)
    parser.add_argument("--decoder", default=DEFAULT_DECODER)
    args = parser.parse_args()
    config = SoftConfig(
        rate=args.rate,
        merge_tokens=args.merge_tokens,
        concept_norm=args.concept_norm,
        decoder=args.decoder,
        extra={"data": "none (untrained)", "steps": "0"},
    )
    model, _ = load_decoder(args.decoder)
    path = ConceptEncoder(model, config).save(args.out)
    print(f"wrote untrained weights to {path}")


if __name__ == "__main__":
    main()
