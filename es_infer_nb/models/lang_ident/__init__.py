"""The built-in ``lang_ident_model_1``: ES's port of CLD3, on the CLD3 network of ``cld3-py``."""

from .model import LABELS, LANGUAGE_NAMES, LangIdentModel

__all__ = ["LABELS", "LANGUAGE_NAMES", "LangIdentModel"]
