"""``promptpress train ...``: build, label, fit, evaluate and export the token-classifier compressor.

    promptpress train corpus   --out runs/c/corpus.jsonl
    promptpress train label    --corpus runs/c/corpus.jsonl --out runs/c/labels.jsonl --teacher surprisal
    promptpress train mix      --labels runs/c/labels.jsonl:1 --labels runs/c/lexical.jsonl:1 --out runs/c/mixed.jsonl
    promptpress train fit      --labels runs/c/labels.jsonl --out runs/c/model
    promptpress train evaluate --labels runs/c/labels.jsonl --model runs/c/model/final
    promptpress train export   --model runs/c/model --name NAME    (-> compressor/models/NAME.*)
    promptpress train all      --workdir runs/c [--export compressor/models/NAME]   (all of the above)

Each step reads the previous step's file, so a step can be rerun alone; `label` and `fit` resume.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .train_steps import run_all, run_corpus, run_evaluate, run_export, run_fit, run_label, run_mix

if TYPE_CHECKING:
    _Steps = argparse._SubParsersAction[argparse.ArgumentParser]
DEFAULT_DATA = "../shared/data/qmsum-train"
DEFAULT_ENCODER = "package:all-minilm-l6-v2"


def register(subparsers: _Steps) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a token-classification compressor (corpus -> teacher labels -> fit -> evaluate)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = p.add_subparsers(dest="train_step", required=True, metavar="STEP")
    _corpus(steps)
    _label(steps)
    _mix(steps)
    _fit(steps)
    _evaluate(steps)
    _export(steps)
    _all(steps)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, help="also log to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


# ---------------------------------------------------------------------------------------- corpus
def _corpus(steps: _Steps) -> None:
    p = steps.add_parser("corpus", help="split QMSum-format meetings into windows (JSON lines)")
    p.add_argument("--data", default=DEFAULT_DATA, help="folder of QMSum meeting JSON files")
    p.add_argument("--out", required=True, help="windows file (.jsonl)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder whose tokenizer measures windows")
    p.add_argument("--max-tokens", type=int, default=400, help="encoder tokens per window")
    p.add_argument("--held-out", type=float, default=0.1, help="share of meetings held out")
    p.set_defaults(handler=run_corpus)


# ---------------------------------------------------------------------------------------- label
def _label(steps: _Steps) -> None:
    p = steps.add_parser("label", help="label windows word by word with a teacher (resumable)")
    p.add_argument("--corpus", required=True, help="windows file from `train corpus`")
    p.add_argument("--out", required=True, help="labels file (.jsonl, appended to)")
    p.add_argument("--teacher", choices=["surprisal", "lexical", "llm"], default="surprisal")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--train-windows", type=int, default=None, help="label at most this many training windows")
    p.add_argument("--heldout-windows", type=int, default=None, help="... and held-out windows")
    p.add_argument("--rate", type=float, default=0.5, help="surprisal, lexical: share of words labelled keep")
    p.add_argument("--lm", default=None, help="surprisal: causal LM spec (default: packaged Qwen2.5 0.5B)")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="surprisal: bf16 autocast (~3x faster on CPUs with AVX-512 BF16 or AMX)",
    )
    p.add_argument(
        "--question", action="store_true", help="condition the teacher on the window's QMSum query"
    )
    p.add_argument("--teacher-url", default=None, help="llm: OpenAI-compatible base URL (…/v1)")
    p.add_argument("--teacher-model", default=None, help="llm: model name")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="llm: env variable holding the API key")
    p.add_argument(
        "--local-backend", action="store_true", help="llm: start the packaged llama.cpp server as the teacher"
    )
    _common(p)
    p.set_defaults(handler=run_label)


# ---------------------------------------------------------------------------------------- mix
def _mix(steps: _Steps) -> None:
    p = steps.add_parser(
        "mix", help="mix several label files (and QMSum's queries and answers) into one label set"
    )
    p.add_argument(
        "--labels",
        action="append",
        required=True,
        metavar="FILE[:WEIGHT]",
        help="a labels file from `train label` and its weight (default 1); repeat for each teacher",
    )
    p.add_argument("--out", required=True, help="mixed labels file (.jsonl, rewritten)")
    p.add_argument("--data", default=DEFAULT_DATA, help="QMSum folder the corpus came from (topic words)")
    p.add_argument(
        "--topic-weight",
        type=float,
        default=1.0,
        help="bonus for content words of the meeting's QMSum queries, answers and topics (train windows)",
    )
    p.add_argument("--rate", type=float, default=0.5, help="share of words labelled keep")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.set_defaults(handler=run_mix)


# ---------------------------------------------------------------------------------------- fit
def _fit(steps: _Steps) -> None:
    p = steps.add_parser("fit", help="fine-tune the encoder as a keep/drop token classifier (resumable)")
    p.add_argument("--labels", required=True, help="labels file from `train label`")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, train.log, final/)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default: 5e-4 (lora), 5e-5 (full)")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=25)
    p.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        help="also write a loadable model to OUT/snapshots/step-N every N steps (choose the step by downstream scores)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--variation-quantile", type=float, default=0.95, help="LLM labels: VR filter quantile")
    p.add_argument("--max-gap", type=float, default=0.1, help="LLM labels: alignment gap filter")
    p.add_argument(
        "--max-keep", type=float, default=0.9, help="LLM labels: drop windows the teacher barely cut"
    )
    p.add_argument(
        "--answer-weight",
        type=float,
        default=0.0,
        help="mix QMSum answer/query words into training labels (0: teacher labels only; 1: answer words first)",
    )
    _common(p)
    p.set_defaults(handler=run_fit)


# ---------------------------------------------------------------------------------------- evaluate
def _evaluate(steps: _Steps) -> None:
    p = steps.add_parser("evaluate", help="held-out F1/AUC, answer retention and speed vs baselines")
    p.add_argument("--labels", required=True, help="labels file (its held-out windows are used)")
    p.add_argument(
        "--model", required=True, help="checkpoint dir, run folder, builtin:NAME or any model spec"
    )
    p.add_argument("--rates", default="0.5,0.33,0.2")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--qa-url", default=None, help="QA F1 with this OpenAI-compatible reader (…/v1)")
    p.add_argument("--qa-model", default=None)
    p.add_argument("--qa-limit", type=int, default=20, help="QA F1: held-out queries to ask")
    p.add_argument("--data", default=DEFAULT_DATA, help="QA F1: the QMSum folder the corpus came from")
    _common(p)
    p.set_defaults(handler=run_evaluate)


# ---------------------------------------------------------------------------------------- export
def _export(steps: _Steps) -> None:
    p = steps.add_parser("export", help="write a LoRA run's small shippable weights (adapter + head)")
    p.add_argument("--model", required=True, help="run folder of `train fit --method lora`")
    p.add_argument("--name", required=True, help="model name (builtin:NAME once shipped)")
    p.add_argument("--out", default="compressor/models", help="folder for NAME.safetensors + NAME.json")
    p.set_defaults(handler=run_export)


# ---------------------------------------------------------------------------------------- all
def _all(steps: _Steps) -> None:
    p = steps.add_parser("all", help="corpus, label, (mix,) fit, evaluate (and export) in one go, resumable")
    p.add_argument(
        "--workdir", required=True, help="folder for corpus.jsonl, labels.jsonl, model/, eval.json"
    )
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--train-windows", type=int, default=None)
    p.add_argument("--heldout-windows", type=int, default=None)
    p.add_argument("--rate", type=float, default=0.5, help="surprisal teacher: share of words labelled keep")
    p.add_argument("--question", action="store_true", help="condition the teacher on QMSum queries")
    p.add_argument(
        "--precision", choices=["fp32", "bf16"], default="fp32", help="surprisal teacher: see `train label`"
    )
    p.add_argument(
        "--topic-weight",
        type=float,
        default=0.0,
        help="> 0: fit on `train mix` labels (the teacher's + the meeting's QMSum topic words, this weight)",
    )
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--answer-weight", type=float, default=0.0, help="see `train fit --answer-weight`")
    p.add_argument(
        "--export", default=None, help="DIR/NAME: write NAME.safetensors + NAME.json in DIR at the end"
    )
    _common(p)
    p.set_defaults(handler=run_all)
