"""A loaded tree_ensemble model: columns in, :class:`TreeBatchResult` out."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..config import decompress_definition
from ..inference_config import ClassificationConfig, InferenceConfig
from ..results import TreeBatchResult
from .definition import EnsembleDef, parse_definition
from .evaluate import CompiledModel, resolve_device
from .features import Columns, any_present, feature_matrix
from .shap import PathTable

DEFAULT_BATCH_SIZE = 65536
#: rows per step with feature importance (TreeSHAP): a progress step, and what Ctrl-C waits for
IMPORTANCE_BATCH_SIZE = 8192
INTERRUPTED = "inference was interrupted before this row was inferred"


class TreeModel:
    def __init__(self, model_id: str, stored: dict[str, Any], device: str | None = None) -> None:
        raw = stored.get("definition")
        if raw is None:
            raw = decompress_definition(stored["compressed_definition"])
        self.model_id = model_id
        self.definition = parse_definition(raw)
        self.input_fields: list[str] = list(stored["input"]["field_names"])
        self.default_field_map: dict[str, str] = dict(stored.get("default_field_map") or {})
        self.device = resolve_device(device)
        self.compiled = CompiledModel(self.definition, self.device)
        model = self.definition.model
        self.labels = self.definition.classification_labels
        self.class_weights = model.classification_weights if isinstance(model, EnsembleDef) else None
        self._paths: PathTable | None = None
        self._groups: tuple[list[str], np.ndarray] | None = None
        self._tie_rank: np.ndarray | None = None

    # -- feature importance -------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return max(t.leaf_size for t in self.compiled.trees)

    def path_table(self) -> PathTable:
        if self._paths is None:
            index = {f: i for i, f in enumerate(self.compiled.features)}
            self._paths = PathTable(self.compiled.trees, index, self.num_outputs, self.device)
        return self._paths

    def importance_groups(self) -> tuple[list[str], np.ndarray]:
        """Reported names and the [model features, names] 0/1 matrix that sums encoded features."""
        if self._groups is None:
            decoder = self.definition.importance_decoder()
            names = {name: i for i, name in enumerate(self.definition.importance_report_names())}
            matrix = np.zeros((len(self.compiled.features), len(names)))
            for i, f in enumerate(self.compiled.features):
                matrix[i, names[decoder.get(f, f)]] = 1.0
            self._groups = (list(names), matrix)
        return self._groups

    def importance_tie_rank(self) -> np.ndarray:
        """Each reported name's place in the order ES lists equal importances in (``importance_groups``' order)."""
        if self._tie_rank is None:
            place = {name: i for i, name in enumerate(self.definition.importance_tie_order())}
            self._tie_rank = np.array([place[name] for name in self.importance_groups()[0]], dtype=np.int64)
        return self._tie_rank

    def importance(self, x: np.ndarray) -> np.ndarray:
        """Decoded SHAP values [rows, reported features, outputs]."""
        table = self.path_table()
        names, matrix = self.importance_groups()
        out = np.zeros((x.shape[0], len(names), self.num_outputs))
        if x.shape[0] == 0:
            return out
        step = table.rows_per_batch()
        group = torch.as_tensor(matrix, device=self.device)
        for start in range(0, x.shape[0], step):
            xt = torch.as_tensor(np.ascontiguousarray(x[start : start + step]), device=self.device)
            phi = table.contributions(xt)  # [rows, features, K]
            out[start : start + step] = torch.einsum("rfk,fg->rgk", phi, group).cpu().numpy()
        return out

    def infer_columns(
        self,
        cols: Columns,
        n: int,
        config: InferenceConfig,
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> TreeBatchResult:
        present = any_present(cols, self.input_fields, n)
        # only input.field_names survive into the model (spec §2.1 step 2)
        work: Columns = {f: cols[f] for f in self.input_fields if f in cols}
        for pre in self.definition.preprocessors:
            pre.process(work, n)
        x = feature_matrix(work, self.compiled.features, n)
        default = DEFAULT_BATCH_SIZE if config.num_top_feature_importance_values <= 0 else IMPORTANCE_BATCH_SIZE
        size = max(1, int(batch_size or default))
        values = np.zeros(n)
        probs: np.ndarray | None = None
        errors: list[str | None] = [None] * n
        importance = None
        if config.num_top_feature_importance_values > 0:
            importance = np.zeros((n, len(self.importance_groups()[0]), self.num_outputs))
        done = 0
        if hasattr(self.compiled.packed, "job_rows"):
            self.compiled.packed.job_rows = n
        try:
            for start in range(0, n, size):
                stop = min(n, start + size)
                raw = self.compiled.run(x[start:stop])
                values[start:stop] = raw.values
                if raw.probabilities is not None:
                    if probs is None:
                        probs = np.zeros((n, raw.probabilities.shape[1]))
                    probs[start:stop] = raw.probabilities
                errors[start:stop] = raw.row_errors
                if importance is not None:
                    importance[start:stop] = self.importance(x[start:stop])
                done = stop
                if on_batch is not None:
                    on_batch(stop - start)
        except KeyboardInterrupt:
            # finished batches are kept; the rest is marked, never silently dropped
            errors[done:] = [INTERRUPTED] * (n - done)
        interrupted_at = done if done < n else None
        if isinstance(config, ClassificationConfig) and probs is None:
            probs = np.zeros((n, len(self.labels) if self.labels else 2))
        return TreeBatchResult(
            model_id=self.model_id,
            config=config,
            values=values,
            probabilities=probs if isinstance(config, ClassificationConfig) else None,
            warning=~present,
            errors=errors if errors.count(None) == n else [e if p else None for e, p in zip(errors, present)],
            labels=self.labels,
            class_weights=self.class_weights,
            importance=importance,
            importance_names=self.importance_groups()[0] if importance is not None else None,
            importance_tie_rank=self.importance_tie_rank() if importance is not None else None,
            extra={"interrupted_at": interrupted_at} if interrupted_at is not None else {},
        )
