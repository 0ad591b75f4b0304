"""Rich progress bars driven by benchmark events (used by ``llmhost bench`` and ``llmhost tune``)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from llmhost.bench.runner import BenchEvent

PREPARING = "preparing prompts"


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        transient=transient,
    )


class BenchProgress:
    """One bar per phase (warm-up, then each level); the note shows the level's throughput so far."""

    def __init__(self, progress: Progress, prefix: str = "") -> None:
        self.progress = progress
        self.prefix = prefix
        self._task: TaskID | None = None
        self._phase = ""  # the current bar's phase
        self._tasks: list[TaskID] = []
        self._tokens = 0

    def __call__(self, event: BenchEvent) -> None:
        if event.kind == "preparing":
            self._start(PREPARING, 1)
        elif event.kind == "warmup":
            self._start_once("warm-up", event.total)
            self._update(event.done, "")
        elif event.kind == "level_started":
            self._tokens = 0
            self._start(event.level.label if event.level else "level", event.total)
        elif event.kind == "request_done" and event.record is not None:
            self._tokens += event.record.output_tokens if event.record.ok else 0
            self._update(event.done, f"{self._tokens} tokens")
        elif event.kind == "level_done" and event.metrics is not None:
            metrics = event.metrics
            note = f"{metrics.output_throughput:.1f} tok/s, {metrics.failed} failed"
            self._update(event.total, note)

    def close(self) -> None:
        """End the current bar (a phase that ended early, e.g. preparation, shows as complete)."""
        if self._task is not None:
            if self._phase == PREPARING:
                self.progress.update(self._task, completed=1)
            self.progress.stop_task(self._task)

    def remove(self) -> None:
        """Take this benchmark's bars off the display."""
        for task in self._tasks:
            self.progress.remove_task(task)
        self._tasks.clear()
        self._task = None

    def _start(self, description: str, total: int) -> None:
        self.close()
        self._task = self.progress.add_task(f"{self.prefix}{description}", total=total, note="")
        self._phase = description
        self._tasks.append(self._task)

    def _start_once(self, description: str, total: int) -> None:
        if self._task is None or self._phase != description:
            self._start(description, total)

    def _update(self, completed: int, note: str) -> None:
        if self._task is not None:
            self.progress.update(self._task, completed=completed, note=note)
