"""The Ollama dialect with the real ollama-python client (api-compat §7 items 14-22 and 30)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from conftest import DEFAULT_MODEL, LlmhostServer, model_file, shutdown_and_check, start_server
from engine_probes import assert_cancelled

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "Say hello."}]
SHORT = {"num_predict": 8, "temperature": 0}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
THINK_GRAMMAR = 'root ::= "<think>" [a-z ]{8,40} "</think>" "\\n" [A-Za-z ]{4,40}'
THINKER = "thinker"


# --- a second service whose model is configured as a thinking model (the small one cannot think alone) --


@pytest.fixture(scope="module")
def thinker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    profile = {"path": str(model_file()), "thinking": True, "parallel": 1, "ctx": 2048, "threads": 1}
    running = start_server(tmp_path_factory.mktemp("ollama-thinker"), models={THINKER: profile})
    try:
        yield running
    finally:
        shutdown_and_check(running)


@pytest.fixture(scope="module")
def thinker_client(thinker: LlmhostServer) -> ollama.Client:
    return ollama.Client(host=thinker.base_url, timeout=120)


# --- §7 checklist ------------------------------------------------------------------------------------


def test_checklist_14_list_show_and_ps(ollama_client: ollama.Client) -> None:
    listed = ollama_client.list()
    names = [model.model for model in listed.models]
    assert DEFAULT_MODEL in names
    entry = next(model for model in listed.models if model.model == DEFAULT_MODEL)
    assert entry.size and entry.size > 0 and entry.details and entry.details.family == "llama"
    assert entry.details.quantization_level == "Q4_1"

    shown = ollama_client.show(DEFAULT_MODEL)
    assert shown.modelinfo is not None
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.capabilities and "completion" in shown.capabilities
    assert shown.template and "<|im_start|>" in shown.template

    ollama_client.generate(model=DEFAULT_MODEL, prompt="hi", options=SHORT, keep_alive="10m")
    running = ollama_client.ps()
    model = next(m for m in running.models if m.model == DEFAULT_MODEL)
    assert model.expires_at is not None and model.expires_at > datetime.now(UTC)
    assert model.size_vram is not None and model.size_vram >= 0
    assert model.size and model.size > 0


def test_checklist_15_streamed_chat_chunks_and_ns_durations(ollama_client: ollama.Client) -> None:
    chunks = list(ollama_client.chat(model=DEFAULT_MODEL, messages=HI, stream=True, options=SHORT))
    assert len(chunks) >= 2
    assert all(chunk.message.role == "assistant" for chunk in chunks)
    assert not any(chunk.done for chunk in chunks[:-1])
    final = chunks[-1]
    assert final.done and final.done_reason in {"stop", "length"}
    assert final.eval_count and final.eval_count > 0
    assert final.prompt_eval_count and final.prompt_eval_count > 0
    # nanoseconds: a token takes more than 0.1 ms and a short request less than a minute
    assert final.eval_duration and final.eval_count * 100_000 < final.eval_duration < 60 * 10**9
    assert final.total_duration and final.eval_duration <= final.total_duration < 60 * 10**9
    assert "".join(chunk.message.content or "" for chunk in chunks).strip()


def test_checklist_16_think_on_a_model_without_thinking_is_400(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.chat(model=DEFAULT_MODEL, messages=HI, think=True, options=SHORT)
    assert caught.value.status_code == 400
    assert "does not support thinking" in caught.value.error


def test_checklist_16_think_fills_message_thinking(thinker_client: ollama.Client) -> None:
    options = {"temperature": 0, "num_predict": 80, "grammar": THINK_GRAMMAR}
    reply = thinker_client.chat(model=THINKER, messages=HI, think=True, options=options)
    assert reply.message.thinking and len(reply.message.thinking.strip()) >= 8
    assert reply.message.content and "<think>" not in reply.message.content

    streamed = list(thinker_client.chat(model=THINKER, messages=HI, think=True, options=options, stream=True))
    thinking = "".join(chunk.message.thinking or "" for chunk in streamed)
    content = "".join(chunk.message.content or "" for chunk in streamed)
    assert thinking.strip() and content.strip() and "</think>" not in thinking + content

    generated = thinker_client.generate(model=THINKER, prompt="Say hello.", think=True, options=options)
    assert generated.thinking and generated.response and "<think>" not in generated.response


def test_think_false_leaves_the_thinking_out(thinker_client: ollama.Client) -> None:
    options = {"temperature": 0, "num_predict": 80, "grammar": THINK_GRAMMAR}
    reply = thinker_client.chat(model=THINKER, messages=HI, think=False, options=options)
    assert not reply.message.thinking
    assert reply.message.content and "<think>" not in reply.message.content


def test_checklist_17_tool_call_arguments_are_a_dict(ollama_client: ollama.Client) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris? Call the tool."}]
    reply = ollama_client.chat(model=DEFAULT_MODEL, messages=ask, tools=[WEATHER_TOOL], options={"temperature": 0})
    calls = reply.message.tool_calls or []
    assert calls, reply
    assert calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments, dict)

    streamed = list(
        ollama_client.chat(
            model=DEFAULT_MODEL, messages=ask, tools=[WEATHER_TOOL], options={"temperature": 0}, stream=True
        )
    )
    with_calls = [chunk for chunk in streamed if chunk.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done  # whole, in one non-final chunk
    assert isinstance(with_calls[0].message.tool_calls[0].function.arguments, dict)  # type: ignore[index]
    assert streamed[-1].done


def test_checklist_18_empty_prompt_loads_and_keep_alive_0_unloads(ollama_client: ollama.Client) -> None:
    loaded = ollama_client.generate(model=DEFAULT_MODEL, prompt="")
    assert loaded.done and loaded.done_reason == "load"
    assert DEFAULT_MODEL in [m.model for m in ollama_client.ps().models]
    unloaded = ollama_client.generate(model=DEFAULT_MODEL, prompt="", keep_alive=0)
    assert unloaded.done_reason == "unload"
    deadline = time.monotonic() + 10
    while DEFAULT_MODEL in [m.model for m in ollama_client.ps().models] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert DEFAULT_MODEL not in [m.model for m in ollama_client.ps().models]
    chat = ollama_client.chat(model=DEFAULT_MODEL, messages=[])
    assert chat.done_reason == "load" and chat.message.role == "assistant"


def test_checklist_19_embed_is_normalised_and_embeddings_has_one_vector(ollama_client: ollama.Client) -> None:
    result = ollama_client.embed(model=DEFAULT_MODEL, input=["a lighthouse", "the sea"])
    assert len(result.embeddings) == 2
    for vector in result.embeddings:
        assert abs(math.sqrt(sum(x * x for x in vector)) - 1) < 1e-5
    assert result.embeddings[0] != result.embeddings[1]
    truncated = ollama_client.embed(model=DEFAULT_MODEL, input="a lighthouse", dimensions=64)
    assert len(truncated.embeddings[0]) == 64
    assert abs(math.sqrt(sum(x * x for x in truncated.embeddings[0])) - 1) < 1e-5

    legacy = ollama_client.embeddings(model=DEFAULT_MODEL, prompt="a lighthouse")
    assert len(legacy.embedding) == len(result.embeddings[0]) == 576
    assert ollama_client.embeddings(model=DEFAULT_MODEL, prompt="").embedding == []


def test_checklist_20_raw_ndjson_framing(http: httpx.Client) -> None:
    body = {"model": DEFAULT_MODEL, "messages": HI, "options": SHORT}  # no "stream": the default is true
    with http.stream("POST", "/api/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        raw = response.read()
    assert raw.endswith(b"\n") and b"\n\n" not in raw and not raw.startswith(b"\n")
    lines = raw.decode().split("\n")[:-1]
    objects = [json.loads(line) for line in lines]
    assert objects[-1]["done"] is True and all(not o["done"] for o in objects[:-1])

    whole = http.post("/api/chat", json={**body, "stream": False})
    assert whole.headers["content-type"].startswith("application/json")
    assert whole.json()["done"] is True and whole.json()["message"]["content"]


def test_checklist_21_missing_model_is_404(ollama_client: ollama.Client, http: httpx.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.chat(model="nope:latest", messages=HI)
    assert caught.value.status_code == 404
    raw = http.post("/api/generate", json={"model": "nope", "prompt": "hi"})
    assert raw.status_code == 404 and raw.json() == {"error": "model 'nope' not found"}


def test_checklist_21_engine_killed_mid_stream_is_a_response_error(
    thinker: LlmhostServer, thinker_client: ollama.Client
) -> None:
    long = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
    stream = thinker_client.chat(model=THINKER, messages=long, stream=True, options={"num_predict": 2000})
    with pytest.raises(ollama.ResponseError) as caught:
        for count, _chunk in enumerate(stream):
            if count == 3:
                thinker.engine().kill()
    assert caught.value.status_code == -1  # an error line inside the stream
    assert thinker_client.chat(model=THINKER, messages=HI, options=SHORT).done


def test_checklist_22_root_version_copy_delete(ollama_client: ollama.Client, http: httpx.Client) -> None:
    assert http.head("/").status_code == 200
    assert http.get("/").text == "Ollama is running"
    assert isinstance(http.get("/api/version").json()["version"], str)

    copied = http.post("/api/copy", json={"source": DEFAULT_MODEL, "destination": "my-smol:latest"})
    assert copied.status_code == 200 and copied.content == b""
    assert "my-smol:latest" in [m.model for m in ollama_client.list().models]
    assert ollama_client.show("my-smol").modelinfo["llama.context_length"] == 8192  # type: ignore[index]
    assert ollama_client.chat(model="my-smol", messages=HI, options=SHORT).message.content

    deleted = http.request("DELETE", "/api/delete", json={"model": "my-smol:latest"})
    assert deleted.status_code == 200 and deleted.content == b""
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.show("my-smol:latest")
    assert caught.value.status_code == 404
    assert http.request("DELETE", "/api/delete", json={"model": "my-smol:latest"}).status_code == 404
    assert http.post("/api/copy", json={"source": "nope", "destination": "x"}).status_code == 404
    itself = {"source": DEFAULT_MODEL, "destination": DEFAULT_MODEL}
    assert http.post("/api/copy", json=itself).status_code == 200
    # no name was recorded: deleting it is still refused (the model's file is not llmhost's), not a name removed
    assert http.request("DELETE", "/api/delete", json={"model": DEFAULT_MODEL}).status_code == 403


def test_checklist_30_client_disconnect_cancels_generation(thinker: LlmhostServer) -> None:
    long = {"model": THINKER, "messages": [{"role": "user", "content": "Write a very long story."}]}
    body = {**long, "options": {"num_predict": 2000, "temperature": 0}}
    with (
        httpx.Client(base_url=thinker.base_url, timeout=60) as client,
        client.stream("POST", "/api/chat", json=body) as response,
    ):
        lines = response.iter_lines()
        for _ in range(5):
            next(lines)
        engine = thinker.engine()
    assert_cancelled(engine, "the Ollama client went away")
    assert (
        httpx.post(f"{thinker.base_url}/api/chat", json={**long, "stream": False, "options": SHORT}).status_code == 200
    )


# --- beyond the checklist ------------------------------------------------------------------------------


def test_delete_never_touches_files_outside_the_store(http: httpx.Client) -> None:
    refused = http.request("DELETE", "/api/delete", json={"model": DEFAULT_MODEL})
    assert refused.status_code == 403 and "does not delete files it does not own" in refused.json()["error"]
    assert model_file().is_file()
    traversal = http.request("DELETE", "/api/delete", json={"model": "../../etc/passwd"})
    assert traversal.status_code == 400 and set(traversal.json()) == {"error"}
    assert Path("/etc/passwd").is_file()


def test_options_are_typed_and_unknown_options_ignored(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.generate(model=DEFAULT_MODEL, prompt="hi", options={"temperature": "hot"})
    assert caught.value.status_code == 400 and 'option "temperature" must be of type float' in caught.value.error
    reply = ollama_client.generate(
        model=DEFAULT_MODEL, prompt="hi", options={"num_predict": 4, "num_ctx": 4096.0, "mirostat": 0, "made_up": 1}
    )
    assert reply.done_reason == "length" and reply.eval_count == 4


def test_format_json_and_schema(ollama_client: ollama.Client) -> None:
    schema = {"type": "object", "properties": {"colour": {"enum": ["red", "blue"]}}, "required": ["colour"]}
    reply = ollama_client.generate(
        model=DEFAULT_MODEL,
        prompt="Pick a colour, as JSON.",
        format=schema,
        options={"temperature": 0, "num_predict": 40},
    )
    assert json.loads(reply.response)["colour"] in {"red", "blue"}
    as_json = ollama_client.chat(model=DEFAULT_MODEL, messages=HI, format="json", options={"num_predict": 40})
    assert as_json.message.content is not None and as_json.message.content.lstrip().startswith("{")


def test_images_on_a_model_without_vision_is_400(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.chat(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": "what is it?", "images": ["aGk="]}]
        )
    assert caught.value.status_code == 400 and "vision" in caught.value.error


def test_raw_generate_goes_to_the_engine_verbatim(ollama_client: ollama.Client) -> None:
    reply = ollama_client.generate(
        model=DEFAULT_MODEL, prompt="1, 2, 3, 4,", raw=True, options={"num_predict": 4, "temperature": 0}
    )
    assert reply.response.strip().startswith("5")
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.generate(model=DEFAULT_MODEL, prompt="hi", raw=True, system="be brief")
    assert caught.value.status_code == 400 and "raw mode" in caught.value.error
