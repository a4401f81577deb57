"""``df.infer`` / ``series.infer``: run Elasticsearch trained models over pandas objects.

Registered on ``import es_infer_nb``::

    import es_infer_nb
    out = df.infer.run("my-regression")           # df + ml.inference.* columns
    df.infer.run("my-classifier", inference_config={"classification": {"num_top_classes": 2}},
                 target_field="pred", inplace=True)
    preds = df["text"].infer.run("my-ner")        # only the result columns

Result columns are named by the field path Elasticsearch would write
(``ml.inference.predicted_value``, ``ml.inference.top_classes``, ...), aligned to the
caller's index: rows are never dropped or reordered, and nested results are
``pd.ArrowDtype`` columns. Keyword names follow the ES ``inference`` processor JSON.
API errors (unknown model, wrong inference_config, ...) raise
:class:`es_infer_nb.ApiError` with the Elasticsearch ``type``, ``reason`` and ``status``.

Evaluation against the true values: ``out.infer.evaluate(y_test)`` (classification or regression
metrics, confusion matrix, calibration / residuals; :mod:`es_infer_nb.frames.evaluate`); feature
importance over the rows: ``out.infer.importance_summary()`` (beeswarm and mean |importance| bars).

Plain arrays and search over result frames: ``out.infer.vectors()`` (an ``(n, d)`` float32
matrix), ``.proba()`` (a frame per class), ``.importance_frame()`` (rows x features),
``.knn(query, k)`` (also ``series.infer.knn`` on a Series of embeddings) and
``.rerank(query, endpoint_id, text_column)`` (:mod:`es_infer_nb.frames.arrays`,
:mod:`es_infer_nb.frames.search`).

A run that lasts more than ~2 s shows one ``tqdm.auto`` progress bar (rows/s; ``progress=False``:
none). Ctrl-C stops the work in flight within about a second: the
:class:`es_infer_nb.InferenceInterrupted` raised keeps the finished rows in ``.partial`` and
``.resume()`` runs only the rest (see :mod:`es_infer_nb.frames.resume`).

Accessor instances keep no state (pandas builds a new one on every attribute access);
notebook-wide defaults for ``device``, ``batch_size`` and ``progress`` live in
:data:`es_infer_nb.notebook.options.options` (set by ``%config InferMagic.<name>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..engine import default_engine
from ..errors import ApiError, InferenceInterrupted
from ..frames import target_prefix
from ..frames.arrays import embedding_column, importance_frame, proba_frame, result_column, to_vectors
from ..frames.evaluate import align_truth, evaluate
from ..frames.resume import run_resumable
from .options import options

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["InferFrameAccessor", "InferSeriesAccessor"]


@contextmanager
def _suggest_ids(engine: "Engine", model_id: Any) -> Iterator[None]:
    """A 404 for ``model_id`` raised inside gets the closest known ids as its Python-side hint."""
    try:
        yield
    except ApiError as exc:
        known = getattr(engine, "known_ids", None)
        exc.suggest(str(model_id), known() if callable(known) else [])
        raise


def _engine(engine: "Engine | None") -> "Engine":
    if engine is not None:
        return engine

    return default_engine()


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    try:
        return len(value) > 0
    except TypeError:
        return not pd.isna(value)


def _defaults(batch_size: int | None, device: str | None, progress: bool | None) -> dict[str, Any]:
    """The call's batch size, device and progress, else the notebook's defaults (``%config InferMagic``)."""
    return {"batch_size": batch_size if batch_size is not None else options.batch_size,
            "device": device if device is not None else options.device,
            "progress": progress if progress is not None else options.progress}


def _check_resume(resume: Any, frame: Any, model_id: str) -> InferenceInterrupted:
    if not isinstance(resume, InferenceInterrupted) or not resume.resumable:
        raise TypeError("resume= takes the es_infer_nb.InferenceInterrupted raised by an interrupted "
                        f"df.infer.run / series.infer.run, found {type(resume).__name__}")
    key = getattr(resume, "_key", None)
    if not (isinstance(key, tuple) and key[0] == model_id and key[1].equals(frame.index)):
        raise ValueError(f"resume=: that interrupted run was not over these rows with model [{model_id}]")
    return resume


def _nearest(values: pd.Series, query: Any, k: int, *, metric: str, model_id: str | None,
             engine: "Engine | None", device: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of the ``k`` embeddings of ``values`` nearest to ``query`` (a text, embedded
    by ``model_id``, or a vector), best first (:func:`es_infer_nb.frames.search.nearest`)."""
    from ..frames import search

    eng = _engine(engine)
    matrix = to_vectors(values)
    dev = device if device is not None else options.device
    if isinstance(query, str):
        if model_id is None:
            raise ValueError("a text query needs the model that wrote the embeddings: pass model_id= "
                             "(or pass the query's vector)")
        with _suggest_ids(eng, model_id):
            vector = search.embed_query(eng, model_id, query, dev)
    else:
        vector = np.asarray(query, dtype=np.float32)
    return search.nearest(matrix, vector, k, metric=metric, engine=eng, device=dev)


@pd.api.extensions.register_dataframe_accessor("infer")
class InferFrameAccessor:
    """Elasticsearch inference over a DataFrame: ``df.infer.run(model_id)``.

    The frame's columns are the documents' fields; a column named with dots
    (``"user.age"``) stands for the nested field ``user.age``.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):  # pragma: no cover - pandas only gives frames
            raise AttributeError(f"Can only use the '.infer' accessor with a DataFrame, not {type(frame).__name__}.")
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
        input_output: dict[str, str] | list[dict[str, str]] | None = None,
        resume: InferenceInterrupted | None = None,
        precision: str | None = None,
    ) -> pd.DataFrame | None:
        """Run a trained model (id, alias or deployment id) over every row of the frame.

        Parameters
        ----------
        model_id:
            Trained model id or alias, as in ``PUT _ml/trained_models/<model_id>``.
        engine:
            The :class:`es_infer_nb.Engine` holding the model; default
            :func:`es_infer_nb.default_engine`.
        inference_config:
            An inference config update, as in the ``inference`` processor, e.g.
            ``{"classification": {"num_top_classes": 2}}`` or
            ``{"regression": {"num_top_feature_importance_values": 3}}``.
        field_map:
            ``{column: model_field}``: feed a column to a model input field of another name.
        target_field:
            Prefix of the result columns (default ``"ml.inference"``).
        batch_size:
            Rows per model call (default: notebook option, else the model's choice).
        device:
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (default: notebook option, else the
            engine's device).
        progress:
            The call's one progress bar: ``True`` at once, ``False`` none at all (default: notebook
            option, else shown once the call has run for ~2 s).
        inplace:
            Add the result columns to this frame and return ``None``.
        input_output:
            NLP (pytorch) models only, as in the ES ``inference`` processor:
            ``{"input_field": "title", "output_field": "title_vec"}`` or a list of them. Each input
            column is inferred and written as ES would write it (the value at ``output_field``;
            ``is_truncated`` and, for the first input, ``model_id`` beside it); rows whose input
            failed get the message in ``<output_field>.error``. Not combined with
            ``target_field`` / ``field_map``.
        resume:
            The :class:`es_infer_nb.InferenceInterrupted` an interrupted ``run`` over these rows
            (same index) with this model raised: only the rows it did not reach are run, with
            the interrupted call's arguments and rows, and the full result is returned (same as
            ``exc.resume()``).
        precision:
            NLP (pytorch) models: ``"auto"`` (default: the fastest that stays within cosine 0.9999
            of float32 here: bf16 on AMX / AVX512-BF16 CPUs, fp16 on CUDA, else fp32), ``"fp32"``,
            ``"bf16"``, ``"fp16"`` or ``"int8"`` (dynamic, CPU). Default: the deployment's.

        Returns
        -------
        pandas.DataFrame or None
            A new frame: the input columns followed by the result columns (an input
            column with a result column's name is replaced in its position), same
            index, same row order, every row present. ``None`` with ``inplace=True``.
            The input frame is not modified unless ``inplace=True``.

        Raises
        ------
        es_infer_nb.ApiError
            For what Elasticsearch would reject (404 ``resource_not_found_exception``
            for an unknown model, 400 for a wrong ``inference_config``, ...).
        es_infer_nb.InferenceInterrupted
            On Ctrl-C: ``.partial`` is the frame this call would have returned, the rows not
            reached marked with an ``error``; ``.resume()`` finishes the run. The input frame is
            left as it was (also with ``inplace=True``) until a run finishes.

        Warns
        -----
        UserWarning
            When no column of the frame is one of the model's input fields, or when some of
            them are not columns (naming them and the closest column names).
        ValueError
            A text model (or ``_inference`` endpoint) whose text field is not a column, on a
            frame with several text columns and no ``field_map`` (one text column is used).
        """
        if resume is not None:
            return _check_resume(resume, self._frame, model_id).resume()
        eng = _engine(engine)
        with _suggest_ids(eng, model_id):
            from ..frames.run import run_frame  # the model code loads on first use

            return run_frame(eng, self._frame, model_id, inference_config=inference_config, field_map=field_map,
                             target_field=target_field, input_output=input_output, precision=precision,
                             inplace=inplace, stacklevel=3, **_defaults(batch_size, device, progress))

    def pipeline(
        self,
        pipeline: str | dict[str, Any],
        *,
        engine: "Engine | None" = None,
        chunk_size: int | None = None,
        device: str | None = None,
    ) -> pd.DataFrame:
        """Run an ingest pipeline over the frame, one document per row.

        Parameters
        ----------
        pipeline:
            A stored pipeline id (``PUT _ingest/pipeline/<id>``) or a pipeline body
            (``{"processors": [...], "on_failure": [...]}``), exactly as Elasticsearch takes it.
        engine:
            The :class:`es_infer_nb.Engine` holding models and pipelines; default
            :func:`es_infer_nb.default_engine`.
        chunk_size:
            Documents per batch through the executor (default 50,000); every inference
            processor makes one model call per batch.
        device:
            Where the pipeline's models run (default: notebook option, else the engine's device).

        Returns
        -------
        pandas.DataFrame
            One row per input row, same index and order: each document's resulting
            ``_source`` as dotted columns (the input columns first, then new fields; lists
            and objects as ``pd.ArrowDtype`` columns), ``_ingest.dropped`` (bool) for
            documents a ``drop`` processor dropped (kept and marked), and, when some
            document failed, ``_ingest.error.type`` / ``_ingest.error.reason`` /
            ``_ingest.error.processor_type`` / ``_ingest.error.processor_tag`` (failed rows
            keep their input values). Ingest stats of a stored pipeline move as in
            Elasticsearch (``GET _ml/trained_models/<id>/_stats`` ``ingest`` section).

        Raises
        ------
        es_infer_nb.ApiError
            For a pipeline Elasticsearch would reject (``parse_exception`` with the
            processor's type and property) or an unknown pipeline id.
        """
        from ..frames.pipeline import run_frame_pipeline

        return run_frame_pipeline(_engine(engine), self._frame, pipeline, chunk_size=chunk_size,
                                  device=device if device is not None else options.device)

    def simulate(
        self,
        pipeline: str | dict[str, Any],
        *,
        engine: "Engine | None" = None,
        verbose: bool = False,
        request_only: bool = False,
        device: str | None = None,
    ) -> dict[str, Any]:
        """``POST _ingest/pipeline[/<id>]/_simulate`` with the frame's rows as ``docs``.

        Each row becomes ``{"_id": "<index label>", "_source": {...}}`` (no ``_index``: ES defaults it)
        (dotted columns nested, missing values left out). Returns the ``_simulate`` answer
        as Elasticsearch shapes it (``{"docs": [...]}``; ``processor_results`` with
        ``verbose=True``), or, with ``request_only=True``, the request body itself, ready
        to send to a cluster. ``device``: where the pipeline's models run (default: notebook option,
        else the engine's device), for this call only. Raises :class:`es_infer_nb.ApiError` for what
        ES rejects.
        """
        from ..frames.pipeline import simulate_body

        body = simulate_body(self._frame, pipeline)
        if request_only:
            return body
        if isinstance(pipeline, str):
            path = f"_ingest/pipeline/{pipeline}/_simulate"
        elif isinstance(pipeline, dict):
            path = "_ingest/pipeline/_simulate"
        else:
            raise TypeError(f"pipeline must be a pipeline id (str) or body (dict), found {type(pipeline).__name__}")
        resp = _engine(engine).request("POST", path, body, params={"verbose": "true"} if verbose else None,
                                       device=device if device is not None else options.device)
        resp.raise_for_status()
        return resp.body

    # -- arrays and search (es_infer_nb.frames.arrays / .search) --------------------------------
    def vectors(self, column: str | None = None, *, target_field: str | None = None) -> np.ndarray:
        """The embeddings of a result column as an ``(n, d)`` float32 array, one row per frame row
        (NaN rows where a row has none: a missing text, an error).

        ``column`` defaults to ``<target_field>.predicted_value`` (``ml.inference.predicted_value``),
        else the frame's one embedding column (an ``input_output`` run's ``output_field``)."""
        return to_vectors(self._frame[embedding_column(self._frame, target_field, column)])

    def proba(self, column: str | None = None, *, target_field: str | None = None,
              score: str = "class_probability") -> pd.DataFrame:
        """Class probabilities as a frame: one column per class, rows aligned to the frame (same
        index), from a classification run's ``top_classes`` (run with ``num_top_classes=-1`` to get
        every class). NaN for a row without a result and for a class a row did not list;
        ``score="class_score"`` reads the scores instead."""
        return proba_frame(self._frame[result_column(self._frame, "top_classes", target_field, column)], score=score)

    def importance_frame(self, column: str | None = None, *, target_field: str | None = None,
                         class_name: Any = None) -> pd.DataFrame:
        """Feature importance as rows x features, from a run with ``num_top_feature_importance_values``.

        Regression: each feature's ``importance``. Classification: the importance toward each row's
        predicted class (its ``predicted_value``), or toward ``class_name`` for every row. NaN for a
        row without a result and for a feature a row did not report (below the top-k). Columns are
        ordered by mean ``|importance|``, largest first."""
        name = result_column(self._frame, "feature_importance", target_field, column)
        prefix = name.rsplit(".", 1)[0] if "." in name else ""
        predicted = f"{prefix}.predicted_value" if prefix else "predicted_value"
        return importance_frame(self._frame[name], class_name=class_name,
                                predicted=self._frame[predicted] if predicted in self._frame.columns else None)

    def knn(
        self,
        query: Any,
        k: int = 10,
        *,
        column: str | None = None,
        target_field: str | None = None,
        metric: str = "cosine",
        model_id: str | None = None,
        engine: "Engine | None" = None,
        device: str | None = None,
        score_column: str = "score",
    ) -> pd.DataFrame:
        """The ``k`` rows whose embedding is nearest to ``query``, best first, with a ``score`` column.

        ``query`` is a text, embedded by the model that wrote the column (its ``model_id`` column,
        or ``model_id=``), or a vector of the column's dimension. ``metric``: ``"cosine"`` or
        ``"dot"``. Scores are computed with torch on ``device`` (default: notebook option, else the
        engine's device). Rows without an embedding are never returned. ``column`` /
        ``target_field`` as in :meth:`vectors`."""
        from ..frames import search

        name = embedding_column(self._frame, target_field, column)
        model = model_id if model_id is not None or not isinstance(query, str) else \
            search.column_model_id(self._frame, name)
        if isinstance(query, str) and model is None:
            raise ValueError(f"no model_id column beside [{name}]: pass model_id= to embed the query text")
        where, scores = _nearest(self._frame[name], query, k, metric=metric, model_id=model, engine=engine,
                                 device=device)
        return self._frame.iloc[where].assign(**{score_column: scores})

    def rerank(
        self,
        query: str,
        endpoint_id: str,
        text_column: str | None = None,
        *,
        top_n: int | None = None,
        engine: "Engine | None" = None,
        score_column: str = "relevance_score",
        device: str | None = None,
    ) -> pd.DataFrame:
        """The rows ordered by an ``_inference`` ``rerank`` endpoint's relevance to ``query``
        (``POST _inference/rerank/<endpoint_id>`` with the texts of ``text_column``, default the
        frame's one text column), best first, with a ``relevance_score`` column; ``top_n`` keeps the
        first n. Rows without a text get NaN and go last. ``device``: where the endpoint's local
        model runs, for this call only (default: notebook option, else the engine's device). Raises
        :class:`es_infer_nb.ApiError` for what the endpoint or ES rejects."""
        from ..frames import search

        eng = _engine(engine)
        name = search.text_column(self._frame, text_column)
        with _suggest_ids(eng, endpoint_id):
            order, scores = search.rerank_order(eng, self._frame[name], query, endpoint_id,
                                                device=device if device is not None else options.device)
        out = self._frame.iloc[order].assign(**{score_column: scores})
        return out if top_n is None else out.head(top_n)

    # -- displays (es_infer_nb.widgets, imported when used) -------------------------------------
    def explain(
        self,
        row: Any,
        model_id: str | None = None,
        *,
        engine: "Engine | None" = None,
        target_field: str | None = None,
        field_map: dict[str, str] | None = None,
        num_top_feature_importance_values: int | None = None,
    ) -> Any:
        """The feature-importance widget of one row (``es_infer_nb.widgets.feature_importance``).

        ``row`` is an index label. When the frame holds ``<target_field>.feature_importance``
        (a ``run`` with ``num_top_feature_importance_values``), that row's values are shown;
        otherwise the model (``model_id``, default the row's ``<target_field>.model_id``) is
        run on that row alone with ``num_top_feature_importance_values`` (default: every input
        field; ``field_map`` as in ``run``) and its answer is shown.
        """
        prefix = target_prefix(target_field)
        if row not in self._frame.index:
            shown = row.item() if hasattr(row, "item") else row
            raise KeyError(f"row {shown!r} is not in the frame's index")
        column = f"{prefix}.feature_importance" if prefix else "feature_importance"
        from ..widgets import feature_importance

        if column in self._frame.columns and _present(self._frame.loc[[row], column].iloc[0]):
            return feature_importance(self._frame, row=row, engine=engine)
        if model_id is None:
            id_column = f"{prefix}.model_id" if prefix else "model_id"
            if id_column not in self._frame.columns:
                raise ValueError(f"the frame has no [{column}] column: pass model_id= to explain the row with a model")
            model_id = str(self._frame.loc[[row], id_column].iloc[0])
        eng = _engine(engine)
        from ..frames import run as frames_run  # the model code loads on first use

        task, fields = frames_run.task_and_fields(eng, model_id)
        k = num_top_feature_importance_values or max(1, len(fields))
        one = self._frame.loc[[row]]
        inputs = one[[c for c in one.columns if not str(c).startswith(f"{prefix}.")]] if prefix else one
        result = inputs.infer.run(model_id, engine=eng, target_field=target_field, field_map=field_map, progress=False,
                                  inference_config={task: {"num_top_feature_importance_values": k}})
        return feature_importance(result, row=row, engine=eng)  # the baseline and totals of that engine

    def importance_summary(self, *, class_name: Any = None, max_display: int = 20, max_points: int = 1000,
                           engine: "Engine | None" = None) -> Any:
        """Feature importance across the rows (``es_infer_nb.widgets.importance_summary``): a beeswarm of
        the signed values (a line per feature, by mean |importance|, dots coloured by the feature's value)
        and the mean |importance| bars, from a ``run`` with ``num_top_feature_importance_values``.
        ``.importance`` / ``.mean_abs`` hold the numbers, ``.to_shap()`` gives a ``shap.Explanation``.
        Classification: toward ``class_name`` (default: the second of two classes, else each row's
        predicted class)."""
        from ..widgets import importance_summary

        return importance_summary(self._frame, class_name=class_name, max_display=max_display,
                                  max_points=max_points, engine=engine)

    def top_classes(self, row: Any = None) -> Any:
        """The top-classes widget (``es_infer_nb.widgets.top_classes``): one row's class
        probabilities, or (``row=None``) a summary over the frame, from a classification ``run``."""
        from ..widgets import top_classes

        return top_classes(self._frame, row=row)

    def evaluate(self, y_true: Any, *, column: str | None = None, target_field: str | None = None,
                 task: str | None = None, positive_class: Any = None, n_bins: int = 10) -> Any:
        """The predictions of a ``run`` against the true values, as a widget holding the numbers
        (``es_infer_nb.widgets.evaluation``: ``.metrics`` dict, ``.per_class``, ``.confusion``,
        ``.calibration``, ``.residuals`` frames; static HTML without a widget front-end).

        ``y_true``: a Series (same index labels, or the frame's length, read in order), a list / array
        of the frame's length, or the name of a column of the frame. Classification (the frame has
        ``prediction_probability`` / ``top_classes``, or the predictions are not floats; ``task=``
        decides otherwise): accuracy, per-class precision / recall / F1, the confusion matrix, a
        calibration curve of ``positive_class`` (default: the second of two classes) or, for more
        classes, of the top label, in ``n_bins`` bins. Regression: MAE, MSE, RMSE, R², residuals.
        Rows without a prediction or a true value are left out (``metrics["rows_skipped"]``).
        ``column`` / ``target_field`` name the predictions as in :meth:`proba`."""
        from ..widgets import evaluation

        name = result_column(self._frame, "predicted_value", target_field, column)
        prefix = name.rsplit(".", 1)[0] if "." in name else ""
        truth = align_truth(y_true, self._frame.index, self._frame)
        top = f"{prefix}.top_classes" if prefix else "top_classes"
        probability = f"{prefix}.prediction_probability" if prefix else "prediction_probability"
        columns = set(self._frame.columns)
        return evaluation(evaluate(
            truth, self._frame[name], task=task, positive_class=positive_class, n_bins=n_bins,
            probabilities=proba_frame(self._frame[top]) if top in columns else None,
            prediction_probability=self._frame[probability] if probability in columns else None))

    def stats(self, *, engine: "Engine | None" = None, target_field: str | None = None) -> Any:
        """The model-stats dashboard (``es_infer_nb.widgets.model_stats``) of the models whose
        results the frame holds (its ``<target_field>.model_id`` values; every model if none)."""
        from ..widgets import model_stats

        prefix = target_prefix(target_field)
        id_column = f"{prefix}.model_id" if prefix else "model_id"
        ids = None
        if id_column in self._frame.columns:
            ids = [str(v) for v in pd.unique(self._frame[id_column].dropna())] or None
        return model_stats(ids, engine=_engine(engine))

    def __repr__(self) -> str:
        return f"<es_infer_nb .infer accessor on a DataFrame of {len(self._frame)} rows>"


@pd.api.extensions.register_series_accessor("infer")
class InferSeriesAccessor:
    """Elasticsearch inference over one column: ``df["text"].infer.run(model_id)``."""

    def __init__(self, series: pd.Series) -> None:
        if not isinstance(series, pd.Series):  # pragma: no cover - pandas only gives series
            raise AttributeError(f"Can only use the '.infer' accessor with a Series, not {type(series).__name__}.")
        self._series = series

    def run(
        self,
        model_id: str,
        *,
        field: str | None = None,
        engine: "Engine | None" = None,
        inference_config: dict[str, Any] | None = None,
        field_map: dict[str, str] | None = None,
        target_field: str | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        progress: bool | None = None,
        resume: InferenceInterrupted | None = None,
        precision: str | None = None,
    ) -> pd.DataFrame:
        """Run a model or inference endpoint whose input is this Series; return only the result columns.

        Parameters
        ----------
        model_id:
            Trained model id, alias, deployment id or ``_inference`` endpoint id.
        field:
            The document field the values stand for. Default: the model's first
            ``input.field_names`` entry (read with ``GET _ml/trained_models/<model_id>``;
            ``text_field`` for an inference endpoint), so ``df["review"].infer.run("sentiment")``
            works whatever the column's name.
        engine, inference_config, field_map, target_field, batch_size, device, progress, resume, precision:
            As in ``DataFrame.infer.run``.

        Returns
        -------
        pandas.DataFrame
            The result columns (``ml.inference.predicted_value``, ...), indexed like the
            Series, same order, every row present.

        Raises
        ------
        es_infer_nb.ApiError
            404 ``resource_not_found_exception`` for an unknown model, and whatever
            Elasticsearch would reject.
        """
        if resume is not None:
            return _check_resume(resume, self._series, model_id).resume()
        eng = _engine(engine)
        with _suggest_ids(eng, model_id):
            from ..frames import run as frames_run  # the model code loads on first use

            endpoint = frames_run.is_endpoint(eng, model_id)
            if field is None:
                field = frames_run.endpoint_field(field_map) if endpoint else frames_run.series_field(eng, model_id)
            frame = self._series.to_frame(name=field)
            compute, prefix = frames_run.compute(eng, model_id, inference_config=inference_config, field_map=field_map,
                                                 target_field=target_field, input_output=None,
                                                 precision=precision, **_defaults(batch_size, device, progress))
            return run_resumable(frame, compute, lambda results, final: results, prefix=prefix,
                                 what=f"model [{model_id}]", key=(model_id, self._series.index))

    def vectors(self) -> np.ndarray:
        """This embedding column as an ``(n, d)`` float32 array (NaN rows for missing values)."""
        return to_vectors(self._series)

    def evaluate(self, y_true: Any, *, task: str | None = None, positive_class: Any = None,
                 n_bins: int = 10) -> Any:
        """These predictions (a ``predicted_value`` column) against ``y_true`` (a Series, list or array of
        the same length): the evaluation widget of ``DataFrame.infer.evaluate``. Integer, boolean and text
        predictions are classes, floats a regression (``task=`` decides otherwise); a calibration curve
        needs the probabilities: evaluate the result frame for it."""
        from ..widgets import evaluation

        truth = align_truth(y_true, self._series.index)
        return evaluation(evaluate(truth, self._series, task=task, positive_class=positive_class, n_bins=n_bins))

    def knn(
        self,
        query: Any,
        k: int = 10,
        *,
        metric: str = "cosine",
        model_id: str | None = None,
        engine: "Engine | None" = None,
        device: str | None = None,
        score_column: str = "score",
    ) -> pd.DataFrame:
        """The ``k`` values of this embedding Series nearest to ``query``, best first: a frame of this
        column (same index labels) and a ``score`` column. ``query`` is a vector of the embeddings'
        dimension, or a text embedded by ``model_id`` (the model that wrote the embeddings). ``metric``,
        ``device`` as in ``DataFrame.infer.knn`` (torch on the device). Missing values are never
        returned."""
        where, scores = _nearest(self._series, query, k, metric=metric, model_id=model_id, engine=engine,
                                 device=device)
        name = self._series.name if self._series.name is not None else "embedding"
        out = self._series.iloc[where].to_frame(name=name)
        return out.assign(**{score_column: scores})

    def __repr__(self) -> str:
        return f"<es_infer_nb .infer accessor on a Series of {len(self._series)} rows>"
