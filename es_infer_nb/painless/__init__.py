"""Painless, the subset es_infer_nb runs: the ``script`` ingest processor's statements and
ml-commons connectors' pre- and post-process scripts, and the ``if`` conditions of ingest processors
that ``ingest/condition.py``'s expression evaluator does not read (its last expression statement is
the condition's value).

A script is parsed to tuples (:mod:`.syntax`) and walked by an interpreter (:mod:`.interpreter`) over
JSON-like values with Java's rules (:mod:`.values`): no Python ``eval`` / ``exec``, no attribute lookup
on Python objects, a loop counter and a time limit per run.
"""

from .interpreter import MAX_LOOP_COUNTER, Program, compile_script

__all__ = ["MAX_LOOP_COUNTER", "Program", "compile_script"]
