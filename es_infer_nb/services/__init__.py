"""Inference endpoints (Elasticsearch's ``_inference`` API): remote HTTP model services and local models.

REST (``Engine.request``, the HTTP server, ``%%infer``)::

    PUT    _inference/<task_type>/<inference_id>   {"service", "service_settings", "task_settings"?, "chunking_settings"?}
    GET    _inference | _inference/_all | _inference/<id> | _inference/<task_type>/_all | _inference/<task_type>/<id>
    POST   _inference[/<task_type>]/<id>           {"input": str | [str], "query"?, "task_settings"?, "input_type"?,
                                                    "top_n"?, "return_documents"?}   (?timeout=30s; 120s completion)
    DELETE _inference[/<task_type>]/<id>           (?dry_run, ?force; refused while a pipeline uses it)
    PUT    _inference[/<task_type>]/<id>/_update
    GET    _inference/_services[/<task_type>]     (each service's settings, ``sensitive`` marks the secrets)

Services: ``custom`` (url, headers, query_parameters, a JSON ``request`` template with JSON-escaped
``${...}`` values, ``response.json_parser`` / ``error_parser`` paths, task types text_embedding,
sparse_embedding, rerank, completion and ``custom`` = the whole response), ``alibaba-cloud-custom-model``
(Alibaba's ``path.<path>.<POST|PUT|GET>`` layout with ``query_string``, ``headers``, ``request.content``
and ``json_parser`` incl. ``sparse_result``; ES's flat layout too; see :mod:`.alibaba_custom`),
``openai`` (and OpenAI-compatible servers by ``url``), ``hugging_face`` (text-embeddings-inference),
``elasticsearch`` (the bundled MiniLM or any model of the engine).

Secrets (``secret_parameters``, ``api_key``) are write-only: never in GET/PUT answers, reprs, errors or
logs. With a home, they are kept apart from the endpoint configs in ``<home>/inference_secrets.json``
(mode 0600); give ``{"env": "VARIABLE"}`` instead of a value to keep a secret only in the environment.

Transport: a pooled ``httpx.Client`` per endpoint, retries with exponential backoff on 429 / 5xx /
connection errors, ``rate_limit.requests_per_minute``, ``batch_size`` inputs per upstream request and
``max_concurrent_requests`` (default 8) requests in flight; a failing call fails only its inputs.

Python::

    from es_infer_nb.services import infer_endpoint, infer_chunked, preview_chunks
    infer_endpoint(engine, "my-emb", ["a", "b"])   # [{"embedding": [...]}, ApiError(...), ...] one per input
    preview_chunks(text, {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1})
    infer_chunked(engine, "my-emb", [long_text])    # chunks of each input with their embeddings

Endpoint ids work as ``model_id`` in the ``inference`` processor, in OpenSearch ``ml_inference`` with
``function_name: remote`` (the ``_inference`` answer is the ``response`` tensor), and in
``df.infer.run(<inference_id>, ...)``.
"""

from .chunking import preview_chunks
from .runner import infer_chunked, infer_endpoint, is_endpoint

__all__ = ["infer_chunked", "infer_endpoint", "is_endpoint", "preview_chunks"]
