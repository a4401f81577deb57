"""Top classes: one row's class probabilities, and a summary over the frame.

``top_classes(result, row=None)`` takes what a classification ``df.infer.run(...)`` returned
(``num_top_classes`` > 0 or -1 for ``<prefix>.top_classes``; the summary also works from
``predicted_value`` alone). Marks: ``.esinb-tc-bar[data-class][data-probability]`` per class of
the row, ``.esinb-tc-summary-row[data-class][data-count][data-mean-probability]`` per class of
the frame (count = rows predicted as that class; mean probability over the rows whose
top_classes list the class).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd

from ._base import DisplayWidget, row_selector
from ._frames import as_frame, cell, column, find_prefix, position_of
from ._html import POSITIVE, Raw, attrs, bar, box, esc, num, plain, table, text_table

__all__ = ["TopClassesWidget", "class_summary", "top_classes"]


def class_summary(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Per class: ``count`` (rows predicted as it), ``share`` and ``mean_probability`` (rows listing it)."""
    counts: dict[str, int] = {}
    predicted = column(prefix, "predicted_value")
    if predicted in frame.columns:
        counts = {str(k): int(v) for k, v in frame[predicted].dropna().astype(str).value_counts(sort=False).items()}
    sums: dict[str, float] = {}
    seen: dict[str, int] = {}
    top = column(prefix, "top_classes")
    if top in frame.columns:
        listed = _listed_classes(frame[top])
        valid = listed.dropna(subset=["class_probability"])
        for name, group in valid.groupby("class_name", sort=False)["class_probability"]:
            sums[str(name)] = float(group.sum())
            seen[str(name)] = int(group.count())
    names = list(dict.fromkeys([*counts, *sums]))
    total = sum(counts.values())
    rows = [{"class_name": n, "count": counts.get(n, 0), "share": counts.get(n, 0) / total if total else 0.0,
             "mean_probability": sums[n] / seen[n] if seen.get(n) else float("nan")} for n in names]
    out = pd.DataFrame(rows, columns=["class_name", "count", "share", "mean_probability"])
    return out.sort_values(["count", "mean_probability"], ascending=False, kind="stable").reset_index(drop=True)


def _listed_classes(series: pd.Series) -> pd.DataFrame:
    """Every ``(class_name, class_probability)`` listed in a top_classes column, all rows together."""
    if isinstance(series.dtype, pd.ArrowDtype):  # vectorised: flatten the Arrow list<struct> column
        try:
            chunks = series.array.__arrow_array__().chunks
            flat = [c.flatten() for c in chunks]
            names = [f.field("class_name").to_pandas() for f in flat]
            probabilities = [f.field("class_probability").to_pandas() for f in flat]
            if names:
                return pd.DataFrame({"class_name": pd.concat(names, ignore_index=True).astype(str),
                                     "class_probability": pd.concat(probabilities, ignore_index=True).astype(float)})
        except (KeyError, AttributeError, TypeError, ValueError):
            pass  # another struct layout: the Python path below
    pairs = []
    for entries in series.tolist():
        if hasattr(entries, "tolist") and not isinstance(entries, (list, tuple)):
            entries = entries.tolist()
        for c in entries if isinstance(entries, (list, tuple)) else []:
            if isinstance(c, dict):
                p = c.get("class_probability")
                pairs.append((str(c.get("class_name")), float(p) if isinstance(p, (int, float)) else float("nan")))
    return pd.DataFrame(pairs, columns=["class_name", "class_probability"])


class TopClassesWidget(DisplayWidget):
    """A row's class probabilities (row selector when ``row=None``) and the frame's class summary."""

    def __init__(self, result: Any, row: Any = None) -> None:
        self.frame = as_frame(result)
        prefix = find_prefix(self.frame, "top_classes")
        if prefix is None:
            prefix = find_prefix(self.frame, "predicted_value")
        if prefix is None:
            raise ValueError(
                "the result has no top_classes column: run a classification model with inference_config="
                "{'classification': {'num_top_classes': N}} (-1 for every class)")
        self.prefix = prefix
        if len(self.frame) == 0:
            raise ValueError("the result has no rows")
        self._position = position_of(self.frame, row) if row is not None else 0
        self.row_selector = row_selector(self.frame, row, self._on_row)
        self.summary = class_summary(self.frame, prefix)
        self.row_view = w.HTML(self.row_html())
        self.summary_view = w.HTML(self.summary_html())
        children: list[w.Widget] = [self.row_view, self.summary_view]
        if self.row_selector is not None:
            children.insert(0, self.row_selector)
        super().__init__(children=children)
        self.add_class("esinb-top-classes")

    @property
    def row(self) -> Any:
        return self.frame.index[self._position]

    def classes(self) -> list[dict[str, Any]]:
        """The shown row's ``top_classes`` (as ES wrote them)."""
        return list(cell(self.frame, self._position, column(self.prefix, "top_classes")) or [])

    def _on_row(self, change: dict[str, Any]) -> None:
        self._position = int(change["new"])
        self.row_view.value = self.row_html()

    def row_html(self) -> str:
        predicted = cell(self.frame, self._position, column(self.prefix, "predicted_value"))
        model = cell(self.frame, self._position, column(self.prefix, "model_id"))
        title = f"row {esc(self.row)}" + (f" · model {esc(model)}" if model is not None else "") + \
            (f" · predicted {esc(num(predicted))}" if predicted is not None else "")
        rows = []
        for c in self.classes():
            p = c.get("class_probability")
            name = str(c.get("class_name"))
            rows.append((attrs(class_="esinb-tc-bar", data_class=name, data_probability=p, data_score=c.get("class_score")),
                         [name, Raw(bar(float(p or 0.0), 1.0, color=POSITIVE if name == str(predicted) else "#878787")),
                          p, c.get("class_score")]))
        body = table(["class", "", "probability", "score"], rows, "esinb-tc-table") if rows else \
            '<div class="esinb-note">no top_classes in this row (num_top_classes was 0)</div>'
        return box(f'<div class="esinb-title">{title}</div>{body}', "esinb-tc-row", data_row=self.row,
                   data_predicted=predicted)

    def summary_html(self) -> str:
        s = self.summary
        rows = [(attrs(class_="esinb-tc-summary-row", data_class=r.class_name, data_count=int(r.count),
                       data_mean_probability=None if pd.isna(r.mean_probability) else float(r.mean_probability)),
                 [r.class_name, int(r.count), Raw(bar(float(r.share), 1.0)), float(r.share),
                  None if pd.isna(r.mean_probability) else float(r.mean_probability)])
                for r in s.itertuples()]
        inner = (f'<div class="esinb-title">{len(self.frame)} rows: predicted classes</div>'
                 + table(["class", "rows", "", "share", "mean probability"], rows, "esinb-tc-summary"))
        return box(inner, "esinb-tc-summary-box", data_rows=len(self.frame))

    def static_html(self) -> str:
        return self.row_html() + self.summary_html()

    def text(self) -> str:
        row = text_table(["class", "probability"], [(str(c.get("class_name")), c.get("class_probability"))
                                                   for c in self.classes()])
        summary = text_table(["class", "rows", "mean probability"],
                             [(r.class_name, int(r.count), r.mean_probability) for r in self.summary.itertuples()])
        return f"top classes of row {plain(self.row)!r}\n{row}\n\nover {len(self.frame)} rows\n{summary}"


def top_classes(result: Any, row: Any = None) -> TopClassesWidget:
    """The top-classes widget of a classification ``df.infer.run`` result (``row``: an index label)."""
    return TopClassesWidget(result, row)
