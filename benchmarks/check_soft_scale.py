"""How large are a soft checkpoint's concept embeddings next to the decoder's token embeddings, and
does the frozen decoder care? For each weights folder (``shipped``: the packaged checkpoint) prints:

- the RMS of its concept embeddings on held-out QMSum segments over the RMS of the token-embedding
  table (the projection is calibrated to 1.0 before training);
- the projection's diagonal (it starts as a scaled identity) against its off-diagonal row norm;
- how alike the concept embeddings are, next to the tokens they stand for: the mean cosine between
  two of them, and the share of their norm that one shared vector (their mean) accounts for. Many
  near-identical vectors in a row give the decoder's attention little to tell apart, which matters
  more the more of them it reads (a long document);
- the held-out answer NLL (nats/token; train-soft's evaluation) of the decoder reading the concept
  embeddings as they are and each one rescaled to the token-embedding RMS, next to reading no context.

A pre-norm decoder normalises each layer's input, so a large input vector is not an error in itself,
but it dominates that position's residual stream: the decoder's layers can then barely change what
the position holds. Whether that costs answer quality is what the last line measures.

    python benchmarks/check_soft_scale.py shipped runs/soft-bf16/step-100 --threads 1
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from promptpress.compressor.soft.decoder import load_decoder
from promptpress.compressor.soft.model import ConceptEncoder, SoftConfig
from promptpress.compressor.soft.prompt import ChatLayout
from promptpress.compressor.training.qmsum import qmsum_examples
from promptpress.compressor.training.soft_data import PreparedSet, TeacherStore, decoder_identity
from promptpress.compressor.training.soft_eval import answer_metrics
from promptpress.compressor.training.soft_objectives import Reader

SHIPPED = Path(__file__).resolve().parents[1] / "compressor" / "models" / "soft"


class Rescaled:
    """`encoder.encode` with every concept embedding scaled to RMS `target` (the decoder is shared)."""

    def __init__(self, encoder: ConceptEncoder, target: float):
        self.encoder, self.target = encoder, target

    def __getattr__(self, name: str) -> object:
        return getattr(self.encoder, name)

    def encode(self, segments: object, batch_size: int = 64) -> list[torch.Tensor]:
        out = self.encoder.encode(segments, batch_size)  # type: ignore[arg-type]
        return [e * (self.target / e.float().pow(2).mean(-1, keepdim=True).sqrt()).to(e.dtype) for e in out]


def rms(t: torch.Tensor) -> float:
    return t.float().pow(2).mean().sqrt().item()


def alike(x: torch.Tensor) -> tuple[float, float]:
    """(mean cosine between two different rows, norm of the mean row / mean row norm)."""
    x = x.float()
    norms = x.norm(dim=-1)
    unit = x / norms.clamp_min(1e-8)[:, None]
    n = len(x)
    total = unit.sum(dim=0)
    mean_cos = (total.dot(total) - n) / (n * (n - 1))  # sum over pairs i != j without the n x n matrix
    return mean_cos.item(), (x.mean(dim=0).norm() / norms.mean()).item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+", help="soft weights folders, or 'shipped'")
    p.add_argument("--data", default="../shared/data/qmsum-train")
    p.add_argument("--examples", type=int, default=24, help="held-out examples (train-soft's first N)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    heldout = qmsum_examples(Path(args.data), "heldout")
    for spec in args.weights:
        path = SHIPPED if spec == "shipped" else Path(spec)
        config = SoftConfig.from_json((path / "soft_config.json").read_text())
        model, tokenizer = load_decoder(config.decoder)
        encoder = ConceptEncoder.load(path, model).eval()
        layout = ChatLayout.from_tokenizer(tokenizer)
        # train-soft's budgets for the shipped recipe: 192 context tokens, 32 answer tokens
        items = PreparedSet(heldout, tokenizer, layout, config.segment_tokens, 192, 32).take(
            range(min(args.examples, len(heldout)))
        )
        store = TeacherStore("memory", decoder_identity(model), torch.float32)
        token_rms = rms(encoder.embedding_table)
        with torch.no_grad():
            segments = [seg for item in items for seg in item.segments]
            concepts = torch.cat(encoder.encode(segments))
            concept_rms = rms(concepts)
            tokens = encoder.embed_tokens([t for seg in segments for t in seg])
            weight = encoder.proj.weight.float()
            diag = torch.diagonal(weight)
            off_row = (weight - torch.diag(diag)).norm(dim=1).mean().item()
            as_is = answer_metrics(Reader(encoder, layout), items, store, 2)
            rescaled = answer_metrics(Reader(Rescaled(encoder, token_rms), layout), items, store, 2)  # type: ignore[arg-type]
        print(
            f"{spec}: {len(segments)} held-out segments, {len(items)} held-out answers, load {os.getloadavg()[0]:.2f}"
        )
        print(
            f"  concept RMS {concept_rms:.4f} = {concept_rms / token_rms:.1f}x the token-embedding RMS {token_rms:.4f}"
        )
        (c_cos, c_shared), (t_cos, t_shared) = alike(concepts), alike(tokens)
        print(
            f"  alike: mean cosine {c_cos:.3f}, shared vector {c_shared:.2f} of the norm "
            f"(their tokens: {t_cos:.3f}, {t_shared:.2f})"
        )
        print(f"  projection: diagonal mean {diag.mean().item():.4f}, off-diagonal row norm {off_row:.4f}")
        print(
            f"  answer NLL: as trained {as_is['nll_student']:.3f}, rescaled to token RMS "
            f"{rescaled['nll_student']:.3f}, no context {as_is['nll_no_context']:.3f}, "
            f"every token {as_is['nll_teacher']:.3f}"
        )


if __name__ == "__main__":
    main()
