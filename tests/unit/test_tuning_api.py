"""The tuning API's request checks (clear 400 messages naming the field), the profile merge that Apply sends
through live configuration, and when a job has nothing to apply."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from llmhost.api.tuning import JobRequest, parse_job_request
from llmhost.bench.workload import LengthSpec
from llmhost.tuner.apply import merged_document
from llmhost.tuner.job import JobSummary, TuneConfig
from llmhost.tuner.records import JobRecord, TrialRecord
from llmhost.tuner.space import SearchSpace, SpaceError
from llmhost.types import InvalidRequest


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "send a JSON object"),
        ({}, "model: Field required"),
        ({"model": "m", "trials": -1}, "trials: Input should be greater than or equal to 0"),
        ({"model": "m", "concurrency": 0}, "concurrency: Input should be greater than or equal to 1"),
        ({"model": "m", "strategy": "anneal"}, "strategy: Input should be 'tpe', 'grid' or 'random'"),
        ({"model": "m", "trails": 3}, "trails: Extra inputs are not permitted"),
        ({"model": "m", "api": "embeddings"}, "api: Input should be 'chat' or 'completions'"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_job_request(body)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"preset": "tpu"}, SpaceError, "unknown preset 'tpu'"),
        ({"space": {"parameters": {"bogus": [1]}}}, SpaceError, "'bogus' is not a tunable parameter"),
        ({"space": {"parameters": {"parallel": [0]}}}, SpaceError, "parallel: 0 is not valid"),
        ({"fixed": {"parallel": 2}, "space": {"parameters": {"parallel": [1]}}}, SpaceError, "has no parameters"),
        ({"lengths": "Z(1,2)"}, ValueError, "expected D(in,out)"),
        ({"objective": "goodput"}, ValueError, "needs an SLO"),
        ({"objective": "speed"}, ValueError, "unknown objective 'speed'"),
    ],
)
def test_bad_jobs_are_refused_with_the_reason(changes: dict[str, Any], error: type[Exception], message: str) -> None:
    request = parse_job_request({"model": "m", **changes})
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        request.tune_config("m")


def test_a_good_body_becomes_the_job_it_describes() -> None:
    body = {"model": "default", "strategy": "grid", "trials": 4, "concurrency": 2, "requests": 4}
    body |= {
        "space": {"parameters": {"parallel": [1, 2], "ubatch": [128, 256]}},
        "input_tokens": 16,
        "output_tokens": 8,
    }
    config = JobRequest.model_validate(body).tune_config("smol")
    assert config.model == "smol" and config.strategy == "grid" and config.trials == 4
    assert config.space.names == ["parallel", "ubatch"] and config.space.size == 4
    assert config.lengths == LengthSpec.fixed(16, 8) and config.objective.metric == "throughput"


def test_the_best_profile_merges_into_the_models_entry() -> None:
    document = "port: 11436\nmodels:\n  smol:\n    ctx: 2048\n    threads: 1\n"
    merged = yaml.safe_load(merged_document(document, "smol", (), {"parallel": 4, "ubatch": 128}))
    assert merged == {"port": 11436, "models": {"smol": {"ctx": 2048, "threads": 1, "parallel": 4, "ubatch": 128}}}

    by_alias = "models:\n  short:\n    aliases: [smol]\n    ctx: 1024\n"
    merged = yaml.safe_load(merged_document(by_alias, "smol", (), {"parallel": 2}))
    assert merged["models"] == {"short": {"aliases": ["smol"], "ctx": 1024, "parallel": 2}}

    from_defaults = "defaults:\n  ctx: 8192\n  threads: 2\n"
    merged = yaml.safe_load(merged_document(from_defaults, "smol", (), {"parallel": 8}))
    assert merged["models"] == {"smol": {"ctx": 8192, "threads": 2, "parallel": 8}}  # nothing else changes
    assert merged["defaults"] == {"ctx": 8192, "threads": 2}


def summary(*trials: tuple[str, dict[str, Any], float | None]) -> JobSummary:
    space = SearchSpace.from_dict({"parameters": {"parallel": [1, 2, 4]}})
    config = TuneConfig("smol", space, "grid", trials=3)
    job = JobRecord("j", "smol", "completed", config.to_dict(), None, 0.0, 0.0)
    records = [
        TrialRecord("j", n, kind, params, "complete" if value is not None else "failed", value)  # type: ignore[arg-type]
        for n, (kind, params, value) in enumerate(trials)
    ]
    return JobSummary(job, config, records)


def test_nothing_to_apply_when_the_current_values_win() -> None:
    assert summary(("baseline", {"parallel": 2}, 50.0), ("search", {"parallel": 1}, 40.0)).nothing_to_apply == (
        "the current profile (trial 0) is the best"
    )
    same = summary(("baseline", {"parallel": 2}, 50.0), ("search", {"parallel": 2}, 51.0))
    assert same.nothing_to_apply == "the best trial (#1) runs the current values"
    better = summary(("baseline", {"parallel": 2}, 50.0), ("search", {"parallel": 4}, 60.0))
    assert better.nothing_to_apply is None and better.improvement == pytest.approx(0.2) and better.beats_baseline
    assert not same.beats_baseline
    assert summary(("search", {"parallel": 4}, 60.0)).beats_baseline  # no baseline to compare with
    slower = summary(("baseline", {"parallel": 2}, 50.0), ("search", {"parallel": 4}, 49.0))
    assert slower.nothing_to_apply is not None and not slower.beats_baseline
    assert better.best_profile() == {"parallel": 4}
    assert summary(("baseline", {"parallel": 2}, None)).nothing_to_apply == "no trial succeeded within the constraints"
