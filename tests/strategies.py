"""Hypothesis strategies and small helpers shared by the tests (genotypes, files, derive, the CLI)."""
from __future__ import annotations

import random
from typing import Sequence

from hypothesis import strategies as st

import archsearch
from archsearch import Trajectory, Genotype, Member

FAMILIES = ("wrn", "wrn-bottleneck")


@st.composite
def genotypes(
    draw: st.DrawFn,
    families: Sequence[str] = FAMILIES,
    depths: Sequence[int] = (10, 16, 22),
    max_width: int = 24,
    input_sizes: Sequence[int] = (4, 5, 8, 9, 16),
) -> Genotype:
    """Any legal genotype: random hyper-parameters, stage widths >= 1, inner widths >= 0.

    The first stage's width equals the stem's about half the time, so both the identity and the
    projection shortcut of the first block are exercised; inner widths are 0 about a third of the
    time, so blocks reduced to their shortcut are common.
    """
    family = draw(st.sampled_from(families))
    stem = draw(st.integers(1, max_width))
    hparams = {
        "depth": draw(st.sampled_from(depths)),
        "num_classes": draw(st.integers(1, 12)),
        "in_channels": draw(st.integers(1, 4)),
        "input_size": draw(st.sampled_from(input_sizes)),
        "stem_width": stem,
    }
    spec = archsearch.get_family(family)
    genes = {}
    for name in spec.gene_names(spec.check_hparams(hparams)):
        if name == "s1.width":
            genes[name] = draw(st.one_of(st.just(stem), st.integers(1, max_width)))
        elif name.endswith(".width"):
            genes[name] = draw(st.integers(1, max_width))
        else:
            genes[name] = draw(st.one_of(st.just(0), st.integers(0, max_width)))
    return Genotype.from_genes(family, hparams, genes)


def pruned_like(source: Genotype, rng: random.Random, zero_fraction: float = 0.25) -> Genotype:
    """Keep the stage widths, give every block a random inner width (some zero, at least one not)."""
    genes = dict(source.genes)
    inner = [n for n in genes if n.endswith(".inner")]
    for name in inner:
        genes[name] = 0 if rng.random() < zero_fraction else rng.randint(1, genes[name])
    if not any(genes[n] for n in inner):
        genes[inner[rng.randrange(len(inner))]] = 1 + rng.randrange(source.genes[inner[0]])
    return source.with_genes(genes)


def pruning_trajectory(name: str = "wrn-16-2", steps: int = 60, chunk: int = 4, seed: int = 0) -> Trajectory:
    """A synthetic pruning run: inner widths shrink step by step, as Fisher pruning would do.

    Channels are taken ``chunk`` at a time from a block drawn with probability proportional to
    its width; ``s1.b2`` is additionally pruned hard so it reaches zero early on, which is what a
    real run does to the blocks it finds useless. Largest network first, like ``prune`` writes.
    """
    rng = random.Random(seed)
    genotype = archsearch.create_genotype(name)
    genes = dict(genotype.genes)
    inner = [n for n in genes if n.endswith(".inner")]
    members = [Member(genotype, {"step": 0, "val_error": 0.05})]
    for t in range(1, steps + 1):
        live = [n for n in inner if genes[n] > 0]
        victim = rng.choices(live, weights=[genes[n] for n in live])[0]
        genes[victim] = max(0, genes[victim] - chunk)
        if "s1.b2.inner" in genes:
            genes["s1.b2.inner"] = max(0, genes["s1.b2.inner"] - 2)
        genotype = genotype.with_genes(genes)
        members.append(Member(genotype, {"step": 100 * t, "val_error": 0.05 + 0.001 * t + 0.002 * rng.random()}))
    return Trajectory(tuple(members), {"created_by": "tests.strategies.pruning_trajectory"})


def assert_one_line(message: str, path: object, *words: str) -> str:
    """An error for a bad file: one line, starting with the file's path, containing ``words``."""
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, message
    return message


def assert_cli_error(capsys, argv: list[str], *words: str) -> str:  # noqa: ANN001
    """``archsearch argv`` fails with status 2 and one line on stderr, no traceback, containing ``words``."""
    from archsearch.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archsearch: error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def read_table(text: str) -> list[dict[str, str]]:
    """The rows of the first table :func:`archsearch.core.tables.format_table` printed in ``text``, by column
    name: tests read a column by its header, so a column added to a table does not break them."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.strip() and set(line) <= {"-", " "} and i > 0)
    import re

    starts = [m.start() for m in re.finditer(r"-+", lines[rule])]
    ends = starts[1:] + [None]

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in zip(starts, ends)]

    headers = cells(lines[rule - 1])
    rows = []
    for line in lines[rule + 1:]:
        if not line.strip():
            break
        rows.append(dict(zip(headers, cells(line))))
    return rows


#: the ATen ops through which a tensor's value reaches the host (``item()``, ``bool(t)``, ``int(t)``,
#: data-dependent shapes): on a GPU each one waits for every queued kernel and cannot be captured in a
#: CUDA graph, so a training step must contain none. Counted on CPU, where the same ops dispatch.
HOST_READS = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten._unique", "aten.unique")


def count_host_reads():  # noqa: ANN201 - a context manager yielding the list it fills
    """``with count_host_reads() as reads: ...`` -- the host reads (see :data:`HOST_READS`) inside."""
    import contextlib

    from torch.utils._python_dispatch import TorchDispatchMode

    reads: list[str] = []

    class _Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            if str(func).startswith(HOST_READS):
                reads.append(str(func).split(".")[1])
            return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def counting():  # noqa: ANN202
        with _Count():
            yield reads

    return counting()
