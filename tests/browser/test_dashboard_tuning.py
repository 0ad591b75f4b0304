"""The Tuning and Benchmarks pages in a real browser, on a real service that ran real tuning jobs (trial engines
of the default model) and a real two-level benchmark: the trials table, the objective and importance charts, the
live progress of a running job over its event stream, Apply (a recorded configuration change), and a run's
throughput and latency charts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_kit import WatchedPage, admin, serving, wait_for
from playwright.sync_api import Page

from conftest import DEFAULT_MODEL, LlmhostServer, clean_env

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]
SMALL_JOB = {
    "model": "default",
    "strategy": "grid",
    "trials": 3,
    "concurrency": 2,
    "requests": 4,
    "input_tokens": 16,
    "output_tokens": 8,
    "space": {"parameters": {"parallel": [1, 2], "ubatch": [128, 256]}},
}


def start_job(server: LlmhostServer, **changes: Any) -> str:
    response = admin(server, "POST", "/tune/jobs", json={**SMALL_JOB, **changes})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def finished(server: LlmhostServer, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = admin(server, "GET", f"/tune/jobs/{job_id}").json()
        return body if not body["running"] else None

    result: dict[str, Any] = wait_for(done, timeout=90, message=f"tuning job {job_id} to end")
    return result


def apply_from_the_page(server: LlmhostServer, page: Page) -> str:
    """Click Apply: one more applied change in the history, named on the page; rolled back. Returns its config."""
    history_before = len(admin(server, "GET", "/config/history").json()["changes"])
    page.click("#tune-apply")
    result = page.locator("#tune-result.ok")
    result.wait_for(timeout=60_000)
    changes = admin(server, "GET", "/config/history").json()["changes"]
    assert len(changes) == history_before + 1 and changes[-1]["result"] == "applied"
    assert f"Configuration change {changes[-1]['id']}" in result.inner_text()
    assert admin(server, "POST", f"/config/rollback/{changes[-1]['id']}").status_code == 200
    return str(changes[-1]["after"])


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LlmhostServer, str]]:
    """A service with one finished tuning job and one stored two-level benchmark run."""
    with serving(tmp_path_factory.mktemp("ui-tuning")) as running:
        job_id = start_job(running)
        assert finished(running, job_id)["status"] == "completed"
        bench = [sys.executable, "-m", "llmhost", "bench", "run", "--config", str(running.config_path)]
        bench += ["--url", f"{running.base_url}/v1", "--model", DEFAULT_MODEL, "--concurrency", "1,2"]
        bench += ["--requests", "4", "--warmup", "1", "--input", "16", "--output", "8", "--label", "ui-two-levels"]
        done = subprocess.run(bench, capture_output=True, text=True, env=clean_env(), timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        yield running, job_id


def test_tuning_page_shows_a_finished_job_and_applies_its_best(
    tuned: tuple[LlmhostServer, str], open_page: OpenPage
) -> None:
    server, job_id = tuned
    detail = admin(server, "GET", f"/tune/jobs/{job_id}").json()
    watched = open_page(server)
    page = watched.open(f"tuning?job={job_id}")
    trials = page.locator("#tune-trials tbody tr")
    wait_for(lambda: trials.count() == 4, timeout=10, message="four trial rows")
    assert page.locator(".banner").count() == 0 and page.locator(".planned").count() == 0
    best = page.locator("#tune-trials tbody tr.best")
    assert best.get_attribute("data-trial") == str(detail["best_trial"])
    values = [row.locator("td").nth(5).inner_text() for row in trials.all()]  # #, kind, parallel, ubatch, status, value
    assert all(value not in ("", "—") for value in values)
    assert page.locator("#tune-job-status").inner_text() == "completed"
    objective = page.locator("#chart-tune-objective")
    assert int(objective.get_attribute("data-points") or 0) >= 4 and objective.locator("canvas").count() == 1
    importance = page.locator("#chart-tune-importance")
    assert int(importance.get_attribute("data-points") or 0) == len(detail["importance"]) >= 1
    assert importance.locator("canvas").count() == 1
    assert page.locator("#tune-best tbody tr").count() == 3  # parallel, ubatch, the objective
    watched.screenshot("tuning-finished")

    if detail["nothing_to_apply"]:  # the current profile won: the page offers nothing to apply
        assert page.locator("#tune-apply").is_hidden()
        assert detail["nothing_to_apply"] in page.locator("#tune-best-note").inner_text()
    else:
        apply_from_the_page(server, page)
    watched.assert_clean()


def test_tuning_page_follows_a_running_job_live_then_applies_it(
    tuned: tuple[LlmhostServer, str], open_page: OpenPage
) -> None:
    server, _ = tuned
    job_id = start_job(server, trials=1, baseline=False)  # no baseline: its one trial is something to apply
    watched = open_page(server)
    page = watched.open(f"tuning?job={job_id}")
    progress = page.locator("#tune-progress")
    wait_for(lambda: int(progress.get_attribute("data-events") or 0) > 0, timeout=60, message="live events")
    wait_for(lambda: page.locator("#tune-job-status").inner_text() == "completed", timeout=90, message="the end")
    wait_for(lambda: page.locator("#tune-trials tbody tr").count() == 1, timeout=10, message="the trial's row")
    assert page.locator("#tune-stop").is_hidden() and progress.is_hidden()

    after = apply_from_the_page(server, page)
    assert "parallel: 1" in after and "ubatch: 128" in after  # the grid's first point
    watched.screenshot("tuning-applied")
    watched.assert_clean()


def test_benchmarks_page_charts_a_stored_run(tuned: tuple[LlmhostServer, str], open_page: OpenPage) -> None:
    server, _ = tuned
    runs = admin(server, "GET", "/bench/runs").json()["runs"]
    run = next(run for run in runs if run["label"] == "ui-two-levels")
    watched = open_page(server)
    page = watched.open(f"benchmarks?run={run['id']}")
    assert page.locator(".banner").count() == 0 and page.locator(".planned").count() == 0
    page.locator("#bench-run-card").wait_for()
    wait_for(lambda: page.locator("#bench-levels tbody tr").count() == 2, timeout=10, message="two level rows")
    assert page.locator("#bench-runs tbody tr").count() == len(runs)
    assert page.locator("#bench-runs tbody tr.selected").get_attribute("data-run") == run["id"]
    for chart, points in (("throughput", 2), ("ttft", 6), ("tpot", 6)):
        node = page.locator(f"#chart-bench-{chart}")
        assert int(node.get_attribute("data-points") or 0) == points, chart
        assert node.locator("canvas").count() == 1
    assert page.locator("#chart-bench-errors").get_attribute("data-points") == "0"  # no error in this run
    assert "concurrent users" in page.locator("#bench-throughput-title").inner_text()
    watched.screenshot("benchmarks-run")
    watched.assert_clean()
