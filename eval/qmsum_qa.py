"""QA F1 with a reader LLM over compressed long contexts (the heavier downstream check).

The held-out meetings' QMSum specific queries are asked over their full relevant turns (often
thousands of words, several encoder windows), compressed at each rate by the model (through
`TokenClassifierCompressor.compress`, the product path), seeded random word drop and truncation
(`promptpress.eval.baselines`); the answer is scored with LongBench's QA F1 against the gold
answer. The surprisal teacher is not in this table: running a 0.5B LM over every long context
costs more than the check itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptpress.compressor.training.labels import LabelledWindow
from promptpress.compressor.training.qmsum import qmsum_examples, read_meeting

from .baselines import RandomDropCompressor, TruncationCompressor
from .longbench import Prompt, Sample
from .metrics import qa_f1_score
from .reader import OpenAIReader

HELDOUT_DATASET = "qmsum_heldout"
PROMPT = (
    "Answer the question based on the meeting transcript below. Answer in a few sentences.\n\n"
    "Transcript:\n{context}\n\nQuestion: {question}\nAnswer:"
)


def qa_f1(
    compressor: Any,
    records: Sequence[LabelledWindow],
    url: str,
    model: str | None,
    rates: Sequence[float],
    *,
    limit: int = 20,
    seed: int = 0,
    data: str | Path = "../shared/data/qmsum-train",
    max_new_tokens: int = 128,
) -> dict[str, dict[str, float]]:
    meetings = sorted({r.window.meeting for r in records})
    examples = [ex for m in meetings for ex in read_meeting(Path(data) / f"{m}.json")][:limit]
    if not examples:
        raise ValueError("no held-out QMSum queries found for the QA check")
    methods = {
        "model": compressor,
        "random": RandomDropCompressor(seed),
        "truncation": TruncationCompressor(),
    }
    table: dict[str, dict[str, float]] = {"original": {}}
    with OpenAIReader(url, model or "default", stream=False, prompt_cache=None) as reader:

        def ask(context: str, question: str, answer: str) -> float:
            prompt = Prompt(
                PROMPT.format(context=context, question=question), chat=True, max_new_tokens=max_new_tokens
            )
            return qa_f1_score(reader.generate(prompt).text, answer)

        full = sum(ask(ex.context, ex.question, ex.answer) for ex in examples) / len(examples)
        for rate in rates:
            table["original"][f"{rate:g}"] = full
        for name, method in methods.items():
            table[name] = {}
            for rate in rates:
                scores = [
                    ask(method.compress(ex.context, rate=rate).compressed_text, ex.question, ex.answer)
                    for ex in examples
                ]
                table[name][f"{rate:g}"] = sum(scores) / len(scores)
    return table


def heldout_samples(data: str | Path = "../shared/data/qmsum-train") -> list[Sample]:
    """The held-out meetings' specific queries as LongBench samples (`qmsum_heldout`): the query,
    its relevant turns as the context, the annotator's answer. The meeting split is the training
    corpus's own (`qmsum.is_held_out`), so no context was trained on."""
    return [
        Sample(
            id=ex.source,
            dataset=HELDOUT_DATASET,
            input=ex.question,
            context=ex.context,
            answers=(ex.answer,),
            length=len(ex.context.split()),
        )
        for ex in qmsum_examples(data, "heldout")
    ]
