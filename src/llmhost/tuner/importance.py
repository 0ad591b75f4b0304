"""Which parameters mattered: Optuna's fANOVA importances over a job's completed trials (for the Tuning page)."""

from __future__ import annotations

import optuna

from llmhost.tuner.job import JobSummary
from llmhost.tuner.space import SpaceError
from llmhost.tuner.strategies import index_distributions

MIN_TRIALS = 3


def param_importances(summary: JobSummary) -> dict[str, float]:
    """Parameter name -> share of the objective's variance it explains (sums to 1); empty with too few trials.

    Only completed trials whose parameters are points of the space count (a baseline outside the space does not).
    """
    space = summary.config.space
    dists = index_distributions(space)
    study = optuna.create_study(direction=summary.config.objective.direction)
    for trial in summary.trials:
        if trial.status != "complete" or trial.value is None:
            continue
        try:
            point = space.indices(trial.params)
        except (SpaceError, KeyError):
            continue
        params = dict(zip(space.names, point, strict=True))
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=trial.value))
    if len(study.trials) < MIN_TRIALS:
        return {}
    return dict(optuna.importance.get_param_importances(study))
