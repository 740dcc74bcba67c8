"""What ships: the dependency floors in pyproject.toml, every package listed for the wheel, and a
wheel that carries the search spaces."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_torch_floor_is_safe_for_weights_only_loading() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.startswith("torch>="))
    floor = tuple(int(v) for v in torch_req.split(">=")[1].split(",")[0].split(".")[:2])
    # CVE-2025-32434: torch.load(weights_only=True) is unsafe below 2.6; CVE-2026-24747: its loader
    # flaw fixed in 2.10 (issue 25 item 7)
    assert floor >= (2, 10)


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "archsearch").rglob("__init__.py")}
    assert found | {"archsearch.search_spaces"} == listed


@pytest.mark.slow
def test_a_wheel_carries_the_spaces(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           str(ROOT), "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("digits-wrn-16-2/space.toml", "digits-wrn-16-2/pruned.json", "vgg19-cifar10/genotype.json"):
        assert f"archsearch/search_spaces/{name}" in names
