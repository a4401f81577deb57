"""Parsing the Painless subset of :mod:`.interpreter`: tokens, statements and expressions to tuples.

A node is ``(kind, offset, *args)``; the offset is where it starts in the script (for ES's
``position`` and ``script_stack``). Scopes are checked here (an unknown name is Painless's
``cannot resolve symbol``); Painless syntax outside the subset is a compile error that says it is
valid Painless but not supported by es_infer_nb.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Callable

from ..errors import ApiError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)|
    (?P<num>0[xX][0-9a-fA-F]+[lL]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[lLdDfF]?)|
    (?P<str>'(?:[^'\\]|\\['\\])*'|"(?:[^"\\]|\\["\\])*")|
    (?P<op>>>>=|<<=|>>=|>>>|==~|\?\.|\?:|==|!=|<=|>=|&&|\|\||\+\+|--|\+=|-=|\*=|/=|%=|->|::|=~|
        [<>!().,\[\]{};=+\-*/%?:&|^~])|
    (?P<name>[A-Za-z_][A-Za-z_0-9]*)
""",
    re.VERBOSE | re.DOTALL,
)

_TYPES = {
    "def",
    "Object",
    "String",
    "int",
    "long",
    "double",
    "float",
    "short",
    "byte",
    "boolean",
    "char",
    "Integer",
    "Long",
    "Double",
    "Float",
    "Boolean",
    "Number",
    "List",
    "ArrayList",
    "Map",
    "HashMap",
    "Collection",
    "StringBuilder",
}
NEWABLE = ("ArrayList", "HashMap", "StringBuilder", "BigDecimal", "Exception", "RuntimeException",
           "IllegalArgumentException", "IllegalStateException", "UnsupportedOperationException")
_KEYWORDS = {
    "if",
    "else",
    "while",
    "for",
    "do",
    "return",
    "break",
    "continue",
    "new",
    "true",
    "false",
    "null",
    "try",
    "catch",
    "throw",
    "instanceof",
    "in",
}
_UNSUPPORTED = {
    "do": "do-while loops",
    "try": "try/catch",
    "catch": "try/catch",
    "->": "lambdas",
    "::": "method references",
    "=~": "regexes",
    "==~": "regexes",
    "<<=": "bitwise operators",
    ">>=": "bitwise operators",
    ">>>=": "bitwise operators",
    ">>>": "bitwise operators",
    "&": "bitwise operators",
    "|": "bitwise operators",
    "^": "bitwise operators",
    "~": "bitwise operators",
}


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


def script_error(reason: str, source: str, offset: int, cause: ApiError) -> ApiError:
    """ES's ``ScriptException`` (``compile error`` / ``runtime error``) over a Java exception ``cause``: the
    ``root_cause`` ES lists is the script_exception itself, with its stack and position."""
    stack, position = _stack(source, offset)
    cause.es_exception = False
    return ApiError(
        "script_exception",
        reason,
        400,
        caused_by=cause,
        metadata={"script_stack": stack, "script": source, "lang": "painless", "position": position},
    )


class CompileError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


# -- parsing ---------------------------------------------------------------------------------------

Node = tuple[Any, ...]  # (kind, offset, *args)


def _tokens(source: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise CompileError(pos, f"unexpected character [{source[pos]}].")
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            text = m.group(kind)
            if text in _UNSUPPORTED:
                raise CompileError(
                    pos,
                    f"{_UNSUPPORTED[text]} ([{text}]) are valid painless but not supported by "
                    "es_infer_nb's painless subset",
                )
            out.append((kind, text, pos))
        pos = m.end()
    return out


_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=")


class Parser:
    def __init__(self, source: str, statics: Mapping[str, Collection[str]], returns_value: bool = False) -> None:
        self.source = source
        self.statics = statics
        #: a script whose last top-level expression statement is its value (an ingest condition)
        self.returns_value = returns_value
        self._top = False
        self.toks = _tokens(source)
        self.i = 0
        self.scopes: list[set[str]] = [set()]
        #: the script's functions (declared before its statements): name -> (return type, params, body)
        self.functions: dict[str, tuple[str, list[tuple[str, str]], Node]] = {}

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
            raise CompileError(len(self.source), f"unexpected end of script, expecting [{text or 'token'}].")
        if text is not None and tok[1] != text:
            raise CompileError(tok[2], f"unexpected token ['{tok[1]}'] was expecting one of [{text}].")
        self.i += 1
        return tok

    def name(self) -> str:
        tok = self.take()
        if tok[0] != "name" or tok[1] in _KEYWORDS:
            raise CompileError(tok[2], f"invalid sequence of tokens near ['{tok[1]}'].")
        return tok[1]

    # scopes
    def declare(self, name: str, offset: int) -> None:
        if name in ("ctx", "params") or any(name in s for s in self.scopes):
            raise CompileError(offset, f"variable [{name}] is already defined")
        self.scopes[-1].add(name)

    def known(self, name: str) -> bool:
        return any(name in s for s in self.scopes)

    # statements
    def script(self) -> Node:
        while self.is_function():
            self.function()
        stmts = []
        while self.peek() is not None:
            self._top = True
            stmts.append(self.statement())
        if not stmts:
            raise CompileError(0, "cannot generate an empty script")
        return ("block", 0, stmts)

    def is_function(self) -> bool:
        """At ``Type name(`` (a function declaration, which Painless takes before the statements)."""
        tok = self.peek()
        if tok is None or tok[0] != "name" or (tok[1] not in _TYPES and tok[1] != "void"):
            return False
        k = 1
        while self.at("[", k) and self.at("]", k + 1):
            k += 2
        nxt = self.peek(k)
        return nxt is not None and nxt[0] == "name" and nxt[1] not in _KEYWORDS and self.at("(", k + 1)

    def function(self) -> None:
        returns = self.type_name()
        off = self.offset()
        name = self.name()
        if name in self.functions:
            raise CompileError(off, f"illegal duplicate functions [{name}/...].")
        self.take("(")
        params: list[tuple[str, str]] = []
        while not self.at(")"):
            if params:
                self.take(",")
            tok = self.peek()
            if tok is None or tok[1] not in _TYPES:
                raise CompileError(self.offset(), "invalid function parameter: a type and a name")
            params.append((self.type_name(), self.name()))
        self.take(")")
        if not self.at("{"):
            raise CompileError(self.offset(), "a function's body is a block: expecting [{]")
        self.functions[name] = (returns, params, ("block", off, []))  # known inside its own body
        outer, self.scopes = self.scopes, [{p for _, p in params}]
        try:
            body = self.statement()
        finally:
            self.scopes = outer
        self.functions[name] = (returns, params, body)

    def block_or_statement(self) -> Node:
        self.scopes.append(set())
        try:
            return self.statement()
        finally:
            self.scopes.pop()

    def statement(self) -> Node:
        top, self._top = self._top, False
        tok = self.peek()
        assert tok is not None
        text, off = tok[1], tok[2]
        if text == "{" and tok[0] == "op":
            self.take("{")
            self.scopes.append(set())
            stmts = []
            while not self.at("}"):
                if self.peek() is None:
                    raise CompileError(len(self.source), "unexpected end of script, expecting [}].")
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
            if text == "throw":
                self.take()
                value = self.expression()
                self.end()
                return ("throw", off, value)
            if text in ("break", "continue"):
                self.take()
                self.end()
                return (text, off)
            if self.is_declaration():
                node = self.declaration()
                self.end()
                return node
            if self.is_function():
                raise CompileError(off, "functions must be declared before the script's first statement")
        expr = self.expression()
        last = top and self.returns_value and (self.peek() is None or (self.at(";") and self.peek(1) is None))
        if last:  # Painless returns the value of a script's last expression statement
            self.end()
            return ("return", off, expr)
        if expr[0] not in ("assign", "incdec", "call", "static", "new", "fcall"):
            raise CompileError(off, "not a statement: result not used from expression")
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
            raise CompileError(tok[2], f"unexpected token ['{tok[1]}'] was expecting one of [;].")

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
                raise CompileError(tok[2], "invalid assignment: cannot assign a value to this expression")
            if left[0] == "var" and left[2] in ("ctx", "params"):
                raise CompileError(left[1], f"cannot assign a value to [{left[2]}]")
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
        left = self._binary(("<", "<=", ">", ">="), self.add)
        while self.at("instanceof"):
            off = self.take()[2]
            tok = self.peek()
            if tok is None or tok[0] != "name" or tok[1] not in _TYPES or tok[1] == "def":
                raise CompileError(self.offset(), "invalid sequence of tokens near ['instanceof'].")
            left = ("instanceof", off, left, self.type_name())
        return left

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
            raise CompileError(offset, "invalid assignment: cannot increment or decrement this expression")

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
                    raise CompileError(ntok[2], f"invalid sequence of tokens near ['{ntok[1]}'].")
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
            raise CompileError(off, f"invalid sequence of tokens near ['{text}'].")
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
            if self.at("["):  # new T[n]: an array of n default values (a fixed-size list here)
                if type_ not in _TYPES:
                    raise CompileError(off, f"cannot resolve type [{type_}]")
                self.take("[")
                size = self.expression()
                self.take("]")
                if self.at("["):
                    raise CompileError(off, "arrays of arrays are valid painless but not supported by es_infer_nb's "
                                       "painless subset; use lists of lists")
                return ("newarray", off, type_, size)
            if type_ not in NEWABLE:
                raise CompileError(
                    off,
                    f"new [{type_}] is not supported by es_infer_nb's painless subset "
                    f"(supported: {', '.join(NEWABLE)})",
                )
            return ("new", off, type_, self.args())
        if text in self.statics:
            self.take(".")
            method = self.take()[1]
            table = self.statics[text]
            if method not in table:
                raise CompileError(
                    off,
                    f"unknown call [{method}] on type [{text}] (es_infer_nb's painless subset has "
                    f"{', '.join(sorted(table))})",
                )
            return ("static", off, text, method, self.args())
        if text in self.functions and self.at("("):
            return ("fcall", off, text, self.args())
        if text in ("ctx", "params") or self.known(text):
            return ("var", off, text)
        if text in _KEYWORDS or text in _TYPES:
            raise CompileError(off, f"invalid sequence of tokens near ['{text}'].")
        raise CompileError(off, f"cannot resolve symbol [{text}]")

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
        raise CompileError(off, f"Invalid numeric constant [{text[:40]}...].")
    if low.startswith("0x"):
        value = int(low.rstrip("l"), 16)
    elif low[-1] in "df" or "." in low or ("e" in low and not low.startswith("0x")):
        return float(low.rstrip("df"))
    else:
        value = int(low.rstrip("l"))
    limit = 2**63 if low.endswith("l") else 2**31
    if value >= limit:
        raise CompileError(off, f"Invalid {'long' if low.endswith('l') else 'int'} constant [{text}].")
    return Long(value) if low.endswith("l") else value


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)


class Long(int):
    """A Java ``long`` (an ``L`` literal, a ``(long)`` cast, or arithmetic on one): wraps at 64 bits."""


def writes_of(node: Any, out: list[str]) -> None:
    """The ``ctx`` paths a script assigns with literal keys (``ctx.a.b = ...`` -> ``a.b``)."""
    if not isinstance(node, tuple):
        if isinstance(node, list):
            for item in node:
                writes_of(item, out)
        return
    if node and node[0] in ("assign", "incdec"):
        path = _ctx_path(node[3])
        if path:
            out.append(path)
    for child in node[1:]:
        if isinstance(child, (tuple, list)):
            writes_of(child, out)


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
