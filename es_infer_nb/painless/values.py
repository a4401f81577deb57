"""Values of the Painless subset of :mod:`.interpreter`: Java's arithmetic, casts and equality, and the
one table of callable methods (String, List, Map) and static calls (``Math``, ``Integer`` ...).

Nothing outside :data:`METHODS` / :data:`STATICS` is callable; strings and lists are capped at
:data:`MAX_SIZE`, comparisons and ``toString`` at a bounded amount of work.
"""

from __future__ import annotations

import decimal
import math
import re
from typing import Any, Callable

from ..models.java_hash import string_hash
from ..models.tree.features import java_string
from .syntax import Long

#: documents nested deeper than this fail alone (ES's JSON parser refuses more than 1000 levels; Python's
#: recursion limit, two frames a level in 3.11, leaves room for fewer)
MAX_NESTING_DEPTH = 300


def java_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if -(2**31) <= value < 2**31 else "java.lang.Long"
    if isinstance(value, float):
        return "java.lang.Double"
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, dict):
        return "java.util.HashMap"
    if isinstance(value, list):
        return "java.util.ArrayList"
    if isinstance(value, (bytes, bytearray)):
        return "[B"  # byte[]
    if isinstance(value, StringBuilder):
        return "java.lang.StringBuilder"
    if isinstance(value, BigDecimal):
        return "java.math.BigDecimal"
    if isinstance(value, JavaException):
        return f"java.lang.{_EXCEPTIONS.get(value.kind, 'RuntimeException')}"
    return type(value).__name__


class StringBuilder:
    """Java's ``StringBuilder`` as scripts use it (``new StringBuilder()``, ``append`` chains, ``toString``):
    a mutable string, equal only to itself, capped at :data:`MAX_SIZE` characters."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text = ""

    def __repr__(self) -> str:
        return f"StringBuilder({self.text!r})"


#: the longest string or list a script may build (es_infer_nb's guard; Painless has the JVM heap)
MAX_SIZE = 10_000_000
#: the most values (leaves and containers) a script may leave in ``ctx`` or compare (against aliasing bombs)
MAX_CTX_NODES = 1_000_000


class JavaException:
    """``new IllegalArgumentException(message)`` ...: what a script may ``throw`` (its ES error type and message)."""

    __slots__ = ("kind", "message")

    def __init__(self, kind: str, message: str) -> None:
        self.kind, self.message = kind, message


class BigDecimal:
    """Java's ``BigDecimal`` as scripts use it: made from a number's or a string's text, read back as
    ``intValue`` / ``longValue`` / ``doubleValue`` / ``toString``."""

    __slots__ = ("value",)

    def __init__(self, value: decimal.Decimal) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"BigDecimal({self.value})"


class PainlessRuntimeError(Exception):
    """A runtime error of a script: the Java exception type, its message, and where (set on the way out)."""

    def __init__(self, kind: str, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.offset = offset


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int32(v: int) -> bool:
    return not isinstance(v, Long) and -(2**31) <= v < 2**31


def _wrap(value: int, a: Any, b: Any = 0) -> int:
    if _is_int32(a) and _is_int32(b):
        return (value + 2**31) % 2**32 - 2**31
    return Long((value + 2**63) % 2**64 - 2**63)


def type_of(v: Any) -> str:
    return java_type(v)


def cast_error(op: str, a: Any, b: Any) -> PainlessRuntimeError:
    return PainlessRuntimeError(
        "class_cast_exception", f"Cannot apply [{op}] operation to types [{type_of(a)}] and [{type_of(b)}]."
    )


def equal(a: Any, b: Any) -> bool:
    """Java's ``equals`` as Painless's ``==`` applies it (numbers by value), comparing at most MAX_CTX_NODES
    values (two lists that hold lists many times over would otherwise compare without end)."""
    budget = MAX_CTX_NODES
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        budget -= 1
        if budget < 0:
            raise PainlessRuntimeError(
                "illegal_argument_exception",
                f"comparing more than {MAX_CTX_NODES} values (es_infer_nb's limit for scripts)",
            )
        if x is y:
            continue
        if is_num(x) and is_num(y):
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


def to_string(value: Any) -> str:
    """Java's ``String.valueOf`` of a script value, refusing to build more than MAX_SIZE characters
    (a list holding itself many times over would otherwise expand without end)."""
    budget = [MAX_SIZE]

    def walk(v: Any) -> str:
        if isinstance(v, dict):
            text = "{" + ", ".join(f"{walk(k)}={walk(x)}" for k, x in v.items()) + "}"
        elif isinstance(v, list):
            text = "[" + ", ".join(walk(x) for x in v) + "]"
        elif isinstance(v, StringBuilder):
            text = v.text
        elif isinstance(v, BigDecimal):
            text = _decimal_text(v.value)
        else:
            text = java_string(v)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise PainlessRuntimeError(
                "illegal_argument_exception", f"a string longer than {MAX_SIZE} (es_infer_nb's limit for scripts)"
            )
        return text

    return walk(value)


def check_size(value: Any) -> Any:
    if isinstance(value, (str, list)) and len(value) > MAX_SIZE:
        raise PainlessRuntimeError(
            "illegal_argument_exception", f"a string or list longer than {MAX_SIZE} (es_infer_nb's limit for scripts)"
        )
    return value


def arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return check_size(to_string(a) + to_string(b))
    if not (is_num(a) and is_num(b)):
        if a is None or b is None:
            raise PainlessRuntimeError("null_pointer_exception", f"cannot apply [{op}] to null")
        raise cast_error(op, a, b)
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
        raise PainlessRuntimeError("arithmetic_exception", "/ by zero")
    q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    if op == "/":
        return _wrap(q, a, b)
    return a - b * q


_CASTS = {"int": 32, "short": 16, "byte": 8, "long": 64}


def cast(type_: str, value: Any) -> Any:
    if type_ in ("def", "Object"):
        return value
    if type_ in _CASTS or type_ in ("Integer", "Long"):
        if not is_num(value):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to {type_}")
        if isinstance(value, float):
            if math.isnan(value):
                return 0
            if math.isinf(value):
                value = 2**63 - 1 if value > 0 else -(2**63)
            value = int(value)
        bits = _CASTS.get(type_, 32 if type_ == "Integer" else 64)
        half = 1 << (bits - 1)
        wrapped = (value + half) % (1 << bits) - half
        return Long(wrapped) if bits == 64 else wrapped
    if type_ in ("double", "float", "Double", "Float", "Number"):
        if not is_num(value):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to {type_}")
        return float(value) if type_ != "Number" else value
    if type_ in ("boolean", "Boolean"):
        if not isinstance(value, bool):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to {type_}")
        return value
    if type_ == "String":
        if value is not None and not isinstance(value, str):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to java.lang.String")
        return value
    if type_ in ("List", "ArrayList", "Collection") or type_.endswith("[]"):
        if value is not None and not isinstance(value, list):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to java.util.List")
        return value
    if type_ in ("Map", "HashMap"):
        if value is not None and not isinstance(value, dict):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to java.util.Map")
        return value
    if type_ == "StringBuilder":
        if value is not None and not isinstance(value, StringBuilder):
            raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to java.lang.StringBuilder")
        return value
    return value


_INSTANCE_TYPES: dict[str, Callable[[Any], bool]] = {
    "Object": lambda v: True,
    "String": lambda v: isinstance(v, str),
    "Boolean": lambda v: isinstance(v, bool),
    "Number": is_num,
    "Integer": lambda v: is_num(v) and isinstance(v, int) and not isinstance(v, Long) and _is_int32(v),
    "Long": lambda v: is_num(v) and isinstance(v, int) and (isinstance(v, Long) or not _is_int32(v)),
    "Double": lambda v: isinstance(v, float),
    "Float": lambda v: False,
    "List": lambda v: isinstance(v, list),
    "ArrayList": lambda v: isinstance(v, list),
    "Collection": lambda v: isinstance(v, list),
    "Map": lambda v: isinstance(v, dict),
    "HashMap": lambda v: isinstance(v, dict),
    "StringBuilder": lambda v: isinstance(v, StringBuilder),
}
_BOXED = {"int": "Integer", "long": "Long", "double": "Double", "float": "Float", "boolean": "Boolean"}


def instance_of(type_: str, value: Any) -> bool:
    """Java's ``value instanceof Type`` over the JSON-like values (``null`` is an instance of nothing)."""
    if value is None:
        return False
    if type_.endswith("[]"):
        return isinstance(value, list)
    test = _INSTANCE_TYPES.get(_BOXED.get(type_, type_))
    return bool(test(value)) if test is not None else False


def declare_default(type_: str) -> Any:
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
        raise PainlessRuntimeError("null_pointer_exception", f"cannot pass null to [{name}]")
    if not isinstance(v, str):
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(v)} to java.lang.String")
    return v


def _int_arg(name: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(v)} to int")
    return v


def _substring(s: str, begin: Any, end: Any = None) -> str:
    b = _int_arg("substring", begin)
    e = len(s) if end is None else _int_arg("substring", end)
    if b < 0 or e > len(s) or b > e:
        raise PainlessRuntimeError("string_index_out_of_bounds_exception", f"begin {b}, end {e}, length {len(s)}")
    return s[b:e]


def _split_on_token(s: str, token: Any, limit: Any = 0) -> list[str]:
    tok = _str_arg("splitOnToken", token)
    if tok == "":
        raise PainlessRuntimeError("illegal_argument_exception", "Cannot split on empty token")
    n = _int_arg("splitOnToken", limit)
    parts = s.split(tok, n - 1) if n > 0 else s.split(tok)
    if n == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


def _index(items: list[Any] | str, i: Any) -> int:
    idx = _int_arg("get", i)
    if not 0 <= idx < len(items):
        raise PainlessRuntimeError(
            "index_out_of_bounds_exception", f"Index {idx} out of bounds for length {len(items)}"
        )
    return idx


def _replace(s: str, old: str, new: str) -> str:
    hits = s.count(old) if old else len(s) + 1
    if len(s) + hits * (len(new) - len(old)) > MAX_SIZE:
        raise PainlessRuntimeError(
            "illegal_argument_exception", f"a string longer than {MAX_SIZE} (es_infer_nb's limit for scripts)"
        )
    return s.replace(old, new)


def _list_add(items: list[Any], *args: Any) -> Any:
    if len(args) == 1:
        items.append(args[0])
        check_size(items)
        return True
    idx = _int_arg("add", args[0])
    if not 0 <= idx <= len(items):
        raise PainlessRuntimeError("index_out_of_bounds_exception", f"Index: {idx}, Size: {len(items)}")
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
    return d.get(k) if hashable(k) else None


def hashable(k: Any) -> bool:
    return isinstance(k, (str, int, float, bool)) or k is None


def map_key(k: Any) -> Any:
    if not hashable(k):
        raise PainlessRuntimeError(
            "illegal_argument_exception",
            f"a map key of type [{type_of(k)}] is not supported by es_infer_nb's painless subset",
        )
    return k


def _map_put(d: dict[Any, Any], k: Any, v: Any) -> Any:
    old = d.get(map_key(k))
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
        "concat": ((1,), lambda s, x: check_size(s + _str_arg("concat", x))),
        "charAt": ((1,), lambda s, i: s[_index(s, i)]),
        "toString": ((0,), lambda s: s),
        "hashCode": ((0,), lambda s: string_hash(s)),
    },
    list: {
        "size": ((0,), len),
        "isEmpty": ((0,), lambda items: not items),
        "get": ((1,), lambda items, i: items[_index(items, i)]),
        "add": ((1, 2), _list_add),
        "set": ((2,), _list_set),
        "remove": ((1,), _list_remove),
        "contains": ((1,), lambda items, x: any(equal(v, x) for v in items)),
        "indexOf": ((1,), lambda items, x: next((i for i, v in enumerate(items) if equal(v, x)), -1)),
        "clear": ((0,), lambda items: items.clear()),
        "toString": ((0,), to_string),
    },
    dict: {
        "size": ((0,), len),
        "isEmpty": ((0,), lambda d: not d),
        "get": ((1,), _map_get),
        "getOrDefault": ((2,), lambda d, k, default: d.get(k, default) if hashable(k) else default),
        "containsKey": ((1,), lambda d, k: hashable(k) and k in d),
        "containsValue": ((1,), lambda d, x: any(equal(v, x) for v in d.values())),
        "put": ((2,), _map_put),
        "remove": ((1,), lambda d, k: d.pop(k, None) if hashable(k) else None),
        "keySet": ((0,), lambda d: list(d)),
        "values": ((0,), lambda d: list(d.values())),
        "clear": ((0,), lambda d: d.clear()),
        "toString": ((0,), to_string),
    },
}
def _sb_append(sb: StringBuilder, value: Any) -> StringBuilder:
    sb.text = check_size(sb.text + to_string(value))
    return sb


def _sb_insert(sb: StringBuilder, offset: Any, value: Any) -> StringBuilder:
    at = _int_arg("insert", offset)
    if not 0 <= at <= len(sb.text):
        raise PainlessRuntimeError("string_index_out_of_bounds_exception", f"offset {at}, length {len(sb.text)}")
    sb.text = check_size(sb.text[:at] + to_string(value) + sb.text[at:])
    return sb


def _sb_delete_char_at(sb: StringBuilder, index: Any) -> StringBuilder:
    at = _index(sb.text, index)
    sb.text = sb.text[:at] + sb.text[at + 1:]
    return sb


def _sb_set_length(sb: StringBuilder, length: Any) -> None:
    n = _int_arg("setLength", length)
    if n < 0:
        raise PainlessRuntimeError("string_index_out_of_bounds_exception", f"String index out of range: {n}")
    sb.text = check_size(sb.text[:n] + "\0" * (n - len(sb.text)))


def _sb_reverse(sb: StringBuilder) -> StringBuilder:
    sb.text = sb.text[::-1]
    return sb


#: the exception classes scripts may throw: ES error type -> Java class name
_EXCEPTIONS = {"exception": "Exception", "runtime_exception": "RuntimeException",
               "illegal_argument_exception": "IllegalArgumentException",
               "illegal_state_exception": "IllegalStateException",
               "unsupported_operation_exception": "UnsupportedOperationException"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _new_string_builder(*args: Any) -> StringBuilder:
    sb = StringBuilder()
    if args and not (is_num(args[0]) and not isinstance(args[0], float)):  # an int is a capacity
        if args[0] is None:
            raise PainlessRuntimeError("null_pointer_exception", "Cannot invoke \"String.length()\" because "
                                       "\"str\" is null")
        sb.text = check_size(to_string(args[0]))
    return sb


def _new_list(*args: Any) -> list[Any]:
    if args and isinstance(args[0], (list, dict)):
        return list(args[0])
    return []


def _new_map(*args: Any) -> dict[Any, Any]:
    return dict(args[0]) if args and isinstance(args[0], dict) else {}


def _new_decimal(value: Any) -> BigDecimal:
    text = value if isinstance(value, str) else to_string(value) if is_num(value) else None
    if text is None:
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(value)} to java.lang.String")
    try:
        return BigDecimal(decimal.Decimal(text.strip() if isinstance(value, str) else text))
    except decimal.InvalidOperation:
        bad = next((c for c in text if not (c.isdigit() or c in ".eE+-")), text[:1])
        raise PainlessRuntimeError("number_format_exception", f"Character {bad or 'array'} is neither a decimal digit "
                                   "number, decimal point, nor \"e\" notation exponential mark.") from None


def _decimal_text(value: decimal.Decimal) -> str:
    return str(value)  # Java's BigDecimal.toString: 1.50, 1E+3 alike


#: what ``new T(args)`` makes: the accepted argument counts and the maker
CONSTRUCTORS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "ArrayList": ((0, 1), _new_list),
    "HashMap": ((0, 1), _new_map),
    "StringBuilder": ((0, 1), _new_string_builder),
    "BigDecimal": ((1,), _new_decimal),
    **{java: ((0, 1), lambda message=None, _kind=kind: JavaException(_kind, "" if message is None else
                                                                    to_string(message)))
       for kind, java in _EXCEPTIONS.items()},
}


def construct(type_: str, args: list[Any]) -> Any:
    arity, make = CONSTRUCTORS[type_]
    if len(args) not in arity:
        raise PainlessRuntimeError("illegal_argument_exception", f"constructor [{type_}/{len(args)}] not found")
    return make(*args)


def new_array(type_: str, size: Any) -> list[Any]:
    """``new T[n]``: n default values of T (a list of that fixed length)."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(size)} to int")
    if size < 0:
        raise PainlessRuntimeError("negative_array_size_exception", f"{size}")
    return check_size([declare_default(type_)] * size)


def _decimal_int(d: BigDecimal, bits: int) -> int:
    value = int(d.value)
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


METHODS[BigDecimal] = {
    "intValue": ((0,), lambda d: _decimal_int(d, 32)),
    "longValue": ((0,), lambda d: _decimal_int(d, 64)),
    "doubleValue": ((0,), lambda d: float(d.value)),
    "toString": ((0,), lambda d: _decimal_text(d.value)),
}
METHODS[JavaException] = {"getMessage": ((0,), lambda e: e.message)}
METHODS[StringBuilder] = {
    "append": ((1,), _sb_append),
    "insert": ((2,), _sb_insert),
    "toString": ((0,), lambda sb: sb.text),
    "length": ((0,), lambda sb: len(sb.text)),
    "isEmpty": ((0,), lambda sb: sb.text == ""),
    "charAt": ((1,), lambda sb, i: sb.text[_index(sb.text, i)]),
    "deleteCharAt": ((1,), _sb_delete_char_at),
    "setLength": ((1,), _sb_set_length),
    "reverse": ((0,), _sb_reverse),
    "indexOf": ((1,), lambda sb, x: sb.text.find(_str_arg("indexOf", x))),
}
ANY_METHODS: dict[str, _Method] = {"toString": ((0,), to_string), "equals": ((1,), equal)}


def _compare_to(a: str, b: str) -> int:
    for x, y in zip(a, b):
        if x != y:
            return ord(x) - ord(y)
    return len(a) - len(b)


def _num_arg(v: Any) -> int | float:
    if not is_num(v):
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(v)} to java.lang.Number")
    return v


def _parse_int(s: Any, bits: int) -> int:
    text = _str_arg("parse", s)
    if len(text) > 25 or not re.fullmatch(r"[+-]?\d+", text) or not -(2 ** (bits - 1)) <= int(text) < 2 ** (bits - 1):
        raise PainlessRuntimeError("number_format_exception", f'For input string: "{text}"')
    return int(text)


def _parse_double(s: Any) -> float:
    text = _str_arg("parseDouble", s).strip()
    try:
        return float(
            text.rstrip("dDfF")
            if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?", text)
            else text
            if text in ("NaN", "Infinity", "-Infinity", "+Infinity")
            else "x"
        )
    except ValueError:
        raise PainlessRuntimeError("number_format_exception", f'For input string: "{text}"') from None


def _round(v: Any) -> int:
    x = _num_arg(v)
    if isinstance(x, int):
        return x
    if math.isnan(x):
        return 0
    return math.floor(x + 0.5)


def _join(sep: Any, items: Any) -> str:
    if not isinstance(items, list):
        raise PainlessRuntimeError("class_cast_exception", f"Cannot cast {type_of(items)} to java.lang.Iterable")
    return check_size(_str_arg("join", sep).join(to_string(v) for v in items))


def _pow(a: Any, b: Any) -> float:
    try:
        return math.pow(float(_num_arg(a)), float(_num_arg(b)))
    except (OverflowError, ValueError):
        return math.inf if float(a) > 0 else math.nan


def _sqrt(a: Any) -> float:
    x = float(_num_arg(a))
    return math.sqrt(x) if x >= 0 else math.nan


STATICS: dict[str, dict[str, _Method]] = {
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
    "Integer": {
        "parseInt": ((1,), lambda s: _parse_int(s, 32)),
        "toString": ((1,), to_string),
        "valueOf": ((1,), lambda s: _parse_int(s, 32) if isinstance(s, str) else cast("int", s)),
    },
    "Long": {"parseLong": ((1,), lambda s: _parse_int(s, 64)), "toString": ((1,), to_string)},
    "Double": {"parseDouble": ((1,), _parse_double), "toString": ((1,), to_string)},
    "Boolean": {"parseBoolean": ((1,), lambda s: isinstance(s, str) and s.lower() == "true")},
    "String": {"valueOf": ((1,), to_string), "join": ((2,), _join)},
}
