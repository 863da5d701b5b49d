"""Evaluation: LongBench-format datasets, metrics, runners and reports.

Command line: ``promptpress eval run|report|build-squad`` (`promptpress.eval.commands.register`).
Modules: `longbench` (loader, templates, truncation), `metrics` (LongBench's metrics),
`squad_longdoc` (the SQuAD long-document suite), `baselines` (truncation, random drop),
`methods` (method names -> compressors), `reader` (OpenAI-compatible client), `runner`
(resumable methods x rates runs), `report` (markdown table and PNG plots).
"""

from .baselines import RandomDropCompressor, TruncationCompressor
from .longbench import Sample, build_prompt, load_dataset
from .methods import Method, make_method, register_method
from .metrics import DATASET2METRIC, score_dataset, score_sample
from .reader import OpenAIReader
from .report import write_report
from .runner import RunConfig, Runner

__all__ = [
    "DATASET2METRIC",
    "Method",
    "OpenAIReader",
    "RandomDropCompressor",
    "RunConfig",
    "Runner",
    "Sample",
    "TruncationCompressor",
    "build_prompt",
    "load_dataset",
    "make_method",
    "register_method",
    "score_dataset",
    "score_sample",
    "write_report",
]
