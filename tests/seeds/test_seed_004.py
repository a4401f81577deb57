"""Seed 004 (Alibaba Cloud ``alibaba-cloud-custom-model``): every JSON example as written, placeholders filled.

The seed is Alibaba Cloud Elasticsearch's page on custom model services; its JSON is what matters.
Requests are parsed from the seed's own console text (``PUT _inference/...`` line and body, Kibana's
triple quotes included) with only the ``<...>`` placeholders (and the general template's ``...``)
filled: the host is a loopback service on 127.0.0.1 answering like the described model services
(:mod:`alibaba_services`), keys are test values.

Two of the seed's examples are not valid JSON as written, and Elasticsearch's parser would refuse
them as well; the tests show that and fix only the one character each needs:
* the sparse_embedding PUT has a trailing comma after ``"sparse_weight"``;
* the completion response lacks the comma after ``"result"`` and has one after ``"total_tokens"``.
The seed's sparse response example names the token ``tokenId`` while its ``sparse_result``
configuration reads ``token_id``: the test shows the configuration's clear error over that response,
and both paths working over a service answering the name they read.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from alibaba_services import (ANALYZE, API_KEY, COMPLETION, DEPLOYMENT, EMBEDDING, RERANK, SPARSE, TOKEN,
                              AlibabaService, score_of, sparse_of, start, vector_of)

from es_infer_nb import Engine
from es_infer_nb.notebook.console import ConsoleError, parse_body, parse_console
from es_infer_nb.services.registry import endpoints
from es_infer_nb.services.secrets import MASK
from seed_examples import DATA, assert_in_seed, same_shape

SEED = DATA / "004_c8e271e42fad9f1e.txt"

# -- the seed's JSON, as written ---------------------------------------------------------------------

GENERIC = '''PUT _inference/<task_type>/<inference_id>
{
  "service": "alibaba-cloud-custom-model",
  "service_settings": {
    "secret_parameters": {
      ...
    },
    "url": "<url>",
    "path": {
      "<path>": {
        "<method>": {
          "query_string": "<query_string>",
          "headers": {
            ...
          },
          "request": {
            "format": "string",
            "content": "<content>"
          },
          "response": {
            "json_parser":{
              ...
            }
          }
        }
      }
    }
  },
  "task_settings": {
    "parameters":{
      ...
    }
  }
}'''

TEXT_EMBEDDING_RESPONSE = '''{
    "request_id": "B4AB89C8-B135-****-A6F8-2BAB801A2CE4",
    "latency": 38,
    "usage": {
        "token_count": 3072
    },
    "result": {
        "embeddings": [
            {
                "index": 0,
                "embedding": [
                    -0.02868066355586052,
                    0.022033605724573135,
                    ...
                ]
            }
        ]
    }
}'''

TEXT_EMBEDDING_PARSER = '''"response":{
	"json_parser":{
		"text_embeddings":"$.result.embeddings[*].embedding"
	}
}'''

SPARSE_RESPONSE = '''{
	"request_id": "75C50B5B-E79E-4930-****-F48DBB392231",
	"latency": 22,
	"usage": {
		"token_count": 11
	},
	"result": {
		"sparse_embeddings": [
			{
				"index": 0,
				"embedding": [
					{
						"tokenId": 6,
						"weight": 0.10137939453125
					},
					{
						"tokenId": 163040,
						"weight": 0.2841796875
					},
					{
						"tokenId": 354,
						"weight": 0.1431884765625
					},
					{
						"tokenId": 5998,
						"weight": 0.161376953125
					},
					{
						"tokenId": 8550,
						"weight": 0.2388916015625
					},
					{
						"tokenId": 2017,
						"weight": 0.1614990234375
					}
				]
			},
			{
				"index": 1,
				"embedding": [
					{
						"tokenId": 9803,
						"weight": 0.1951904296875
					},
					{
						"tokenId": 86250,
						"weight": 0.317138671875
					},
					{
						"tokenId": 5889,
						"weight": 0.17529296875
					},
					{
						"tokenId": 2564,
						"weight": 0.11614990234375
					},
					{
						"tokenId": 59529,
						"weight": 0.1666259765625
					}
				]
			}
		]
	}
}'''

SPARSE_PARSER = '''"response":{
	"json_parser":{
		"sparse_result":{
			"path":"$.result.sparse_embeddings[*]",
			"value":{
				"sparse_token":"$.embedding[*].token_id",
				"sparse_weight":"$.embedding[*].weight"
			}
		}
	}
}'''

RERANK_RESPONSE = '''{
  "request_id":"24B004E0-ADEF-****-879B-F28359BFAD1D",
  "latency":19,
  "usage":{
      "doc_count":3
  },
  "result":{
      "scores":[
        {
          "index":0,"score":0.45026873385713345
        },
        {
          "index":1,"score":1.1412238544346029E-4
        },
        {
          "index":2,"score":8.029784284533197E-5
        }
      ]
    }
  }'''

RERANK_PARSER = '''"response":{
	"json_parser":{
		"relevance_score":"$.result.scores[*].score",
		"reranked_index":"$.result.scores[*].index"
	}
}'''

COMPLETION_RESPONSE = '''{
  "request_id": "450fcb80-f796-****-8d69-e1e86d29aa9f",
  "latency": 564.903929,
  "result": {
    "text":"郑州是一个历史文化悠久且现代化的城市,有很多好玩的地方。以下是一些推荐的旅游景点:..."
  }
  "usage": {
      "output_tokens": 6320,
      "input_tokens": 35,
      "total_tokens": 6355,
  }

}'''

COMPLETION_PARSER = '''"response":{
	"json_parser":{
		"completion_result":"$.result.text"
	}
}'''

PUT_TEXT_EMBEDDING = '''PUT _inference/text_embedding/<model_id>
{
  "service":"alibaba-cloud-custom-model",
  "service_settings":{
    "secret_parameters":{
      <secret_parameters参数>
    },
    "url":"<替换为您的url>",
    "path":{
      "<替换为您的path>":{
        "POST":{
          "query_string": "<query_string参数>",
          "headers":{
            <header参数>
          },
          "request":{
            "format":"string",
            "content":"<替换为模型的request格式>"
          },
          "response":{
            "json_parser":{
              "text_embeddings":"<解析text_embedding的路径>"
            }
          }
        }
      }
    }
  },
  "task_settings":{
    "parameters":{
      <parameters参数>
    }
  }
}'''

PUT_SPARSE = '''PUT _inference/sparse_embedding/<model_id>
{
  "service":"alibaba-cloud-custom-model",
  "service_settings":{
    "secret_parameters":{
      <secret_parameters参数>
    },
    "url":"<替换为您的url>",
    "path":{
      "<替换为您的path>":{
        "<method>":{
          "query_string": "<query_string参数>",
          "headers":{
            <header参数>
          },
          "request":{
            "format":"string",
            "content":"<替换为模型的request格式>"
          },
          "response":{
            "json_parser":{
              "sparse_result":{
                "path":"<解析sparse_embedding的路径>",
                "value":{
                  "sparse_token":"<解析sparse_embedding_token的路径>",
                  "sparse_weight":"<解析sparse_embedding_weight的路径>",
                }
              }
            }
          }
        }
      }
    }
  },
  "task_settings":{
    "parameters":{
      <parameters参数>
    }
  }
}'''

PUT_RERANK = '''PUT _inference/rerank/<model_id>
{
  "service":"alibaba-cloud-custom-model",
  "service_settings":{
    "secret_parameters":{
      <secret_parameters参数>
    },
    "url":"<替换为您的url>",
    "path":{
      "<替换为您的path>":{
        "<method>":{
          "query_string": "<query_string参数>",
          "headers":{
            <header参数>
          },
          "request":{
            "format":"string",
            "content":"<替换为模型的request格式>"
          },
          "response":{
            "json_parser":{
              "relevance_score":"<解析rerank relevance_score的路径>",
              "reranked_index":"<解析rerank reranked_index的路径>",
              "document_text":"<解析rerank document_text的路径>"
            }
          }
        }
      }
    }
  }
}'''

PUT_COMPLETION = '''PUT _inference/completion/<model_id>
{
  "service":"alibaba-cloud-custom-model",
  "service_settings":{
    "secret_parameters":{
      <secret_parameters参数>
    },
    "url":"<替换为您的url>",
    "path":{
      "<替换为您的path>":{
        "<method>":{
          "query_string": "<query_string参数>",
          "headers":{
            <header参数>
          },
          "request":{
            "format":"string",
            "content":"<替换为模型的request格式>"
          },
          "response":{
            "json_parser":{
              "completion_result":"<解析completion的路径>"
            }
          }
        }
      }
    }
  },
  "task_settings":{
    "parameters":{
      <parameters参数>
    }
  }
}'''

PUT_CUSTOM = '''PUT _inference/custom/<model_id>
{
  "service":"alibaba-cloud-custom-model",
  "service_settings":{
    "secret_parameters":{
      <secret_parameters参数>
    },
    "url":"<替换为您的url>",
    "path":{
      "<替换为您的path>":{
        "<method>":{
          "query_string": "<query_string参数>",
          "headers":{
            <header参数>
          },
          "request":{
            "format":"string",
            "content":"<替换为模型的request格式>"
          }
        }
      }
    }
  },
  "task_settings":{
    "parameters":{
      <parameters参数>
    }
  }
}'''

GET_ALL = '''GET _inference/_all'''

GET_RESPONSE = '''{
  "endpoints": [
    {
      "inference_id": "os_deployment_emb",
      "task_type": "text_embedding",
      "service": "alibaba-cloud-custom-model",
      "service_settings": {
        "url": "http://xxxx.opensearch.aliyuncs.com",
        "path": {
"/v3/openapi/deployments/xxx/predict": {
            "POST": {
              "headers": {
                "Authorization": "Bearer ${api_key}",
                "Token": "${Token}"
              },
              "request": {
                "format": "string",
                "content": """{"input":${input},"input_type":"${input_type}"}"""
              },
              "response": {
                "json_parser": {
                  "text_embeddings": "$.embeddings[*].embedding"
                }
              }
            }
          }
        },
        "rate_limit": {
          "requests_per_minute": 10000
        }
      },
      "task_settings": {
        "parameters": {
          "input_type": "document"
        }
      }
    }
  ]
}'''

POST_TEXT_EMBEDDING = '''POST _inference/text_embedding/os_deployment_emb
{
  "input":"hello world"
}'''

POST_TEXT_EMBEDDING_RESPONSE = '''{
  "text_embedding": [
    {
      "embedding": [
        -0.026062012,
        0.01574707,
        -0.03842163,
        0.012580872,
        ...
      ]
    }
  ]
}'''

POST_RERANK = '''POST _inference/rerank/os_deployment_custom_rerank
{
  "input": ["luke", "like", "leia", "chewy","r2d2", "star", "wars"],
  "query": "star wars main character"
}'''

POST_RERANK_RESPONSE = '''{
  "rerank": [
    {
      "index": 0,
      "relevance_score": 0.8502201
    },
    {
      "index": 1,
      "relevance_score": 0.062216982
    },
    {
      "index": 2,
      "relevance_score": 0.60352296
    },
    {
      "index": 3,
      "relevance_score": 0.35611072
    },
    {
      "index": 4,
      "relevance_score": 0.40951595
    },
    {
      "index": 5,
      "relevance_score": 0.16277891
    },
    {
      "index": 6,
      "relevance_score": 0.12918286
    }
  ]
}'''

DELETE = '''DELETE _inference/custom-rerank'''

DELETE_RESPONSE = '''{
  "acknowledged": true,
  "pipelines": []
}'''

GET_SYNTAX = ("GET /_inference/_all", "GET /_inference/<inference_id>", "GET /_inference/<task_type>/_all",
              "GET /_inference/<task_type>/<inference_id>")
POST_SYNTAX = ("POST /_inference/<inference_id>", "POST /_inference/<task_type>/<inference_id>")
DELETE_SYNTAX = ("DELETE /_inference/<inference_id>", "DELETE /_inference/<task_type>/<inference_id>")

EXAMPLES = (GENERIC, TEXT_EMBEDDING_RESPONSE, TEXT_EMBEDDING_PARSER, SPARSE_RESPONSE, SPARSE_PARSER, RERANK_RESPONSE,
            RERANK_PARSER, COMPLETION_RESPONSE, COMPLETION_PARSER, PUT_TEXT_EMBEDDING, PUT_SPARSE, PUT_RERANK,
            PUT_COMPLETION, PUT_CUSTOM, GET_ALL, GET_RESPONSE, POST_TEXT_EMBEDDING, POST_TEXT_EMBEDDING_RESPONSE,
            POST_RERANK, POST_RERANK_RESPONSE, DELETE, DELETE_RESPONSE, *GET_SYNTAX, *POST_SYNTAX, *DELETE_SYNTAX)


def test_examples_are_the_seeds_own():
    """The examples above are copied from the seed, character for character (whitespace aside)."""
    assert_in_seed(SEED.read_text(encoding="utf-8"), *EXAMPLES)


# -- filling the placeholders ------------------------------------------------------------------------

def fill_in(text: str, *pairs: tuple[str, str]) -> str:
    """``text`` with each ``(placeholder, value)`` pair's first occurrence replaced, in order."""
    for placeholder, value in pairs:
        assert placeholder in text, placeholder
        text = text.replace(placeholder, value, 1)
    assert "<" not in text.replace("<=", ""), f"a placeholder is left: {text}"
    return text


def content(template: str) -> str:
    """A request body template as it stands inside the seed's quoted ``"content": "..."``."""
    return json.dumps(template)[1:-1]


def fragment(text: str) -> Any:
    """A seed snippet such as ``"response":{...}`` (a member, not a document) as its value."""
    (value,) = json.loads("{" + text + "}").values()
    return value


def elided(text: str) -> Any:
    """A seed response whose long arrays end in ``...``: the JSON of what is shown."""
    lines = text.splitlines()
    kept = [line for line in lines if line.strip() != "..."]
    for i, line in enumerate(kept):
        if i + 1 < len(kept) and line.rstrip().endswith(",") and kept[i + 1].strip().startswith("]"):
            kept[i] = line.rstrip()[:-1]
    return json.loads("\n".join(kept))


def call(engine: Engine, text: str) -> Any:
    """Run the console request ``text`` (one request line and its body) and return the answer."""
    (req,) = parse_console(text, substitute=False)
    resp = engine.request(req.method, req.path, req.body)
    assert resp.status == 200, (str(req), resp.body)
    return resp.body


def secrets_of(*pairs: tuple[str, str]) -> str:
    return ", ".join(f'"{k}": "{v}"' for k, v in pairs)


AUTH = '"Authorization": "Bearer ${api_key}"'
SECRETS = secrets_of(("api_key", API_KEY))


@pytest.fixture(scope="module")
def service() -> Iterator[AlibabaService]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


def last_json(service: AlibabaService) -> Any:
    return json.loads(service.received[-1].body)


def shown(answer: Any) -> str:
    return json.dumps(answer, ensure_ascii=False)


# -- the GET example: a stored endpoint, then the text_embedding call on it ------------------------------

def put_get_example(engine: Engine, service: AlibabaService) -> dict[str, Any]:
    """PUT the endpoint the seed's GET answer shows (its secrets given), url on the loopback service."""
    (shown_endpoint,) = parse_body(GET_RESPONSE.replace("http://xxxx.opensearch.aliyuncs.com", service.url),
                                   substitute=False)["endpoints"]
    body = {k: v for k, v in shown_endpoint.items() if k not in ("inference_id", "task_type")}
    body["service_settings"] = {"secret_parameters": {"api_key": API_KEY, "Token": TOKEN},
                                **body["service_settings"]}
    resp = engine.request("PUT", f"_inference/{shown_endpoint['task_type']}/{shown_endpoint['inference_id']}", body)
    assert resp.status == 200, resp.body
    assert resp.body == shown_endpoint  # the PUT answers the endpoint as GET shows it
    return shown_endpoint


def test_get_all_shows_the_layout_as_stored_and_no_secret(engine, service):
    expected = put_get_example(engine, service)
    answer = call(engine, GET_ALL)
    assert answer == {"endpoints": [expected]}
    assert answer["endpoints"][0]["service_settings"]["path"][DEPLOYMENT]["POST"]["request"]["content"] == \
        '{"input":${input},"input_type":"${input_type}"}'
    assert API_KEY not in shown(answer) and TOKEN not in shown(answer) and "secret_parameters" not in shown(answer)


def test_post_text_embedding_example(engine, service):
    put_get_example(engine, service)
    answer = call(engine, POST_TEXT_EMBEDDING)
    assert answer == {"text_embedding": [{"embedding": vector_of("hello world", "document")}]}
    same_shape(answer, elided(POST_TEXT_EMBEDDING_RESPONSE))
    sent = service.received[-1]
    assert sent.method == "POST" and sent.path == DEPLOYMENT
    assert json.loads(sent.body) == {"input": ["hello world"], "input_type": "document"}
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}" and sent.headers["Token"] == TOKEN


@pytest.mark.parametrize("syntax", POST_SYNTAX)
def test_post_syntax(engine, service, syntax):
    put_get_example(engine, service)
    path = fill_in(syntax, ("<task_type>", "text_embedding"), ("<inference_id>", "os_deployment_emb")) \
        if "<task_type>" in syntax else fill_in(syntax, ("<inference_id>", "os_deployment_emb"))
    answer = call(engine, path + '\n{"input": ["a", "b"]}')
    assert answer == {"text_embedding": [{"embedding": vector_of(t, "document")} for t in ("a", "b")]}


def test_get_syntax_never_shows_a_secret(engine, service):
    expected = put_get_example(engine, service)
    values = {"<inference_id>": "os_deployment_emb", "<task_type>": "text_embedding"}
    for syntax in GET_SYNTAX:
        text = syntax
        for k, v in values.items():
            text = text.replace(k, v)
        answer = call(engine, text)
        assert answer == {"endpoints": [expected]}, syntax
        assert API_KEY not in shown(answer) and TOKEN not in shown(answer)
    assert API_KEY not in repr(endpoints(engine).get("os_deployment_emb"))


# -- the five PUT examples against the live (loopback) services ---------------------------------------

def put_text_embedding(engine: Engine, service: AlibabaService, model_id: str = "ali-emb") -> None:
    call(engine, fill_in(PUT_TEXT_EMBEDDING, ("<model_id>", model_id), ("<secret_parameters参数>", SECRETS),
                      ("<替换为您的url>", service.url), ("<替换为您的path>", EMBEDDING), ("<query_string参数>", ""),
                      ("<header参数>", AUTH),
                      ("<替换为模型的request格式>", content('{"input":${input},"input_type":"${input_type}"}')),
                      ("<解析text_embedding的路径>", fragment(TEXT_EMBEDDING_PARSER)["json_parser"]["text_embeddings"]),
                      ("<parameters参数>", '"input_type": "document"')))


def test_put_text_embedding_example(engine, service):
    put_text_embedding(engine, service)
    answer = call(engine, 'POST _inference/text_embedding/ali-emb\n{"input": ["hello world", "star wars"]}')
    assert answer == {"text_embedding": [{"embedding": vector_of(t, "document")}
                                         for t in ("hello world", "star wars")]}
    assert last_json(service) == {"input": ["hello world", "star wars"], "input_type": "document"}
    assert service.received[-1].method == "POST" and service.received[-1].path == EMBEDDING


def test_call_time_parameters_override_for_that_call_only(engine, service):
    put_text_embedding(engine, service)
    query = call(engine, 'POST _inference/ali-emb\n{"input": "star wars", '
                         '"task_settings": {"parameters": {"input_type": "query"}}}')
    assert last_json(service) == {"input": ["star wars"], "input_type": "query"}
    assert query == {"text_embedding": [{"embedding": vector_of("star wars", "query")}]}
    call(engine, 'POST _inference/ali-emb\n{"input": "star wars"}')
    assert last_json(service)["input_type"] == "document"  # the stored parameter again
    assert call(engine, "GET _inference/ali-emb")["endpoints"][0]["task_settings"] == {
        "parameters": {"input_type": "document"}}


def test_document_text_cannot_change_the_request(engine, service):
    put_text_embedding(engine, service)
    texts = ['He said "hi"}, "input_type": "query", "x": {"y": [', "${api_key} ${input_type} \\\" \n\t }]",
             '"', "{}"]
    answer = engine.request("POST", "_inference/text_embedding/ali-emb", {"input": texts})
    assert answer.status == 200, answer.body
    sent = last_json(service)  # the service read valid JSON: the texts are values, nothing more
    assert sent == {"input": texts, "input_type": "document"}
    assert answer.body == {"text_embedding": [{"embedding": vector_of(t, "document")} for t in texts]}
    # a call-time parameter inside the string literal is escaped too
    engine.request("POST", "_inference/ali-emb", {"input": "a", "task_settings": {
        "parameters": {"input_type": 'query", "input": ["injected"], "z": "'}}})
    assert last_json(service) == {"input": ["a"], "input_type": 'query", "input": ["injected"], "z": "'}


def test_put_sparse_embedding_example(engine, service):
    parser = fragment(SPARSE_PARSER)["json_parser"]["sparse_result"]
    text = fill_in(PUT_SPARSE, ("<model_id>", "ali-sparse"), ("<secret_parameters参数>", SECRETS),
                ("<替换为您的url>", service.url), ("<替换为您的path>", SPARSE), ("<method>", "PUT"),
                ("<query_string参数>", ""), ("<header参数>", AUTH),
                ("<替换为模型的request格式>", content('{"input":${input},"input_type":"${input_type}"}')),
                ("<解析sparse_embedding的路径>", parser["path"]),
                ("<解析sparse_embedding_token的路径>", parser["value"]["sparse_token"]),
                ("<解析sparse_embedding_weight的路径>", parser["value"]["sparse_weight"]),
                ("<parameters参数>", '"input_type": "document"'))
    with pytest.raises(ConsoleError, match="invalid JSON body"):  # the seed's trailing comma
        parse_console(text, substitute=False)
    typo = '"$.embedding[*].weight",\n'
    assert text.count(typo) == 1
    call(engine, text.replace(typo, '"$.embedding[*].weight"\n'))
    texts = ["star wars main character", "luke"]
    answer = call(engine, 'POST _inference/sparse_embedding/ali-sparse\n' + json.dumps({"input": texts}))
    assert answer == {"sparse_embedding": [
        {"is_truncated": False, "embedding": {str(t["token_id"]): t["weight"] for t in sparse_of(text)}}
        for text in texts]}
    assert service.received[-1].method == "PUT" and last_json(service) == {"input": texts, "input_type": "document"}


def put_rerank(engine: Engine, service: AlibabaService, model_id: str) -> None:
    parser = fragment(RERANK_PARSER)["json_parser"]
    call(engine, fill_in(PUT_RERANK, ("<model_id>", model_id), ("<secret_parameters参数>", SECRETS),
                      ("<替换为您的url>", service.url), ("<替换为您的path>", RERANK), ("<method>", "POST"),
                      ("<query_string参数>", ""), ("<header参数>", AUTH),
                      ("<替换为模型的request格式>", content('{"query":${query},"docs":${input}}')),
                      ("<解析rerank relevance_score的路径>", parser["relevance_score"]),
                      ("<解析rerank reranked_index的路径>", parser["reranked_index"]),
                      ("<解析rerank document_text的路径>", "$.result.scores[*].text")))


def test_put_rerank_example_and_its_call(engine, service):
    put_rerank(engine, service, "os_deployment_custom_rerank")
    body = parse_console(POST_RERANK, substitute=False)[0].body
    answer = call(engine, POST_RERANK)
    docs, query = body["input"], body["query"]
    assert last_json(service) == {"query": query, "docs": docs}
    assert answer == {"rerank": [{"index": i, "relevance_score": score_of(query, d), "text": d}
                                 for i, d in enumerate(docs)]}
    documented = json.loads(POST_RERANK_RESPONSE)
    same_shape(answer, documented)
    no_text = engine.request("POST", "_inference/rerank/os_deployment_custom_rerank",
                             {**body, "return_documents": False}).body
    assert [set(e) for e in no_text["rerank"]] == [set(e) for e in documented["rerank"]]
    assert [e["index"] for e in no_text["rerank"]] == [e["index"] for e in documented["rerank"]]


def test_put_completion_example(engine, service):
    call(engine, fill_in(PUT_COMPLETION, ("<model_id>", "ali-llm"), ("<secret_parameters参数>", SECRETS),
                      ("<替换为您的url>", service.url), ("<替换为您的path>", COMPLETION), ("<method>", "POST"),
                      ("<query_string参数>", ""), ("<header参数>", AUTH),
                      ("<替换为模型的request格式>", content(
                          '{"messages":[{"role":"system","content":"${system}"},{"role":"user","content":${input}}],'
                          '"parameters":{"temperature":${temperature}}}')),
                      ("<解析completion的路径>", fragment(COMPLETION_PARSER)["json_parser"]["completion_result"]),
                      ("<parameters参数>", '"system": "You are a \\"travel\\" guide.", "temperature": 0.5')))
    prompt = '郑州有什么好玩的地方? "quotes" {braces}'
    answer = call(engine, "POST _inference/completion/ali-llm\n" + json.dumps({"input": prompt}, ensure_ascii=False))
    assert answer == {"completion": [{"result": f"answer to: {prompt}"}]}
    assert last_json(service) == {"messages": [{"role": "system", "content": 'You are a "travel" guide.'},
                                               {"role": "user", "content": prompt}],
                                  "parameters": {"temperature": 0.5}}


@pytest.mark.parametrize("method", ["POST", "PUT", "GET"])
def test_put_custom_example(engine, service, method):
    call(engine, fill_in(PUT_CUSTOM, ("<model_id>", "ali-raw"), ("<secret_parameters参数>", SECRETS),
                      ("<替换为您的url>", service.url), ("<替换为您的path>", ANALYZE), ("<method>", method),
                      ("<query_string参数>", "version=${version}&lang=zh"), ("<header参数>", AUTH),
                      ("<替换为模型的request格式>", content('{"query":${input},"note":"${version}"}')),
                      ("<parameters参数>", '"version": "v1 & 2"')))
    answer = call(engine, 'POST _inference/custom/ali-raw\n{"input": ["what is es", "x&y=z"]}')
    request = {"query": ["what is es", "x&y=z"], "note": "v1 & 2"}
    assert answer == {"custom": {"request_id": "loopback-analyze", "latency": 3, "result": {
        "method": method, "query_string": {"version": "v1 & 2", "lang": "zh"}, "request": request}}}
    sent = service.received[-1]
    assert sent.method == method and json.loads(sent.body) == request
    assert call(engine, "GET _inference/custom/ali-raw")["endpoints"][0]["task_type"] == "custom"


def test_delete_example_and_syntax(engine, service):
    put_rerank(engine, service, "custom-rerank")
    assert call(engine, DELETE) == json.loads(DELETE_RESPONSE)
    assert engine.request("GET", "_inference/custom-rerank").status == 404
    for i, syntax in enumerate(DELETE_SYNTAX):
        put_rerank(engine, service, f"rr-{i}")
        path = syntax.replace("<task_type>", "rerank").replace("<inference_id>", f"rr-{i}")
        assert call(engine, path) == {"acknowledged": True, "pipelines": []}
    assert call(engine, "GET _inference/_all") == {"endpoints": []}


# -- the general template over the seed's own response examples and parser configurations -----------------

def put_generic(engine: Engine, service: AlibabaService, task_type: str, inference_id: str, answer: Any,
                json_parser: dict[str, Any]) -> None:
    """The general template for ``task_type``, on a loopback path answering ``answer``."""
    inner = json.dumps(json_parser)[1:-1]
    call(engine, fill_in(GENERIC, ("<task_type>", task_type), ("<inference_id>", inference_id),
                      ("...", SECRETS), ("<url>", service.url), ("<path>", service.can(inference_id, answer)),
                      ("<method>", "POST"), ("<query_string>", "request_id=${request_id}"), ("...", AUTH),
                      ("<content>", content('{"input":${input},"request_id":"${request_id}"}')),
                      ("...", inner), ("...", '"request_id": "seed-004"')))


def post(engine: Engine, task_type: str, inference_id: str, body: dict[str, Any]) -> Any:
    return engine.request("POST", f"_inference/{task_type}/{inference_id}", body)


def test_general_template_text_embedding_response(engine, service):
    put_generic(engine, service, "text_embedding", "g-emb", elided(TEXT_EMBEDDING_RESPONSE),
                fragment(TEXT_EMBEDDING_PARSER)["json_parser"])
    answer = post(engine, "text_embedding", "g-emb", {"input": "hello world"})
    assert answer.status == 200, answer.body
    assert answer.body == {"text_embedding": [{"embedding": pytest.approx([-0.02868066355586052,
                                                                             0.022033605724573135], rel=1e-6)}]}
    assert service.received[-1].path == "/canned/g-emb?request_id=seed-004"
    assert last_json(service) == {"input": ["hello world"], "request_id": "seed-004"}


def test_general_template_sparse_response(engine, service):
    response = json.loads(SPARSE_RESPONSE)
    parser = fragment(SPARSE_PARSER)["json_parser"]
    put_generic(engine, service, "sparse_embedding", "g-sparse", response, parser)
    wrong = post(engine, "sparse_embedding", "g-sparse", {"input": ["a", "b"]})
    assert wrong.status == 400  # the seed's configuration reads token_id, its example answer has tokenId
    assert wrong.body["error"]["reason"] == ("Failed to parse sparse embedding entry [0], error: Unable to find "
                                             "field [token_id] in map")
    parser["sparse_result"]["value"]["sparse_token"] = "$.embedding[*].tokenId"
    put_generic(engine, service, "sparse_embedding", "g-sparse-2", response, parser)
    answer = post(engine, "sparse_embedding", "g-sparse-2", {"input": ["a", "b"]})
    assert answer.status == 200, answer.body
    expected = [{"is_truncated": False, "embedding": {str(t["tokenId"]): pytest.approx(t["weight"], rel=1e-6)
                                                      for t in entry["embedding"]}}
                for entry in response["result"]["sparse_embeddings"]]
    assert answer.body == {"sparse_embedding": expected}
    assert list(answer.body["sparse_embedding"][0]["embedding"]) == ["6", "163040", "354", "5998", "8550", "2017"]


def test_general_template_rerank_response(engine, service):
    response = json.loads(RERANK_RESPONSE)
    put_generic(engine, service, "rerank", "g-rr", response, fragment(RERANK_PARSER)["json_parser"])
    answer = post(engine, "rerank", "g-rr", {"input": ["a", "b", "c"], "query": "q"})
    assert answer.status == 200, answer.body
    assert answer.body == {"rerank": [{"index": s["index"], "relevance_score": pytest.approx(s["score"], rel=1e-6)}
                                      for s in response["result"]["scores"]]}


def test_post_rerank_example_gives_the_documented_answer(engine, service):
    """The seed's rerank call on an endpoint whose service answers the scores the seed shows."""
    documented = json.loads(POST_RERANK_RESPONSE)
    answer = {"result": {"scores": [{"index": e["index"], "score": e["relevance_score"]}
                                    for e in documented["rerank"]]}}
    put_generic(engine, service, "rerank", "os_deployment_custom_rerank", answer,
                fragment(RERANK_PARSER)["json_parser"])
    got = call(engine, POST_RERANK)
    assert got == {"rerank": [{"index": e["index"], "relevance_score": pytest.approx(e["relevance_score"], rel=1e-6)}
                              for e in documented["rerank"]]}
    body = parse_console(POST_RERANK, substitute=False)[0].body
    assert last_json(service)["input"] == body["input"]


def test_general_template_completion_response(engine, service):
    with pytest.raises(json.JSONDecodeError):  # as written: no comma after "result", one after "total_tokens"
        json.loads(COMPLETION_RESPONSE)
    fixed = COMPLETION_RESPONSE.replace('  }\n  "usage"', '  },\n  "usage"').replace('6355,\n', '6355\n')
    response = json.loads(fixed)
    put_generic(engine, service, "completion", "g-llm", response, fragment(COMPLETION_PARSER)["json_parser"])
    answer = post(engine, "completion", "g-llm", {"input": "郑州有什么好玩的?"})
    assert answer.status == 200, answer.body
    assert answer.body == {"completion": [{"result": response["result"]["text"]}]}
    assert answer.body["completion"][0]["result"].startswith("郑州是一个历史文化悠久且现代化的城市")
    assert last_json(service) == {"input": "郑州有什么好玩的?", "request_id": "seed-004"}


def test_general_template_custom_returns_the_whole_response(engine, service):
    response = json.loads(RERANK_RESPONSE)
    put_generic(engine, service, "custom", "g-raw", response, {})
    answer = post(engine, "custom", "g-raw", {"input": ["a"]})
    assert answer.status == 200 and answer.body == {"custom": response}


# -- rate_limit and secrets ------------------------------------------------------------------------------

def test_rate_limit_is_kept_and_used(engine, service):
    put_get_example(engine, service)
    transport = endpoints(engine).transport(endpoints(engine).get("os_deployment_emb"))
    assert transport is not None and transport.limiter.rate == pytest.approx(10000 / 60)
    put_text_embedding(engine, service, "slow-emb")
    assert call(engine, "GET _inference/slow-emb")["endpoints"][0]["service_settings"]["rate_limit"] == {
        "requests_per_minute": 10000}  # the default, shown
    resp = engine.request("PUT", "_inference/slow-emb/_update", {"service_settings": {
        "rate_limit": {"requests_per_minute": 120}}})
    assert resp.status == 200, resp.body
    assert resp.body["service_settings"]["rate_limit"] == {"requests_per_minute": 120}
    transport = endpoints(engine).transport(endpoints(engine).get("slow-emb"))
    assert transport is not None and transport.limiter.rate == pytest.approx(2.0)


def test_secrets_never_leave(tmp_path, service):
    home = tmp_path / "home"
    engine = Engine(home)
    put_text_embedding(engine, service)
    files = {p.relative_to(home).as_posix(): p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()}
    assert any("ali-emb" in text for text in files.values())
    holding = sorted(name for name, text in files.items() if API_KEY in text)
    assert holding == ["inference_secrets.json"]  # the 0600 secrets file only
    assert (home / "inference_secrets.json").stat().st_mode & 0o077 == 0
    again = Engine(home)  # a new engine on the home reads the endpoint and its secret back
    answer = call(again, 'POST _inference/ali-emb\n{"input": "x"}')
    assert answer == {"text_embedding": [{"embedding": vector_of("x", "document")}]}
    assert service.received[-1].headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in shown(call(again, "GET _inference/ali-emb"))
    assert MASK not in shown(call(again, "GET _inference/ali-emb"))  # a ${api_key} template is shown as written
