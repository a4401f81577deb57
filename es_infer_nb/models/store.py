"""The model store: configs, aliases and loaded (compiled) models.

Configs and aliases persist through :class:`~es_infer_nb.storage.JsonStore`; a
loaded model is cached per (model id, device) and dropped when the model is deleted.
"""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path
from typing import Any, Callable

from ..errors import not_found
from ..stats import StatsRegistry
from ..storage import JsonStore, is_object, is_string
from .builtin import builtin_config, is_builtin
from .config import LANG_IDENT_CONFIG, LANG_IDENT_ID


class ModelStore:
    def __init__(self, home: Path | None, stats: StatsRegistry) -> None:
        self.configs = JsonStore(home, "models", check=is_object)
        self.aliases = JsonStore(home, "aliases", check=is_string)  # alias -> model id
        self.stats = stats
        self._loaded: dict[tuple[str, str], Any] = {}
        self._loaded_lock = threading.RLock()  # the loaded-model cache (loads themselves run outside it)
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self.configs.on_change(self._changed_elsewhere)

    def _changed_elsewhere(self, model_ids: set[str]) -> None:
        """Models another engine on the home replaced or deleted: drop what was loaded from the old ones."""
        for model_id in model_ids:
            self.unload(model_id)

    def __len__(self) -> int:
        return len(self.configs)

    # -- ids ------------------------------------------------------------------------------
    def all_ids(self) -> list[str]:
        return sorted([*self.configs, LANG_IDENT_ID])

    def exists(self, model_id: str) -> bool:
        return model_id in self.configs or model_id == LANG_IDENT_ID or is_builtin(model_id)

    def resolve(self, id_or_alias: str) -> str | None:
        """A model id for a model id or an alias; None when neither exists."""
        if self.exists(id_or_alias):
            return id_or_alias
        target = self.aliases.get(id_or_alias)
        return target if isinstance(target, str) and self.exists(target) else None

    def require(self, id_or_alias: str) -> str:
        model_id = self.resolve(id_or_alias)
        if model_id is None:
            raise not_found(f"Could not find trained model [{id_or_alias}]")
        return model_id

    def config(self, model_id: str) -> dict[str, Any]:
        if model_id == LANG_IDENT_ID:
            return dict(LANG_IDENT_CONFIG)
        cfg = self.configs.get(model_id)
        if cfg is None and is_builtin(model_id):  # bundled; a stored model of the same id shadows it
            return builtin_config(model_id)
        if cfg is None:
            raise not_found(f"Could not find trained model [{model_id}]")
        return cfg

    def aliases_of(self, model_id: str) -> list[str]:
        return sorted(a for a, m in self.aliases.items() if m == model_id)

    def expand(
        self,
        expression: str,
        *,
        allow_no_match: bool,
        missing_reason: str,
        keep: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Resolve an id expression (comma list, wildcards, ``_all``, aliases) to sorted model ids, as
        ``TrainedModelProvider.expandIds`` with ``ExpandedIdsMatcher``: ``keep`` (a tags filter) drops
        models before the tokens are matched; only a lone ``_all`` / ``*`` means every model (unmatched,
        it is reported as ``*``)."""
        tokens = [x.strip() for x in expression.split(",") if x.strip()] if expression else []
        candidates = [m for m in self.all_ids() if keep is None or keep(m)]
        if not tokens or tokens in (["_all"], ["*"]):
            if not candidates and not allow_no_match:
                raise not_found(missing_reason.format("*"))
            return candidates
        wanted = keep or self.exists
        found: set[str] = set()
        unmatched: list[str] = []
        for token in tokens:
            if "*" in token:
                ids = [m for m in candidates if fnmatch.fnmatchcase(m, token)]
                ids += [
                    m for a, m in self.aliases.items() if fnmatch.fnmatchcase(a, token) and self.exists(m) and wanted(m)
                ]
                if not ids and not allow_no_match:
                    unmatched.append(token)
                found.update(ids)
                continue
            model_id = self.resolve(token)
            if model_id is None or not wanted(model_id):
                unmatched.append(token)
            else:
                found.add(model_id)
        if unmatched:
            raise not_found(missing_reason.format(",".join(unmatched)))
        return sorted(found)

    # -- writes ----------------------------------------------------------------------------
    def put(self, model_id: str, stored: dict[str, Any]) -> None:
        self.configs.put(model_id, stored)

    def delete(self, model_id: str) -> None:
        self.configs.delete(model_id)
        for alias in self.aliases_of(model_id):
            self.aliases.delete(alias)
        self.unload(model_id)
        self.stats.forget(model_id)

    # -- loaded models ---------------------------------------------------------------------
    def loaded(self, model_id: str, device: str) -> Any:
        return self._loaded.get((model_id, device))

    def load_lock(self, model_id: str, device: str) -> threading.Lock:
        """The lock one load of ``model_id`` on ``device`` holds, so concurrent callers load it once
        (other models, and everything else, go on meanwhile)."""
        with self._loaded_lock:
            return self._loading.setdefault((model_id, device), threading.Lock())

    def remember(self, model_id: str, device: str, model: Any, stored: Any = None) -> bool:
        """Cache a loaded model; with ``stored`` (the config it was built from) only while that config
        is still the stored one, so a load that raced a DELETE / PUT never serves a stale model."""
        with self._loaded_lock:
            if stored is not None and self.configs.get(model_id) is not stored:
                return False
            self._loaded[(model_id, device)] = model
            return True

    def unload(self, model_id: str) -> None:
        with self._loaded_lock:
            for key in [k for k in self._loaded if k[0] == model_id]:
                del self._loaded[key]
            for key in [k for k in self._loading if k[0] == model_id]:
                del self._loading[key]
