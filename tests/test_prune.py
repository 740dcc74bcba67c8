"""Pruning driven by the genotype graph: coupled groups, criteria and surgery on any network,
checked against independent computations (autograd on masks, silenced channels, hand slicing)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import archsearch
import archsearch.zoo
from archsearch.core.errors import ArchsearchError
from archsearch.prune.criteria import CRITERIA, make_criterion
from archsearch.prune.groups import coupled_groups
from archsearch.prune.groups import spatial_sizes
from archsearch.prune.loop import _removable, check_targets
from archsearch.prune.settings import ONE_SHOT_CRITERIA, WEIGHT_CRITERIA, PruneSettings
from archsearch.prune.surgery import graph_state_dict, prune_channels


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_NETS: dict = {}


def nets() -> dict:
    """Small networks of every shape the graph knows: WRN (both blocks), option-A ResNet,
    DenseNet-BC (concatenations), VGG with a hidden classifier (flatten into linear), MobileNetV2
    (depthwise), RegNet (grouped convs)."""
    if not _NETS:
        torch.manual_seed(0)
        zoo = archsearch.zoo

        class VGGHead(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = zoo.vgg([6, "M", 8], in_channels=1).features
                self.fc1 = nn.Linear(8 * 4 * 4, 12)
                self.fc2 = nn.Linear(12, 10)

            def forward(self, x):  # noqa: ANN001, ANN201
                return self.fc2(torch.relu(self.fc1(torch.flatten(self.features(x), 1))))

        _NETS.update({
            "wrn": archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8),
            "wrn-bottleneck": archsearch.create_genotype("wrn-bottleneck-10-2", in_channels=1, input_size=8),
            "resnet": archsearch.import_module(zoo.resnet_cifar(8, in_channels=1), (1, 8, 8)),
            "densenet": archsearch.import_module(zoo.densenet(16, growth=4, bottleneck=True, compression=0.5,
                                                              in_channels=1), (1, 8, 8)),
            "vgg": archsearch.import_module(VGGHead(), (1, 8, 8)),
            "mbv2": archsearch.import_module(zoo.mobilenet_v2_cifar(width_mult=0.25, in_channels=1), (1, 8, 8)),
        })
    return _NETS


def live_model(g: archsearch.Genotype, *, randomise_bn: bool = True) -> nn.Module:
    torch.manual_seed(1)
    model = g.build(generic=True)
    if randomise_bn:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.2)
                    m.running_mean.normal_(0, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
    return model


def prunable(g: archsearch.Genotype, tied: bool = False) -> dict:
    return {n: gr for n, gr in coupled_groups(g, tied=tied).items() if gr.fixed is None and gr.width > 0}


# -- groups ----------------------------------------------------------------------------------------

def test_groups_know_which_genes_are_fixed_and_where_channels_live() -> None:
    n = nets()
    wrn = coupled_groups(n["wrn"], tied=True)
    assert wrn["s1.width"].fixed  # the first stage's identity shortcut ties it to the fixed stem
    assert wrn["s2.width"].fixed is None and wrn["s2.width"].floor == 1
    assert wrn["s1.b1.inner"].floor == 0  # a residual branch may vanish
    assert {s.node for s in wrn["s2.b1.inner"].slots} == {"s2.b1.conv1", "s2.b1.bn2", "s2.b1.conv2"}
    resnet = coupled_groups(n["resnet"], tied=True)
    assert all(gr.fixed and "zero-padded" in gr.fixed for gr in resnet.values() if gr.role == "tied")
    dense = coupled_groups(n["densenet"])
    tied = [gr for gr in dense.values() if gr.role == "tied"]
    assert tied and all("tied" in gr.fixed for gr in tied)
    # a growth gene sits at an offset in every later concatenation: BN and conv input slots
    growth = coupled_groups(n["densenet"], tied=True)["dense1.0.conv2"]
    offsets = {(s.node, s.role): s.offset for s in growth.slots}
    assert offsets[("dense1.1.bn1", "bn")] == offsets[("dense1.1.conv1", "in")] > 0
    vgg = coupled_groups(n["vgg"])
    fc_in = [s for s in vgg["features.4"].slots if s.node == "fc1"]
    assert fc_in and fc_in[0].spatial == 16  # a flatten: one channel is 4x4 features of fc1
    mbv2 = coupled_groups(n["mbv2"])
    assert "features.3.conv.3" in {s.node for s in mbv2["features.3.conv.0"].slots}  # its depthwise conv
    regnet_g = archsearch.import_module(__import__("torchvision").models.regnet_x_400mf(num_classes=3), (3, 32, 32))
    grouped = {n: gr for n, gr in coupled_groups(regnet_g).items() if regnet_g.quantum[n] > 1}
    # a grouped conv's genes prune in whole cuts (one channel per group): at least one channel per group stays
    assert grouped and all(gr.fixed is None and gr.floor in (0, regnet_g.quantum[n]) for n, gr in grouped.items())


# -- criteria --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["wrn", "wrn-bottleneck", "densenet", "vgg", "mbv2"])
def test_fisher_matches_autograd_on_masks_at_the_readers(name: str) -> None:
    """Independent: a per-sample mask on every reader's input channels of each inner gene."""
    g = nets()[name]
    groups = prunable(g)
    model = live_model(g).train()
    x = torch.randn(6, 1, 8, 8)
    y = torch.randint(0, 10, (6,))
    fisher = make_criterion("fisher")
    fisher.attach(model, groups, spatial_sizes(g))
    nn.functional.cross_entropy(model(x), y).backward()
    fisher.after_backward()
    ours = fisher.scores()
    fisher.detach()
    model.zero_grad()
    masks, handles = [], []
    for gene, group in groups.items():
        for slot in group.slots:
            if slot.role != "in":
                continue
            mask = torch.ones(6, slot.count, requires_grad=True)
            masks.append((gene, mask))

            def pre(module, inputs, slot=slot, mask=mask):  # noqa: ANN001, ANN202
                x = inputs[0]
                if x.dim() == 2 and slot.spatial > 1:
                    x = x.unflatten(1, (-1, slot.spatial))
                m = torch.ones(x.shape[:2], dtype=x.dtype)
                m = torch.cat([m[:, :slot.offset], mask, m[:, slot.offset + slot.count:]], 1)
                x = x * m.reshape(m.shape + (1,) * (x.dim() - 2))
                return (x.flatten(1) if inputs[0].dim() == 2 else x,)

            handles.append(model.get_submodule(slot.node).register_forward_pre_hook(pre))
    nn.functional.cross_entropy(model(x), y).backward()
    for h in handles:
        h.remove()
    for gene in groups:
        gnk = sum(m.grad for g_, m in masks if g_ == gene)
        expected = 0.5 * gnk.pow(2).mean(0)
        assert torch.allclose(ours[gene], expected, rtol=1e-4, atol=1e-12), gene
    assert any(v.abs().sum() > 0 for v in ours.values())


def test_magnitude_criteria_sum_over_the_group() -> None:
    g = nets()["densenet"]
    groups = prunable(g, tied=True)
    model = live_model(g)
    gene = "dense1.0.conv2"
    bn = make_criterion("bn-scale")
    bn.attach(model, groups)
    expected = 0
    for slot in groups[gene].slots:
        if slot.role == "bn":
            expected = expected + model.get_submodule(slot.node).weight.detach().abs()[slot.offset:slot.offset + slot.count]
    assert len(groups[gene].batch_norms) >= 2
    assert torch.allclose(bn.scores()[gene], expected)
    l1 = make_criterion("l1")
    l1.attach(model, groups)
    conv = model.get_submodule(gene)
    assert torch.allclose(l1.scores()[gene], conv.weight.detach().abs().sum(dim=(1, 2, 3)))
    r1, r2 = make_criterion("random", seed=3), make_criterion("random", seed=3)
    r1.attach(model, groups)
    r2.attach(model, groups)
    assert all(torch.equal(a, b) for a, b in zip(r1.scores().values(), r2.scores().values()))


# -- surgery ---------------------------------------------------------------------------------------

def _silence(model: nn.Module, group, channels: list[int]) -> None:
    """What removing channels means, done without removing them: every reader's weights on them
    and every batch norm's scale and shift there set to zero."""
    with torch.no_grad():
        for slot in group.slots:
            module = model.get_submodule(slot.node)
            idx = torch.tensor(channels) + slot.offset
            if slot.role == "bn":
                module.weight[idx] = 0
                module.bias[idx] = 0
            elif slot.role == "in":
                w = module.weight
                if slot.spatial > 1:
                    w = w.view(w.shape[0], -1, slot.spatial)
                w[:, idx] = 0


@pytest.mark.parametrize("name", ["wrn", "wrn-bottleneck", "resnet", "densenet", "vgg", "mbv2"])
@pytest.mark.parametrize("tied", [False, True])
def test_surgery_computes_what_silenced_channels_compute(name: str, tied: bool) -> None:
    g = nets()[name]
    groups = prunable(g, tied)
    if not groups:
        pytest.skip("no gene to prune")
    model = live_model(g).eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 1, 8, 8)
    model(x).sum().backward()
    optimizer.step()
    gen = torch.Generator().manual_seed(len(name))
    drop = {}
    for gene, group in list(groups.items())[::2]:
        k = max(1, min(group.width - group.floor, int(torch.randint(1, group.width + 1, (1,), generator=gen))))
        drop[gene] = sorted(torch.randperm(group.width, generator=gen)[:k].tolist())
    new, pruned, new_opt = prune_channels(model, g, drop, optimizer)
    assert numel(new) == pruned.params == archsearch.Genotype.from_dict(pruned.to_dict()).params
    for gene, channels in drop.items():
        _silence(model, groups[gene], channels)
    with torch.no_grad():
        assert torch.allclose(model(x), new(x), atol=1e-5)
    # the momentum buffers travel with their weights
    for name_, p in new.named_parameters():
        buf = new_opt.state[p]["momentum_buffer"]
        assert buf.shape == p.shape, name_


@pytest.mark.parametrize("name", ["wrn", "resnet", "densenet", "vgg", "mbv2"])
def test_surgery_in_place_equals_a_rebuild(name: str) -> None:
    """A pruning run slices the touched layers of its live model (``in_place``): the same tensors,
    buffers and momentum as a rebuilt network, every untouched parameter kept as it was."""
    import copy

    g = nets()[name]
    groups = prunable(g, tied=True)
    model = live_model(g).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    optimizer.step()
    gen = torch.Generator().manual_seed(7)
    drop = {gene: sorted(torch.randperm(group.width, generator=gen)[:max(1, group.width // 3)].tolist())
            for gene, group in list(groups.items())[1::3] if group.width - group.floor >= group.width // 3}
    twin = copy.deepcopy(model)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    twin_opt.load_state_dict(optimizer.state_dict())
    before = {n: p for n, p in model.named_parameters()}
    rebuilt, g_rebuilt, opt_rebuilt = prune_channels(twin, g, drop, twin_opt)
    sliced, g_sliced, opt_sliced = prune_channels(model, g, drop, optimizer, in_place=True)
    assert sliced is model and g_sliced.to_dict() == g_rebuilt.to_dict()
    assert numel(sliced) == g_sliced.params
    new_state, old_state = sliced.state_dict(), rebuilt.state_dict()
    assert list(new_state) == list(old_state)
    for key in old_state:
        assert torch.equal(new_state[key], old_state[key]), key
    touched = 0
    for (n, p), (_, q) in zip(sliced.named_parameters(), rebuilt.named_parameters()):
        assert torch.equal(opt_sliced.state[p]["momentum_buffer"], opt_rebuilt.state[q]["momentum_buffer"]), n
        touched += p is not before[n]
    assert 0 < touched < len(before)  # only the layers the cut touches are new tensors
    x = torch.randn(4, 1, 8, 8)
    sliced.eval(), rebuilt.eval()
    with torch.no_grad():
        assert torch.allclose(sliced(x), rebuilt(x), atol=1e-6)
    for m in sliced.modules():  # the layers' sizes follow their tensors (repr, export and re-tracing read them)
        if isinstance(m, nn.Conv2d):
            assert m.weight.shape[:2] == (m.out_channels, m.in_channels // m.groups)
        elif isinstance(m, nn.BatchNorm2d):
            assert m.num_features == m.weight.numel() == m.running_mean.numel()


def test_prune_to_zero_removes_a_residual_branch() -> None:
    g = nets()["wrn"]
    model = live_model(g).eval()
    new, pruned, _ = prune_channels(model, g, {"s2.b1.inner": list(range(g.genes["s2.b1.inner"]))})
    assert pruned.genes["s2.b1.inner"] == 0 and numel(new) == pruned.params
    assert not hasattr(new.s2.b1, "conv1")


def test_an_imported_residual_branch_prunes_to_zero_and_trains() -> None:
    g = nets()["resnet"]
    model = live_model(g)
    new, pruned, _ = prune_channels(model, g, {"layer1.0.conv1": list(range(16))})
    assert pruned.genes["layer1.0.conv1"] == 0 and numel(new) == pruned.params
    # the block is its shortcut: its addition passes one tensor through, which the ReLU after it
    # must not overwrite in place (the stem's ReLU saved it for its backward)
    new.train()(torch.randn(4, 1, 8, 8)).sum().backward()
    # another branch may still vanish; a gene whose 0 would cut the network may not
    assert coupled_groups(pruned)["layer2.0.conv1"].floor == 0
    assert pruned.with_genes({"layer2.0.conv1": 0}).genes["layer2.0.conv1"] == 0
    with pytest.raises(ArchsearchError, match="'conv1': 0 is invalid"):
        pruned.with_genes({"conv1": 0})


def test_wrn_weights_cross_the_bridge() -> None:
    """The hand-written WideResNet's state_dict, renamed by the bridge, runs the same in GraphNet."""
    g = archsearch.load_trajectory("search_spaces/digits-wrn-16-2/pruned.json")[50].genotype
    wrn = g.build().eval()
    graph = g.build(generic=True).eval()
    graph.load_state_dict(graph_state_dict(g, wrn.state_dict()), strict=True)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(wrn(x), graph(x), atol=1e-5)


# -- settings and refusals -------------------------------------------------------------------------

def test_floors_and_removable_channels() -> None:
    g = nets()["wrn"]
    inner = _removable(g, PruneSettings(max_prunes=1))
    assert set(inner) == {n for n in g.genes if n.endswith(".inner")}
    tied = _removable(g, PruneSettings(max_prunes=1, prune_residual=True))
    assert "s1.width" not in tied and tied["s2.width"] == g.genes["s2.width"] - 1
    wider = archsearch.create_genotype("wrn-10-2", in_channels=1, input_size=8)  # stride-1 stage 1: 16 -> 32
    assert _removable(wider, PruneSettings(max_prunes=1, prune_residual=True))["s1.width"] == 32 - 17


@pytest.mark.parametrize("settings, needle", [
    ({"genes": ["nothing.*"]}, "'nothing.*' names no gene"),
    ({"genes": ["layer2.0.conv2"]}, "gene 'layer2.0.conv2' cannot be pruned: it passes a zero-padded"),
    ({"genes": ["conv1"]}, "gene 'conv1' cannot be pruned"),
])
def test_asking_for_a_fixed_gene_is_refused_by_name(settings: dict, needle: str) -> None:
    with pytest.raises(ArchsearchError, match=needle.replace("(", r"\(").replace(".", r"\.").replace("*", r"\*")):
        check_targets(nets()["resnet"], PruneSettings(max_prunes=1, **settings))


def test_bn_scale_needs_batch_norm() -> None:
    class NoBN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4, 3)

        def forward(self, x):  # noqa: ANN001, ANN201
            return self.fc(torch.relu(self.b(torch.relu(self.a(x)))).mean((2, 3)))

    g = archsearch.import_module(NoBN(), (1, 8, 8))
    with pytest.raises(ArchsearchError, match="bn-scale needs a batch norm on every pruned gene; gene 'a'"):
        check_targets(g, PruneSettings(max_prunes=1, criterion="bn-scale"))
    check_targets(g, PruneSettings(max_prunes=1, criterion="fisher"))


def test_bn_scale_scores_a_network_with_a_branch_pruned_away() -> None:
    """A branch at width 0 has no batch norm left; it needs none (it used to stop the run at the next prune)."""
    g = nets()["wrn"].with_genes({"s1.b1.inner": 0})
    settings = PruneSettings(max_prunes=1, criterion="bn-scale")
    check_targets(g, settings)
    bn = make_criterion("bn-scale")
    bn.attach(live_model(g), {n: gr for n, gr in coupled_groups(g).items() if gr.fixed is None})
    assert len(bn.scores()["s2.b1.inner"]) == g.genes["s2.b1.inner"]


def test_settings_know_every_criterion() -> None:
    from archsearch.prune.settings import CRITERION_NAMES

    assert tuple(CRITERIA) == CRITERION_NAMES


# -- every shipped network, every criterion --------------------------------------------------------

SHIPPED = ["digits-wrn-16-2", "digits-wrn-bottleneck-16-2", "digits-vgg", "digits-resnet20", "digits-densenet-bc"]


@pytest.fixture(scope="module")
def digits():
    from archsearch.data import load_dataset

    return load_dataset("digits")


@pytest.mark.slow
@pytest.mark.parametrize("space", SHIPPED)
@pytest.mark.parametrize("criterion", sorted(set(CRITERIA) - set(ONE_SHOT_CRITERIA) - set(WEIGHT_CRITERIA)))
def test_every_shipped_network_prunes_with_every_criterion(tmp_path, digits, space: str, criterion: str) -> None:
    from archsearch.prune.loop import prune_network

    g = archsearch.load_space(f"search_spaces/{space}").base_genotype()
    settings = PruneSettings(criterion=criterion, steps_per_prune=2, channels_per_prune=3, max_prunes=2,
                             batch_size=32, record_every=1, normalise="params")
    checked = []

    def check(family) -> None:  # noqa: ANN001
        member = family[-1]
        again = archsearch.Genotype.from_dict(member.genotype.to_dict())  # validates every rule
        model = again.build(generic=True).eval()
        assert numel(model) == member.params
        with torch.no_grad():
            assert torch.isfinite(model(digits.val_x[:4])).all()
        checked.append(member.params)

    torch.manual_seed(0)
    family = prune_network(g, None, digits, settings, tmp_path / "run", device="cpu", progress=False,
                           on_record=check)
    assert len(checked) == 2 and checked[0] > checked[1]
    assert [m.metrics["channels_removed"] for m in family] == [0, 3, 6]


@pytest.mark.slow
@pytest.mark.parametrize("space", SHIPPED)
def test_every_shipped_network_loses_weights_by_magnitude(tmp_path, digits, space: str) -> None:
    """Two rounds of iterative magnitude pruning on every shipped network: each record counts the weights
    its masks keep, and its genotype file rebuilds the same count."""
    from archsearch.prune.loop import prune_network

    g = archsearch.load_space(f"search_spaces/{space}").base_genotype()
    settings = PruneSettings(criterion="magnitude", fraction=0.5, max_prunes=2, steps_per_prune=2, batch_size=32,
                             record_every=1)
    torch.manual_seed(0)
    family = prune_network(g, None, digits, settings, tmp_path / "run", device="cpu", progress=False)
    for member in family:
        model = archsearch.Genotype.from_dict(member.genotype.to_dict()).build(generic=True)
        masked = sum(int((~m.weight_mask).sum()) for m in model.modules() if hasattr(m, "weight_mask"))
        assert numel(model) - masked == member.params
    assert [m.metrics.get("weights_removed", 0) for m in family][1:] == sorted(
        m.metrics["weights_removed"] for m in family[1:]) and family[-1].params < family[1].params < g.params


@pytest.mark.slow
@pytest.mark.parametrize("space", ["digits-wrn-16-2", "digits-wrn-bottleneck-16-2", "digits-resnet20"])
def test_every_shipped_residual_network_loses_whole_branches_with_sss(tmp_path, digits, space: str) -> None:
    from archsearch.prune.oneshot import prune_once

    g = archsearch.load_space(f"search_spaces/{space}").base_genotype()
    settings = PruneSettings(criterion="sss", one_shot=True, fraction=0.5, steps_per_prune=2, batch_size=32,
                             finetune_epochs=0)
    torch.manual_seed(0)
    member = prune_once(g, None, digits, settings, tmp_path / "run", device="cpu", progress=False)[1]
    again = archsearch.Genotype.from_dict(member.genotype.to_dict())
    model = again.build(generic=True).eval()
    assert numel(model) == member.params < g.params
    with torch.no_grad():
        assert torch.isfinite(model(digits.val_x[:4])).all()
    zeroed = [gene for gene, width in again.genes.items() if width == 0]
    assert len(zeroed) >= member.metrics["branches_removed"] >= 1


def test_a_space_asking_to_prune_a_fixed_gene_is_one_line_and_writes_nothing(tmp_path, capsys) -> None:
    import shutil

    from archsearch.cli import main

    space = tmp_path / "space"
    shutil.copytree("search_spaces/digits-resnet20", space)
    text = (space / "space.toml").read_text()
    (space / "space.toml").write_text(text.replace("[prune]\n", '[prune]\ngenes = ["layer2.0.conv2"]\n'))
    out = tmp_path / "run"
    assert main(["prune", "--space", str(space), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("archsearch: error:")
    assert "gene 'layer2.0.conv2' cannot be pruned: it passes a zero-padded (option-A) shortcut" in err
    assert not out.exists()


def test_fisher_accumulates_in_fp32_when_training_runs_in_bf16():
    """The GPU path trains under bf16 autocast; its CPU twin here: the scores stay fp32 and agree with
    the fp32 scores of the same network and batch."""
    import torch
    from torch.nn import functional as F

    from archsearch.prune.criteria import make_criterion
    from archsearch.prune.loop import _groups
    from archsearch.prune.settings import PruneSettings

    g = archsearch.create_genotype("wrn-10-1", in_channels=1, input_size=8, num_classes=10)
    torch.manual_seed(0)
    model = g.build(generic=True)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
    scores = {}
    for dtype in (torch.float32, torch.bfloat16):
        crit = make_criterion("fisher", 0)
        crit.attach(model, _groups(g, PruneSettings(max_prunes=1)), spatial_sizes(g))
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        crit.after_backward()
        scores[dtype] = crit.scores()
        crit.detach()
    for gene, fp32 in scores[torch.float32].items():
        bf16 = scores[torch.bfloat16][gene]
        assert bf16.dtype == torch.float32
        assert torch.corrcoef(torch.stack([fp32, bf16]))[0, 1] > 0.95, gene


@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_fine_tuning_between_prunes_reads_from_the_device_once(digits, criterion: str) -> None:
    """Scoring channels while fine-tuning (Fisher's per-step accumulation included) adds no host read
    to the steps: on a GPU the pruning loop runs at the trainer's speed between prunes."""
    from strategies import count_host_reads

    from archsearch.prune.loop import _Run

    space = archsearch.load_space("digits-wrn-16-1")
    one_shot = {"one_shot": True, "fraction": 0.5} if criterion in ONE_SHOT_CRITERIA + WEIGHT_CRITERIA else {}
    settings = space.prune_settings({"criterion": criterion, **one_shot})
    genotype = space.base_genotype()
    run = _Run(genotype, genotype.build(generic=True), settings, torch.device("cpu"), digits)
    with count_host_reads() as reads:
        run.trainer.train_steps(3, after_backward=run.criterion.after_backward)
    assert reads == ["_local_scalar_dense"]  # the mean loss of the three steps
