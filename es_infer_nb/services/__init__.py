"""Inference endpoints (ES ``_inference``): remote HTTP model services and local models.

* :mod:`.registry` -- the services by name and each engine's endpoints (configs, secrets, transports);
* :mod:`.custom` / :mod:`.openai` / :mod:`.hugging_face` / :mod:`.elasticsearch` -- the services;
* :mod:`.templates`, :mod:`.json_path`, :mod:`.parsers` -- the custom service's request templates and
  response paths; :mod:`.transport` -- pooled httpx with retries, rate limit and bounded concurrency;
* :mod:`.chunking` -- ``chunking_settings`` and :func:`preview_chunks`; :mod:`.secrets` -- write-only secrets;
* :mod:`.runner` -- :func:`infer_endpoint`, one result (or error) per input, for pipelines and frames.
"""

from .chunking import preview_chunks
from .runner import infer_endpoint, is_endpoint

__all__ = ["infer_endpoint", "is_endpoint", "preview_chunks"]
