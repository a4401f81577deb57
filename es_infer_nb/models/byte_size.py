"""Byte sizes as Elasticsearch parses and prints them (``ByteSizeValue``), e.g. ``cache_size``."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ApiError

#: (suffixes as accepted, longest first within a unit; canonical suffix; bytes per unit)
_UNITS = (
    (("k", "kb"), "kb", 1024),
    (("m", "mb"), "mb", 1024**2),
    (("g", "gb"), "gb", 1024**3),
    (("t", "tb"), "tb", 1024**4),
    (("p", "pb"), "pb", 1024**5),
)


def _parse_error(setting: str, text: str, detail: str = "") -> ApiError:
    return ApiError("parse_exception", f"failed to parse setting [{setting}] with value [{text}]{detail}", 400)


@dataclass(frozen=True)
class ByteSize:
    """A size with the unit it was given in; ``bytes`` is the value in bytes."""

    size: int
    suffix: str
    unit_bytes: int

    @property
    def bytes(self) -> int:
        return self.size * self.unit_bytes

    @classmethod
    def of_bytes(cls, n: int) -> "ByteSize":
        return cls(int(n), "b", 1)

    @classmethod
    def parse(cls, value: object, setting: str) -> "ByteSize":
        """``ByteSizeValue.parseBytesSizeValue``: ``10mb``, ``1g``, ``512b``, ``0``, ``-1``; no bare numbers."""
        text = str(value)
        lower = text.strip().lower()
        number: str | None = None
        suffix, unit = "b", 1
        for accepted, canonical, size in _UNITS:
            for s in accepted:
                if lower.endswith(s) and number is None:
                    number, suffix, unit = lower[: -len(s)], canonical, size
        if number is None and lower.endswith("b"):
            number = lower[:-1]
        if number is None:
            if lower in ("-1", "0"):
                return cls(int(lower), "b", 1)
            raise _parse_error(setting, text, " as a size in bytes: unit is missing or unrecognized")
        number = number.strip()
        try:
            size = int(number)
        except ValueError:
            try:
                fractional = float(number)
            except ValueError:
                raise _parse_error(setting, text) from None
            size, suffix, unit = int(fractional * unit), "b", 1  # fractions are kept as bytes, as ES does
        if size * unit < -1:
            raise ApiError("parse_exception", f"Values less than -1 bytes are not supported: {text}", 400)
        return cls(size, suffix, unit)

    def string_rep(self) -> str:
        """``getStringRep``: the size in the unit it was given in (``10mb``, ``1630b``); ``0`` / ``-1``
        without a unit."""
        return str(self.size) if self.size <= 0 else f"{self.size}{self.suffix}"

    def __str__(self) -> str:
        """``toString``: the largest unit with a whole part, one truncated decimal (``438mb``, ``1.5kb``)."""
        n = self.bytes
        value, suffix = float(n), "b"
        for _accepted, canonical, size in reversed(_UNITS):
            if n >= size:
                value, suffix = n / size, canonical
                break
        return format_1_decimal(value, suffix)


def format_1_decimal(value: float, suffix: str) -> str:
    """``Strings.format1Decimals``: the first decimal digit kept (not rounded), dropped when it is 0."""
    text = repr(float(value))
    if "e" in text or "E" in text or "inf" in text or "nan" in text:
        return f"{value:.1f}{suffix}"
    whole, _, frac = text.partition(".")
    digit = frac[:1] or "0"
    return f"{whole}{suffix}" if digit == "0" else f"{whole}.{digit}{suffix}"
