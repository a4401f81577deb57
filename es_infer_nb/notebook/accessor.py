"""``df.infer`` / ``series.infer``: run Elasticsearch models over pandas objects.

Registered on ``import es_infer_nb``. Results come back as columns named by the ES
field path (``ml.inference.predicted_value``, ...), aligned to the frame's index:
rows are never dropped or reordered; nested values are ``pd.ArrowDtype`` columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def _engine(engine: "Engine | None") -> "Engine":
    if engine is not None:
        return engine
    from ..engine import default_engine

    return default_engine()


@pd.api.extensions.register_dataframe_accessor("infer")
class InferFrameAccessor:
    """Elasticsearch inference over a DataFrame: ``df.infer.run(model_id)``."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def run(
        self,
        model_id: str,
        *,
        engine: "Engine | None" = None,
        inference_config: dict[str, Any] | None = None,
        field_map: dict[str, str] | None = None,
        target_field: str | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        progress: bool | None = None,
        inplace: bool = False,
    ) -> pd.DataFrame | None:
        """Run a trained model (id or alias) over every row.

        Arguments follow the ES ``inference`` processor: ``inference_config`` is an
        update object (``{"classification": {"num_top_classes": 2}}``), ``field_map``
        maps frame columns to model input fields, ``target_field`` defaults to
        ``ml.inference``. Returns the frame with the result columns appended (columns
        of the same name are replaced), or ``None`` with ``inplace=True``.
        Raises :class:`es_infer_nb.ApiError` with the Elasticsearch error on bad input.
        """
        from ..models.runner import infer_frame

        results = infer_frame(
            _engine(engine), model_id, self._frame, inference_config=inference_config, field_map=field_map,
            target_field=target_field, batch_size=batch_size, device=device, progress=progress,
        )
        if inplace:
            for name in results.columns:
                self._frame[name] = results[name]
            return None
        base = self._frame.drop(columns=[c for c in results.columns if c in self._frame.columns])
        return pd.concat([base, results], axis=1)


@pd.api.extensions.register_series_accessor("infer")
class InferSeriesAccessor:
    """Elasticsearch inference over one column: ``s.infer.run(model_id)``."""

    def __init__(self, series: pd.Series) -> None:
        self._series = series

    def run(self, model_id: str, *, field: str | None = None, engine: "Engine | None" = None,
            **kwargs: Any) -> pd.DataFrame:
        """Run a model whose input is this column (named ``field``, default the model's first input field)."""
        eng = _engine(engine)
        if field is None:
            resp = eng.request("GET", f"_ml/trained_models/{model_id}").raise_for_status()
            field = resp.body["trained_model_configs"][0]["input"]["field_names"][0]
        frame = self._series.to_frame(name=field)
        from ..models.runner import infer_frame

        return infer_frame(eng, model_id, frame, **kwargs)
