"""``/api/pull`` against a registry the test runs on 127.0.0.1 (the Docker registry v2 routes Ollama uses),
serving the real default model: pulled with progress, verified, listed, served, deleted; and the clear error
when no registry answers."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import ollama
import pytest

from conftest import LlmhostServer, free_port, model_file, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

TEMPLATE = b"{{ .Prompt }}"


def blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


class Registry:
    """Serves one model, ``library/tiny:latest``: the real GGUF, a template layer and a config blob."""

    def __init__(self, weights: Path) -> None:
        gguf = weights.read_bytes()
        self.blobs = dict([blob(gguf), blob(TEMPLATE), blob(b'{"model_format":"gguf"}')])
        digests = list(self.blobs)
        layer_types = ["application/vnd.ollama.image.model", "application/vnd.ollama.image.template"]
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": digests[2],
                    "size": 23,
                },
                "layers": [
                    {"mediaType": kind, "digest": digest, "size": len(self.blobs[digest])}
                    for kind, digest in zip(layer_types, digests[:2], strict=True)
                ],
            }
        ).encode()
        self.requests: list[str] = []
        self.http = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                if self.path == "/v2/library/tiny/manifests/latest":
                    self._send(registry.manifest)
                elif self.path.startswith("/v2/library/tiny/blobs/") and self.path.rsplit("/", 1)[1] in registry.blobs:
                    self._send(registry.blobs[self.path.rsplit("/", 1)[1]])
                else:
                    self.send_error(404)

            def _send(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    running = Registry(model_file())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def puller(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[LlmhostServer]:
    running = start_server(tmp_path_factory.mktemp("pull"), ollama_registry=registry.url)
    try:
        yield running
    finally:
        shutdown_and_check(running)


def test_pull_with_progress_then_serve_then_delete(puller: LlmhostServer) -> None:
    client = ollama.Client(host=puller.base_url, timeout=120)
    statuses = [progress.status for progress in client.pull("tiny", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses and "writing manifest" in statuses
    assert any(status and status.startswith("pulling ") and status != "pulling manifest" for status in statuses)

    store = puller.data_dir / "ollama"
    assert (store / "manifests/registry.ollama.ai/library/tiny/latest").is_file()
    assert not list(store.glob("blobs/*.partial"))
    assert "tiny:latest" in [model.model for model in client.list().models]
    assert client.show("tiny").modelinfo["general.architecture"] == "llama"  # type: ignore[index]
    assert client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], options={"num_predict": 4}).done

    assert client.pull("tiny", stream=False).status == "success"  # present: nothing fetched again
    client.delete("tiny")
    assert "tiny:latest" not in [model.model for model in client.list().models]
    assert not list((store / "blobs").iterdir()), "the pulled blobs were left behind"


def test_pull_of_a_model_the_registry_lacks_is_a_clear_error(puller: LlmhostServer) -> None:
    client = ollama.Client(host=puller.base_url, timeout=60)
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull("missing", stream=False)
    assert caught.value.status_code == 502 and "does not exist" in caught.value.error


def test_pull_without_a_reachable_registry_is_a_clear_error(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    running = start_server(tmp_path / "dead", ollama_registry=dead)
    try:
        with httpx.stream("POST", f"{running.base_url}/api/pull", json={"model": "tiny"}, timeout=60) as response:
            lines = [json.loads(line) for line in response.iter_lines()]
        assert lines[0] == {"status": "pulling manifest"}
        assert "cannot reach" in lines[-1]["error"]
        with pytest.raises(ollama.ResponseError) as caught:
            ollama.Client(host=running.base_url).pull("tiny")
        assert "cannot reach" in caught.value.error
    finally:
        shutdown_and_check(running)
