"""huggingface_hub's InferenceClient pointed at llmhost's base URL: TGI text generation and OpenAI-style chat."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import ValidationError as HfValidationError
from huggingface_hub.inference._generated.types import TextGenerationOutput, TextGenerationStreamOutput

from conftest import LlmhostServer

pytestmark = pytest.mark.integration

PROMPT = "The capital of France is"
SMALL = 8


@pytest.fixture(scope="module")
def hf(server: LlmhostServer) -> Iterator[InferenceClient]:
    yield InferenceClient(model=server.base_url, timeout=120)


def test_text_generation_returns_the_full_text_by_default(hf: InferenceClient) -> None:
    """huggingface_hub posts to ``/`` without return_full_text, where TGI defaults it to true."""
    text = hf.text_generation(PROMPT, max_new_tokens=SMALL)
    assert isinstance(text, str)
    assert text.startswith(PROMPT) and len(text) > len(PROMPT)
    only_new = hf.text_generation(PROMPT, max_new_tokens=SMALL, return_full_text=False)
    assert text == PROMPT + only_new


def test_text_generation_details(hf: InferenceClient) -> None:
    output = hf.text_generation(PROMPT, max_new_tokens=SMALL, details=True, return_full_text=False)
    assert isinstance(output, TextGenerationOutput)
    assert output.details is not None
    assert output.details.finish_reason == "length"
    assert output.details.generated_tokens == len(output.details.tokens) == SMALL
    assert "".join(token.text for token in output.details.tokens) == output.generated_text


def test_checklist_24_text_generation_stream_details(hf: InferenceClient) -> None:
    outputs = list(hf.text_generation(PROMPT, max_new_tokens=SMALL, stream=True, details=True))
    assert all(isinstance(output, TextGenerationStreamOutput) for output in outputs)
    assert len(outputs) == SMALL
    last = outputs[-1]
    assert last.details is not None
    assert last.details.finish_reason in {"length", "eos_token", "stop_sequence"}
    assert last.details.generated_tokens == SMALL
    assert last.generated_text == PROMPT + "".join(output.token.text for output in outputs)


def test_text_generation_stream_of_strings(hf: InferenceClient) -> None:
    pieces = list(hf.text_generation(PROMPT, max_new_tokens=SMALL, stream=True))
    assert len(pieces) == SMALL
    assert all(isinstance(piece, str) for piece in pieces)


def test_checklist_26_hf_validation_error(hf: InferenceClient) -> None:
    with pytest.raises(HfValidationError, match="`temperature` must be strictly positive"):
        hf.text_generation(PROMPT, max_new_tokens=SMALL, temperature=0)
    with pytest.raises(HfValidationError, match="`temperature` must be strictly positive"):
        list(hf.text_generation(PROMPT, max_new_tokens=SMALL, temperature=0, stream=True))


def test_checklist_28_chat_completion_with_dummy_model(start_llmhost: Callable[..., LlmhostServer]) -> None:
    """huggingface_hub sends ``"model": "dummy"`` to ``<url>/v1/chat/completions``; unknown names go to the default."""
    server = start_llmhost("hf-chat", unknown_model="default")
    client = InferenceClient(model=server.base_url, timeout=120)
    messages = [{"role": "user", "content": "Say hello."}]
    answer = client.chat_completion(messages, max_tokens=SMALL)
    assert answer.choices[0].message.content
    chunks = list(client.chat_completion(messages, max_tokens=SMALL, stream=True))
    assert chunks, "the stream must end cleanly on data: [DONE]"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in chunks)
