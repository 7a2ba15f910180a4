"""The shared trainer: schedule, augmentation on the device, the inner split, early
stopping, hooks and the per-epoch log, and exact resume after a kill (CPU)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from mtnet_toy import toy_cohort

from mtnet.errors import InputError
from mtnet import trainer as T
from mtnet.model.mtnet.api import MTnetTask
from mtnet.model.mtnet.network import MTnet, MTnetConfig


def test_schedule_warms_up_then_decays_to_zero():
    cos = T.Schedule("cosine", epochs=10, warmup=2)
    f = [cos(e) for e in range(11)]
    assert f[0] == pytest.approx(1 / 3) and f[1] == pytest.approx(2 / 3) and f[2] == 1.0
    assert all(a > b for a, b in zip(f[2:], f[3:])) and f[10] == pytest.approx(0.0)
    assert f[6] == pytest.approx(0.5)  # half-way through the decay
    poly = T.Schedule("poly", epochs=40, power=0.9)
    assert poly(0) == 1.0 and poly(40) == 0.0 and poly(20) == pytest.approx(0.5 ** 0.9)


def _blocks(n=4, size=16):
    """Binary images of random boxes: the image is its own mask."""
    g = np.random.default_rng(0)
    x = np.zeros((n, 1, size, size, size), np.float32)
    for i in range(n):
        lo = g.integers(2, 6, 3)
        hi = lo + g.integers(5, 9, 3)
        x[i, 0, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = 1.0
    return torch.from_numpy(x)


def test_augmentation_warps_image_and_mask_identically():
    image = _blocks()
    mask = image.to(torch.uint8)
    aug = T.Augmentation(T.AugmentConfig(rotate_deg=15, scale=0.15, noise_std=0.0,
                                         intensity_scale=0.0, intensity_shift=0.0))
    g = torch.Generator().manual_seed(1)
    out, (m,) = aug(image, [mask], g)
    assert m.dtype == torch.uint8 and set(m.unique().tolist()) <= {0, 1}
    assert not torch.equal(out, image)  # it moved
    pred, ref = out > 0.5, m.bool()
    dice = 2 * (pred & ref).sum() / (pred.sum() + ref.sum())
    assert dice > 0.95


def test_augmentation_never_empties_a_mask():
    """A one-voxel lesion between grid points (the threshold at 0.5 would lose it under a
    warp) keeps the voxels its warped coverage touches; a lesion the warp moves out of the
    grid leaves its sample unwarped; an empty mask stays empty."""
    image = torch.rand(64, 1, 8, 8, 8)
    mask = torch.zeros(64, 1, 8, 8, 8, dtype=torch.uint8)
    mask[:32, 0, 4, 4, 4] = 1  # one voxel
    mask[32:48, 0, 0, 0, 0] = 1  # in a corner: a rotation can carry it off the grid
    aug = T.Augmentation(T.AugmentConfig(rotate_deg=30, scale=0.3, noise_std=0.0,
                                         intensity_scale=0.0, intensity_shift=0.0))
    out, (m,) = aug(image, [mask], torch.Generator().manual_seed(0))
    present = (m != 0).flatten(1).any(1)
    assert present[:48].all() and not present[48:].any()
    # the same warp (the affine is the generator's first draw) thresholded plainly
    theta = aug.affine(64, torch.Generator().manual_seed(0), "cpu")
    plain = F.grid_sample(mask.float(), F.affine_grid(theta, list(mask.shape), align_corners=False),
                          align_corners=False) >= 0.5
    assert not plain.flatten(1).any(1)[:32].all()  # the threshold alone loses one-voxel lesions
    unwarped = torch.tensor([torch.equal(out[i], image[i]) for i in range(64)])
    assert unwarped[32:48].any()  # a corner lesion carried off the grid: left unwarped
    assert all(torch.equal(m[i], mask[i]) for i in range(64) if unwarped[i])


def test_flips_are_exact_and_draws_repeat_with_the_seed():
    image = torch.rand(6, 1, 8, 10, 12)
    aug = T.Augmentation(T.AugmentConfig(rotate_deg=0, scale=0, flip_axes=(0, 2), noise_std=0,
                                         intensity_scale=0, intensity_shift=0))
    out, _ = aug(image, [], torch.Generator().manual_seed(3))
    for i in range(6):
        candidates = [image[i], image[i].flip(1), image[i].flip(3), image[i].flip(1).flip(3)]
        assert any(torch.allclose(out[i], c, atol=1e-5) for c in candidates)
    again, _ = aug(image, [], torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    off = T.Augmentation(T.AugmentConfig(enabled=False))
    assert off(image, [], torch.Generator())[0] is image


def test_intensity_and_noise_change_the_image_only():
    image = torch.full((4, 1, 8, 8, 8), 0.5)
    aug = T.Augmentation(T.AugmentConfig(spatial=False, intensity_scale=0.2, intensity_shift=0.1,
                                         noise_std=0.05))
    mask = torch.ones(4, 1, 8, 8, 8, dtype=torch.uint8)
    out, (m,) = aug(image, [mask], torch.Generator().manual_seed(0))
    means = out.mean(dim=(1, 2, 3, 4))
    assert torch.equal(m, mask)
    assert ((means > 0.5 * 0.8 - 0.1 - 0.01) & (means < 0.5 * 1.2 + 0.1 + 0.01)).all()
    assert len(set(means.tolist())) == 4 and (out.std(dim=(1, 2, 3, 4)) < 0.051).all()


def test_hard_dice_equals_monai_dice_of_the_argmax_ties_included():
    from monai.metrics import compute_dice

    g = torch.Generator().manual_seed(3)
    logits = torch.randint(-2, 3, (6, 2, 5, 6, 7), generator=g).float()  # many ties
    target = (torch.rand((6, 1, 5, 6, 7), generator=g) > 0.6).float()
    target[0] = 0
    logits[0, 1] = logits[0, 0] - 1  # both empty: Dice 1
    onehot = lambda m: torch.cat([1 - m, m], dim=1)  # noqa: E731
    pred = (logits.argmax(dim=1, keepdim=True) == 1).float()
    ref = compute_dice(onehot(pred), onehot(target), include_background=False,
                       ignore_empty=False)
    assert float(T.hard_dice(logits, target)) == pytest.approx(float(ref.mean()), abs=1e-6)
    assert float(ref[0]) == 1.0
    # more than two channels: foreground is channel 1 of the argmax
    three = torch.cat([logits, torch.full_like(logits[:, :1], -9.0)], dim=1)
    assert float(T.hard_dice(three, target)) == pytest.approx(float(ref.mean()), abs=1e-6)


def test_inner_split_is_stratified_by_center_and_outcome():
    strata = np.array(["A"] * 40 + ["B"] * 25)
    y = np.array([1] * 10 + [0] * 30 + [1] * 5 + [0] * 20)
    inner = T.stratified_holdout(strata, y, 0.2, seed=5)
    for s, outcome, n in (("A", 1, 10), ("A", 0, 30), ("B", 1, 5), ("B", 0, 20)):
        cell = (strata == s) & (y == outcome)
        assert inner[cell].sum() == round(0.2 * n)
    assert np.array_equal(inner, T.stratified_holdout(strata, y, 0.2, seed=5))
    assert not np.array_equal(inner, T.stratified_holdout(strata, y, 0.2, seed=6))
    # another center added: A's and B's draws are unchanged
    more = T.stratified_holdout(np.r_[strata, ["C"] * 10], np.r_[y, [0] * 8 + [1] * 2], 0.2, seed=5)
    assert np.array_equal(more[:65], inner)
    # few events: one still goes to the inner split, and one stays to train on
    y_few = np.zeros(30, int)
    y_few[[3, 17]] = 1
    small = T.stratified_holdout(np.array(["A", "B"] * 15), y_few, 0.1, seed=1)
    assert small[y_few == 1].sum() == 1 and (~small)[y_few == 1].sum() == 1


# --------------------------------------------------------------------------- fits


class _Scripted:
    """A task whose inner metrics follow a script; the loss pulls a linear model to 0."""

    def __init__(self, aucs):
        self.aucs, self.n_train, self.calls = list(aucs), 8, 0

    def to(self, device):
        self.x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)).to(device)

    def train_batch(self, index, generator):
        return {"x": self.x[index]}

    def loss(self, model, batch):
        loss = model(batch["x"]).pow(2).mean()
        return loss, {"bce": loss.detach()}

    def evaluate(self, model):
        auc = self.aucs[min(self.calls, len(self.aucs) - 1)]
        self.calls += 1
        return {"inner_auc": auc, "inner_loss": 1.0}


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    model = torch.nn.Linear(3, 1)
    snapshots = {}
    hook = lambda event, info: snapshots.__setitem__(  # noqa: E731
        info["epoch"], {k: v.clone() for k, v in info["model"].state_dict().items()}
    ) if event == "epoch_end" else None
    cfg = T.TrainConfig(threads=1, epochs=20, batch_size=4, patience=3, min_epochs=1, learning_rate=0.05,
                        augment=T.AugmentConfig(enabled=False))
    res = T.fit(model, _Scripted([0.5, 0.8, 0.7, 0.8, 0.6, 0.9]), cfg, seed=1, workdir=tmp_path,
                hooks=[hook])
    assert res.stopped_early and res.epochs_run == 5 and res.best_epoch == 2
    assert all(torch.equal(v, snapshots[2][k]) for k, v in model.state_dict().items())
    assert res.best_metrics["inner_auc"] == 0.8


def test_monitor_last_trains_every_epoch_and_keeps_the_last_weights(tmp_path):
    model = torch.nn.Linear(3, 1)
    last = {}
    hook = lambda event, info: last.update(  # noqa: E731
        {k: v.clone() for k, v in info["model"].state_dict().items()}) if event == "epoch_end" else None
    cfg = T.TrainConfig(threads=1, epochs=6, batch_size=4, patience=1, min_epochs=1,
                        learning_rate=0.05, monitor="last", augment=T.AugmentConfig(enabled=False))
    res = T.fit(model, _Scripted([0.9, 0.5, 0.4, 0.3, 0.2, 0.1]), cfg, seed=1, hooks=[hook])
    assert not res.stopped_early and res.epochs_run == 6 and res.best_epoch == 6
    assert all(torch.equal(v, last[k]) for k, v in model.state_dict().items())


def test_ties_in_auc_go_to_the_lower_inner_loss():
    stop = T.EarlyStopping("inner_auc", patience=0, min_epochs=0)
    assert stop.update(1, {"inner_auc": 0.7, "inner_loss": 0.5})
    assert not stop.update(2, {"inner_auc": 0.7, "inner_loss": 0.6})
    assert stop.update(3, {"inner_auc": 0.7, "inner_loss": 0.4})
    assert stop.update(4, {"inner_auc": math.nan, "inner_loss": 0.1}) is False
    by_loss = T.EarlyStopping("inner_loss", patience=0, min_epochs=0)
    assert by_loss.update(1, {"inner_auc": 0.9, "inner_loss": 0.5})
    assert by_loss.update(2, {"inner_auc": 0.1, "inner_loss": 0.4})


class _Separable:
    """Logistic regression on two well-separated clouds: a learnable problem."""

    n_train = 64

    def to(self, device):
        g = torch.Generator().manual_seed(0)
        self.y = (torch.arange(64) % 2).float().to(device)
        self.x = (torch.randn(64, 2, generator=g) + 3 * self.y[:, None]).to(device)

    def train_batch(self, index, generator):
        return {"x": self.x[index], "y": self.y[index]}

    def loss(self, model, batch):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(batch["x"]).squeeze(1), batch["y"])
        return loss, {"bce": loss}

    def evaluate(self, model):
        return {}


def test_loss_goes_down_on_a_learnable_problem(tmp_path):
    cfg = T.TrainConfig(threads=1, epochs=15, batch_size=16, learning_rate=0.1, warmup_epochs=1,
                        augment=T.AugmentConfig(enabled=False))
    res = T.fit(torch.nn.Linear(2, 1), _Separable(), cfg, seed=0, workdir=tmp_path)
    log = pd.read_csv(tmp_path / T.LOG_FILE, sep="\t", na_values=["NA"])
    assert list(log.columns) == T.LOG_COLUMNS and len(log) == 15
    assert log["train_loss"].iloc[-1] < 0.3 * log["train_loss"].iloc[0]
    assert res.best_epoch is None and not res.stopped_early  # no inner split: no stopping
    assert log["inner_auc"].isna().all() and (log["seconds"] >= 0).all()
    assert log["lr"].iloc[0] == pytest.approx(0.05) and log["lr"].iloc[1] == pytest.approx(0.1)


# --------------------------------------------------------------------------- kill and resume


def _mtnet_task():
    toy = toy_cohort(12, seed=4, grid=16)
    arrays = {"image": torch.from_numpy(toy["crops"]["image"])[:, None],
              "tumor": torch.from_numpy(toy["crops"]["tumor"])[:, None],
              "clinical": torch.from_numpy(toy["clinical"].astype(np.float32)),
              "y": torch.from_numpy(toy["y"].astype(np.float32))}
    inner = T.stratified_holdout(toy["strata"], toy["y"], 0.25, seed=2)
    task = MTnetTask(arrays, np.flatnonzero(~inner), np.flatnonzero(inner), 1.5, 1.0,
                     T.AugmentConfig(), eval_batch=4)
    return task, toy["clinical"].shape[1]


def _model(n_factors):
    torch.manual_seed(0)
    return MTnet(MTnetConfig(n_factors=n_factors, channels=(4, 8, 16), clinical_hidden=(8, 8),
                             head_hidden=8, dropout=0.3))


class _Kill(Exception):
    pass


def test_a_run_killed_after_epoch_k_and_resumed_ends_identical(tmp_path):
    cfg = T.TrainConfig(threads=1, epochs=5, batch_size=4, patience=0, min_epochs=0, warmup_epochs=1,
                        learning_rate=3e-3)
    task, nf = _mtnet_task()
    whole = _model(nf)
    ref = T.fit(whole, task, cfg, seed=9, workdir=tmp_path / "whole")

    def kill_after_2(event, info):
        if event == "epoch_end" and info["epoch"] == 2:
            raise _Kill

    task, _ = _mtnet_task()
    killed = _model(nf)
    with pytest.raises(_Kill):
        T.fit(killed, task, cfg, seed=9, workdir=tmp_path / "killed", hooks=[kill_after_2])
    assert len(pd.read_csv(tmp_path / "killed" / T.LOG_FILE, sep="\t")) == 2
    task, _ = _mtnet_task()
    resumed = _model(nf)
    res = T.fit(resumed, task, cfg, seed=9, workdir=tmp_path / "killed", resume=True)

    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics = [c for c in T.LOG_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(ref.history[metrics], res.history[metrics])
    assert res.best_epoch == ref.best_epoch
    # and a different seed gives different weights (the test can fail)
    other = _model(nf)
    task, _ = _mtnet_task()
    T.fit(other, task, cfg, seed=10)
    assert not all(torch.equal(a[k], other.state_dict()[k]) for k in a)


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    cfg = T.TrainConfig(threads=1, epochs=1, batch_size=4, augment=T.AugmentConfig(enabled=False))
    T.fit(torch.nn.Linear(2, 1), _Separable(), cfg, seed=0, workdir=tmp_path)
    other = T.TrainConfig(threads=1, epochs=2, batch_size=4, augment=T.AugmentConfig(enabled=False))
    with pytest.raises(InputError, match="another training"):
        T.fit(torch.nn.Linear(2, 1), _Separable(), other, seed=0, workdir=tmp_path, resume=True)


def test_device_resolution():
    assert T.resolve_device("cpu").type == "cpu"
    assert T.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no GPU"):
            T.resolve_device("cuda")


def test_training_on_the_cpu_runs_deterministic_kernels_without_importing_inductor():
    """The switch is on inside ``runtime`` and restored after; torch._inductor (a 2-4 s
    import) is loaded only when compiled code needs Inductor's own deterministic mode."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from mtnet import trainer as T\n"
        "cpu = torch.device('cpu')\n"
        "with T.runtime(cpu, 1):\n"
        "    on = torch.are_deterministic_algorithms_enabled()\n"
        "after = torch.are_deterministic_algorithms_enabled()\n"
        "plain = 'torch._inductor' in sys.modules\n"
        "with T.runtime(cpu, 1, compiled=True):\n"
        "    import torch._inductor.config as c\n"
        "    inductor = c.deterministic\n"
        "print(on, after, plain, inductor, c.deterministic)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "False", "True", "False"]
