"""Ingest pipelines: parsing into plans, batch execution, processors and ``_simulate``."""

from .document import Doc
from .pipeline import Pipeline, Processor, Run, parse_pipeline, parse_processor, run_pipeline
from .simulate import execute, simulate

__all__ = ["Doc", "Pipeline", "Processor", "Run", "execute", "parse_pipeline", "parse_processor", "run_pipeline",
           "simulate"]
