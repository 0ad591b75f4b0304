"""The tensor split changed live on a (fake) two-GPU machine, with the real engine serving: a split applied while a
stream runs lets the stream finish and the next request runs on an engine started with the new split; invalid
splits and an engine that fails to start leave the old split serving; named presets save and bring back a
configuration. Only the GPUs are fake (gpu_backend: fake); this CPU llama-server accepts the split flags."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from conftest import DEFAULT_MODEL, LlmhostServer, shutdown_and_check, start_server

pytestmark = pytest.mark.integration

RIG = [{"name": "GPU A", "memory_mib": 24576}, {"name": "GPU B", "memory_mib": 12288, "free_mib": 6144}]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    running = start_server(tmp_path_factory.mktemp("split"), gpu_backend="fake", fake_gpus=RIG)
    try:
        yield running
    finally:
        shutdown_and_check(running)


def split_url(server: LlmhostServer) -> str:
    return f"{server.base_url}/admin/models/{DEFAULT_MODEL}/split"


def argv(server: LlmhostServer) -> list[str]:
    """The ready engine's command line without its port (a restarted engine gets a new one)."""
    engines = httpx.get(f"{server.base_url}/admin/engines").json()["engines"]
    found: list[str] = next((e["argv"] for e in engines if e["model"] == DEFAULT_MODEL and e["state"] == "ready"), [])
    port = found.index("--port") if found else 0
    return found[:port] + found[port + 2 :]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def chat(server: LlmhostServer) -> None:
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    assert httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60).status_code == 200


def history(server: LlmhostServer) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = httpx.get(f"{server.base_url}/admin/config/history").json()["changes"]
    return changes


def post_split(server: LlmhostServer, **body: Any) -> httpx.Response:
    return httpx.post(split_url(server), json=body, timeout=120)


def test_a_split_applied_during_a_stream_lets_it_finish_and_the_next_engine_uses_it(rig: LlmhostServer) -> None:
    chat(rig)
    assert flag(argv(rig), "--tensor-split") is None
    before = httpx.get(split_url(rig)).json()
    assert [gpu["total_mib"] for gpu in before["gpus"]] == [24576, 12288]
    assert before["current"] == {"tensor_split": None, "split_mode": None, "main_gpu": None}

    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200}
    body |= {"ignore_eos": True, "stream": True}
    result: dict[str, httpx.Response] = {}
    with httpx.stream("POST", f"{rig.base_url}/v1/chat/completions", json=body, timeout=120) as stream:
        lines = stream.iter_lines()
        next(lines)
        drag = {"preset": "custom", "ratios": [3, 1]}
        applier = threading.Thread(target=lambda: result.update(r=post_split(rig, **drag)))
        applier.start()
        rest = [line for line in lines if line]
    applier.join(90)
    assert rest[-1] == "data: [DONE]" and not any('"error"' in line for line in rest), rest[-3:]
    answer = result["r"].json()
    assert result["r"].status_code == 200, answer
    assert answer["split"] == {"tensor_split": [0.75, 0.25], "split_mode": "layer", "main_gpu": None}
    assert answer["change"]["result"] == "applied" and answer["change"]["restarted"] == [DEFAULT_MODEL]

    chat(rig)
    args = argv(rig)
    assert (flag(args, "--tensor-split"), flag(args, "--split-mode")) == ("0.75,0.25", "layer")
    after = httpx.get(split_url(rig)).json()
    assert after["current"]["tensor_split"] == [0.75, 0.25]
    assert after["previous"]["tensor_split"] is None and after["previous"]["change"] == answer["change"]["id"]
    saved = yaml.safe_load(rig.config_path.read_text())["models"][DEFAULT_MODEL]
    assert saved["tensor_split"] == [0.75, 0.25]


def test_memory_presets_and_a_dry_run_change_nothing_until_applied(rig: LlmhostServer) -> None:
    count = len(history(rig))
    by_free = post_split(rig, preset="free", dry_run=True).json()
    assert by_free["valid"] is True and by_free["split"]["tensor_split"] == [
        0.798,
        0.202,
    ]  # 24276 : 6144 = 0.79803 : 0.20197
    by_total = post_split(rig, preset="total", dry_run=True).json()
    assert by_total["split"]["tensor_split"] == [0.6667, 0.3333]
    assert len(history(rig)) == count

    single = post_split(rig, preset="single", gpus=[1])
    assert single.status_code == 200 and single.json()["change"]["result"] == "applied"
    chat(rig)
    args = argv(rig)
    assert (flag(args, "--split-mode"), flag(args, "--main-gpu"), flag(args, "--tensor-split")) == ("none", "1", None)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"preset": "custom", "ratios": [1]}, "ratios"),
        ({"preset": "custom", "ratios": [1, -1]}, "ratios"),
        ({"preset": "custom", "ratios": [0, 0]}, "ratios"),
        ({"preset": "equal", "gpus": [0, 5]}, "gpus"),
        ({"preset": "single", "gpus": [0, 1]}, "gpus"),
        ({"preset": "half"}, "preset"),
    ],
)
def test_an_invalid_split_is_refused_and_changes_nothing(rig: LlmhostServer, body: dict[str, Any], param: str) -> None:
    chat(rig)
    count, args = len(history(rig)), argv(rig)
    answer = post_split(rig, **body)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text
    assert len(history(rig)) == count and argv(rig) == args


def test_an_engine_that_cannot_start_with_the_new_split_brings_the_old_one_back(rig: LlmhostServer) -> None:
    chat(rig)
    args = argv(rig)
    data = yaml.safe_load(rig.config_path.read_text())
    data["models"][DEFAULT_MODEL] |= {"split_mode": "tensor", "main_gpu": None}  # this CPU build cannot load it
    failed = httpx.post(f"{rig.base_url}/admin/config/apply", json={"config": data}, timeout=120)
    assert failed.status_code == 409 and "rolled back" in failed.json()["error"]["message"]
    assert "SPLIT_MODE_TENSOR" in history(rig)[-1]["error"]
    chat(rig)
    assert argv(rig) == args
    assert yaml.safe_load(rig.config_path.read_text())["models"][DEFAULT_MODEL]["split_mode"] != "tensor"


def test_a_named_preset_saves_the_configuration_and_brings_it_back(rig: LlmhostServer) -> None:
    presets = f"{rig.base_url}/admin/config/presets"
    assert post_split(rig, preset="equal").status_code == 200
    saved = httpx.post(presets, json={"name": "even-split"}).json()
    assert saved["sections"]["models"][DEFAULT_MODEL]["tensor_split"] == [0.5, 0.5] and "auth" not in saved["sections"]

    assert post_split(rig, preset="custom", ratios=[9, 1]).status_code == 200
    back = httpx.post(f"{presets}/even-split/apply", timeout=120).json()
    assert back["result"] == "applied" and back["restarted"] == [DEFAULT_MODEL]
    chat(rig)
    assert flag(argv(rig), "--tensor-split") == "0.5,0.5"
    listed = httpx.get(presets).json()
    assert [p["name"] for p in listed["presets"]] == ["even-split"] and "auth" not in listed["sections"]

    assert httpx.post(f"{presets}/no-such/apply").status_code == 404
    assert httpx.post(presets, json={"name": "../etc"}).status_code == 400
    assert httpx.post(presets, json={"name": "keys", "config": {"auth": {"keys": []}}}).status_code == 400
    invalid = httpx.post(presets, json={"name": "bad", "config": {"models": {DEFAULT_MODEL: {"ctx": "big"}}}})
    assert invalid.status_code == 400 and "ctx" in invalid.json()["error"]["message"]
    assert httpx.delete(f"{presets}/even-split").json() == {"deleted": "even-split"}
    assert httpx.get(presets).json()["presets"] == []
