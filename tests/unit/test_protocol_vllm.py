"""Golden tests of the vLLM extras translator."""

from __future__ import annotations

import pytest

from llmhost.protocols import vllm
from llmhost.types import DetokenizeRequest, InvalidRequest, Message, Tokenized, TokenizeRequest


def test_prompt_form_adds_special_tokens_by_default() -> None:
    assert vllm.parse_tokenize({"model": "m", "prompt": "hi"}) == TokenizeRequest(model="m", prompt="hi")


def test_chat_form_leaves_special_tokens_to_the_template() -> None:
    req = vllm.parse_tokenize({"model": "m", "messages": [{"role": "developer", "content": "x"}]})
    assert req.messages == [Message(role="system", content="x")]
    assert req.add_special is False


def test_explicit_flags_win() -> None:
    req = vllm.parse_tokenize({"model": "m", "prompt": "hi", "add_special_tokens": False, "return_token_strs": True})
    assert (req.add_special, req.with_pieces) == (False, True)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m"},
        {"model": "m", "prompt": "a", "messages": []},
        {"model": "", "prompt": "a"},
        {"model": "m", "prompt": 5},
        [],
    ],
)
def test_bad_tokenize_bodies(body: object) -> None:
    with pytest.raises(InvalidRequest):
        vllm.parse_tokenize(body)


def test_detokenize() -> None:
    assert vllm.parse_detokenize({"model": "m", "tokens": [1, 2]}) == DetokenizeRequest("m", [1, 2])
    with pytest.raises(InvalidRequest):
        vllm.parse_detokenize({"model": "m", "tokens": [-1]})
    with pytest.raises(InvalidRequest) as caught:
        vllm.parse_detokenize({"model": "m", "tokens": ["a"]})
    assert caught.value.param == "tokens.0"


def test_renderers() -> None:
    assert vllm.render_tokenize(Tokenized([5, 6], ["a", "b"], 4096)) == {
        "count": 2,
        "max_model_len": 4096,
        "tokens": [5, 6],
        "token_strs": ["a", "b"],
    }
    assert vllm.render_tokenize(Tokenized([5], None, 10))["token_strs"] is None
    assert vllm.render_detokenize("hi") == {"prompt": "hi"}
