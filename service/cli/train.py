"""``promptpress train ...``: build, label, fit, evaluate and export the token-classifier compressor.

    promptpress train corpus   --out runs/c/corpus.jsonl
    promptpress train label    --corpus runs/c/corpus.jsonl --out runs/c/labels.jsonl --teacher surprisal
    promptpress train fit      --labels runs/c/labels.jsonl --out runs/c/model
    promptpress train evaluate --labels runs/c/labels.jsonl --model runs/c/model/final
    promptpress train export   --model runs/c/model --name NAME    (-> compressor/models/NAME.*)
    promptpress train all      --workdir runs/c [--export compressor/models/NAME]   (all of the above)

Each step reads the previous step's file, so a step can be rerun alone; `label` and `fit` resume.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from promptpress.compressor.extras import require

DEFAULT_DATA = "../shared/data/qmsum-train"
DEFAULT_ENCODER = "package:all-minilm-l6-v2"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "train",
        help="train a token-classification compressor (corpus -> teacher labels -> fit -> evaluate)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = p.add_subparsers(dest="train_step", required=True, metavar="STEP")
    _corpus(steps)
    _label(steps)
    _fit(steps)
    _evaluate(steps)
    _export(steps)
    _all(steps)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, help="also log to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _setup(args: argparse.Namespace) -> None:
    import random

    import numpy as np
    import torch

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", handlers=handlers, force=True
    )


def _splitter(encoder: str):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from promptpress.compressor.assets import resolve
    from promptpress.compressor.training.wordsplit import WordSplitter

    return WordSplitter(AutoTokenizer.from_pretrained(resolve(encoder)))


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"train: {what} {p} does not exist")
    return p


# ---------------------------------------------------------------------------------------- corpus
def _corpus(steps: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = steps.add_parser("corpus", help="split QMSum-format meetings into windows (JSON lines)")
    p.add_argument("--data", default=DEFAULT_DATA, help="folder of QMSum meeting JSON files")
    p.add_argument("--out", required=True, help="windows file (.jsonl)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder whose tokenizer measures windows")
    p.add_argument("--max-tokens", type=int, default=400, help="encoder tokens per window")
    p.add_argument("--held-out", type=float, default=0.1, help="share of meetings held out")
    p.set_defaults(handler=run_corpus)


def run_corpus(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.corpus import build_corpus, write_jsonl

    if not 16 <= args.max_tokens <= 510:
        raise SystemExit("train corpus: --max-tokens must be in 16..510 (the encoder reads 512 tokens)")
    splitter = _splitter(args.encoder)
    windows = list(
        build_corpus(_existing(args.data, "data folder"), splitter, args.max_tokens, args.held_out)
    )
    write_jsonl(args.out, (w.to_json() for w in windows))
    summary = {
        "out": args.out,
        "windows": len(windows),
        "train": sum(w.split == "train" for w in windows),
        "heldout": sum(w.split == "heldout" for w in windows),
        "with_queries": sum(bool(w.queries) for w in windows),
        "meetings": len({w.meeting for w in windows}),
    }
    print(json.dumps(summary, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- label
def _label(steps: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = steps.add_parser("label", help="label windows word by word with a teacher (resumable)")
    p.add_argument("--corpus", required=True, help="windows file from `train corpus`")
    p.add_argument("--out", required=True, help="labels file (.jsonl, appended to)")
    p.add_argument("--teacher", choices=["surprisal", "llm"], default="surprisal")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--train-windows", type=int, default=None, help="label at most this many training windows")
    p.add_argument("--heldout-windows", type=int, default=None, help="... and held-out windows")
    p.add_argument("--rate", type=float, default=0.5, help="surprisal: share of words labelled keep")
    p.add_argument("--lm", default=None, help="surprisal: causal LM spec (default: packaged Qwen2.5 0.5B)")
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


def run_label(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.corpus import read_windows, sample_windows
    from promptpress.compressor.training.labels import label_windows

    _setup(args)
    windows = read_windows(_existing(args.corpus, "corpus file"))
    # held-out windows first: an interrupted run still leaves something to evaluate on
    chosen = sample_windows(windows, "heldout", args.heldout_windows, args.seed, prefer_queries=True)
    chosen += sample_windows(windows, "train", args.train_windows, args.seed)
    splitter = _splitter(args.encoder)
    backend = None
    if args.teacher == "surprisal":
        from promptpress.compressor.training.surprisal import SurprisalTeacher

        teacher = SurprisalTeacher(args.lm, rate=args.rate, condition=args.question)
    else:
        from promptpress.compressor.training.llm_teacher import LLMTeacher

        url, model = args.teacher_url, args.teacher_model
        if args.local_backend:
            from promptpress.compressor.llamacpp import LocalBackend

            backend = LocalBackend(threads=args.threads).start()
            url, model = backend.base_url, backend.model_name
        if not url or not model:
            raise SystemExit(
                "train label --teacher llm needs --teacher-url and --teacher-model (or --local-backend)"
            )
        teacher = LLMTeacher(url, model, splitter, api_key_env=args.api_key_env)  # type: ignore[assignment]
    try:
        stats = label_windows(
            chosen, teacher, splitter, args.out, question=args.question, progress=not args.no_progress
        )
    finally:
        teacher.close()
        if backend is not None:
            backend.stop()
    logging.getLogger("promptpress.train").info("label %s", json.dumps(stats))
    print(json.dumps({"out": args.out, "teacher": teacher.name, **stats}, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- fit
def _fit(steps: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def run_fit(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.fit import FitConfig, fit
    from promptpress.compressor.training.labels import read_labelled

    _setup(args)
    records = read_labelled(
        _existing(args.labels, "labels file"),
        variation_quantile=args.variation_quantile,
        max_gap=args.max_gap,
        max_keep=args.max_keep,
    )
    if args.answer_weight > 0:
        from promptpress.compressor.training.labels import mix_answer_words

        records = mix_answer_words(records, _splitter(args.encoder), args.answer_weight)
    config = FitConfig(
        out_dir=args.out,
        encoder=args.encoder,
        method=args.method,
        lora_r=args.lora_r,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr if args.lr is not None else (5e-4 if args.method == "lora" else 5e-5),
        eval_every=args.eval_every,
        save_every=args.save_every,
        seed=args.seed,
    )
    metrics = fit(records, config, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(metrics, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- evaluate
def _evaluate(steps: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def run_evaluate(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.evaluate import evaluate, format_table, load_model
    from promptpress.compressor.training.labels import read_labelled, teacher_speed

    _setup(args)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if not rates or any(not 0 < r <= 1 for r in rates):
        raise SystemExit("train evaluate: --rates must be numbers in (0, 1]")
    labelled = read_labelled(_existing(args.labels, "labels file"))
    records = [r for r in labelled if r.window.split == "heldout"]
    if not records:
        raise SystemExit(
            "train evaluate: the labels file has no held-out windows (label with --heldout-windows)"
        )
    report = evaluate(
        records,
        args.model,
        rates,
        seed=args.seed,
        teacher_words_per_second=teacher_speed(labelled),
    )
    if args.qa_url:
        require("train evaluate --qa-url", "eval")
        from promptpress.eval.qmsum_qa import qa_f1

        report["qa_f1"] = qa_f1(
            load_model(args.model),
            records,
            args.qa_url,
            args.qa_model,
            rates,
            limit=args.qa_limit,
            seed=args.seed,
            data=args.data,
        )
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- export
def _export(steps: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = steps.add_parser("export", help="write a LoRA run's small shippable weights (adapter + head)")
    p.add_argument("--model", required=True, help="run folder of `train fit --method lora`")
    p.add_argument("--name", required=True, help="model name (builtin:NAME once shipped)")
    p.add_argument("--out", default="compressor/models", help="folder for NAME.safetensors + NAME.json")
    p.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.package import export

    meta = export(_existing(args.model, "run folder"), args.out, args.name)
    print(json.dumps({"meta": str(meta), "weights": str(meta.with_suffix(".safetensors"))}, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- all
def _all(steps: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = steps.add_parser("all", help="corpus, label, fit, evaluate (and export) in one go, resumable")
    p.add_argument(
        "--workdir", required=True, help="folder for corpus.jsonl, labels.jsonl, model/, eval.json"
    )
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--train-windows", type=int, default=None)
    p.add_argument("--heldout-windows", type=int, default=None)
    p.add_argument("--rate", type=float, default=0.5, help="surprisal teacher: share of words labelled keep")
    p.add_argument("--question", action="store_true", help="condition the teacher on QMSum queries")
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


def run_all(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    common = {
        "threads": args.threads,
        "seed": args.seed,
        "log": args.log or str(work / "train.log"),
        "no_progress": args.no_progress,
    }
    corpus, labels, model = work / "corpus.jsonl", work / "labels.jsonl", work / "model"
    if not corpus.exists():
        run_corpus(
            argparse.Namespace(
                data=args.data, out=str(corpus), encoder=args.encoder, max_tokens=400, held_out=0.1
            )
        )
    run_label(
        argparse.Namespace(
            corpus=str(corpus),
            out=str(labels),
            teacher="surprisal",
            encoder=args.encoder,
            train_windows=args.train_windows,
            heldout_windows=args.heldout_windows,
            rate=args.rate,
            lm=None,
            question=args.question,
            teacher_url=None,
            teacher_model=None,
            api_key_env="OPENAI_API_KEY",
            local_backend=False,
            **common,
        )
    )
    run_fit(
        argparse.Namespace(
            labels=str(labels),
            out=str(model),
            encoder=args.encoder,
            method=args.method,
            lora_r=args.lora_r,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            eval_every=max(1, args.steps // 4),
            save_every=25,
            resume=True,
            variation_quantile=0.95,
            max_gap=0.1,
            max_keep=0.9,
            answer_weight=args.answer_weight,
            **common,
        )
    )
    run_evaluate(
        argparse.Namespace(
            labels=str(labels),
            model=str(model),
            rates="0.5,0.33,0.2",
            json=str(work / "eval.json"),
            qa_url=None,
            qa_model=None,
            qa_limit=20,
            data=args.data,
            **common,
        )
    )
    if args.export:
        run_export(
            argparse.Namespace(
                model=str(model), out=str(Path(args.export).parent), name=Path(args.export).name
            )
        )
    return 0
