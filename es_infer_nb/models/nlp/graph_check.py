"""The check an uploaded TorchScript definition passes before it runs, as ES's ``pytorch_inference``
validates a model (``CModelGraphValidator``): an uploaded definition may only use the operations a
text model needs.

Two steps, the first before anything in the archive can run:

1. :func:`scan_archive` reads the archive's records (tensor storages aside) with torch's own zip
   reader (no unpickling, no compiling) and refuses any record naming ``__setstate__`` / ``__getstate__`` (``torch.jit.load``
   runs a module's ``__setstate__`` while it loads it), a custom class (``torch.classes``: C++ code
   run at load time) or a forbidden operator (``torch.from_file``, ``ops.<namespace>.<op>`` of a
   namespace other than ``aten`` / ``prim``). With those absent, ``torch.jit.load`` only compiles the
   code and copies the tensors.
2. :func:`check_module` walks the graphs of the loaded module, each method of each submodule and
   each forward hook, with every call inlined (ES's ``Inline`` pass), and refuses an operation of
   :data:`FORBIDDEN_OPERATIONS` or any outside :data:`ALLOWED_OPERATIONS` (tensor math, shapes,
   attention, control flow: what traced BERT, RoBERTa, XLM-R, DistilBERT, MPNet, DeBERTa, ELECTRA,
   ALBERT and MobileBERT models use, with their pooling, classification and QA heads). What is not
   on the list is refused, memory-unsafe views (``as_strided``, ``set_``) and uninitialised memory
   (``empty``) included.

Models from a trusted source skip both: ``Engine(trust_torchscript=True)``, ``es-infer serve
--trust-torchscript`` or ``ES_INFER_NB_TRUST_TORCHSCRIPT=1``.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any, Iterable, Iterator

from ...errors import ApiError

TRUST_ENV = "ES_INFER_NB_TRUST_TORCHSCRIPT"

#: more graph nodes than this (after inlining) and the model is refused, as ES refuses it
MAX_NODE_COUNT = 1_000_000

#: namespaces whose operators may appear at all; any other (custom ``torch.ops``) is forbidden
ALLOWED_NAMESPACES = frozenset({"aten", "prim"})

#: operators refused by name: files, storages, memory-unsafe views, Python, threads, RPC, printing,
#: module state changes, and calls left opaque after inlining
FORBIDDEN_OPERATIONS = frozenset({
    "aten::from_file", "aten::save", "aten::set_", "aten::set", "aten::as_strided", "aten::as_strided_",
    "aten::as_strided_scatter", "aten::_index_put_impl_", "aten::wait", "aten::to_here",
    "prim::CallFunction", "prim::CallMethod", "prim::PythonOp", "prim::IgnoredPythonOp", "prim::Print",
    "prim::SetAttr", "prim::CreateObject", "prim::fork", "prim::awaitable", "prim::Enter", "prim::Exit",
    "prim::rpc_async", "prim::rpc_sync", "prim::rpc_remote",
})

_TENSOR_MATH = (
    "abs add add_ addmm baddbmm bmm ceil clamp clamp_ clamp_max clamp_min cos cumsum div div_ einsum eq erf "
    "exp expm1 floor floor_divide fmod ge gelu gt hardtanh le leaky_relu log log1p log_softmax logical_and "
    "logical_not logical_or logsumexp lt matmul maximum minimum mm mul mul_ ne neg pow reciprocal relu remainder "
    "round rsqrt rsub sigmoid sign silu sin softmax softplus sqrt square sub sub_ tanh true_divide mish "
    "bitwise_and bitwise_not bitwise_or bitwise_xor __and__ __or__ __xor__ __not__"
)
_REDUCTIONS = "sum mean max min amax amin argmax argmin prod norm linalg_vector_norm linalg_norm std var all any topk"
_LAYERS = (
    "linear layer_norm group_norm embedding dropout feature_dropout scaled_dot_product_attention conv1d pad "
    "constant_pad_nd cosine_similarity"
)
_SHAPES = (
    "cat stack chunk split split_with_sizes unbind contiguous expand expand_as flatten unflatten narrow permute "
    "repeat repeat_interleave reshape reshape_as select slice squeeze squeeze_ t transpose unsqueeze unsqueeze_ "
    "view view_as flip roll tril triu index index_select gather masked_fill masked_fill_ where index_put_ fill_ "
    "zero_ detach clone type_as to float long int bool half"
)
_CREATION = "arange zeros zeros_like ones ones_like full full_like new_zeros new_ones new_full tensor scalar_tensor " \
            "lift_fresh"
_SCALARS = (
    "size dim numel len __getitem__ append list Int Float Bool IntImplicit FloatImplicit ScalarImplicit __is__ "
    "__isnot__ floordiv __range_length __derive_index is_floating_point format str"
)
_PRIMS = (
    "Constant GetAttr If Loop ListConstruct ListUnpack ListIndex TupleConstruct TupleUnpack TupleIndex "
    "DictConstruct DictIndex NumToTensor device dtype layout max min Uninitialized unchecked_cast "
    "unchecked_unwrap_optional RaiseException isinstance is_cuda requires_grad ConstantChunk"
)

#: the operators an uploaded text model may use
ALLOWED_OPERATIONS = frozenset(
    [f"aten::{name}" for group in (_TENSOR_MATH, _REDUCTIONS, _LAYERS, _SHAPES, _CREATION, _SCALARS)
     for name in group.split()]
    + [f"prim::{name}" for name in _PRIMS.split()]
) - FORBIDDEN_OPERATIONS

#: bytes that no record of an uploaded archive may hold: code run while ``torch.jit.load`` unpickles
STATE_HOOKS = (b"__setstate__", b"__getstate__", b"torch.classes")

_CUSTOM_OP = re.compile(rb"(?<![\w.])(?:torch\.)?ops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_TORCH_CALL = re.compile(rb"(?<![\w.])torch\.([A-Za-z_]\w*)\s*\(")

TRUST_HINT = (f"run only models from a source you trust with {TRUST_ENV}=1, Engine(trust_torchscript=True) or "
              "es-infer serve --trust-torchscript")


class UnsafeDefinition(ApiError):
    """An uploaded TorchScript definition refused by the check (``status_exception``, 400)."""

    def __init__(self, model_id: str, problem: str) -> None:
        super().__init__("status_exception", f"Model [{model_id}] cannot be loaded: {problem}; {TRUST_HINT}", 400)


def trusted_from_env() -> bool:
    """Whether ``$ES_INFER_NB_TRUST_TORCHSCRIPT`` turns the check off (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(TRUST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


#: records holding tensor storages: copied into tensors as raw bytes, never parsed, so not scanned
STORAGE_RECORDS = re.compile(r"(?:data|constants)/\d+")


def archive_records(definition: bytes) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of each record of a TorchScript archive but its tensor storages, read by torch's
    own zip reader (the one ``torch.jit.load`` uses, so both see the same records); nothing is
    unpickled or compiled."""
    import torch

    reader = torch._C.PyTorchFileReader(io.BytesIO(definition))
    for name in reader.get_all_records():
        if not STORAGE_RECORDS.fullmatch(name):
            yield name, bytes(reader.get_record(name))


def _operator_problems(ops: Iterable[str]) -> str | None:
    ops = set(ops)
    forbidden = sorted(op for op in ops if op in FORBIDDEN_OPERATIONS or op.split("::")[0] not in ALLOWED_NAMESPACES)
    if forbidden:
        return f"the TorchScript definition uses forbidden operations {forbidden}"
    unrecognised = sorted(op for op in ops if op not in ALLOWED_OPERATIONS)
    if unrecognised:
        return f"the TorchScript definition uses operations a text model does not need {unrecognised}"
    return None


def code_operators(text: bytes) -> set[str]:
    """The operators the serialized code of a record names that the archive scan can tell: every
    ``ops.<namespace>.<op>`` and each forbidden ``torch.<op>(`` call."""
    found = {f"{ns.decode()}::{op.decode()}" for ns, op in _CUSTOM_OP.findall(text)}
    found |= {f"aten::{name.decode()}" for name in _TORCH_CALL.findall(text)
              if f"aten::{name.decode()}" in FORBIDDEN_OPERATIONS}
    return {op for op in found if op in FORBIDDEN_OPERATIONS or op.split("::")[0] not in ALLOWED_NAMESPACES}


def scan_archive(model_id: str, definition: bytes) -> None:
    """Refuse an archive holding code that ``torch.jit.load`` would run or a forbidden operator, before
    it is loaded (:class:`UnsafeDefinition`); an unreadable archive is the model's fault (400)."""
    hooks: set[str] = set()
    ops: set[str] = set()
    try:
        for name, data in archive_records(definition):
            hooks |= {hook.decode() for hook in STATE_HOOKS if hook in data}
            if name.startswith("code/"):
                ops |= code_operators(data)
    except Exception as exc:  # noqa: BLE001 - whatever the zip reader says, it is not a TorchScript archive
        raise ApiError("status_exception", f"the model definition is not a TorchScript module: {exc}", 400) from None
    if hooks:
        raise UnsafeDefinition(model_id, f"the TorchScript definition holds {sorted(hooks)}, code that runs while "
                                         "the model loads")
    problem = _operator_problems(ops)
    if problem is not None:
        raise UnsafeDefinition(model_id, problem)


def _block_ops(block: Any, ops: set[str], count: list[int]) -> None:
    for node in block.nodes():
        count[0] += 1
        if count[0] > MAX_NODE_COUNT:
            return
        ops.add(node.kind())
        for inner in node.blocks():
            _block_ops(inner, ops, count)


def _graphs(module: Any) -> Iterator[Any]:
    """Each method of each submodule type, and each forward hook, of a loaded script module."""
    seen: set[str] = set()
    for sub in module.modules():
        cpp = sub._c
        kind = cpp._type().qualified_name()
        if kind in seen:
            continue
        seen.add(kind)
        for name in cpp._method_names():
            yield cpp._get_method(name).graph
        for hook in [*cpp._get_forward_pre_hooks(), *cpp._get_forward_hooks()]:
            yield hook.graph


def module_operators(module: Any) -> tuple[set[str], int]:
    """The operator kinds of every graph of ``module`` with its calls inlined, and the node count."""
    import torch

    ops: set[str] = set()
    count = [0]
    for graph in _graphs(module):
        inlined = graph.copy()
        torch._C._jit_pass_inline(inlined)
        _block_ops(inlined.block(), ops, count)
        if count[0] > MAX_NODE_COUNT:
            break
    return ops, count[0]


def check_module(model_id: str, module: Any) -> None:
    """Refuse a loaded module (:class:`UnsafeDefinition`) whose graphs use an operation outside
    :data:`ALLOWED_OPERATIONS` or hold more than :data:`MAX_NODE_COUNT` nodes."""
    ops, count = module_operators(module)
    if count > MAX_NODE_COUNT:
        raise UnsafeDefinition(model_id, f"the TorchScript graph has more than {MAX_NODE_COUNT} nodes")
    problem = _operator_problems(ops)
    if problem is not None:
        raise UnsafeDefinition(model_id, problem)
