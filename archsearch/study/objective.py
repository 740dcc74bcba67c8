"""The objective: train one candidate from scratch and report its validation error to Optuna.

Everything needed to reproduce a trial is written onto it as user attributes: the cell (arm,
budget, seed), the genotype JSON, the recipe, parameters and MACs, and what training measured
(validation and test error, per-epoch history, wall time, device). The study database alone is
then enough to rebuild any network of the comparison and retrain it.

Per-epoch validation errors are reported as intermediate values, so an optional Optuna pruner
(median, successive halving) can stop hopeless candidates; a stopped trial keeps the errors it had
reached, marked with the epoch it stopped at.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from ..core.errors import ArchsearchError, BudgetError
from .arms import arm_kind
from .settings import StudySettings
from .storage import CELL_ATTR

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from ..data import DataSplits
    from ..genotypes.genotype import Genotype
    from ..training.train import TrainResult
    from .candidates import Candidate

__all__ = ["Objective", "IdleTrial", "make_early_stopping"]


class IdleTrial(Exception):
    """A trial that found no work: the grid had no cell left for it, or the trial cap was reached.

    Such trials appear in the database as FAIL with an ``idle`` user attribute saying why; they
    are not results and every count and report skips them.
    """


def make_early_stopping(name: str, epochs: int) -> "optuna.pruners.BasePruner":
    """The early-stopping rule for ``--early-stopping`` (an Optuna "pruner"); warm-up scales with the epochs."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4))
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 8), reduction_factor=3)
    raise ValueError(name)



def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stack() -> dict[str, Any]:
    """torch's version and CPU threads: a CPU result reproduces only on the same stack and thread count."""
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def _copy_result(trial: "optuna.Trial", earlier: "optuna.trial.FrozenTrial", keys: list[str], marker: str) -> float:
    """Give ``trial`` the result ``keys`` of ``earlier`` (training is deterministic for a seed), marked
    ``marker = earlier.number`` and taking no time; returns its value."""
    for key in keys:
        trial.set_user_attr(key, earlier.user_attrs[key])
    trial.set_user_attr("trial_s", 0.0)
    trial.set_user_attr(marker, earlier.number)
    return float(earlier.value)


class Objective:
    """``objective(trial) -> final validation error``, for ``study.optimize``.

    ``data`` is loaded once per worker and reused by every trial; ``cap`` (search mode) is the
    study's total trial count, enforced exactly by trial number (see :meth:`_check_cap`).
    """

    def __init__(self, settings: StudySettings, data: "DataSplits", *, device: Any = None,
                 cap: int | None = None, train: "Callable[..., TrainResult] | None" = None, processes: int = 1) -> None:
        self.settings = settings
        self.data = data
        self.device = device
        self.cap = cap
        self._train = train
        #: processes that train each cell (``--gpus-per-trial``), recorded on every trial they train
        self.processes = processes
        #: number of the trial this worker runs now (for re-queueing it after an interruption)
        self.current: int | None = None

    # -- choosing the candidate ------------------------------------------------------------------
    def _grid(self, trial: "optuna.Trial") -> tuple["Candidate", Any, int]:
        s = self.settings
        if CELL_ATTR not in trial.user_attrs:
            raise self._idle(trial, "no grid cell was left when this trial started (another worker took the last one)")
        arm = trial.suggest_categorical("arm", s.arm_names)
        budget = trial.suggest_categorical("budget", list(s.budgets))
        seed = trial.suggest_categorical("seed", list(s.all_seeds))
        candidate = s.candidate(arm, budget)
        return candidate, s.recipe_for(candidate), seed

    def _search(self, trial: "optuna.Trial") -> tuple["Candidate", Any, int]:
        import optuna

        s = self.settings
        self._check_cap(trial)
        budget, seed = s.budgets[0], s.seeds[0]
        if s.search == "recipe":
            candidate = s.candidate(s.arm_names[0], budget)
            base = s.recipe_for(candidate)
            recipe = replace(
                base,
                lr=trial.suggest_float("lr", base.lr / 10, base.lr * 10, log=True),
                weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
                label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.2),
            )
            return candidate, recipe, seed
        arm_name = trial.suggest_categorical("arm", s.arm_names)
        arm = s.arm(arm_name)
        member = None
        if arm_kind(arm.kind).searches_member:
            size = len(next(src for src in s.sources if src.label == arm.source).trajectory)
            member = trial.suggest_int(f"member[{arm.source}]", 0, size - 1)
        try:
            candidate = s.candidate(arm_name, budget, member=member)
        except BudgetError as exc:
            trial.set_user_attr("infeasible", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        return candidate, s.recipe_for(candidate), seed

    def _check_cap(self, trial: "optuna.Trial") -> None:
        """Refuse trial ``n`` when ``cap`` live trials precede it (exact across workers).

        Trial numbers are assigned atomically by the storage, so counting the earlier trials that
        are waiting, running or finished (failed and idle ones excepted) gives every worker the
        same answer for the same trial.
        """
        from optuna.trial import TrialState

        if self.cap is None:
            return
        live = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
        earlier = [t for t in trial.study.get_trials(deepcopy=False, states=live)
                   if t.number < trial.number and "idle" not in t.user_attrs]
        if len(earlier) >= self.cap:
            trial.study.stop()
            raise self._idle(trial, f"the study's cap of {self.cap} trials was reached")

    @staticmethod
    def _same_as_earlier(trial: "optuna.Trial") -> float | None:
        """A search suggestion already trained: training is deterministic for a seed, so its
        result is copied (with ``duplicate_of``) instead of spending a training run on it again."""
        from optuna.trial import TrialState

        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.params == trial.params and "duplicate_of" not in t.user_attrs and t.value is not None:
                keys = [k for k in t.user_attrs if k not in ("worker", "device", "trial_s", "wall_s")]
                return _copy_result(trial, t, keys, "duplicate_of")
        return None

    @staticmethod
    def _trained_twin(trial: "optuna.Trial", recipe: dict[str, Any]) -> float | None:
        """The same network (another pruning run reached it), seed and recipe, already trained:
        training is deterministic for a seed, so its result is copied (with ``same_network_as``)
        instead of training it again; the report counts such runs once."""
        from optuna.trial import TrialState

        from .ranking import genotype_key

        mine = trial.user_attrs
        key = genotype_key(mine.get("genotype"))
        if key is None:
            return None
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            a = t.user_attrs
            if (t.value is None or "same_network_as" in a or "duplicate_of" in a or a.get("kind") != mine.get("kind")
                    or a.get("budget") != mine.get("budget") or a.get("seed") != mine.get("seed")
                    or a.get("recipe") != recipe or genotype_key(a.get("genotype")) != key):
                continue
            keys = [k for k in ("val_error", "test_error", "best_val_error", "best_test_error", "best_epoch", "epochs",
                                "history", "wall_s", "diverged", "stopped_at_epoch") if k in a]
            return _copy_result(trial, t, keys, "same_network_as")
        return None

    @staticmethod
    def _idle(trial: "optuna.Trial", reason: str) -> IdleTrial:
        trial.set_user_attr("idle", reason)
        return IdleTrial(reason)

    def _kept(self, candidate: "Candidate") -> dict[str, Any]:
        """The pruning run's own fine-tuned weights of the candidate's member (a state_dict of its GraphNet)."""
        from ..prune.weights import load_member_weights

        source = next(s for s in self.settings.sources if s.label == candidate.arm.source)
        return load_member_weights(source.path, source.trajectory, int(candidate.detail["source_index"]))

    def _masked_init(self, candidate: "Candidate", genotype: "Genotype", seed: int) -> dict[str, Any]:
        """The weights a scratch training of ``genotype`` starts from at ``seed``, with the pruning run's
        kept masks in place of the fresh ones (Liu et al.: is it the mask, or only its densities?)."""
        import torch

        kept = self._kept(candidate)
        masks = {k: v for k, v in kept.items() if k.endswith(".weight_mask")}
        if not masks:
            raise ArchsearchError(f"{candidate.arm.name}: member {candidate.detail['source_index']} of "
                                  f"{candidate.arm.source} is dense; scratch-mask trains a magnitude-pruned member")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # what train_genotype draws at this seed before loading this state
            fresh = genotype.build(generic=True).state_dict()
        return {**fresh, **masks}

    def _measure(self, trial: "optuna.Trial", candidate: "Candidate") -> float:
        """``pruned-tuned``: the pruning run's own fine-tuned weights, on the same splits as training."""
        from ..data import make_feed
        from ..training.train import evaluate_batches, resolve_device

        start = time.perf_counter()
        state = self._kept(candidate)
        device = resolve_device(self.device)
        model = candidate.genotype.build(generic=True)
        model.load_state_dict(state)
        model.to(device)
        feed = make_feed(self.data, device, augment=False)
        errors = {split: evaluate_batches(model, feed.eval_batches(split, 1024))["error"] for split in ("val", "test")}
        wall = time.perf_counter() - start
        for key, value in {
            "val_error": errors["val"], "test_error": errors["test"], "best_val_error": errors["val"],
            "best_test_error": errors["test"], "best_epoch": 0, "epochs": 0, "history": [], "wall_s": wall,
            "trial_s": wall, "diverged": False, "evaluated": True,
        }.items():
            trial.set_user_attr(key, value)
        return float(errors["val"])

    # -- the trial -------------------------------------------------------------------------------
    def __call__(self, trial: "optuna.Trial") -> float:
        import optuna

        self.current = trial.number
        s = self.settings
        candidate, recipe, seed = self._grid(trial) if s.mode == "grid" else self._search(trial)
        if s.mode == "search":
            earlier = self._same_as_earlier(trial)
            if earlier is not None:
                return earlier
        g = candidate.genotype
        for key, value in {
            "arm": candidate.arm.name, "kind": candidate.arm.kind, "source": candidate.arm.source,
            "budget": candidate.budget, "seed": seed, "params": g.params, "macs": g.macs,
            "genotype": g.to_dict(), "recipe": recipe.to_dict(), "candidate": dict(candidate.detail),
            "device": str(self.device), "worker": _worker(), **_stack(),
            **({"processes": self.processes} if self.processes > 1 else {}),
        }.items():
            trial.set_user_attr(key, value)

        record = arm_kind(candidate.arm.kind)
        if record.evaluated:
            return self._measure(trial, candidate)
        warm, masked = record.start == "kept-weights", record.start == "kept-masks"
        if s.mode == "grid" and not warm and not masked:
            twin = self._trained_twin(trial, recipe.to_dict())
            if twin is not None:
                return twin
        history: list[dict[str, Any]] = []
        start = time.perf_counter()

        def on_epoch(record: dict[str, Any]) -> None:
            history.append({k: record[k] for k in ("epoch", "lr", "train_loss", "val_error", "test_error")})
            trial.report(record["val_error"], record["epoch"])
            if record["epoch"] < recipe.epochs and trial.should_prune():
                trial.set_user_attr("history", history)
                trial.set_user_attr("stopped_at_epoch", record["epoch"])
                trial.set_user_attr("val_error", record["val_error"])
                trial.set_user_attr("test_error", record["test_error"])
                trial.set_user_attr("trial_s", time.perf_counter() - start)
                raise optuna.TrialPruned(f"stopped after epoch {record['epoch']} by the {s.early_stopping} rule")

        train = self._train
        if train is None:
            from ..training.train import train_genotype as train
        start_from = {"init_state": self._kept(candidate)} if warm else {}  # tuned-e: the run's own weights
        if masked:  # scratch-mask: the run's own masks, every weight as a scratch training draws it
            start_from = {"init_state": self._masked_init(candidate, g, seed)}
        result = train(g, self.data, recipe, device=self.device, seed=seed, progress=False, on_epoch=on_epoch,
                       **start_from)
        final, best = result.final, result.best
        for key, value in {
            "val_error": final.val_error, "test_error": final.test_error,
            "best_val_error": best.val_error, "best_test_error": best.test_error, "best_epoch": best.epoch,
            "epochs": final.epoch, "history": history, "wall_s": result.wall_s,
            "trial_s": time.perf_counter() - start, "diverged": result.diverged,
        }.items():
            trial.set_user_attr(key, value)
        if result.diverged:  # never a COMPLETE trial: the report must not rank a blown-up run
            from ..training.train import divergence

            raise optuna.TrialPruned(f"training diverged ({divergence(final.train_loss)}) in epoch {final.epoch}")
        return float(final.val_error)
