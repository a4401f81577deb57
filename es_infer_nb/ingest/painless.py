"""The Painless subset of the ``script`` ingest processor: statements over ``ctx`` and ``params``.

The same language as the ``if`` conditions of :mod:`.condition`, extended to statements:
``def`` / typed locals (``String x = ...``), assignments to ctx fields and locals (``ctx.a = ...``,
``ctx['a'] = ...``, ``ctx.a.b = ...``, ``+= -= *= /= %=``, ``++`` / ``--``), arithmetic with Java's
int/long/double rules, ``? :`` and ``?:``, ``if`` / ``else``, ``return`` (ends the script; the value is
ignored, as ES ignores it), ``for (x : list)`` / ``for (;;)`` / ``while`` bounded by Painless's loop
counter, list and map literals (``[1, 2]``, ``['a': 1]``, ``[:]``), ``new ArrayList()`` /
``new HashMap()``, and a fixed table of methods (String, List, Map) and static calls (``Math``,
``Integer.parseInt``, ``String.valueOf`` ...).

Untrusted input stays data: the script is parsed to tuples and walked by this interpreter; no
Python ``eval``/``exec``, no attribute lookup on Python objects (every method is an entry of
:data:`METHODS`), a loop counter (Painless's 1,000,000), a cap on string and list sizes and on the
size of what the script leaves in ``ctx``. Errors are ES's ``script_exception`` (``compile error`` /
``runtime error``) with ``script_stack``, ``script``, ``lang`` and ``position``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ApiError
from ..models.tree.features import java_string
from .document import java_type

__all__ = ["MAX_LOOP_COUNTER", "Program", "compile_script"]

#: Painless's ``max_loop_counter`` default: loop iterations a script may run
MAX_LOOP_COUNTER = 1_000_000
#: the longest string or list a script may build (es_infer_nb's guard; Painless has the JVM heap)
MAX_SIZE = 10_000_000
#: the most values (leaves and containers) a script may leave in ``ctx`` (a guard against aliasing bombs)
MAX_CTX_NODES = 1_000_000
_MAX_DEPTH = 300

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)|
    (?P<num>0[xX][0-9a-fA-F]+[lL]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[lLdDfF]?)|
    (?P<str>'(?:[^'\\]|\\['\\])*'|"(?:[^"\\]|\\["\\])*")|
    (?P<op>>>>=|<<=|>>=|>>>|\?\.|\?:|==|!=|<=|>=|&&|\|\||\+\+|--|\+=|-=|\*=|/=|%=|->|::|=~|==~|[<>!().,\[\]{};=+\-*/%?:&|^~])|
    (?P<name>[A-Za-z_][A-Za-z_0-9]*)
""", re.VERBOSE | re.DOTALL)

_TYPES = {"def", "Object", "String", "int", "long", "double", "float", "short", "byte", "boolean", "char",
          "Integer", "Long", "Double", "Float", "Boolean", "Number", "List", "ArrayList", "Map", "HashMap",
          "Collection"}
_NEWABLE = {"ArrayList": list, "HashMap": dict}
_KEYWORDS = {"if", "else", "while", "for", "do", "return", "break", "continue", "new", "true", "false", "null",
             "try", "catch", "throw", "instanceof", "in"}
_UNSUPPORTED = {"do": "do-while loops", "try": "try/catch", "catch": "try/catch", "throw": "throw",
                "instanceof": "instanceof", "->": "lambdas", "::": "method references", "=~": "regexes",
                "==~": "regexes", "<<=": "bitwise operators", ">>=": "bitwise operators",
                ">>>=": "bitwise operators", ">>>": "bitwise operators", "&": "bitwise operators",
                "|": "bitwise operators", "^": "bitwise operators", "~": "bitwise operators"}


def _stack(source: str, offset: int) -> tuple[list[str], dict[str, int]]:
    """Painless's ``script_stack`` and ``position`` for an error at ``offset``: the script 25 characters
    either side, ``...`` where cut, and a ``^---- HERE`` pointer."""
    offset = max(0, min(offset, len(source)))
    start, end = max(0, offset - 25), min(len(source), offset + 25)
    snippet = source[start:end]
    pointer = " " * (offset - start) + "^---- HERE"
    if start > 0:
        snippet, pointer = "... " + snippet, "    " + pointer
    if end < len(source):
        snippet += " ..."
    return [snippet, pointer], {"offset": offset, "start": start, "end": end}


def _script_error(reason: str, source: str, offset: int, cause: ApiError) -> ApiError:
    stack, position = _stack(source, offset)
    return ApiError("script_exception", reason, 400, caused_by=cause,
                    metadata={"script_stack": stack, "script": source, "lang": "painless", "position": position})


class _CompileError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class _RuntimeError(Exception):
    def __init__(self, kind: str, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.offset = offset


class _Return(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# -- parsing ---------------------------------------------------------------------------------------

Node = tuple[Any, ...]  # (kind, offset, *args)


def _tokens(source: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise _CompileError(pos, f"unexpected character [{source[pos]}].")
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            text = m.group(kind)
            if text in _UNSUPPORTED:
                raise _CompileError(pos, f"{_UNSUPPORTED[text]} ([{text}]) are valid painless but not supported by "
                                    "es_infer_nb's painless subset")
            out.append((kind, text, pos))
        pos = m.end()
    return out


_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=")


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokens(source)
        self.i = 0
        self.scopes: list[set[str]] = [set()]

    # token helpers
    def peek(self, k: int = 0) -> tuple[str, str, int] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok[1] == text and tok[0] in ("op", "name")

    def offset(self) -> int:
        tok = self.peek()
        return tok[2] if tok else len(self.source)

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise _CompileError(len(self.source), f"unexpected end of script, expecting [{text or 'token'}].")
        if text is not None and tok[1] != text:
            raise _CompileError(tok[2], f"unexpected token ['{tok[1]}'] was expecting one of [{text}].")
        self.i += 1
        return tok

    def name(self) -> str:
        tok = self.take()
        if tok[0] != "name" or tok[1] in _KEYWORDS:
            raise _CompileError(tok[2], f"invalid sequence of tokens near ['{tok[1]}'].")
        return tok[1]

    # scopes
    def declare(self, name: str, offset: int) -> None:
        if name in ("ctx", "params") or any(name in s for s in self.scopes):
            raise _CompileError(offset, f"variable [{name}] is already defined")
        self.scopes[-1].add(name)

    def known(self, name: str) -> bool:
        return any(name in s for s in self.scopes)

    # statements
    def script(self) -> Node:
        stmts = []
        while self.peek() is not None:
            stmts.append(self.statement())
        if not stmts:
            raise _CompileError(0, "cannot generate an empty script")
        return ("block", 0, stmts)

    def block_or_statement(self) -> Node:
        self.scopes.append(set())
        try:
            return self.statement()
        finally:
            self.scopes.pop()

    def statement(self) -> Node:
        tok = self.peek()
        assert tok is not None
        text, off = tok[1], tok[2]
        if text == "{" and tok[0] == "op":
            self.take("{")
            self.scopes.append(set())
            stmts = []
            while not self.at("}"):
                if self.peek() is None:
                    raise _CompileError(len(self.source), "unexpected end of script, expecting [}].")
                stmts.append(self.statement())
            self.take("}")
            self.scopes.pop()
            return ("block", off, stmts)
        if text == ";" and tok[0] == "op":
            self.take()
            return ("block", off, [])
        if tok[0] == "name":
            if text == "if":
                self.take()
                self.take("(")
                cond = self.expression()
                self.take(")")
                then = self.block_or_statement()
                other = None
                if self.at("else"):
                    self.take()
                    other = self.block_or_statement()
                return ("if", off, cond, then, other)
            if text == "while":
                self.take()
                self.take("(")
                cond = self.expression()
                self.take(")")
                return ("while", off, cond, self.block_or_statement())
            if text == "for":
                return self.for_()
            if text == "return":
                self.take()
                value = None if self.at(";") or self.at("}") or self.peek() is None else self.expression()
                self.end()
                return ("return", off, value)
            if text in ("break", "continue"):
                self.take()
                self.end()
                return (text, off)
            if self.is_declaration():
                node = self.declaration()
                self.end()
                return node
            if (text in ("String", "int", "long", "double", "boolean", "float", "void", "def")
                    and self.peek(1) and self.peek(1)[0] == "name" and self.at("(", 2)):  # type: ignore[index]
                raise _CompileError(off, "functions are valid painless but not supported by es_infer_nb's painless "
                                    "subset")
        expr = self.expression()
        if expr[0] not in ("assign", "incdec", "call", "static", "new"):
            raise _CompileError(off, "not a statement: result not used from expression")
        self.end()
        return ("expr", off, expr, self.stmt_end(off))

    def stmt_end(self, start: int) -> int:
        prev = self.toks[self.i - 1] if self.i else None
        return prev[2] + len(prev[1]) if prev else start

    def end(self) -> None:
        if self.at(";"):
            self.take()
        elif not (self.peek() is None or self.at("}")):
            tok = self.peek()
            assert tok is not None
            raise _CompileError(tok[2], f"unexpected token ['{tok[1]}'] was expecting one of [;].")

    def is_declaration(self) -> bool:
        tok = self.peek()
        if tok is None or tok[0] != "name" or tok[1] not in _TYPES:
            return False
        k = 1
        while self.at("[", k) and self.at("]", k + 1):
            k += 2
        nxt = self.peek(k)
        return nxt is not None and nxt[0] == "name"

    def type_name(self) -> str:
        name = self.take()[1]
        while self.at("["):
            self.take("[")
            self.take("]")
            name += "[]"
        return name

    def declaration(self) -> Node:
        off = self.offset()
        type_ = self.type_name()
        decls = []
        while True:
            noff = self.offset()
            name = self.name()
            value = None
            if self.at("="):
                self.take()
                value = self.expression()
            self.declare(name, noff)
            decls.append((name, value))
            if not self.at(","):
                break
            self.take(",")
        return ("decl", off, type_, decls)

    def for_(self) -> Node:
        off = self.take("for")[2]
        self.take("(")
        self.scopes.append(set())
        try:
            if self.is_declaration() and self.at(":", 2 + 2 * self.type_name_brackets()):
                type_ = self.type_name()
                noff = self.offset()
                name = self.name()
                self.take(":")
                iterable = self.expression()
                self.take(")")
                self.declare(name, noff)
                return ("foreach", off, type_, name, iterable, self.block_or_statement())
            init = None
            if not self.at(";"):
                init = self.declaration() if self.is_declaration() else ("expr", off, self.expression(), off)
            self.take(";")
            cond = None if self.at(";") else self.expression()
            self.take(";")
            update = None if self.at(")") else self.expression()
            self.take(")")
            return ("for", off, init, cond, update, self.block_or_statement())
        finally:
            self.scopes.pop()

    def type_name_brackets(self) -> int:
        k, n = 1, 0
        while self.at("[", k) and self.at("]", k + 1):
            k += 2
            n += 1
        return n

    # expressions
    def expression(self) -> Node:
        left = self.ternary()
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in _ASSIGN_OPS:
            self.take()
            if left[0] not in ("var", "get"):
                raise _CompileError(tok[2], "invalid assignment: cannot assign a value to this expression")
            if left[0] == "var" and left[2] in ("ctx", "params"):
                raise _CompileError(left[1], f"cannot assign a value to [{left[2]}]")
            return ("assign", tok[2], tok[1], left, self.expression())
        return left

    def ternary(self) -> Node:
        cond = self.elvis()
        if self.at("?"):
            off = self.take()[2]
            yes = self.expression()
            self.take(":")
            no = self.ternary()
            return ("cond", off, cond, yes, no)
        return cond

    def elvis(self) -> Node:
        left = self.or_()
        if self.at("?:"):
            off = self.take()[2]
            return ("elvis", off, left, self.elvis())
        return left

    def _binary(self, ops: tuple[str, ...], sub: Callable[[], Node], kind: str = "bin") -> Node:
        left = sub()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in ops:
                return left
            self.take()
            left = (kind, tok[2], tok[1], left, sub())

    def or_(self) -> Node:
        return self._binary(("||",), self.and_, "logic")

    def and_(self) -> Node:
        return self._binary(("&&",), self.eq, "logic")

    def eq(self) -> Node:
        return self._binary(("==", "!="), self.rel)

    def rel(self) -> Node:
        return self._binary(("<", "<=", ">", ">="), self.add)

    def add(self) -> Node:
        return self._binary(("+", "-"), self.mul)

    def mul(self) -> Node:
        return self._binary(("*", "/", "%"), self.unary)

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[0] == "op":
            if tok[1] in ("!", "-", "+"):
                self.take()
                return ("unary", tok[2], tok[1], self.unary())
            if tok[1] in ("++", "--"):
                self.take()
                target = self.unary()
                self.lvalue(target, tok[2])
                return ("incdec", tok[2], tok[1], target, True)
            if tok[1] == "(" and self.peek(1) and self.peek(1)[1] in _TYPES and self.at(")", 2):  # type: ignore[index]
                self.take()
                type_ = self.take()[1]
                self.take(")")
                return ("cast", tok[2], type_, self.unary())
        node = self.postfix()
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("++", "--"):
            self.take()
            self.lvalue(node, tok[2])
            return ("incdec", tok[2], tok[1], node, False)
        return node

    def lvalue(self, node: Node, offset: int) -> None:
        if node[0] not in ("var", "get") or (node[0] == "var" and node[2] in ("ctx", "params")):
            raise _CompileError(offset, "invalid assignment: cannot increment or decrement this expression")

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op":
                return node
            if tok[1] in (".", "?."):
                self.take()
                ntok = self.take()
                if ntok[0] not in ("name", "num"):
                    raise _CompileError(ntok[2], f"invalid sequence of tokens near ['{ntok[1]}'].")
                if self.at("("):
                    node = ("call", ntok[2], node, ntok[1], self.args(), tok[1] == "?.")
                else:
                    key: Any = int(ntok[1]) if ntok[0] == "num" and ntok[1].isdigit() else ntok[1]
                    node = ("get", ntok[2], node, ("lit", ntok[2], key), tok[1] == "?.")
            elif tok[1] == "[":
                self.take()
                key_node = self.expression()
                self.take("]")
                node = ("get", tok[2], node, key_node, False)
            else:
                return node

    def args(self) -> list[Node]:
        self.take("(")
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.expression())
            while self.at(","):
                self.take(",")
                args.append(self.expression())
        self.take(")")
        return args

    def primary(self) -> Node:
        tok = self.take()
        kind, text, off = tok
        if kind == "op":
            if text == "(":
                inner = self.expression()
                self.take(")")
                return inner
            if text == "[":
                return self.initializer(off)
            raise _CompileError(off, f"invalid sequence of tokens near ['{text}'].")
        if kind == "num":
            return ("lit", off, _number(text, off))
        if kind == "str":
            return ("lit", off, _unquote(text))
        if text == "true":
            return ("lit", off, True)
        if text == "false":
            return ("lit", off, False)
        if text == "null":
            return ("lit", off, None)
        if text == "new":
            type_ = self.take()[1]
            if self.at("["):
                raise _CompileError(off, "arrays (new T[n]) are valid painless but not supported by es_infer_nb's "
                                    "painless subset; use a list ([] or new ArrayList())")
            if type_ not in _NEWABLE:
                raise _CompileError(off, f"new [{type_}] is not supported by es_infer_nb's painless subset "
                                    f"(supported: {', '.join(_NEWABLE)})")
            if self.args():
                raise _CompileError(off, f"new {type_}(...) with arguments is not supported by es_infer_nb's "
                                    "painless subset")
            return ("new", off, type_)
        if text in _STATICS:
            self.take(".")
            method = self.take()[1]
            table = _STATICS[text]
            if method not in table:
                raise _CompileError(off, f"unknown call [{method}] on type [{text}] (es_infer_nb's painless subset has "
                                    f"{', '.join(sorted(table))})")
            return ("static", off, text, method, self.args())
        if text in ("ctx", "params") or self.known(text):
            return ("var", off, text)
        if text in _KEYWORDS or text in _TYPES:
            raise _CompileError(off, f"invalid sequence of tokens near ['{text}'].")
        raise _CompileError(off, f"cannot resolve symbol [{text}]")

    def initializer(self, off: int) -> Node:
        if self.at(":") and self.at("]", 1):
            self.take()
            self.take()
            return ("map", off, [])
        if self.at("]"):
            self.take()
            return ("list", off, [])
        first = self.expression()
        if self.at(":"):
            pairs = []
            self.take(":")
            pairs.append((first, self.expression()))
            while self.at(","):
                self.take(",")
                k = self.expression()
                self.take(":")
                pairs.append((k, self.expression()))
            self.take("]")
            return ("map", off, pairs)
        items = [first]
        while self.at(","):
            self.take(",")
            items.append(self.expression())
        self.take("]")
        return ("list", off, items)


def _number(text: str, off: int) -> int | float:
    low = text.lower()
    if len(low) > 40:
        raise _CompileError(off, f"Invalid numeric constant [{text[:40]}...].")
    if low.startswith("0x"):
        value = int(low.rstrip("l"), 16)
    elif low[-1] in "df" or "." in low or ("e" in low and not low.startswith("0x")):
        return float(low.rstrip("df"))
    else:
        value = int(low.rstrip("l"))
    limit = 2**63 if low.endswith("l") else 2**31
    if value >= limit:
        raise _CompileError(off, f"Invalid {'long' if low.endswith('l') else 'int'} constant [{text}].")
    return _Long(value) if low.endswith("l") else value


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)


# -- values ----------------------------------------------------------------------------------------

def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Long(int):
    """A Java ``long`` (an ``L`` literal, a ``(long)`` cast, or arithmetic on one): wraps at 64 bits."""


def _is_int32(v: int) -> bool:
    return not isinstance(v, _Long) and -(2**31) <= v < 2**31


def _wrap(value: int, a: Any, b: Any = 0) -> int:
    if _is_int32(a) and _is_int32(b):
        return (value + 2**31) % 2**32 - 2**31
    return _Long((value + 2**63) % 2**64 - 2**63)


def _type_of(v: Any) -> str:
    return java_type(v)


def _cast_error(op: str, a: Any, b: Any) -> _RuntimeError:
    return _RuntimeError("class_cast_exception",
                         f"Cannot apply [{op}] operation to types [{_type_of(a)}] and [{_type_of(b)}].")


def _equal(a: Any, b: Any) -> bool:
    """Java's ``equals`` as Painless's ``==`` applies it (numbers by value), comparing at most MAX_CTX_NODES
    values (two lists that hold lists many times over would otherwise compare without end)."""
    budget = MAX_CTX_NODES
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        budget -= 1
        if budget < 0:
            raise _RuntimeError("illegal_argument_exception", f"comparing more than {MAX_CTX_NODES} values "
                                "(es_infer_nb's limit for scripts)")
        if x is y:
            continue
        if _is_num(x) and _is_num(y):
            if x != y:
                return False
        elif type(x) is not type(y):
            return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def _str(value: Any) -> str:
    """Java's ``String.valueOf`` of a script value, refusing to build more than MAX_SIZE characters
    (a list holding itself many times over would otherwise expand without end)."""
    budget = [MAX_SIZE]

    def walk(v: Any) -> str:
        if isinstance(v, dict):
            text = "{" + ", ".join(f"{walk(k)}={walk(x)}" for k, x in v.items()) + "}"
        elif isinstance(v, list):
            text = "[" + ", ".join(walk(x) for x in v) + "]"
        else:
            text = java_string(v)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise _RuntimeError("illegal_argument_exception", f"a string longer than {MAX_SIZE} (es_infer_nb's limit "
                                "for scripts)")
        return text

    return walk(value)


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list)) and len(value) > MAX_SIZE:
        raise _RuntimeError("illegal_argument_exception", f"a string or list longer than {MAX_SIZE} (es_infer_nb's "
                            "limit for scripts)")
    return value


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return _check_size(_str(a) + _str(b))
    if not (_is_num(a) and _is_num(b)):
        if a is None or b is None:
            raise _RuntimeError("null_pointer_exception", f"cannot apply [{op}] to null")
        raise _cast_error(op, a, b)
    if isinstance(a, float) or isinstance(b, float):
        x, y = float(a), float(b)
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            if y == 0:
                return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1, y)
            return x / y
        if y == 0 or math.isinf(x):
            return math.nan
        return math.fmod(x, y)
    if op == "+":
        return _wrap(a + b, a, b)
    if op == "-":
        return _wrap(a - b, a, b)
    if op == "*":
        return _wrap(a * b, a, b)
    if b == 0:
        raise _RuntimeError("arithmetic_exception", "/ by zero")
    q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    if op == "/":
        return _wrap(q, a, b)
    return a - b * q


_CASTS = {"int": 32, "short": 16, "byte": 8, "long": 64}


def _cast(type_: str, value: Any) -> Any:
    if type_ in ("def", "Object"):
        return value
    if type_ in _CASTS or type_ in ("Integer", "Long"):
        if not _is_num(value):
            raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to {type_}")
        if isinstance(value, float):
            if math.isnan(value):
                return 0
            if math.isinf(value):
                value = 2**63 - 1 if value > 0 else -(2**63)
            value = int(value)
        bits = _CASTS.get(type_, 32 if type_ == "Integer" else 64)
        half = 1 << (bits - 1)
        wrapped = (value + half) % (1 << bits) - half
        return _Long(wrapped) if bits == 64 else wrapped
    if type_ in ("double", "float", "Double", "Float", "Number"):
        if not _is_num(value):
            raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to {type_}")
        return float(value) if type_ != "Number" else value
    if type_ in ("boolean", "Boolean"):
        if not isinstance(value, bool):
            raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to {type_}")
        return value
    if type_ == "String":
        if value is not None and not isinstance(value, str):
            raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to java.lang.String")
        return value
    if type_ in ("List", "ArrayList", "Collection") or type_.endswith("[]"):
        if value is not None and not isinstance(value, list):
            raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to java.util.List")
        return value
    if type_ in ("Map", "HashMap"):
        if value is not None and not isinstance(value, dict):
            raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to java.util.Map")
        return value
    return value


def _declare_default(type_: str) -> Any:
    if type_ in _CASTS:
        return 0
    if type_ in ("double", "float"):
        return 0.0
    if type_ == "boolean":
        return False
    return None


# -- methods ---------------------------------------------------------------------------------------

def _str_arg(name: str, v: Any) -> str:
    if v is None:
        raise _RuntimeError("null_pointer_exception", f"cannot pass null to [{name}]")
    if not isinstance(v, str):
        raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(v)} to java.lang.String")
    return v


def _int_arg(name: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(v)} to int")
    return v


def _substring(s: str, begin: Any, end: Any = None) -> str:
    b = _int_arg("substring", begin)
    e = len(s) if end is None else _int_arg("substring", end)
    if b < 0 or e > len(s) or b > e:
        raise _RuntimeError("string_index_out_of_bounds_exception", f"begin {b}, end {e}, length {len(s)}")
    return s[b:e]


def _split_on_token(s: str, token: Any, limit: Any = 0) -> list[str]:
    tok = _str_arg("splitOnToken", token)
    if tok == "":
        raise _RuntimeError("illegal_argument_exception", "Cannot split on empty token")
    n = _int_arg("splitOnToken", limit)
    parts = s.split(tok, n - 1) if n > 0 else s.split(tok)
    if n == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _index(items: list[Any] | str, i: Any) -> int:
    idx = _int_arg("get", i)
    if not 0 <= idx < len(items):
        raise _RuntimeError("index_out_of_bounds_exception", f"Index {idx} out of bounds for length {len(items)}")
    return idx


def _replace(s: str, old: str, new: str) -> str:
    hits = s.count(old) if old else len(s) + 1
    if len(s) + hits * (len(new) - len(old)) > MAX_SIZE:
        raise _RuntimeError("illegal_argument_exception", f"a string longer than {MAX_SIZE} (es_infer_nb's limit for "
                            "scripts)")
    return s.replace(old, new)


def _list_add(items: list[Any], *args: Any) -> Any:
    if len(args) == 1:
        items.append(args[0])
        _check_size(items)
        return True
    idx = _int_arg("add", args[0])
    if not 0 <= idx <= len(items):
        raise _RuntimeError("index_out_of_bounds_exception", f"Index: {idx}, Size: {len(items)}")
    items.insert(idx, args[1])
    return None


def _list_set(items: list[Any], i: Any, v: Any) -> Any:
    idx = _index(items, i)
    old = items[idx]
    items[idx] = v
    return old


def _list_remove(items: list[Any], i: Any) -> Any:
    return items.pop(_index(items, i))


def _map_get(d: dict[Any, Any], k: Any) -> Any:
    return d.get(k) if _hashable(k) else None


def _hashable(k: Any) -> bool:
    return isinstance(k, (str, int, float, bool)) or k is None


def _key(k: Any) -> Any:
    if not _hashable(k):
        raise _RuntimeError("illegal_argument_exception", f"a map key of type [{_type_of(k)}] is not supported by "
                            "es_infer_nb's painless subset")
    return k


def _map_put(d: dict[Any, Any], k: Any, v: Any) -> Any:
    old = d.get(_key(k))
    d[k] = v
    return old


_Method = tuple[tuple[int, ...], Callable[..., Any]]

#: receiver type -> method name -> (accepted arities, implementation); nothing outside this table is callable
METHODS: dict[type, dict[str, _Method]] = {
    str: {
        "length": ((0,), len),
        "isEmpty": ((0,), lambda s: s == ""),
        "substring": ((1, 2), _substring),
        "toLowerCase": ((0,), lambda s: s.lower()),
        "toUpperCase": ((0,), lambda s: s.upper()),
        "trim": ((0,), lambda s: s.strip("".join(chr(i) for i in range(33)))),
        "contains": ((1,), lambda s, x: _str_arg("contains", x) in s),
        "startsWith": ((1,), lambda s, x: s.startswith(_str_arg("startsWith", x))),
        "endsWith": ((1,), lambda s, x: s.endswith(_str_arg("endsWith", x))),
        "indexOf": ((1, 2), lambda s, x, start=0: s.find(_str_arg("indexOf", x), max(0, _int_arg("indexOf", start)))),
        "lastIndexOf": ((1,), lambda s, x: s.rfind(_str_arg("lastIndexOf", x))),
        "replace": ((2,), lambda s, a, b: _replace(s, _str_arg("replace", a), _str_arg("replace", b))),
        "splitOnToken": ((1, 2), _split_on_token),
        "equals": ((1,), lambda s, x: s == x),
        "equalsIgnoreCase": ((1,), lambda s, x: isinstance(x, str) and s.lower() == x.lower()),
        "compareTo": ((1,), lambda s, x: _compare_to(s, _str_arg("compareTo", x))),
        "concat": ((1,), lambda s, x: _check_size(s + _str_arg("concat", x))),
        "charAt": ((1,), lambda s, i: s[_index(s, i)]),
        "toString": ((0,), lambda s: s),
        "hashCode": ((0,), lambda s: _java_hash(s)),
    },
    list: {
        "size": ((0,), len),
        "isEmpty": ((0,), lambda items: not items),
        "get": ((1,), lambda items, i: items[_index(items, i)]),
        "add": ((1, 2), _list_add),
        "set": ((2,), _list_set),
        "remove": ((1,), _list_remove),
        "contains": ((1,), lambda items, x: any(_equal(v, x) for v in items)),
        "indexOf": ((1,), lambda items, x: next((i for i, v in enumerate(items) if _equal(v, x)), -1)),
        "clear": ((0,), lambda items: items.clear()),
        "toString": ((0,), _str),
    },
    dict: {
        "size": ((0,), len),
        "isEmpty": ((0,), lambda d: not d),
        "get": ((1,), _map_get),
        "getOrDefault": ((2,), lambda d, k, default: d.get(k, default) if _hashable(k) else default),
        "containsKey": ((1,), lambda d, k: _hashable(k) and k in d),
        "containsValue": ((1,), lambda d, x: any(_equal(v, x) for v in d.values())),
        "put": ((2,), _map_put),
        "remove": ((1,), lambda d, k: d.pop(k, None) if _hashable(k) else None),
        "keySet": ((0,), lambda d: list(d)),
        "values": ((0,), lambda d: list(d.values())),
        "clear": ((0,), lambda d: d.clear()),
        "toString": ((0,), _str),
    },
}
_ANY: dict[str, _Method] = {"toString": ((0,), _str), "equals": ((1,), _equal)}


def _compare_to(a: str, b: str) -> int:
    for x, y in zip(a, b):
        if x != y:
            return ord(x) - ord(y)
    return len(a) - len(b)


def _java_hash(s: str) -> int:
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _num_arg(v: Any) -> int | float:
    if not _is_num(v):
        raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(v)} to java.lang.Number")
    return v


def _parse_int(s: Any, bits: int) -> int:
    text = _str_arg("parse", s)
    if len(text) > 25 or not re.fullmatch(r"[+-]?\d+", text) or not -(2 ** (bits - 1)) <= int(text) < 2 ** (bits - 1):
        raise _RuntimeError("number_format_exception", f'For input string: "{text}"')
    return int(text)


def _parse_double(s: Any) -> float:
    text = _str_arg("parseDouble", s).strip()
    try:
        return float(text.rstrip("dDfF") if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?", text)
                     else text if text in ("NaN", "Infinity", "-Infinity", "+Infinity") else "x")
    except ValueError:
        raise _RuntimeError("number_format_exception", f'For input string: "{text}"') from None


def _round(v: Any) -> int:
    x = _num_arg(v)
    if isinstance(x, int):
        return x
    if math.isnan(x):
        return 0
    return math.floor(x + 0.5)


def _join(sep: Any, items: Any) -> str:
    if not isinstance(items, list):
        raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(items)} to java.lang.Iterable")
    return _check_size(_str_arg("join", sep).join(_str(v) for v in items))


def _pow(a: Any, b: Any) -> float:
    try:
        return math.pow(float(_num_arg(a)), float(_num_arg(b)))
    except (OverflowError, ValueError):
        return math.inf if float(a) > 0 else math.nan


def _sqrt(a: Any) -> float:
    x = float(_num_arg(a))
    return math.sqrt(x) if x >= 0 else math.nan


_STATICS: dict[str, dict[str, _Method]] = {
    "Math": {
        "max": ((2,), lambda a, b: max(_num_arg(a), _num_arg(b))),
        "min": ((2,), lambda a, b: min(_num_arg(a), _num_arg(b))),
        "abs": ((1,), lambda a: abs(_num_arg(a))),
        "round": ((1,), _round),
        "floor": ((1,), lambda a: float(math.floor(_num_arg(a))) if math.isfinite(_num_arg(a)) else float(a)),
        "ceil": ((1,), lambda a: float(math.ceil(_num_arg(a))) if math.isfinite(_num_arg(a)) else float(a)),
        "sqrt": ((1,), _sqrt),
        "pow": ((2,), _pow),
        "log": ((1,), lambda a: math.log(_num_arg(a)) if _num_arg(a) > 0 else (-math.inf if a == 0 else math.nan)),
        "log10": ((1,), lambda a: math.log10(_num_arg(a)) if _num_arg(a) > 0 else (-math.inf if a == 0 else math.nan)),
    },
    "Integer": {"parseInt": ((1,), lambda s: _parse_int(s, 32)), "toString": ((1,), _str),
                "valueOf": ((1,), lambda s: _parse_int(s, 32) if isinstance(s, str) else _cast("int", s))},
    "Long": {"parseLong": ((1,), lambda s: _parse_int(s, 64)), "toString": ((1,), _str)},
    "Double": {"parseDouble": ((1,), _parse_double), "toString": ((1,), _str)},
    "Boolean": {"parseBoolean": ((1,), lambda s: isinstance(s, str) and s.lower() == "true")},
    "String": {"valueOf": ((1,), _str), "join": ((2,), _join)},
}


# -- execution -------------------------------------------------------------------------------------

@dataclass
class _Frame:
    ctx: dict[str, Any]
    params: dict[str, Any]
    local: dict[str, Any] = field(default_factory=dict)
    loops: int = 0


@dataclass
class Program:
    """A compiled script: run it over a document's ``ctx`` (changed in place)."""

    source: str
    tree: Node
    writes: list[str]

    def execute(self, ctx: dict[str, Any], params: dict[str, Any]) -> None:
        frame = _Frame(ctx, params)
        try:
            try:
                _run(self.tree, frame)
            except _Return:
                pass
            _check_ctx(ctx)
        except _RuntimeError as err:
            raise _script_error("runtime error", self.source, err.offset if err.offset is not None else 0,
                                ApiError(err.kind, err.message, 400)) from None
        except RecursionError:
            raise _script_error("runtime error", self.source, 0,
                                ApiError("stack_overflow_error", "the script nests too deeply", 400)) from None


def _check_ctx(ctx: dict[str, Any]) -> None:
    """What the script leaves in ``ctx``: nested at most MAX_DEPTH levels, at most MAX_CTX_NODES values."""
    count = 0
    stack: list[tuple[Any, int]] = [(ctx, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_CTX_NODES:
            raise _RuntimeError("illegal_argument_exception", f"the script left more than {MAX_CTX_NODES} values in "
                                "ctx (es_infer_nb's limit)")
        if depth > _MAX_DEPTH:
            raise _RuntimeError("illegal_argument_exception", f"the script left ctx nested deeper than {_MAX_DEPTH} "
                                "levels (a list or map that contains itself?)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


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
                f.local[name] = _declare_default(node[2]) if value is None else _cast(node[2], _eval(value, f))
        elif kind == "if":
            if _truth(_eval(node[2], f), "if"):
                _run(node[3], f)
            elif node[4] is not None:
                _run(node[4], f)
        elif kind == "while":
            while _truth(_eval(node[2], f), "while"):
                _tick(f)
                try:
                    _run(node[3], f)
                except _Break:
                    break
                except _Continue:
                    continue
        elif kind == "for":
            if node[2] is not None:
                _run(node[2], f)
            while node[3] is None or _truth(_eval(node[3], f), "for"):
                _tick(f)
                try:
                    _run(node[5], f)
                except _Break:
                    break
                except _Continue:
                    pass
                if node[4] is not None:
                    _eval(node[4], f)
        elif kind == "foreach":
            items = _eval(node[4], f)
            if items is None:
                raise _RuntimeError("null_pointer_exception", "cannot iterate over null")
            if isinstance(items, dict):
                items = list(items)
            if not isinstance(items, list):
                raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(items)} to java.lang.Iterable")
            for item in list(items):
                _tick(f)
                f.local[node[3]] = _cast(node[2], item)
                try:
                    _run(node[5], f)
                except _Break:
                    break
                except _Continue:
                    continue
        elif kind == "return":
            if node[2] is not None:
                _eval(node[2], f)
            raise _Return()
        elif kind == "break":
            raise _Break()
        elif kind == "continue":
            raise _Continue()
        else:  # pragma: no cover - the parser builds no other statement
            raise _RuntimeError("illegal_state_exception", f"unknown statement [{kind}]")
    except _RuntimeError as err:
        if err.offset is None:
            err.offset = node[1]
        raise


def _tick(f: _Frame) -> None:
    f.loops += 1
    if f.loops > MAX_LOOP_COUNTER:
        raise _RuntimeError("painless_error", "The maximum number of statements that can be executed in a loop has "
                            "been reached.")


def _truth(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _RuntimeError("class_cast_exception", f"Cannot cast {_type_of(value)} to boolean")
    return value


def _get(base: Any, key: Any, null_safe: bool) -> Any:
    if base is None:
        if null_safe:
            return None
        raise _RuntimeError("null_pointer_exception", f"Cannot invoke \"Object.getClass()\" because the value "
                            f"holding [{_key_text(key)}] is null")
    if isinstance(base, dict):
        return base.get(key) if _hashable(key) else None
    if isinstance(base, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise _RuntimeError("illegal_argument_exception", f"Illegal list shortcut value [{_key_text(key)}].")
        idx = key + len(base) if key < 0 else key
        if not 0 <= idx < len(base):
            raise _RuntimeError("index_out_of_bounds_exception", f"Index {key} out of bounds for length {len(base)}")
        return base[idx]
    raise _RuntimeError("illegal_argument_exception",
                        f"dynamic getter [{_type_of(base)}, {_key_text(key)}] not found")


def _key_text(key: Any) -> str:
    return java_string(key) if not isinstance(key, (list, dict)) else _type_of(key)


def _put(base: Any, key: Any, value: Any) -> None:
    if base is None:
        raise _RuntimeError("null_pointer_exception", f"Cannot invoke \"Object.getClass()\" because the value "
                            f"holding [{_key_text(key)}] is null")
    if isinstance(base, dict):
        base[_key(key)] = value
        return
    if isinstance(base, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise _RuntimeError("illegal_argument_exception", f"Illegal list shortcut value [{_key_text(key)}].")
        idx = key + len(base) if key < 0 else key
        if not 0 <= idx < len(base):
            raise _RuntimeError("index_out_of_bounds_exception", f"Index {key} out of bounds for length {len(base)}")
        base[idx] = value
        return
    raise _RuntimeError("illegal_argument_exception",
                        f"dynamic setter [{_type_of(base)}, {_key_text(key)}] not found")


def _read(target: Node, f: _Frame) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    """The getter and setter of an assignable expression (a local, or ``base[key]`` / ``base.key``)."""
    if target[0] == "var":
        name = target[2]
        return (lambda: f.local.get(name)), (lambda v: f.local.__setitem__(name, v))
    base_node = target[2]
    if base_node[0] == "var" and base_node[2] == "params":
        raise _RuntimeError("unsupported_operation_exception", "params are read-only", target[1])
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
                return _equal(a, b)
            if op == "!=":
                return not _equal(a, b)
            if op in ("<", "<=", ">", ">="):
                if not (_is_num(a) and _is_num(b)):
                    raise _cast_error(op, a, b)
                return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
            return _arith(op, a, b)
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
            if not _is_num(value):
                raise _RuntimeError("class_cast_exception",
                                    f"Cannot apply [{node[2]}] operation to type [{_type_of(value)}].")
            return _arith("-", 0, value) if node[2] == "-" else value
        if kind == "cond":
            return _eval(node[3], f) if _truth(_eval(node[2], f), "?") else _eval(node[4], f)
        if kind == "elvis":
            left = _eval(node[2], f)
            return left if left is not None else _eval(node[3], f)
        if kind == "cast":
            return _cast(node[2], _eval(node[3], f))
        if kind == "assign":
            get, put = _read(node[3], f)
            value = _eval(node[4], f)
            if node[2] != "=":
                value = _arith(node[2][0], get(), value)
            put(value)
            return value
        if kind == "incdec":
            get, put = _read(node[3], f)
            old = get()
            new = _arith("+" if node[2] == "++" else "-", old, 1)
            put(new)
            return new if node[4] else old
        if kind == "call":
            return _call(node, f)
        if kind == "static":
            arity, fn = _STATICS[node[2]][node[3]]
            args = [_eval(a, f) for a in node[4]]
            if len(args) not in arity:
                raise _RuntimeError("illegal_argument_exception",
                                    f"static method [{node[2]}, {node[3]}/{len(args)}] not found")
            return fn(*args)
        if kind == "new":
            return _NEWABLE[node[2]]()
        if kind == "list":
            return _check_size([_eval(v, f) for v in node[2]])
        if kind == "map":
            return {_key(_eval(k, f)): _eval(v, f) for k, v in node[2]}
        raise _RuntimeError("illegal_state_exception", f"unknown expression [{kind}]")  # pragma: no cover
    except _RuntimeError as err:
        if err.offset is None:
            err.offset = node[1]
        raise


def _call(node: Node, f: _Frame) -> Any:
    target = _eval(node[2], f)
    name = node[3]
    args = [_eval(a, f) for a in node[4]]
    if target is None:
        if node[5]:
            return None
        raise _RuntimeError("null_pointer_exception", f"Cannot invoke \"Object.getClass()\" because the value "
                            f"[{name}] is called on is null")
    if node[2][0] == "var" and node[2][2] == "params" and name in ("put", "remove", "clear"):
        raise _RuntimeError("unsupported_operation_exception", "params are read-only")
    table = METHODS.get(type(target), {})
    entry = table.get(name) or _ANY.get(name)
    if entry is None or len(args) not in entry[0]:
        raise _RuntimeError("illegal_argument_exception",
                            f"dynamic method [{_type_of(target)}, {name}/{len(args)}] not found")
    return entry[1](target, *args)


# -- entry -----------------------------------------------------------------------------------------

def _writes(node: Any, out: list[str]) -> None:
    """The ``ctx`` paths a script assigns with literal keys (``ctx.a.b = ...`` -> ``a.b``)."""
    if not isinstance(node, tuple):
        if isinstance(node, list):
            for item in node:
                _writes(item, out)
        return
    if node and node[0] in ("assign", "incdec"):
        path = _ctx_path(node[3])
        if path:
            out.append(path)
    for child in node[1:]:
        if isinstance(child, (tuple, list)):
            _writes(child, out)


def _ctx_path(node: Node) -> str | None:
    parts: list[str] = []
    while node[0] == "get":
        key = node[3]
        if key[0] != "lit" or not isinstance(key[2], str):
            return None
        parts.append(key[2])
        node = node[2]
    if node[0] == "var" and node[2] == "ctx" and parts:
        return ".".join(reversed(parts))
    return None


def compile_script(source: str) -> Program:
    """Parse ``source``; a ``script_exception`` ("compile error") with the position where it fails."""
    try:
        tree = _Parser(source).script()
    except _CompileError as err:
        raise _script_error("compile error", source, err.offset,
                            ApiError("illegal_argument_exception", err.message, 400)) from None
    except RecursionError:
        raise _script_error("compile error", source, 0,
                            ApiError("illegal_argument_exception", "the script nests too deeply", 400)) from None
    writes: list[str] = []
    try:
        _writes(tree, writes)
    except RecursionError:  # pragma: no cover - parsing would have failed first
        pass
    return Program(source, tree, list(dict.fromkeys(writes)))
