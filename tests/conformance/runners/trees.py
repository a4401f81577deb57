"""trees.json: tree / ensemble models, PUT and inferred through ``Engine.request``.

Kinds:

* model cases (no ``kind``): ``PUT _ml/trained_models/<id>`` with the case's ``model``; with
  ``expected_error`` the PUT must fail like that; otherwise ``POST .../_infer`` (one call for all
  docs, or one per doc for ``{"per_doc": [...]}``) and every key of ``expected[i]`` (and of the
  per-doc lists in ``derived``) is compared for ``docs[i]``. ``expected_stats`` is read from
  ``_stats`` afterwards; ``checks: ["bounds"]`` asks the tree module for the model's bounds;
  ``expected_model_config`` = dotted paths in the stored config (``GET _ml/trained_models/<id>``,
  ``trained_model_configs.0``), e.g. ``estimated_operations``.
* ``aggregator``: the supplied leaf-only ensemble end to end (regression -> the value;
  classification -> the class index and, when given, the probabilities by class index).
* ``aggregator_compatibility``: a small leaf-only ensemble with that aggregator is PUT for each
  target type; it must be accepted iff compatible.
* ``to_double``: ``es_infer_nb.models.tree.features.to_double``.

Expected keys: ``value`` (regression value, or the class INDEX: the label of a string-typed answer
looked up in the model's ``classification_labels``, or the integer the label spells when the
model has none), ``value_as_string``, ``predicted_value``, ``top_classes`` (ordered, listed
sub-keys), ``top_classes_count``, ``top_classes_class_names``, ``feature_importance`` (ordered),
``feature_importance_by_name``, ``warning``, ``prediction_probability``, ``prediction_score``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .compare import MISSING, Diff, java_str, path_get
from .support import check_error, engine, hook, tolerance

#: Elasticsearch rejects ``input.field_names: []`` at PUT ("[input.field_names] must not be empty",
#: see rest.json), and with no input field every document is "all fields missing". trees.json
#: models that list no input field (stumps, the derived leaf-only aggregator ensembles) get this
#: one field, and every document carries it, so the model itself is what runs.
PLACEHOLDER_FIELD = "conformance_input"

FI_KEYS = ("feature_importance", "feature_importance_by_name")
DERIVED_KEY_ALIASES = {"top_class_names": "top_classes_class_names"}


# -- model helpers ------------------------------------------------------------------------------

def _model_body(model: dict[str, Any], placeholder_ok: bool) -> tuple[str, dict[str, Any], bool]:
    body = copy.deepcopy(model)
    model_id = body.pop("model_id", None) or "case-model"
    for key in [k for k, v in body.items() if v is None]:  # JSON nulls for absent options
        del body[key]
    placeholder = placeholder_ok and not (body.get("input") or {}).get("field_names")
    if placeholder:
        body["input"] = {**(body.get("input") or {}), "field_names": [PLACEHOLDER_FIELD]}
    return model_id, body, placeholder


def _trained(body: dict[str, Any]) -> dict[str, Any]:
    tm = (body.get("definition") or {}).get("trained_model") or {}
    return tm.get("ensemble") or tm.get("tree") or {}


def _labels(body: dict[str, Any]) -> list[Any] | None:
    labels = _trained(body).get("classification_labels")
    return labels if isinstance(labels, list) else None


def _put(eng: Any, model_id: str, body: dict[str, Any]) -> Any:
    return eng.request("PUT", f"_ml/trained_models/{model_id}", body)


def _require_put(resp: Any) -> None:
    if resp.status != 200:
        pytest.fail(f"PUT of the case's model failed: HTTP {resp.status}: {resp.body}", pytrace=False)


def _infer(eng: Any, model_id: str, docs: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"docs": docs}
    if config:  # {} = the model's own config
        body["inference_config"] = config
    resp = eng.request("POST", f"_ml/trained_models/{model_id}/_infer", body)
    if resp.status != 200:
        pytest.fail(f"_infer failed: HTTP {resp.status}: {resp.body}", pytrace=False)
    results = resp.body.get("inference_results") if isinstance(resp.body, dict) else None
    if not isinstance(results, list) or len(results) != len(docs):
        pytest.fail(f"_infer answered {resp.body} for {len(docs)} docs", pytrace=False)
    return results


class Settings:
    """The effective inference config of one call (model default updated by the call's config)."""

    def __init__(self, model_config: Any, call_config: Any) -> None:
        model_config = model_config if isinstance(model_config, dict) else {}
        call_config = call_config if isinstance(call_config, dict) else {}
        model_type = next(iter(model_config), None)
        call_type = next(iter(call_config), None)
        self.type = call_type or model_type or "regression"
        merged: dict[str, Any] = {}
        if model_type == self.type and isinstance(model_config.get(model_type), dict):
            merged.update(model_config[model_type])
        if call_type and isinstance(call_config.get(call_type), dict):
            merged.update(call_config[call_type])
        self.values = merged
        self.call_config = call_config

    @property
    def is_classification(self) -> bool:
        return self.type == "classification"

    @property
    def results_field(self) -> str:
        return self.values.get("results_field") or "predicted_value"

    @property
    def top_classes_field(self) -> str:
        return self.values.get("top_classes_results_field") or "top_classes"

    @property
    def string_typed(self) -> bool:
        return self.values.get("prediction_field_type", "string") == "string"

    def with_string_type(self) -> dict[str, Any]:
        """The call's config with ``prediction_field_type: string`` (to read labels, hence class indexes)."""
        options = {k: v for k, v in (self.call_config.get(self.type) or {}).items()}
        options["prediction_field_type"] = "string"
        return {self.type: options}


def _label_index(label: Any, labels: list[Any] | None) -> int | None:
    if not isinstance(label, str):
        return None
    if labels:
        names = [x if isinstance(x, str) else java_str(x) for x in labels]
        return names.index(label) if label in names else None
    try:
        return int(float(label))
    except ValueError:
        return None


def _total_importance(entry: dict[str, Any]) -> Any:
    """ES ``getTotalImportance``: |importance|, or for class importances |first| of two, else sum of |.|."""
    if "importance" in entry:
        return abs(entry["importance"])
    classes = entry.get("classes")
    if not isinstance(classes, list) or not classes:
        return MISSING
    if len(classes) == 2:
        return abs(classes[0].get("importance", 0.0))
    return sum(abs(c.get("importance", 0.0)) for c in classes)


def _check_feature_importance(diff: Diff, got: Any, want: Any, key: str, tol: float, where: str) -> None:
    if key == "feature_importance":
        if not isinstance(want, list):
            diff.add(f"{where}: cannot read expected {want!r}")
            return
        if not isinstance(got, list) or len(got) != len(want):
            diff.add(f"{where}: expected {len(want)} entries {want}, got {got}")
            return
        for i, (g, w) in enumerate(zip(got, want)):
            for sub, value in w.items():
                at = f"{where}[{i}].{sub}"
                if sub == "total_importance":
                    diff.check(_total_importance(g), value, tol, at)
                elif sub == "class_importance_by_name":
                    classes = {c.get("class_name"): c.get("importance") for c in g.get("classes") or []}
                    diff.check(classes, value, tol, at)
                else:
                    diff.check(g.get(sub, MISSING), value, tol, at)
        return
    # feature_importance_by_name: name -> importance (regression) or -> {class: importance}
    if not isinstance(got, list):
        diff.add(f"{where}: expected feature importance, got {got}")
        return
    by_name: dict[str, Any] = {}
    for entry in got:
        if "importance" in entry:
            by_name[entry.get("feature_name")] = entry["importance"]
        else:
            by_name[entry.get("feature_name")] = {c.get("class_name"): c.get("importance")
                                                  for c in entry.get("classes") or []}
    diff.check(by_name, want, tol, where)


def _check_result(diff: Diff, result: dict[str, Any], string_result: dict[str, Any] | None,
                  expected: dict[str, Any], settings: Settings, labels: list[Any] | None, tol: float,
                  where: str) -> None:
    for key, want in expected.items():
        at = f"{where}.{key}"
        if key == "value":
            if settings.is_classification:
                label = (string_result or {}).get(settings.results_field, MISSING)
                index = _label_index(label, labels)
                if index is None:
                    diff.add(f"{at}: no class index for predicted label {label!r} (labels {labels}); "
                             f"answer {string_result}")
                else:
                    diff.check(index, want, tol, f"{at} (class index of {label!r})")
            else:
                diff.check(result.get(settings.results_field, MISSING), want, tol, at)
        elif key == "value_as_string":
            diff.check((string_result or {}).get(settings.results_field, MISSING), want, tol, at)
        elif key == "predicted_value":
            diff.check(result.get(settings.results_field, MISSING), want, tol, at)
        elif key in ("top_classes", "top_classes_count", "top_classes_class_names"):
            tops = result.get(settings.top_classes_field, MISSING)
            if not isinstance(tops, list):
                diff.add(f"{at}: no {settings.top_classes_field} list in the answer {result}")
            elif key == "top_classes":
                diff.check(tops, want, tol, at)
            elif key == "top_classes_count":
                diff.check(len(tops), want, tol, at)
            else:
                diff.check([t.get("class_name", MISSING) for t in tops], want, tol, at)
        elif key in FI_KEYS:
            if "feature_importance" not in result:
                diff.add(f"{at}: expected feature_importance, the result has none: {result}")
                continue
            _check_feature_importance(diff, result["feature_importance"], want, key, tol, at)
        elif key in ("warning", "prediction_probability", "prediction_score"):
            diff.check(result.get(key, MISSING), want, tol, at)
        else:
            diff.add(f"{at}: the harness does not know the expected key {key!r} (case not passed on a subset)")


def _derived_per_doc(case: dict[str, Any], n: int, diff: Diff) -> list[dict[str, Any]]:
    """``derived: {key: [value per doc]}`` as per-doc expectations (facts computed by the case author)."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    derived = case.get("derived")
    if not isinstance(derived, dict):
        return out
    for key, values in derived.items():
        target = DERIVED_KEY_ALIASES.get(key, key)
        if isinstance(values, list) and len(values) == n:
            for i, value in enumerate(values):
                out[i][target] = value
        else:
            diff.note(f"derived[{key!r}] is not one value per doc; not compared")
    return out


# -- runners ------------------------------------------------------------------------------------

def run_model(case: dict[str, Any], meta: dict[str, Any]) -> None:
    tol = tolerance(case)
    diff = Diff()
    checks = case.get("checks") or []
    unknown_checks = [c for c in checks if c != "bounds"]
    if unknown_checks:
        pytest.fail(f"unknown checks {unknown_checks}", pytrace=False)
    eng = engine()
    model_id, body, placeholder = _model_body(case["model"], placeholder_ok="expected_error" not in case)
    resp = _put(eng, model_id, body)
    if "expected_error" in case:
        check_error(diff, resp, case["expected_error"], "PUT error")
        diff.done()
        return
    _require_put(resp)

    docs = [dict(d, **{PLACEHOLDER_FIELD: 0}) if placeholder else d for d in case.get("docs") or []]
    expected = case.get("expected")
    if expected is None:
        expected = [{} for _ in docs]
    if not isinstance(expected, list) or len(expected) != len(docs):
        pytest.fail(f"case has {len(docs)} docs but expected is {expected!r}", pytrace=False)
    derived = _derived_per_doc(case, len(docs), diff)

    config = case.get("inference_config")
    if isinstance(config, dict) and "per_doc" in config:
        per_doc = config["per_doc"]
        if not isinstance(per_doc, list) or len(per_doc) != len(docs):
            pytest.fail(f"inference_config.per_doc has {per_doc!r} for {len(docs)} docs", pytrace=False)
        groups = [([i], per_doc[i]) for i in range(len(docs))]
    else:
        groups = [(list(range(len(docs))), config)] if docs else []

    labels = _labels(body)
    for indexes, call_config in groups:
        settings = Settings(body.get("inference_config"), call_config)
        batch = [docs[i] for i in indexes]
        results = _infer(eng, model_id, batch, call_config)
        wants = [(expected[i], derived[i]) for i in indexes]
        needs_string = settings.is_classification and any(
            "value" in w or "value_as_string" in w for pair in wants for w in pair)
        if settings.string_typed:
            string_results: list[Any] = results
        elif needs_string:
            string_results = _infer(eng, model_id, batch, settings.with_string_type())
        else:
            string_results = [None] * len(batch)
        for j, i in enumerate(indexes):
            for what, want in (("expected", expected[i]), ("derived", derived[i])):
                if not want:
                    continue
                _check_result(diff, results[j], string_results[j], want, settings, labels, tol, f"{what}[{i}]")

    if "expected_stats" in case:
        resp = eng.request("GET", f"_ml/trained_models/{model_id}/_stats")
        stats = resp.body.get("trained_model_stats") if isinstance(resp.body, dict) else None
        if resp.status != 200 or not stats:
            diff.add(f"_stats: HTTP {resp.status}: {resp.body}")
        else:
            diff.check(stats[0].get("inference_stats", MISSING), case["expected_stats"], tol, "inference_stats")

    if "bounds" in checks:
        _check_bounds(diff, case, tol)

    if "expected_model_config" in case:
        resp = eng.request("GET", f"_ml/trained_models/{model_id}")
        configs = resp.body.get("trained_model_configs") if isinstance(resp.body, dict) else None
        if resp.status != 200 or not configs:
            diff.add(f"GET model: HTTP {resp.status}: {resp.body}")
        else:
            for path, want in case["expected_model_config"].items():
                diff.check(path_get(configs[0], path), want, tol, f"model config {path}")

    diff.done()


def _check_bounds(diff: Diff, case: dict[str, Any], tol: float) -> None:
    model = hook("es_infer_nb.models.tree.definition", "parse_definition")(case["model"]["definition"])
    bounds = getattr(model, "bounds", None)
    if not callable(bounds):
        pytest.fail("the parsed model has no bounds() (min/max predicted value)", pytrace=False)
    low, high = bounds()
    diff.check({"min_predicted_value": low, "max_predicted_value": high}, case.get("expected_bounds") or {},
               tol, "bounds")


def _members_as_classification(body: dict[str, Any]) -> bool:
    """Mark member trees with vector leaves ``target_type: classification`` (what ES requires of a
    tree whose leaves hold several values). Returns whether anything changed."""
    changed = False
    for member in _trained(body).get("trained_models") or []:
        tree = member.get("tree") if isinstance(member, dict) else None
        if not tree or tree.get("target_type"):
            continue
        if any(isinstance(n.get("leaf_value"), list) and len(n["leaf_value"]) > 1
               for n in tree.get("tree_structure") or []):
            tree["target_type"] = "classification"
            changed = True
    return changed


def run_aggregator(case: dict[str, Any], meta: dict[str, Any]) -> None:
    tol = tolerance(case)
    diff = Diff()
    eng = engine()
    model_id, body, placeholder = _model_body(case["model"], placeholder_ok=True)
    declared = case.get("aggregator")
    in_model = _trained(body).get("aggregate_output")
    if declared is not None and in_model is not None and declared != in_model:
        pytest.fail(f"case inconsistent: aggregator {declared} but the model aggregates with {in_model}",
                    pytrace=False)
    resp = _put(eng, model_id, body)
    if resp.status == 400 and _members_as_classification(body):
        # The derived ensemble leaves member target_type out even for vector leaves, which ES
        # rejects; the same members marked classification aggregate identically.
        diff.note(f"model as given rejected ({(resp.body.get('error') or {}).get('reason')}); "
                  "members with vector leaves re-sent with target_type classification")
        resp = _put(eng, model_id, body)
    _require_put(resp)
    docs = [dict(d, **{PLACEHOLDER_FIELD: 0}) if placeholder else d for d in (case.get("docs") or [{}])][:1]
    settings = Settings(body.get("inference_config"), case.get("inference_config") or None)
    if not settings.is_classification:
        result = _infer(eng, model_id, docs, case.get("inference_config") or None)[0]
        diff.check(result.get(settings.results_field, MISSING), case["expected_aggregate"], tol, "aggregate")
        diff.done()
        return
    call = settings.with_string_type()
    call[settings.type]["num_top_classes"] = -1
    result = _infer(eng, model_id, docs, call)[0]
    labels = _labels(body)
    label = result.get(settings.results_field, MISSING)
    index = _label_index(label, labels)
    if index is None:
        diff.add(f"aggregate: no class index for predicted label {label!r} in {result}")
    else:
        diff.check(index, case["expected_aggregate"], tol, f"aggregate (class index of {label!r})")
    if "expected_processed" in case:
        tops = result.get(settings.top_classes_field)
        if not isinstance(tops, list):
            diff.add(f"processed: no top classes in {result}")
        else:
            indexed = [(_label_index(t.get("class_name") if isinstance(t.get("class_name"), str)
                                     else java_str(t.get("class_name")), labels), t) for t in tops]
            if any(i is None for i, _ in indexed):
                diff.add(f"processed: class names {[t.get('class_name') for t in tops]} do not map to indexes")
            else:
                by_index = [t.get("class_probability", MISSING) for _, t in sorted(indexed, key=lambda p: p[0])]
                diff.check(by_index, case["expected_processed"], tol, "processed (probability by class index)")
    diff.done()


def _compat_model(aggregator: str, target: str) -> dict[str, Any]:
    options: dict[str, Any] = {"num_classes": 2} if aggregator == "weighted_mode" else {}
    trees = [{"tree": {"feature_names": ["f"], "target_type": "regression",
                       "tree_structure": [{"node_index": 0, "leaf_value": leaf}]}} for leaf in (0.0, 1.0)]
    return {
        "input": {"field_names": ["f"]},
        "inference_config": {target: {}},
        "definition": {"trained_model": {"ensemble": {
            "feature_names": ["f"], "target_type": target, "aggregate_output": {aggregator: options},
            "trained_models": trees}}},
    }


def run_aggregator_compatibility(case: dict[str, Any], meta: dict[str, Any]) -> None:
    diff = Diff()
    name = case["aggregator"]
    for target, compatible in (case.get("expected_compatible") or {}).items():
        resp = _put(engine(), "compat-model", _compat_model(name, target))
        if compatible:
            if resp.status != 200:
                diff.add(f"{name} with target_type {target}: expected accepted, got HTTP {resp.status}: {resp.body}")
        else:
            reason = ((resp.body or {}).get("error") or {}).get("reason") if isinstance(resp.body, dict) else None
            if resp.status != 400 or not isinstance(reason, str) or "is not compatible with target_type" not in reason:
                diff.add(f"{name} with target_type {target}: expected 400 'is not compatible with target_type', "
                         f"got HTTP {resp.status}: {resp.body}")
    diff.done()


def run_to_double(case: dict[str, Any], meta: dict[str, Any]) -> None:
    to_double = hook("es_infer_nb.models.tree.features", "to_double")
    diff = Diff()
    diff.check(to_double(case["input"]), case["expected"], tolerance(case), f"to_double({case['input']!r})")
    diff.done()


KINDS = {
    "model": run_model,
    "aggregator": run_aggregator,
    "aggregator_compatibility": run_aggregator_compatibility,
    "to_double": run_to_double,
}


def default_kind(case: dict[str, Any]) -> str:
    return "model"
