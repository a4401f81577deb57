"""A small, safe evaluator for the painless conditions ingest processors use in ``if``.

Supported: ``ctx.a.b`` / ``ctx.a?.b`` / ``ctx['a']`` / ``ctx.a[0]`` field access, string, number,
``true``/``false``/``null`` literals, ``== != < <= > >=``, ``&& || !``, parentheses, and the
string methods ``contains`` / ``startsWith`` / ``endsWith`` (``ctx.title?.contains('x')``;
``contains`` also on lists).
A condition outside that subset (``? :``, ``?:``, ``instanceof``, list / map literals, locals, loops,
``return``, other methods) runs on the Painless interpreter of :mod:`es_infer_nb.painless` (its last
expression statement is its value, as in Painless), over a copy of ``ctx``: a condition that changes it
fails as ES's ``Mutating ingest documents in conditionals is not supported``. Anything neither
accepts is a ``script_exception`` ("compile error") at parse time; dereferencing null without ``?.``
is a ``script_exception`` ("runtime error") at run time. No Python ``eval`` anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError
from ..painless import Program, compile_script
from ..painless.syntax import script_error
from .document import clone, java_type

_TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[lLdDfF]?)|
    (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|
    (?P<op>\?\.|==|!=|<=|>=|&&|\|\||[<>!().,\[\]])|
    (?P<name>[A-Za-z_][A-Za-z_0-9]*)
)""", re.VERBOSE)


def _compile_error(source: str, detail: str) -> ApiError:
    """Painless's ``script_exception`` (its ``root_cause`` is itself, as ES lists it); the expression
    parser keeps no offsets, so its stack points at the script's start."""
    return script_error("compile error", source, 0, ApiError("illegal_argument_exception", detail, 400))


def _runtime_error(source: str, detail: str, kind: str = "null_pointer_exception") -> ApiError:
    return script_error("runtime error", source, 0, ApiError(kind, detail, 400))


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = source.rstrip().rstrip(";")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise _compile_error(source, f"unexpected character [{text[pos:].strip()[:1]}] at offset [{pos}]")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
    return out


#: the tree of a condition the Painless interpreter runs (the column form hands its rows to :meth:`evaluate`)
PAINLESS = ("painless",)
_MUTATING = "Mutating ingest documents in conditionals is not supported"


@dataclass
class Condition:
    source: str
    tree: Any
    program: Program | None = None
    #: the script's ``params`` (read as ``params.x`` by the Painless form)
    params: dict[str, Any] = field(default_factory=dict)

    def evaluate(self, ctx: dict[str, Any]) -> bool:
        try:
            value = self._painless(ctx) if self.program is not None else _eval(self.tree, ctx, self.source)
        except RecursionError:
            raise _runtime_error(self.source, "expression too deeply nested to evaluate",
                                 "illegal_argument_exception") from None
        except ApiError as err:
            raise self._painless_error(ctx, err) from None
        if not isinstance(value, bool):
            raise ApiError("illegal_argument_exception",
                           f"condition [{self.source}] did not return a boolean, but [{value!r}]", 400)
        return value

    def _painless_error(self, ctx: dict[str, Any], err: ApiError) -> ApiError:
        """The runtime error of an expression-subset condition as the Painless interpreter words it (its
        message and position), where it fails there too; ``err`` otherwise."""
        if self.program is not None:
            return err
        try:
            Condition(self.source, PAINLESS, compile_script(self.source, returns_value=True))._painless(ctx)
        except ApiError as painless:
            return painless
        except RecursionError:
            return err
        return err

    def _painless(self, ctx: dict[str, Any]) -> Any:
        """Run the Painless program over a copy of ``ctx`` (ES's conditions see an unmodifiable ``ctx``)."""
        assert self.program is not None
        copy = clone(ctx)
        value = self.program.evaluate(clone(self.params), copy)
        if copy != ctx:
            raise _runtime_error(self.source, _MUTATING, "unsupported_operation_exception")
        return value


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokens(source)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise _compile_error(self.source, f"expected [{value or 'token'}] but found "
                                 f"[{tok[1] if tok else 'end of script'}]")
        self.i += 1
        return tok

    def parse(self) -> Any:
        if not self.toks:
            raise _compile_error(self.source, "empty condition")
        tree = self.or_()
        if self.peek() is not None:
            raise _compile_error(self.source, f"unexpected token [{self.peek()[1]}]")  # type: ignore[index]
        return tree

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() and self.peek()[1] == "||":  # type: ignore[index]
            self.take()
            left = ("or", left, self.and_())
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() and self.peek()[1] == "&&":  # type: ignore[index]
            self.take()
            left = ("and", left, self.cmp())
        return left

    def cmp(self) -> Any:
        left = self.unary()
        tok = self.peek()
        if tok and tok[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", tok[1], left, self.unary())
        return left

    def unary(self) -> Any:
        tok = self.peek()
        if tok and tok[1] == "!":
            self.take()
            return ("not", self.unary())
        return self.primary()

    def primary(self) -> Any:
        tok = self.take()
        kind, text = tok
        if text == "(":
            inner = self.or_()
            self.take(")")
            return inner
        if kind == "num":
            body = text.rstrip("lLdDfF")
            is_float = "." in body or "e" in body.lower() or text[-1] in "dDfF"
            return ("lit", float(body) if is_float else int(body))
        if kind == "str":
            raw = text[1:-1]
            return ("lit", re.sub(r"\\(.)", r"\1", raw))
        if kind == "name":
            if text == "true":
                return ("lit", True)
            if text == "false":
                return ("lit", False)
            if text == "null":
                return ("lit", None)
            if text == "ctx":
                return self.access(("ctx",))
            raise _compile_error(self.source, f"cannot resolve symbol [{text}]")
        raise _compile_error(self.source, f"unexpected token [{text}]")

    def access(self, node: Any) -> Any:
        while True:
            tok = self.peek()
            if tok is None:
                return node
            if tok[1] in (".", "?."):
                self.take()
                kind, name = self.take()
                if kind != "name":
                    raise _compile_error(self.source, f"expected a field name after [{tok[1]}], found [{name}]")
                if self.peek() and self.peek()[1] == "(":  # type: ignore[index]
                    node = self.call(node, name, tok[1] == "?.")
                    continue
                node = ("get", node, ("lit", name), tok[1] == "?.")
            elif tok[1] == "[":
                self.take()
                key = self.or_()
                self.take("]")
                node = ("get", node, key, False)
            else:
                return node


    def call(self, target: Any, name: str, null_safe: bool) -> Any:
        if name not in METHODS:
            raise _compile_error(self.source, f"method [{name}] is not supported in conditions; supported methods: "
                                 f"[{', '.join(METHODS)}]")
        self.take("(")
        args = []
        if self.peek() and self.peek()[1] != ")":  # type: ignore[index]
            args.append(self.or_())
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take(",")
                args.append(self.or_())
        self.take(")")
        if len(args) != 1:
            raise _compile_error(self.source, f"method [{name}] takes 1 argument, found [{len(args)}]")
        return ("call", target, name, args[0], null_safe)


METHODS = ("contains", "startsWith", "endsWith")


def _call(node: Any, ctx: dict[str, Any], source: str) -> Any:
    target = _eval(node[1], ctx, source)
    name = node[2]
    arg = _eval(node[3], ctx, source)
    if target is None:
        if node[4]:
            return None
        raise _runtime_error(source, f"cannot invoke [{name}] on null")
    if isinstance(target, list) and name == "contains":
        return any(_equal(v, arg) for v in target)
    if not isinstance(target, str):
        raise _runtime_error(source, f"dynamic method [{_painless_type(target)}, {name}/1] not found",
                             "illegal_argument_exception")
    if not isinstance(arg, str):
        if arg is None:
            raise _runtime_error(source, f"cannot pass null to [{name}]")
        raise _runtime_error(source, f"Cannot cast {_painless_type(arg)} to java.lang.CharSequence"
                             if name == "contains" else f"Cannot cast {_painless_type(arg)} to java.lang.String",
                             "class_cast_exception")
    if name == "contains":
        return arg in target
    if name == "startsWith":
        return target.startswith(arg)
    return target.endswith(arg)


def _painless_type(value: Any) -> str:

    return java_type(value)


def parse_condition(source: Any) -> Condition:
    """Parse an ``if`` (a string, or a script object with ``source`` and ``params``)."""
    params: dict[str, Any] = {}
    if isinstance(source, dict):
        lang = source.get("lang", "painless")
        if lang != "painless":
            raise ApiError("illegal_argument_exception", f"script_lang not supported [{lang}]", 400)
        if isinstance(source.get("params"), dict):
            params = source["params"]
        source = source.get("source")
    if not isinstance(source, str):
        raise ApiError("parse_exception", "[if] property isn't a string or a script object", 400)
    try:
        return Condition(source, _Parser(source).parse())
    except RecursionError:  # thousands of nested parentheses: refused like any other bad script
        raise _compile_error(source, "expression too deeply nested") from None
    except ApiError as err:  # outside the expression subset: the Painless interpreter, where it compiles
        try:
            return Condition(source, PAINLESS, compile_script(source, returns_value=True), params)
        except ApiError:
            raise err from None


def _eval(node: Any, ctx: dict[str, Any], source: str) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "ctx":
        return ctx
    if op == "get":
        base = _eval(node[1], ctx, source)
        key = _eval(node[2], ctx, source)
        if base is None:
            if node[3]:
                return None
            raise _runtime_error(source, f"cannot access [{key}] of null")
        if isinstance(base, dict):
            return base.get(key)
        if isinstance(base, list) and isinstance(key, int) and not isinstance(key, bool):
            if -len(base) <= key < len(base):
                return base[key]
            raise _runtime_error(source, f"Index {key} out of bounds for length {len(base)}",
                                 "index_out_of_bounds_exception")
        raise _runtime_error(source, f"cannot access [{key}] of a value of type [{type(base).__name__}]",
                             "illegal_argument_exception")
    if op == "call":
        return _call(node, ctx, source)
    if op == "not":
        value = _eval(node[1], ctx, source)
        if not isinstance(value, bool):
            raise _runtime_error(source, "cannot apply [!] to a non-boolean", "class_cast_exception")
        return not value
    if op in ("and", "or"):
        left = _eval(node[1], ctx, source)
        if not isinstance(left, bool):
            raise _runtime_error(source, f"cannot apply [{'&&' if op == 'and' else '||'}] to a non-boolean",
                                 "class_cast_exception")
        if op == "and" and not left:
            return False
        if op == "or" and left:
            return True
        right = _eval(node[2], ctx, source)
        if not isinstance(right, bool):
            raise _runtime_error(source, "cannot apply a boolean operator to a non-boolean", "class_cast_exception")
        return right
    if op == "cmp":
        sym, a, b = node[1], _eval(node[2], ctx, source), _eval(node[3], ctx, source)
        if sym == "==":
            return _equal(a, b)
        if sym == "!=":
            return not _equal(a, b)
        if not (_is_num(a) and _is_num(b)):
            raise _runtime_error(source, f"cannot compare [{a!r}] and [{b!r}] with [{sym}]", "class_cast_exception")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[sym]
    raise _compile_error(source, f"unsupported expression [{op}]")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _equal(a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b):
        return a == b
    if type(a) is not type(b) and not (a is None or b is None):
        return False
    return a == b
