"""A finished study read back from its storage alone: the settings its creator stored and one flat
record per trial.

Nothing here reads the input files, so results can be loaded on any machine that can reach the
storage; :mod:`.leaderboard` ranks them and :mod:`.report` writes them out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..core.errors import StudyError
from .storage import SETTINGS_ATTR, load_study, safe_url

__all__ = ["StudyResults", "load_results"]


@dataclass(frozen=True)
class StudyResults:
    """The stored settings and one flat record per trial (idle trials left out)."""

    study_name: str
    storage: str
    settings: Mapping[str, Any]
    trials: list[dict[str, Any]]

    def complete(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["state"] == "COMPLETE"]


def load_results(storage: str, study_name: str) -> StudyResults:
    """Read a study made by ``archsearch study run`` (one-line errors for a missing one)."""
    study = load_study(storage, study_name)
    settings = study.user_attrs.get(SETTINGS_ATTR)
    if not isinstance(settings, dict):
        raise StudyError("this study was not made by archsearch study run", field="study_name", value=study_name)
    trials = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "idle" in attrs:
            continue
        record = {"number": t.number, "state": t.state.name, "value": t.value, "params_optuna": dict(t.params)}
        record.update({k: v for k, v in attrs.items()})
        if "pruned_at_epoch" in record:  # the attribute's name before 0.2
            record.setdefault("stopped_at_epoch", record.pop("pruned_at_epoch"))
        record.setdefault("params", None)
        trials.append(record)
    return StudyResults(study_name, safe_url(storage), settings, trials)
