"""The steps of ``promptpress train`` (its parsers: `train`): each checks the 'train' extra, then
imports what it runs. `run_all` runs them in turn with the arguments of ``train all``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptpress.compressor.extras import require

if TYPE_CHECKING:
    from promptpress.compressor.llamacpp import LocalBackend
    from promptpress.compressor.training.teachers import Teacher
    from promptpress.compressor.training.wordsplit import WordSplitter


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


def _splitter(encoder: str) -> WordSplitter:
    from transformers import AutoTokenizer

    from promptpress.compressor.assets import resolve
    from promptpress.compressor.training.wordsplit import WordSplitter

    return WordSplitter(AutoTokenizer.from_pretrained(resolve(encoder)))


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"train: {what} {p} does not exist")
    return p


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
    teacher, backend = _teacher(args, splitter)
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


def _teacher(args: argparse.Namespace, splitter: WordSplitter) -> tuple[Teacher, LocalBackend | None]:
    """The teacher `args` ask for, and the local llama.cpp backend started for it (if any)."""
    if args.teacher == "surprisal":
        from promptpress.compressor.training.surprisal import SurprisalTeacher

        return SurprisalTeacher(
            args.lm, rate=args.rate, condition=args.question, precision=args.precision
        ), None
    if args.teacher == "lexical":
        from promptpress.compressor.training.lexical import LexicalTeacher

        return LexicalTeacher(rate=args.rate), None
    from promptpress.compressor.training.llm_teacher import LLMTeacher

    url, model, backend = args.teacher_url, args.teacher_model, None
    if args.local_backend:
        from promptpress.compressor.llamacpp import LocalBackend

        backend = LocalBackend(threads=args.threads).start()
        url, model = backend.base_url, backend.model_name
    if not url or not model:
        raise SystemExit(
            "train label --teacher llm needs --teacher-url and --teacher-model (or --local-backend)"
        )
    return LLMTeacher(url, model, splitter, api_key_env=args.api_key_env), backend


def run_mix(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.corpus import write_jsonl
    from promptpress.compressor.training.labels import read_labelled
    from promptpress.compressor.training.mix import mix_labels
    from promptpress.compressor.training.qmsum import meeting_texts

    sources = []
    for spec in args.labels:
        path, _, weight = spec.rpartition(":") if _has_weight(spec) else (spec, "", "1")
        try:
            value = float(weight)
        except ValueError:
            raise SystemExit(f"train mix: --labels {spec!r}: the weight after ':' is not a number") from None
        sources.append((read_labelled(_existing(path, "labels file")), value))
    topics = meeting_texts(_existing(args.data, "data folder")) if args.topic_weight > 0 else None
    try:
        mixed = mix_labels(
            sources,
            topics=topics,
            topic_weight=args.topic_weight,
            rate=args.rate,
            splitter=_splitter(args.encoder) if topics is not None else None,
        )
    except ValueError as exc:
        raise SystemExit(f"train mix: {exc}") from None
    write_jsonl(args.out, (r.to_json() for r in mixed))
    print(
        json.dumps({"out": args.out, "windows": len(mixed), "teacher": mixed[0].teacher if mixed else None})
    )
    return 0


def _has_weight(spec: str) -> bool:
    head, sep, tail = spec.rpartition(":")
    return bool(sep and head and tail and not tail.startswith(("/", "\\")))


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
        snapshot_every=args.snapshot_every,
        seed=args.seed,
    )
    metrics = fit(records, config, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(metrics, indent=2))
    return 0


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


def run_export(args: argparse.Namespace) -> int:
    require("promptpress train", "train")
    from promptpress.compressor.training.package import export

    meta = export(_existing(args.model, "run folder"), args.out, args.name)
    print(json.dumps({"meta": str(meta), "weights": str(meta.with_suffix(".safetensors"))}, indent=2))
    return 0


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
    run_label(_label_args(args, corpus, labels, common))
    fit_labels = labels
    if args.topic_weight > 0:
        fit_labels = work / "labels-mixed.jsonl"
        run_mix(
            argparse.Namespace(
                labels=[str(labels)],
                out=str(fit_labels),
                data=args.data,
                topic_weight=args.topic_weight,
                rate=args.rate,
                encoder=args.encoder,
            )
        )
    run_fit(_fit_args(args, fit_labels, model, common))
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
        export = Path(args.export)
        run_export(argparse.Namespace(model=str(model), out=str(export.parent), name=export.name))
    return 0


def _label_args(
    args: argparse.Namespace, corpus: Path, labels: Path, common: dict[str, Any]
) -> argparse.Namespace:
    """``train label``'s arguments in ``train all``: the surprisal teacher."""
    return argparse.Namespace(
        corpus=str(corpus),
        out=str(labels),
        teacher="surprisal",
        encoder=args.encoder,
        train_windows=args.train_windows,
        heldout_windows=args.heldout_windows,
        rate=args.rate,
        lm=None,
        precision=args.precision,
        question=args.question,
        teacher_url=None,
        teacher_model=None,
        api_key_env="OPENAI_API_KEY",
        local_backend=False,
        **common,
    )


def _fit_args(
    args: argparse.Namespace, labels: Path, model: Path, common: dict[str, Any]
) -> argparse.Namespace:
    """``train fit``'s arguments in ``train all``: resumed, evaluated four times."""
    return argparse.Namespace(
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
        snapshot_every=0,
        resume=True,
        variation_quantile=0.95,
        max_gap=0.1,
        max_keep=0.9,
        answer_weight=args.answer_weight,
        **common,
    )
