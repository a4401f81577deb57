"""Uploaded TorchScript definitions run only the operations a text model needs (issue 23, finding 1).

Hostile modules are built here, uploaded through ``Engine.request`` as eland uploads them (model config,
base64 definition parts, vocabulary, ``_start``, ``_infer``) and must be refused, naming the operation,
without the file outside the home being read or created; a traced BERT keeps working unchanged.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from es_infer_nb import Engine
from es_infer_nb.models.nlp.graph_check import TRUST_ENV, UnsafeDefinition, check_module, module_operators, scan_archive
from tiny_models import VOCAB, bert_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning",
                                        "ignore::FutureWarning", "ignore::UserWarning")

EMBEDDING = {"text_embedding": {"tokenization": {"bert": {"do_lower_case": True}}}}
SECRET = b"TOP-SECRET-0123456789"


# -- hostile modules ---------------------------------------------------------------------------------------


class FileReader(torch.nn.Module):
    """Reads ``path`` (``aten::from_file``, shared: it creates the file when missing) into its output."""

    def __init__(self, path: str, size: int) -> None:
        super().__init__()
        self.path = path
        self.size = size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        stolen = torch.from_file(self.path, True, self.size, dtype=torch.uint8).float()
        return stolen.unsqueeze(0).expand(input_ids.shape[0], self.size) + attention_mask.sum() * 0


class Wrapper(torch.nn.Module):
    """Hides ``inner`` one level down: the check must inline the call."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids, attention_mask) * 1.0


class InABranch(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if int(input_ids.sum()) == -7:
            return torch.from_file(self.path, True, 4, dtype=torch.uint8).float().unsqueeze(0)
        return attention_mask.float()


class ExportedHelper(torch.nn.Module):
    """``forward`` is harmless; another method (callable by name) reads the file."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_mask.float()

    @torch.jit.export
    def steal(self) -> torch.Tensor:
        return torch.from_file(self.path, True, 4, dtype=torch.uint8)


class StateHook(torch.nn.Module):
    """Its ``__setstate__`` runs inside ``torch.jit.load``: it creates ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.n = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_mask.float()

    @torch.jit.export
    def __getstate__(self) -> tuple[str, int, bool]:
        return (self.path, self.n, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, int, bool]) -> None:
        self.path = state[0]
        self.n = int(torch.from_file(self.path, True, 8, dtype=torch.uint8).sum())
        self.training = state[2]


class StridedView(torch.nn.Module):
    """``as_strided`` can view memory outside a tensor's storage (heap reads and writes)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.as_strided(attention_mask.float(), [1, 2], [1, 1], 0)


class Uninitialised(torch.nn.Module):
    """``empty`` hands back whatever the allocator held: no text model needs it."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.empty([input_ids.shape[0], 4]) * 0 + 1


class Printer(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        print("hello from the model")
        return attention_mask.float()


class Harmless(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_mask.float()


@functools.cache
def touch_op() -> Any:
    """A custom operator in its own namespace, registered in this process: it creates a file."""

    @torch.library.custom_op("es_infer_nb_test::touch", mutates_args=())
    def touch(path: str) -> torch.Tensor:
        Path(path).write_bytes(b"created")
        return torch.zeros(1)

    return touch


class CustomOp(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.ops.es_infer_nb_test.touch(self.path) + attention_mask.float()


def hooked(path: str) -> torch.nn.Module:
    """A harmless module whose scripted forward pre-hook reads ``path``."""
    module = Harmless()

    module.register_forward_pre_hook(_read_in_hook)
    module.path = path  # type: ignore[assignment]
    return module


def _read_in_hook(module, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    stolen = torch.from_file(module.path, True, 4, dtype=torch.uint8).sum().long()
    return (inputs[0] + stolen, inputs[1])


# -- helpers -----------------------------------------------------------------------------------------------


def archive(module: torch.nn.Module) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
    return buf.getvalue()


def upload(engine: Engine, model_id: str, raw: bytes, config: dict[str, Any] | None = None) -> Any:
    """eland's PyTorchModel.put_config / put_model (two base64 parts) / put_vocab, then _start."""
    r = engine.request("PUT", f"_ml/trained_models/{model_id}",
                       {"model_type": "pytorch", "inference_config": config or EMBEDDING, "input": {"field_names": ["text_field"]}})
    assert r.status == 200, r.body
    half = len(raw) // 2
    for part, chunk in enumerate((raw[:half], raw[half:])):
        r = engine.request("PUT", f"_ml/trained_models/{model_id}/definition/{part}", {
            "definition": base64.b64encode(chunk).decode(), "total_definition_length": len(raw), "total_parts": 2})
        assert r.status == 200, r.body
    r = engine.request("PUT", f"_ml/trained_models/{model_id}/vocabulary", {"vocabulary": VOCAB})
    assert r.status == 200, r.body
    return engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start")


def infer(engine: Engine, model_id: str) -> Any:
    return engine.request("POST", f"_ml/trained_models/{model_id}/_infer",
                          {"docs": [{"text_field": "the capital of france is paris"}]})


def assert_refused(response: Any, op: str) -> None:
    assert response.status == 400, response.body
    error = response.body["error"]
    assert error["type"] == "status_exception"
    assert op in error["reason"] and TRUST_ENV in error["reason"], error["reason"]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """An engine home and, beside it (outside it), a secret file and a path nothing may create."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    return {"home": tmp_path / "home", "secret": secret, "created": outside / "created.bin"}


# -- hostile uploads are refused -------------------------------------------------------------------------


def test_a_model_reading_a_file_outside_the_home_is_refused_before_it_runs(places):
    engine = Engine(places["home"])
    r = upload(engine, "reader", archive(FileReader(str(places["secret"]), len(SECRET))))
    assert_refused(r, "aten::from_file")
    assert "forbidden operations ['aten::from_file']" in r.body["error"]["reason"]
    assert "Model [reader] cannot be loaded" in r.body["error"]["reason"]
    served = infer(engine, "reader")
    assert served.status >= 400 and "TOP-SECRET" not in json.dumps(served.body)
    assert engine.request("GET", "_ml/trained_models/reader/_stats").body["trained_model_stats"][0].get(
        "deployment_stats") is None


def test_the_same_model_runs_in_a_trusted_home_so_the_refusal_is_what_protects(places, tmp_path):
    """The opt-out: a trusted engine loads it, and it does read the file (the attack is real)."""
    trusted = Engine(tmp_path / "trusted-home", trust_torchscript=True)
    assert upload(trusted, "reader", archive(FileReader(str(places["secret"]), len(SECRET)))).status == 200
    r = infer(trusted, "reader")
    assert r.status == 200, r.body
    assert bytes(int(v) for v in r.body["inference_results"][0]["predicted_value"]) == SECRET


def test_a_model_creating_a_file_outside_the_home_is_refused_and_creates_nothing(places):
    engine = Engine(places["home"])
    assert_refused(upload(engine, "creator", archive(FileReader(str(places["created"]), 16))), "aten::from_file")
    infer(engine, "creator")
    assert not places["created"].exists()


def test_setstate_is_refused_before_torch_jit_load_could_run_it(places, tmp_path):
    raw = archive(StateHook(str(places["created"])))
    engine = Engine(places["home"])
    r = upload(engine, "state-hook", raw)
    assert_refused(r, "__setstate__")
    assert "code that runs while the model loads" in r.body["error"]["reason"]
    infer(engine, "state-hook")
    assert not places["created"].exists()
    # what the check prevents: loading the archive alone runs __setstate__ and creates the file
    torch.jit.load(io.BytesIO(raw))
    assert places["created"].exists()


def test_an_operator_of_a_custom_namespace_is_refused_before_load(places):
    touch_op()
    raw = archive(CustomOp(str(places["created"])))
    engine = Engine(places["home"])
    assert_refused(upload(engine, "custom", raw), "es_infer_nb_test::touch")
    infer(engine, "custom")
    assert not places["created"].exists()


HIDDEN = pytest.mark.parametrize("build, op", [
    (lambda p: Wrapper(FileReader(p, 4)), "aten::from_file"),
    (lambda p: Wrapper(Wrapper(InABranch(p))), "aten::from_file"),
    (lambda p: ExportedHelper(p), "aten::from_file"),
    (lambda p: hooked(p), "aten::from_file"),
    (lambda p: StridedView(), "aten::as_strided"),
    (lambda p: Printer(), "prim::Print"),
    (lambda p: Uninitialised(), "aten::empty"),
], ids=["submodule", "branch-two-levels-down", "exported-method", "forward-pre-hook", "as-strided", "print",
        "uninitialised-memory"])


@HIDDEN
def test_operations_hidden_anywhere_in_the_module_are_found(places, build, op):
    engine = Engine(places["home"])
    assert_refused(upload(engine, "hidden", archive(build(str(places["created"])))), op)
    assert not places["created"].exists()


@HIDDEN
def test_the_graph_check_alone_finds_them_too(places, build, op):
    """The loaded module's graphs are checked whatever the archive scan saw."""
    with pytest.raises(UnsafeDefinition, match=op):
        check_module("hidden", torch.jit.script(build(str(places["created"]))))


def test_a_deployment_started_in_a_trusted_home_is_refused_when_an_untrusted_engine_serves_it(places):
    raw = archive(FileReader(str(places["secret"]), len(SECRET)))
    assert upload(Engine(places["home"], trust_torchscript=True), "reader", raw).status == 200
    engine = Engine(places["home"])  # the same home, not trusted: the stored deployment loads on first use
    r = infer(engine, "reader")
    assert "TOP-SECRET" not in json.dumps(r.body)
    assert "aten::from_file" in json.dumps(r.body), r.body


def test_a_definition_that_is_not_an_archive_still_fails_the_start_as_before(engine):
    r = upload(engine, "junk", b"not a model at all")
    assert r.status == 500 and "not a TorchScript module" in r.body["error"]["reason"]


# -- text models keep working ------------------------------------------------------------------------------


class MeanPooled(torch.nn.Module):
    """What eland traces for a sentence-transformers model: the encoder, mean pooling, L2 norm."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def traced(encoder: torch.nn.Module) -> torch.jit.ScriptModule:
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(MeanPooled(encoder.eval()).eval(), (ids, (ids > 0).long()), strict=False)


def test_a_traced_bert_uploads_and_infers_exactly_as_without_the_check(tmp_path):
    from transformers import BertModel

    torch.manual_seed(0)
    module = traced(BertModel(bert_config()))
    raw = archive(module)
    checked, trusted = Engine(tmp_path / "checked"), Engine(tmp_path / "trusted", trust_torchscript=True)
    assert not checked.trust_torchscript
    docs = {"docs": [{"text_field": "the capital of france is paris"}, {"text_field": "my little red car"}]}
    results = []
    for engine in (checked, trusted):
        r = upload(engine, "tiny-bert", raw)
        assert r.status == 200, r.body
        r = engine.request("POST", "_ml/trained_models/tiny-bert/_infer", docs)
        assert r.status == 200, r.body
        results.append([doc["predicted_value"] for doc in r.body["inference_results"]])
    assert results[0] == results[1]
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 10, 3]])  # [CLS] the capital of france is paris [SEP]
    with torch.no_grad():
        direct = module(ids, torch.ones_like(ids))[0].numpy()
    np.testing.assert_allclose(results[0][0], direct, atol=1e-5)


ARCHITECTURES = {
    "bert": lambda t: t.BertModel(t.BertConfig(**SMALL)),
    "roberta": lambda t: t.RobertaModel(t.RobertaConfig(**SMALL)),
    "distilbert": lambda t: t.DistilBertModel(t.DistilBertConfig(vocab_size=64, dim=16, n_layers=2, n_heads=2,
                                                                 hidden_dim=32, max_position_embeddings=64)),
    "mpnet": lambda t: t.MPNetModel(t.MPNetConfig(**SMALL)),
    "deberta-v2": lambda t: t.DebertaV2Model(t.DebertaV2Config(**SMALL)),
    "electra": lambda t: t.ElectraModel(t.ElectraConfig(embedding_size=16, **SMALL)),
}
SMALL = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
             max_position_embeddings=64)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_the_architectures_eland_traces_pass_the_check(arch):
    import transformers

    torch.manual_seed(0)
    raw = archive(traced(ARCHITECTURES[arch](transformers)))
    scan_archive(arch, raw)  # both raise when something is refused
    module = torch.jit.load(io.BytesIO(raw))
    check_module(arch, module)
    ops, nodes = module_operators(module)
    assert "aten::linear" in ops and nodes > 50


# -- the opt-out -------------------------------------------------------------------------------------------


def test_the_opt_out_comes_from_the_environment_the_engine_or_serve(monkeypatch):
    from es_infer_nb.cli import build_parser

    monkeypatch.delenv(TRUST_ENV, raising=False)
    assert Engine().trust_torchscript is False
    monkeypatch.setenv(TRUST_ENV, "1")
    assert Engine().trust_torchscript is True
    assert Engine(trust_torchscript=False).trust_torchscript is False
    monkeypatch.setenv(TRUST_ENV, "0")
    assert Engine().trust_torchscript is False and Engine(trust_torchscript=True).trust_torchscript is True
    assert build_parser().parse_args(["serve", "--trust-torchscript"]).trust_torchscript is True
    assert build_parser().parse_args(["serve"]).trust_torchscript is False
