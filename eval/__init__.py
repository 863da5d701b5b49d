"""Evaluation: LongBench-format datasets, metrics, runners and reports."""
