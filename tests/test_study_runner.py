"""The study worker's start: everything checkable is checked before the first trial."""
from __future__ import annotations

import torch

from archsearch.cli import main


def test_crafted_kept_weights_are_refused_before_any_trial(tmp_path, capsys):
    """Issue 25 item 8: a crafted member_weights.pt was refused only mid-trial, as an Optuna traceback."""
    run = tmp_path / "run"
    assert main(["prune", "--space", "digits-vgg", "--out", str(run), "--pretrain-epochs", "1", "--fraction", "0.2",
                 "--steps-per-prune", "2", "--save-weights", "all", "--no-progress"]) == 0
    torch.save({"format": "archsearch.member-weights", "version": 1, "members": {0: {"x": torch.zeros(3)}}},
               run / "member_weights.pt")
    capsys.readouterr()
    db = tmp_path / "s.db"
    assert main(["study", "run", "--pruned", str(run / "pruned.json"), "--arms", "pruned-tuned", "--budgets", "70k",
                 "--seeds", "0", "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "member_weights.pt" in err[0], err
    assert not db.exists()
