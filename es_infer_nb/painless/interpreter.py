"""The Painless subset of the ``script`` ingest processor: statements over ``ctx`` and ``params``.

The same language as the ``if`` conditions of :mod:`es_infer_nb.ingest.condition`, extended to statements:
``def`` / typed locals (``String x = ...``), assignments to ctx fields and locals (``ctx.a = ...``,
``ctx['a'] = ...``, ``ctx.a.b = ...``, ``+= -= *= /= %=``, ``++`` / ``--``), arithmetic with Java's
int/long/double rules, ``? :`` and ``?:``, ``if`` / ``else``, ``return`` (ends the script; the value is
ignored, as ES ignores it), ``for (x : list)`` / ``for (;;)`` / ``while`` bounded by Painless's loop
counter, list and map literals (``[1, 2]``, ``['a': 1]``, ``[:]``), ``new ArrayList()`` /
``new HashMap()``, and a fixed table of methods (String, List, Map) and static calls (``Math``,
``Integer.parseInt``, ``String.valueOf`` ...).

Untrusted input stays data: the script is parsed to tuples and walked by this interpreter; no
Python ``eval``/``exec``, no attribute lookup on Python objects (every method is an entry of
:data:`METHODS`), a loop counter (Painless's 1,000,000 statements), a time limit per document, a
cap on string and list sizes and on the size of what the script leaves in ``ctx``. Errors are ES's
``script_exception`` (``compile error`` / ``runtime error``) with ``script_stack``, ``script``,
``lang`` and ``position``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ApiError
from ..models.tree.features import java_string
from .syntax import CompileError, Long, Node, Parser, script_error, writes_of
from .values import (
    MAX_NESTING_DEPTH,
    ANY_METHODS,
    MAX_CTX_NODES,
    METHODS,
    JavaException,
    construct,
    new_array,
    STATICS,
    PainlessRuntimeError,
    arith,
    cast,
    cast_error,
    check_size,
    declare_default,
    equal,
    hashable,
    instance_of,
    is_num,
    map_key,
    type_of,
)

__all__ = ["MAX_LOOP_COUNTER", "Program", "compile_script"]

#: Painless's ``max_loop_counter`` default: statements a script may run in loops
MAX_LOOP_COUNTER = 1_000_000
#: the wall-clock limit of one script on one document (es_infer_nb's; checked as loops run)
MAX_SECONDS = 10.0
_MAX_DEPTH = MAX_NESTING_DEPTH


# -- execution -------------------------------------------------------------------------------------


class _Return(Exception):
    def __init__(self, value: Any = None) -> None:
        super().__init__()
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Frame:
    ctx: dict[str, Any]
    params: dict[str, Any]
    local: dict[str, Any] = field(default_factory=dict)
    loops: int = 0
    deadline: float = 0.0
    functions: dict[str, Any] = field(default_factory=dict)


@dataclass
class Program:
    """A compiled script: run it over a document's ``ctx`` (changed in place)."""

    source: str
    tree: Node
    writes: list[str]
    #: the script's own functions: name -> (return type, [(type, name)], body)
    functions: dict[str, Any] = field(default_factory=dict)

    def execute(self, ctx: dict[str, Any], params: dict[str, Any]) -> None:
        """Run over a document's ``ctx`` (the ``script`` processor): what the script returns is ignored, as
        ES ignores it."""
        self._run(ctx, params, check_ctx=True)

    def evaluate(self, params: dict[str, Any], ctx: dict[str, Any] | None = None) -> Any:
        """Run as a template script (no document: ``ctx`` is an empty map) and give back what it returns
        (``None`` where it returns nothing): what ml-commons connectors' process scripts are; with a
        ``ctx``, over that map (an ingest condition)."""
        return self._run({} if ctx is None else ctx, params, check_ctx=False)

    def _run(self, ctx: dict[str, Any], params: dict[str, Any], check_ctx: bool) -> Any:
        frame = _Frame(ctx, params, deadline=time.monotonic() + MAX_SECONDS, functions=self.functions)
        try:
            returned = None
            try:
                _run(self.tree, frame)
            except _Return as ret:
                returned = ret.value
            if check_ctx:
                _check_ctx(ctx)
            return returned
        except PainlessRuntimeError as err:
            raise script_error(
                "runtime error",
                self.source,
                err.offset if err.offset is not None else 0,
                ApiError(err.kind, err.message, 400),
            ) from None
        except RecursionError:
            raise script_error(
                "runtime error", self.source, 0, ApiError("stack_overflow_error", "the script nests too deeply", 400)
            ) from None


def _check_ctx(ctx: dict[str, Any]) -> None:
    """What the script leaves in ``ctx``: nested at most MAX_DEPTH levels, at most MAX_CTX_NODES values,
    and plain Python ints where the script computed a Java ``long`` (JSON encoders want ``int``)."""
    count = 0
    stack: list[tuple[Any, int]] = [(ctx, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_CTX_NODES:
            raise PainlessRuntimeError(
                "illegal_argument_exception",
                f"the script left more than {MAX_CTX_NODES} values in ctx (es_infer_nb's limit)",
            )
        if depth > _MAX_DEPTH:
            raise PainlessRuntimeError(
                "illegal_argument_exception",
                f"the script left ctx nested deeper than {_MAX_DEPTH} levels (a list or map that contains itself?)",
            )
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, Long):
                    node[key] = int(value)
                else:
                    stack.append((value, depth + 1))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, Long):
                    node[i] = int(value)
                else:
                    stack.append((value, depth + 1))


def _run(node: Node, f: _Frame) -> None:
    kind = node[0]
    try:
        if kind == "block":
            for stmt in node[2]:
                _run(stmt, f)
        elif kind == "expr":
            _eval(node[2], f)
        elif kind == "decl":
            for name, value in node[3]:
                f.local[name] = declare_default(node[2]) if value is None else cast(node[2], _eval(value, f))
        elif kind == "if":
            if _truth(_eval(node[2], f), "if"):
                _run(node[3], f)
            elif node[4] is not None:
                _run(node[4], f)
        elif kind == "while":
            while _truth(_eval(node[2], f), "while"):
                _tick(f, node[3])
                if _body_breaks(f, node[3]):
                    break
        elif kind == "for":
            if node[2] is not None:
                _run(node[2], f)
            while node[3] is None or _truth(_eval(node[3], f), "for"):
                _tick(f, node[5])
                if _body_breaks(f, node[5]):
                    break
                if node[4] is not None:
                    _eval(node[4], f)
        elif kind == "foreach":
            items = _eval(node[4], f)
            if items is None:
                raise PainlessRuntimeError("null_pointer_exception", "cannot iterate over null")
            if isinstance(items, dict):
                items = list(items)
            if not isinstance(items, list):
                raise PainlessRuntimeError(
                    "class_cast_exception", f"Cannot cast {type_of(items)} to java.lang.Iterable"
                )
            for item in list(items):
                _tick(f, node[5])
                f.local[node[3]] = cast(node[2], item)
                if _body_breaks(f, node[5]):
                    break
        elif kind == "return":
            raise _Return(None if node[2] is None else _eval(node[2], f))
        elif kind == "throw":
            thrown = _eval(node[2], f)
            if not isinstance(thrown, JavaException):
                raise PainlessRuntimeError("class_cast_exception",
                                           f"Cannot cast {type_of(thrown)} to java.lang.Throwable")
            raise PainlessRuntimeError(thrown.kind, thrown.message)
        elif kind == "break":
            raise _Break()
        elif kind == "continue":
            raise _Continue()
        else:  # pragma: no cover - the parser builds no other statement
            raise PainlessRuntimeError("illegal_state_exception", f"unknown statement [{kind}]")
    except PainlessRuntimeError as err:
        if err.offset is None:
            err.offset = node[1]
        raise


def _body_breaks(f: _Frame, body: Node) -> bool:
    """Run a loop's body once (after :func:`_tick`); whether it ended in ``break``."""
    try:
        _run(body, f)
    except _Break:
        return True
    except _Continue:
        pass
    return False


def _tick(f: _Frame, body: Node) -> None:
    """One loop iteration: Painless counts the statements of the loop's body against ``max_loop_counter``;
    every 4096 of them the wall clock is checked against :data:`MAX_SECONDS`."""
    before = f.loops
    f.loops += max(len(body[2]), 1) if body[0] == "block" else 1
    if f.loops > MAX_LOOP_COUNTER:
        raise PainlessRuntimeError(
            "painless_error", "The maximum number of statements that can be executed in a loop has been reached."
        )
    if f.loops // 4096 != before // 4096 and time.monotonic() > f.deadline:
        raise PainlessRuntimeError(
            "painless_error", f"the script ran longer than {MAX_SECONDS:g} s on one document (es_infer_nb's limit)"
        )


def _truth(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to boolean")
    return value


def _get(base: Any, key: Any, null_safe: bool) -> Any:
    if base is None:
        if null_safe:
            return None
        raise _null_base(key)
    if isinstance(base, dict):
        return base.get(key) if hashable(key) else None
    if isinstance(base, list):
        if key == "length" and isinstance(key, str):  # Painless's List augmentation getLength()
            return len(base)
        return base[_list_index(base, key)]
    raise PainlessRuntimeError(
        "illegal_argument_exception", f"dynamic getter [{type_of(base)}, {_key_text(key)}] not found"
    )


def _key_text(key: Any) -> str:
    return java_string(key) if not isinstance(key, (list, dict)) else type_of(key)


def _null_base(key: Any) -> PainlessRuntimeError:
    return PainlessRuntimeError(
        "null_pointer_exception",
        f'Cannot invoke "Object.getClass()" because the value holding [{_key_text(key)}] is null',
    )


def _list_index(base: list[Any], key: Any) -> int:
    """``base[key]``'s position (a negative key counts from the end), or Painless's error for the key."""
    if not isinstance(key, int) or isinstance(key, bool):
        raise PainlessRuntimeError("illegal_argument_exception", f"Illegal list shortcut value [{_key_text(key)}].")
    idx = key + len(base) if key < 0 else key
    if not 0 <= idx < len(base):
        raise PainlessRuntimeError(
            "index_out_of_bounds_exception", f"Index {key} out of bounds for length {len(base)}"
        )
    return idx


def _put(base: Any, key: Any, value: Any) -> None:
    if base is None:
        raise _null_base(key)
    if isinstance(base, dict):
        base[map_key(key)] = value
        return
    if isinstance(base, list):
        base[_list_index(base, key)] = value
        return
    raise PainlessRuntimeError(
        "illegal_argument_exception", f"dynamic setter [{type_of(base)}, {_key_text(key)}] not found"
    )


def _read(target: Node, f: _Frame) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    """The getter and setter of an assignable expression (a local, or ``base[key]`` / ``base.key``)."""
    if target[0] == "var":
        name = target[2]
        return (lambda: f.local.get(name)), (lambda v: f.local.__setitem__(name, v))
    base_node = target[2]
    if base_node[0] == "var" and base_node[2] == "params":
        raise PainlessRuntimeError("unsupported_operation_exception", "params are read-only", target[1])
    base = _eval(base_node, f)
    key = _eval(target[3], f)
    return (lambda: _get(base, key, False)), (lambda v: _put(base, key, v))


def _eval(node: Node, f: _Frame) -> Any:
    kind = node[0]
    try:
        if kind == "lit":
            return node[2]
        if kind == "var":
            name = node[2]
            if name == "ctx":
                return f.ctx
            if name == "params":
                return f.params
            return f.local.get(name)
        if kind == "get":
            return _get(_eval(node[2], f), _eval(node[3], f), node[4])
        if kind == "bin":
            op = node[2]
            a, b = _eval(node[3], f), _eval(node[4], f)
            if op == "==":
                return equal(a, b)
            if op == "!=":
                return not equal(a, b)
            if op in ("<", "<=", ">", ">="):
                if not (is_num(a) and is_num(b)):
                    raise cast_error(op, a, b)
                return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
            return arith(op, a, b)
        if kind == "logic":
            left = _truth(_eval(node[3], f), node[2])
            if node[2] == "&&" and not left:
                return False
            if node[2] == "||" and left:
                return True
            return _truth(_eval(node[4], f), node[2])
        if kind == "unary":
            value = _eval(node[3], f)
            if node[2] == "!":
                return not _truth(value, "!")
            if not is_num(value):
                raise PainlessRuntimeError(
                    "class_cast_exception", f"Cannot apply [{node[2]}] operation to type [{type_of(value)}]."
                )
            return arith("-", 0, value) if node[2] == "-" else value
        if kind == "cond":
            return _eval(node[3], f) if _truth(_eval(node[2], f), "?") else _eval(node[4], f)
        if kind == "elvis":
            left = _eval(node[2], f)
            return left if left is not None else _eval(node[3], f)
        if kind == "cast":
            return cast(node[2], _eval(node[3], f))
        if kind == "instanceof":
            return instance_of(node[3], _eval(node[2], f))
        if kind == "assign":
            get, put = _read(node[3], f)
            value = _eval(node[4], f)
            if node[2] != "=":
                value = arith(node[2][0], get(), value)
            put(value)
            return value
        if kind == "incdec":
            get, put = _read(node[3], f)
            old = get()
            new = arith("+" if node[2] == "++" else "-", old, 1)
            put(new)
            return new if node[4] else old
        if kind == "call":
            return _call(node, f)
        if kind == "fcall":
            return _function_call(node, f)
        if kind == "static":
            arity, fn = STATICS[node[2]][node[3]]
            args = [_eval(a, f) for a in node[4]]
            if len(args) not in arity:
                raise PainlessRuntimeError(
                    "illegal_argument_exception", f"static method [{node[2]}, {node[3]}/{len(args)}] not found"
                )
            return fn(*args)
        if kind == "new":
            return construct(node[2], [_eval(a, f) for a in node[3]])
        if kind == "newarray":
            return new_array(node[2], _eval(node[3], f))
        if kind == "list":
            return check_size([_eval(v, f) for v in node[2]])
        if kind == "map":
            return {map_key(_eval(k, f)): _eval(v, f) for k, v in node[2]}
        raise PainlessRuntimeError("illegal_state_exception", f"unknown expression [{kind}]")  # pragma: no cover
    except PainlessRuntimeError as err:
        if err.offset is None:
            err.offset = node[1]
        raise


def _function_call(node: Node, f: _Frame) -> Any:
    """A call of one of the script's functions: its own locals (its parameters), the script's loop budget."""
    returns, params, body = f.functions[node[2]]
    args = [_eval(a, f) for a in node[3]]
    if len(args) != len(params):
        raise PainlessRuntimeError("illegal_argument_exception", f"function [{node[2]}/{len(args)}] not found")
    local = {name: cast(type_, value) for (type_, name), value in zip(params, args)}
    inner = _Frame({}, {}, local, f.loops, f.deadline, f.functions)
    value = None
    try:
        _run(body, inner)
    except _Return as ret:
        value = ret.value
    finally:
        f.loops = inner.loops
    return None if returns == "void" else cast(returns, value)


def _call(node: Node, f: _Frame) -> Any:
    target = _eval(node[2], f)
    name = node[3]
    args = [_eval(a, f) for a in node[4]]
    if target is None:
        if node[5]:
            return None
        raise PainlessRuntimeError(
            "null_pointer_exception",
            f'Cannot invoke "Object.getClass()" because the value [{name}] is called on is null',
        )
    if node[2][0] == "var" and node[2][2] == "params" and name in ("put", "remove", "clear"):
        raise PainlessRuntimeError("unsupported_operation_exception", "params are read-only")
    table = next((t for cls, t in METHODS.items() if isinstance(target, cls) and not isinstance(target, bool)), {})
    entry = table.get(name) or ANY_METHODS.get(name)
    if entry is None or len(args) not in entry[0]:
        raise PainlessRuntimeError(
            "illegal_argument_exception", f"dynamic method [{type_of(target)}, {name}/{len(args)}] not found"
        )
    return entry[1](target, *args)


# -- entry -----------------------------------------------------------------------------------------


def compile_script(source: str, returns_value: bool = False) -> Program:
    """Parse ``source``; a ``script_exception`` ("compile error") with the position where it fails.
    ``returns_value``: the script's last expression statement is what it returns (an ingest condition)."""
    try:
        parser = Parser(source, STATICS, returns_value)
        tree = parser.script()
    except CompileError as err:
        raise script_error(
            "compile error", source, err.offset, ApiError("illegal_argument_exception", err.message, 400)
        ) from None
    except RecursionError:
        raise script_error(
            "compile error", source, 0, ApiError("illegal_argument_exception", "the script nests too deeply", 400)
        ) from None
    writes: list[str] = []
    try:
        writes_of(tree, writes)
    except RecursionError:  # pragma: no cover - parsing would have failed first
        pass
    return Program(source, tree, list(dict.fromkeys(writes)), dict(parser.functions))
