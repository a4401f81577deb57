"""Column-at-a-time vs document-at-a-time: the same pipelines, the same documents, the same answers.

* random pipelines (seeded) over random DataFrames: missing fields, nulls, wrong types, nested
  and list/dict values, ``if`` conditions, failing processors with ``ignore_failure`` /
  ``on_failure`` / pipeline ``on_failure``, drops, a tree model -> ``df.infer.pipeline`` with
  ``columnar=False`` and ``True`` give equal frames (values and dtypes);
* the conformance cases' pipelines and documents (``processor.json`` simulate cases with their
  models, the ``rest.json`` inline ``_simulate`` requests) -> equal documents and failures;
* ingest stats of a stored pipeline move alike.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import es_infer_nb  # noqa: F401 - registers the accessor
from es_infer_nb.ingest.columnar import run_columnar, supported
from es_infer_nb.ingest.columnar_table import table_from_sources
from es_infer_nb.ingest.document import META_FIELDS, Doc, clone
from es_infer_nb.ingest.pipeline import SIMULATE_PIPELINE_ID, Run, parse_pipeline, run_pipeline
from es_infer_nb.ingest.registry import column_form_types
from es_infer_nb.frames.pipeline import run_frame_pipeline
from helpers import churn_model, stump_regression

CONFORMANCE = Path(os.environ.get("ES_INFER_NB_CONFORMANCE", Path(__file__).parents[1] / "conformance" / "cases"))


@pytest.fixture(autouse=True)
def same_timestamp(monkeypatch):
    """Both executors' documents get one ``_ingest.timestamp`` (templates read it)."""
    import importlib

    for name in ("es_infer_nb.ingest.simulate", "es_infer_nb.frames.pipeline"):  # (the ingest package exports
        module = importlib.import_module(name)  # a function named simulate, so import the module by name)
        monkeypatch.setattr(module, "ingest_timestamp", lambda: "2024-05-06T07:08:09.123Z")


@pytest.fixture(scope="module")
def eng():
    engine = es_infer_nb.Engine()
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    assert engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model()).status == 200
    return engine


# -- random frames and pipelines -------------------------------------------------------------------

STRINGS = ["Foo", " bar ", "BAZ", "12", "-7", "3.5", "0x1f", "true", "", "nan", "a{b}", "q'uote", "ß", "1e5",
           "99999999999", "+4", " 8 "]
PATHS = ["x", "n", "s", "b", "user.name", "user.age", "tags", "obj", "obj.k", "mixed", "new", "new.deep", "user",
         "z", "f", "plan", "tenure"]


def random_frame(r: random.Random, rows: int) -> pd.DataFrame:
    def maybe(value: Any, p: float = 0.2) -> Any:
        return None if r.random() < p else value

    cols: dict[str, Any] = {}
    cols["x"] = [r.choice([r.random(), float("nan")]) if r.random() < 0.15 else r.random() for _ in range(rows)]
    if r.random() < 0.8:
        cols["n"] = [r.randint(-5, 20) for _ in range(rows)]
    if r.random() < 0.9:
        cols["s"] = pd.array([maybe(r.choice(STRINGS)) for _ in range(rows)], dtype=r.choice(["str", "object"]))
    if r.random() < 0.5:
        cols["b"] = [r.random() < 0.5 for _ in range(rows)]
    if r.random() < 0.7:
        cols["user.name"] = [maybe(r.choice(STRINGS)) for _ in range(rows)]
        cols["user.age"] = [maybe(r.randint(1, 90), 0.3) for _ in range(rows)]
    if r.random() < 0.4:
        cols["tags"] = [maybe(r.sample(["a", "b", "c", 1], r.randint(0, 3))) for _ in range(rows)]
    if r.random() < 0.3:
        cols["obj"] = [maybe({"k": r.choice(STRINGS), "v": r.randint(0, 3)}) for _ in range(rows)]
    if r.random() < 0.4:
        cols["mixed"] = pd.array([maybe(r.choice([1, "a", 2.5, True, "Foo", 7])) for _ in range(rows)], dtype=object)
    if r.random() < 0.3:
        cols["tenure"] = [r.choice([3, 30, 12.5]) for _ in range(rows)]
        cols["plan"] = [maybe(r.choice(["pro", "basic", "other"])) for _ in range(rows)]
    if r.random() < 0.3:
        cols["f"] = [maybe(r.choice([1.5, -2.0, 1e30, 7.0])) for _ in range(rows)]
    df = pd.DataFrame(cols, index=[f"r{i}" for i in range(rows)])
    if "n" in df and r.random() < 0.3:  # the other dtypes frames come with
        df["n"] = df["n"].astype(r.choice(["Int64", "float32", "int8"]))
    if "s" in df and r.random() < 0.2:
        df["s"] = df["s"].astype("category")
    return df


def random_path(r: random.Random) -> str:
    return r.choice(PATHS)


def random_condition(r: random.Random, depth: int = 0) -> str:
    def ref(path: str) -> str:
        parts = path.split(".")
        return "ctx." + "".join(p if i == 0 else r.choice([".", "?."]) + p for i, p in enumerate(parts))

    atoms = [
        lambda: f"{ref(random_path(r))} == null", lambda: f"{ref(random_path(r))} != null",
        lambda: f"{ref(r.choice(['x', 'n', 'user.age', 'f', 'ml.out.predicted_value']))} {r.choice(['<', '>', '>=', '<=', '==', '!='])} {r.choice(['0.5', '3', '2.0', '1'])}",
        lambda: f"{ref(r.choice(['s', 'user.name', 'mixed']))} == '{r.choice(STRINGS[:4])}'",
        lambda: f"{ref(r.choice(['s', 'user.name', 'tags', 'mixed']))}?.{r.choice(['contains', 'startsWith', 'endsWith'])}('{r.choice(['a', 'B', 'F'])}')",
        lambda: f"ctx.{r.choice(['s', 'user.name'])}.{r.choice(['contains', 'startsWith'])}('o')",
        lambda: f"ctx.b == {r.choice(['true', 'false'])}", lambda: "ctx.b",
        lambda: "ctx._id != null", lambda: "ctx['s'] == 'BAZ'", lambda: "ctx._ingest.pipeline != null",
        lambda: f"{ref('obj.k')} == 'Foo'",
    ]
    if depth < 2 and r.random() < 0.35:
        op = r.choice(["&&", "||"])
        return f"({random_condition(r, depth + 1)}) {op} ({random_condition(r, depth + 1)})"
    if depth < 2 and r.random() < 0.1:
        return f"!({random_condition(r, depth + 1)})"
    return r.choice(atoms)()


def random_processor(r: random.Random, depth: int = 0, kind: str | None = None) -> dict[str, Any]:
    kind = kind or r.choice(["set", "set", "set", "rename", "remove", "convert", "convert", "lowercase", "uppercase",
                             "trim", "gsub", "drop", "inference", "inference", "fail", "append"])
    conf: dict[str, Any]
    if kind == "set":
        conf = {"field": random_path(r)}
        if r.random() < 0.2:
            conf["copy_from"] = random_path(r)
        else:
            conf["value"] = r.choice(["v", 3, 2.5, True, None, "", "{{s}}-{{n}}", "{{user.name}}", "{{missing}}",
                                      "{{x}}", "{{tags}}", "{{b}}", "{{_ingest.timestamp}}", "{{{_ingest.pipeline}}}",
                                      "{{_ingest.nope}}/{{ctx.s}}", "{{_id}}"])
        if r.random() < 0.3:
            conf["override"] = False
        if r.random() < 0.2:
            conf["ignore_empty_value"] = True
    elif kind == "rename":
        conf = {"field": random_path(r), "target_field": random_path(r)}
        if r.random() < 0.5:
            conf["ignore_missing"] = True
        if r.random() < 0.3:
            conf["override"] = True
    elif kind == "remove":
        if r.random() < 0.15:
            conf = {"keep": r.sample(["x", "s", "user", "n"], 2)}
        else:
            conf = {"field": r.choice([random_path(r), [random_path(r), random_path(r)]])}
            if r.random() < 0.5:
                conf["ignore_missing"] = True
    elif kind in ("convert", "lowercase", "uppercase", "trim", "gsub"):
        conf = {"field": random_path(r)}
        if kind == "convert":
            conf["type"] = r.choice(["integer", "long", "float", "double", "string", "boolean", "auto", "ip"])
        if kind == "gsub":
            conf.update(pattern="a", replacement="A")
        if r.random() < 0.3:
            conf["target_field"] = random_path(r)
        if r.random() < 0.5:
            conf["ignore_missing"] = True
    elif kind == "drop":
        conf = {}
    elif kind == "inference":
        model = r.choice(["reg", "reg", "churn-gbt"])
        conf = {"model_id": model}
        if r.random() < 0.7:
            conf["target_field"] = r.choice(["ml.out", "pred", "user", "x"])
        if model == "churn-gbt" and r.random() < 0.5:
            conf["inference_config"] = {"classification": {"num_top_classes": 2}}
    elif kind == "fail":
        conf = {"message": "boom {{s}}"}
    else:
        conf = {"field": random_path(r), "value": "v"}
    if r.random() < 0.4:
        conf["if"] = random_condition(r)
    if r.random() < 0.3:
        conf["tag"] = f"t{r.randint(0, 9)}"
    if r.random() < 0.2:
        conf["ignore_failure"] = True
    elif r.random() < 0.2:
        conf["on_failure"] = [{"set": {"field": "err", "value": "{{_ingest.on_failure_message}}"}}]
    return {kind: conf}


def random_pipeline(r: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"processors": [random_processor(r) for _ in range(r.randint(1, 6))]}
    if r.random() < 0.2:
        body["on_failure"] = [{"set": {"field": "failed_in", "value": "{{_ingest.on_failure_processor_type}}"}}]
    return body


def pipeline_or_none(eng: Any, body: dict[str, Any]) -> Any:
    try:
        return parse_pipeline(copy.deepcopy(body), eng)
    except Exception:  # noqa: BLE001 - a random config ES rejects: nothing to compare
        return None


@pytest.mark.parametrize("seed", [*range(160), 581])  # 581: a typed input column changed for some rows only
def test_random_pipelines_on_frames(eng, seed):
    r = random.Random(seed)
    df = random_frame(r, r.randint(1, 40))
    body = random_pipeline(r)
    if pipeline_or_none(eng, body) is None:
        return
    slow = run_frame_pipeline(eng, df, copy.deepcopy(body), columnar=False)
    fast = run_frame_pipeline(eng, df, copy.deepcopy(body))
    pd.testing.assert_frame_equal(slow, fast, check_like=True, obj=json.dumps(body))
    assert list(fast.index) == list(df.index)


@pytest.mark.parametrize("kind", column_form_types())
def test_every_processor_with_a_column_form_is_compared(eng, kind):
    """The registry's processors with a column form, each in random pipelines over random frames: a
    processor registered with a column form is compared with its per-document form here, whether or
    not the generators above know it (a config they do not know how to write fails this test)."""
    ran = 0
    for seed in range(40):
        r = random.Random(f"{kind}-{seed}")
        df = random_frame(r, r.randint(1, 30))
        body = {"processors": [random_processor(r, kind=kind)]}
        if r.random() < 0.5:
            body["processors"].insert(r.randint(0, 1), random_processor(r))
        compiled = pipeline_or_none(eng, body)
        if compiled is None:
            continue
        ran += any(p.type == kind and supported(p) for p in compiled.processors)
        slow = run_frame_pipeline(eng, df, copy.deepcopy(body), columnar=False)
        fast = run_frame_pipeline(eng, df, copy.deepcopy(body))
        pd.testing.assert_frame_equal(slow, fast, check_like=True, obj=json.dumps(body))
    assert ran >= 10, f"the column form of [{kind}] ran in {ran} of 40 random pipelines"


def test_random_pipelines_exercise_both_paths(eng):
    """The random cases above run both executors: many rows stay in columns, the failing ones (the
    random pipelines fail often: missing fields, wrong types) and unsupported processors go per document."""
    from es_infer_nb.ingest import columnar

    kept = handed = 0
    original = columnar._finish

    def spy(pipeline, b, failures, chunk):
        nonlocal kept, handed
        handed += len(b.docs)
        kept += int(b.table.n - len(b.docs))
        return original(pipeline, b, failures, chunk)

    columnar._finish = spy
    try:
        for seed in range(60):
            r = random.Random(seed)
            df = random_frame(r, 30)
            body = random_pipeline(r)
            if pipeline_or_none(eng, body) is not None:
                run_frame_pipeline(eng, df, body)
    finally:
        columnar._finish = original
    assert handed > 0 and kept > 0.15 * (kept + handed)


def test_bigger_frame_with_model_and_failures(eng):
    r = random.Random(7)
    rows = 3000
    df = pd.DataFrame({
        "x": [r.random() if r.random() < 0.9 else None for _ in range(rows)],
        "s": pd.array([r.choice(STRINGS) if r.random() < 0.9 else None for _ in range(rows)], dtype="str"),
        "user.name": [r.choice(STRINGS) if r.random() < 0.8 else r.choice([None, 5]) for _ in range(rows)],
        "user.age": [r.randint(1, 90) if r.random() < 0.7 else None for _ in range(rows)],
    })
    body = {"processors": [
        {"set": {"field": "src", "value": "bench"}},
        {"convert": {"field": "s", "type": "integer", "ignore_missing": True, "ignore_failure": True}},
        {"rename": {"field": "x", "target_field": "features.x", "ignore_missing": True}},
        {"inference": {"model_id": "reg", "target_field": "ml.out", "field_map": {"features.x": "x"}}},
        {"uppercase": {"field": "user.name", "ignore_missing": True,
                       "on_failure": [{"set": {"field": "why", "value": "{{_ingest.on_failure_message}}"}}]}},
        {"set": {"if": "ctx.ml?.out?.predicted_value > 1.5 && ctx.user?.age != null", "field": "flag",
                 "value": "{{user.age}}"}},
        {"drop": {"if": "ctx.s == 12"}},
    ]}
    slow = run_frame_pipeline(eng, df, body, columnar=False)
    fast = run_frame_pipeline(eng, df, body)
    pd.testing.assert_frame_equal(slow, fast, check_like=True)
    assert list(slow.columns) == list(fast.columns)
    assert fast["_ingest.dropped"].any() and fast["flag"].notna().any()


# -- documents (conformance cases) ---------------------------------------------------------------------

def run_docs_both(engine: Any, body: dict[str, Any], docs: list[dict[str, Any]]) -> tuple[list, list] | None:
    """Each document's (``_source``, dropped, failure) from both executors; None when the columns
    cannot hold these documents (a dotted key)."""
    sources = [d.get("_source", {}) for d in docs]
    metas = [{k: d[k] for k in META_FIELDS if k in d} for d in docs]
    table = table_from_sources([clone(s) for s in sources])
    if table is None:
        return None
    pipeline = parse_pipeline(copy.deepcopy(body), engine)
    stamp = {"timestamp": "2024-01-01T00:00:00.000Z"}
    slow_docs = [Doc({**clone(s), **m}, dict(stamp)) for s, m in zip(sources, metas)]
    fails = run_pipeline(pipeline, slow_docs, Run(engine), SIMULATE_PIPELINE_ID)
    slow = [(d.source(), d.dropped, _failure(f)) for d, f in zip(slow_docs, fails)]
    result = run_columnar(parse_pipeline(copy.deepcopy(body), engine), table, Run(engine), SIMULATE_PIPELINE_ID,
                          metadata=lambda idx: [dict(metas[i]) for i in idx.tolist()], ingest=dict(stamp))
    fast = []
    for i in range(len(docs)):
        if i in result.docs:
            doc = result.docs[i]
            fast.append((doc.source(), doc.dropped, _failure(result.failures[i])))
        else:
            fast.append((result.table.sources([i])[0], bool(result.dropped[i]), None))
    return slow, fast


def _failure(f: Any) -> Any:
    if f is None:
        return None
    return f.error.error_object(), f.processor_type, f.tag, f.pipeline


def _simulate_requests() -> list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any]]]:
    out = []
    proc = json.loads((CONFORMANCE / "processor.json").read_text())
    for case in proc["cases"]:
        if case.get("kind") == "simulate" and case.get("pipeline") and case.get("docs") and not case.get("requires"):
            out.append((case["id"], case["pipeline"], case["docs"], case.get("models") or {}))
    rest = json.loads((CONFORMANCE / "rest.json").read_text())
    for case in rest["cases"]:
        for step in case.get("steps", []):
            body = step.get("body")
            if step.get("api") == "ingest.simulate" and isinstance(body, dict) and isinstance(body.get("pipeline"), dict) \
                    and isinstance(body.get("docs"), list):
                out.append((case["id"], body["pipeline"], body["docs"], {}))
    return out


SIMULATE_CASES = _simulate_requests() if (CONFORMANCE / "processor.json").exists() else []


@pytest.mark.parametrize("case", SIMULATE_CASES, ids=[c[0] for c in SIMULATE_CASES])
def test_conformance_simulate_docs(case):
    _, body, docs, models = case
    engine = es_infer_nb.Engine()
    for model_id, config in (models.items() if isinstance(models, dict) else ((m["model_id"], m) for m in models)):
        engine.request("PUT", f"_ml/trained_models/{model_id}", {k: v for k, v in config.items() if k != "model_id"})
    try:
        parse_pipeline(copy.deepcopy(body), engine)
    except Exception:  # noqa: BLE001 - an invalid pipeline case: nothing runs
        return
    if not all(isinstance(d, dict) for d in docs):
        return
    both = run_docs_both(engine, body, docs)
    if both is None:
        return
    slow, fast = both
    assert fast == slow


def test_conformance_cases_found():
    assert len(SIMULATE_CASES) >= 5


# -- stats ------------------------------------------------------------------------------------------------

def test_ingest_stats_move_alike():
    body = {"processors": [
        {"convert": {"field": "s", "type": "integer"}},
        {"inference": {"model_id": "reg", "tag": "m"}},
        {"set": {"if": "ctx.x > 0.5", "field": "hi", "value": True}},
    ]}
    df = pd.DataFrame({"x": [0.1, 0.9, float("nan"), 0.7], "s": ["1", "oops", "3", "4"]})
    answers = []
    for columnar in (False, True):
        engine = es_infer_nb.Engine()
        engine.request("PUT", "_ml/trained_models/reg", stump_regression())
        engine.request("PUT", "_ingest/pipeline/p", body)
        run_frame_pipeline(engine, df, "p", columnar=columnar)
        stats = engine.request("GET", "_ml/trained_models/reg/_stats").body["trained_model_stats"][0]
        ingest = json.loads(json.dumps(stats["ingest"]).replace('"time_in_millis": ', '"t": '))
        for section in [ingest["total"], *ingest["pipelines"].values()]:
            section.pop("t", None)
        for pipe in ingest["pipelines"].values():
            for proc in pipe["processors"]:
                for v in proc.values():
                    v["stats"].pop("t", None)
        answers.append((ingest, stats["inference_stats"]["inference_count"]))
    assert answers[0] == answers[1]
    # "oops" fails convert; the row without x gets the model's warning, then fails the condition
    assert answers[1][0]["total"]["count"] == 4 and answers[1][0]["total"]["failed"] == 2


def test_typed_columns_stay_typed_through_the_columns(eng):
    df = pd.DataFrame({"x": np.linspace(0, 1, 50), "count": [str(i) for i in range(50)]})
    body = {"processors": [{"convert": {"field": "count", "type": "integer"}},
                           {"inference": {"model_id": "reg"}}]}
    out = run_frame_pipeline(eng, df, body)
    assert out["count"].dtype == np.int64 and out["x"].dtype == np.float64
    assert out["ml.inference.predicted_value"].dtype == np.float64
    assert out["ml.inference.model_id"].tolist() == ["reg"] * 50


# -- hand-picked shapes ------------------------------------------------------------------------------------

def odd_frames() -> dict[str, pd.DataFrame]:
    return {
        "dtypes": pd.DataFrame({
            "x": np.array([0.2, 0.9, np.nan], dtype=np.float32), "n": pd.array([1, None, 3], dtype="Int64"),
            "u": np.array([1, 2, 3], dtype=np.uint8), "b": [True, False, True],
            "c": pd.Categorical(["a", None, "b"]), "t": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
            "s": pd.array(["x", "y", None], dtype="string"), "o": [[1, 2], {"k": 1}, None]}),
        "int_labels": pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]}),
        "names": pd.DataFrame({"a": [1, 2], "a-b": [3, 4], "a.b": [5, None], "x.y.z": ["p", "q"]}),
        "empty": pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=object)}),
        "nested": pd.DataFrame({"user.name": ["Ann", None, "Bo"], "user.age": [3.0, 4.0, None],
                                "x": [0.1, 0.7, 0.9]}, index=[5, 5, 7]),
    }


ODD_PIPELINES = [
    {"processors": [{"set": {"field": "z", "value": "{{n}}/{{t}}/{{c}}/{{o}}"}}, {"convert": {"field": "u", "type": "string"}}]},
    {"processors": [{"rename": {"field": "user.name", "target_field": "who", "ignore_missing": True}},
                    {"remove": {"field": "user.age", "ignore_missing": True}}, {"set": {"field": "user.k", "value": 1}}]},
    {"processors": [{"remove": {"field": ["x", "a.b"], "ignore_missing": True}}, {"set": {"field": "x.y.w", "value": True}}]},
    {"processors": [{"inference": {"model_id": "reg"}}, {"set": {"if": "ctx.ml.inference.predicted_value == 2.0",
                                                                  "field": "hi", "value": 1.5}}]},
    {"processors": [{"convert": {"field": "x", "type": "integer", "ignore_missing": True}},
                    {"convert": {"field": "b", "type": "string", "ignore_missing": True}}, {"drop": {"if": "ctx.x == 0"}}]},
    {"processors": [{"set": {"field": "user", "value": "flat"}}, {"uppercase": {"field": "s", "ignore_missing": True}}]},
    {"processors": [{"set": {"field": "1", "value": 2}}, {"remove": {"keep": ["x", "user"]}}]},
]


@pytest.mark.parametrize("frame_name", list(odd_frames()))
@pytest.mark.parametrize("k", range(len(ODD_PIPELINES)))
def test_odd_frames(eng, frame_name, k):
    df = odd_frames()[frame_name]
    body = ODD_PIPELINES[k]
    answers = []
    for columnar in (False, True):
        try:
            answers.append(run_frame_pipeline(eng, df, copy.deepcopy(body), columnar=columnar))
        except ValueError as err:  # a frame neither path can read (``a`` and ``a.b`` in one row)
            answers.append(str(err))
    if isinstance(answers[0], str):
        assert answers[1] == answers[0]
        return
    pd.testing.assert_frame_equal(answers[0], answers[1], check_like=True)


def test_clean_rows_never_leave_the_columns(eng):
    """The benchmark's shape: every processor runs over columns, no document is rebuilt."""
    from es_infer_nb.frames.columnar import table_from_frame

    df = pd.DataFrame({"raw_x": np.linspace(0, 1, 200), "count": [str(i) for i in range(200)], "note": "n"})
    body = {"processors": [
        {"set": {"field": "src", "value": "bench"}}, {"rename": {"field": "raw_x", "target_field": "x"}},
        {"convert": {"field": "count", "type": "integer"}}, {"inference": {"model_id": "reg", "target_field": "ml.p"}},
        {"remove": {"field": "note"}}, {"set": {"if": "ctx.ml?.p?.predicted_value > 1.5", "field": "flag", "value": "hi"}},
    ]}
    table = table_from_frame(df)
    result = run_columnar(parse_pipeline(body, eng), table, Run(eng), SIMULATE_PIPELINE_ID,
                          metadata=lambda idx: [{} for _ in idx], ingest={"timestamp": "t"})
    assert result.docs == {} and result.failures == [None] * 200
    assert table.cols["flag"].present.sum() == (df["raw_x"] > 0.5).sum()
    assert table.cols["count"].values.dtype == np.int64
    assert "note" not in table.cols and "raw_x" not in table.cols
