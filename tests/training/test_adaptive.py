"""Adaptive optimisers against torch.optim step by step, their first steps by hand, schedules, runs."""

import math

import pytest
import torch
from torch import nn

from dlnotes import data
from dlnotes.basics import linreg
from dlnotes.training import adaptive as ad
from dlnotes.training import optimization as opt

PAIRS = {  # scratch and torch.optim with the same settings
    "adagrad": (lambda p: ad.AdaGradScratch(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "rmsprop": (lambda p: ad.RMSPropScratch(p, lr=0.01, alpha=0.9),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9)),
    "adam": (lambda p: ad.AdamScratch(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-l2": (lambda p: ad.AdamScratch(p, lr=0.01, weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    "adamw": (lambda p: ad.AdamScratch(p, lr=0.01, weight_decay=0.1, decoupled=True),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
}


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _batches(n=30):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 5, generator=g, dtype=torch.float64),
             torch.randn(16, 3, generator=g, dtype=torch.float64)) for _ in range(n)]


@pytest.mark.parametrize("name", PAIRS)
def test_scratch_optimiser_equals_torch_optim_step_by_step(name):
    scratch, reference = PAIRS[name]
    gap = ad.max_param_gap(_net, scratch=scratch, reference=reference, batches=_batches(),
                           loss_fn=nn.functional.mse_loss)
    assert gap < 1e-12
    moved = ad.max_param_gap(_net, scratch=scratch, reference=lambda p: torch.optim.SGD(p, lr=1e-9),
                             batches=_batches(), loss_fn=nn.functional.mse_loss)
    assert moved > 1e-3  # the comparison can fail: the parameters did move


def test_a_wrong_setting_is_caught_by_the_comparison():
    gap = ad.max_param_gap(_net, scratch=lambda p: ad.AdamScratch(p, lr=0.01, betas=(0.8, 0.999)),
                           reference=lambda p: torch.optim.Adam(p, lr=0.01), batches=_batches(),
                           loss_fn=nn.functional.mse_loss)
    assert gap > 1e-4


def test_first_steps_by_hand():
    """AdaGrad and bias-corrected Adam step lr sign(g); RMSProp lr/sqrt(1-alpha); raw Adam lr (1-b1)/sqrt(1-b2)."""
    g = torch.tensor([1e-4, -3.0, 50.0], dtype=torch.float64)
    sign = torch.sign(g)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-6, atol=0)  # noqa: E731 (eps is tiny)
    close(ad.first_step(lambda p: ad.AdaGradScratch(p, lr=0.1, eps=0.0), g), -0.1 * sign)
    close(ad.first_step(lambda p: ad.AdamScratch(p, lr=0.1, eps=0.0), g), -0.1 * sign)
    close(ad.first_step(lambda p: ad.RMSPropScratch(p, lr=0.1, alpha=0.99, eps=0.0), g), -0.1 / math.sqrt(0.01) * sign)
    close(ad.first_step(lambda p: ad.AdamScratch(p, lr=0.1, eps=0.0, bias_correction=False), g),
          -0.1 * 0.1 / math.sqrt(0.001) * sign)


def test_adagrad_steps_shrink_like_one_over_sqrt_t_under_a_constant_gradient():
    p = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = ad.AdaGradScratch([p], lr=1.0, eps=0.0)
    positions = []
    for _ in range(16):
        p.grad = torch.ones(1, dtype=torch.float64)
        optimizer.step()
        positions.append(p.item())
    steps = -torch.diff(torch.tensor([0.0] + positions, dtype=torch.float64))
    torch.testing.assert_close(steps, 1 / torch.arange(1, 17, dtype=torch.float64).sqrt())


def test_parameters_without_grad_are_skipped_and_their_state_does_not_advance():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    optimizer = ad.AdamScratch([a, b], lr=0.1)
    a.grad = torch.ones(2)
    optimizer.step()
    assert torch.equal(b.detach(), torch.ones(2)) and "step" not in optimizer.states[1]
    assert optimizer.states[0]["step"] == 1
    optimizer.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("make, match", [
    (lambda p: ad.AdaGradScratch(p, lr=0.0), "lr must be positive"),
    (lambda p: ad.RMSPropScratch(p, lr=0.1, alpha=1.0), r"alpha must lie in \[0, 1\)"),
    (lambda p: ad.AdamScratch(p, lr=0.1, betas=(0.9, -0.1)), r"betas\[1\] must lie"),
    (lambda p: ad.AdamScratch(p, lr=0.1, weight_decay=-1.0), "weight_decay must be >= 0"),
    (lambda p: ad.AdamScratch(p, lr=0.1, eps=-1.0), "eps must be >= 0"),
])
def test_bad_settings_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make([nn.Parameter(torch.zeros(1))])


def test_warmup_cosine_factor_shape_and_errors():
    f = lambda s: ad.warmup_cosine_factor(s, warmup_steps=10, total_steps=110, start_factor=0.1, final_factor=0.05)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55) and f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.05 + 0.95 / 2) and f(110) == pytest.approx(0.05) and f(500) == pytest.approx(0.05)
    values = [f(s) for s in range(10, 111)]
    assert all(x >= y for x, y in zip(values, values[1:]))  # decays monotonically after warm-up
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        ad.warmup_cosine_factor(0, warmup_steps=5, total_steps=5)
    with pytest.raises(ValueError, match="step must be >= 0"):
        ad.warmup_cosine_factor(-1, warmup_steps=1, total_steps=5)


def test_scratch_schedule_equals_torch_schedulers():
    p = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([p], lr=0.5)
    scheduler = ad.torch_warmup_cosine(optimizer, warmup_steps=7, total_steps=40, start_factor=0.01, final_factor=0.1)
    for step in range(40):
        expected = 0.5 * ad.warmup_cosine_factor(step, warmup_steps=7, total_steps=40, start_factor=0.01, final_factor=0.1)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-6), step
        optimizer.step()
        scheduler.step()


def test_adaptive_optimisers_shrug_off_a_badly_scaled_feature_plain_sgd_does_not():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(200, 1, generator=g)
    X_bad = X * torch.tensor([100.0, 1.0, 1.0])
    best = opt.least_squares_loss(X_bad, y)
    adam = ad.fit_linear(X_bad, y, make_optimizer=lambda p: ad.AdamScratch(p, lr=0.1), num_steps=300)
    sgd_fast = ad.fit_linear(X_bad, y, make_optimizer=lambda p: linreg.SGDScratch(p, lr=0.1), num_steps=300)
    sgd_safe = ad.fit_linear(X_bad, y, make_optimizer=lambda p: linreg.SGDScratch(p, lr=1e-4), num_steps=300)
    assert adam[-1] - best < 1e-2
    assert math.isinf(sgd_fast[-1])  # the lr that suits the unit-scale features diverges
    assert sgd_safe[-1] - best > 0.5  # the stable lr leaves the other weights almost untrained
    schedule = ad.fit_linear(X_bad, y, make_optimizer=lambda p: ad.AdamScratch(p, lr=0.1), num_steps=300,
                             lr_factor=lambda s: ad.warmup_cosine_factor(s, warmup_steps=20, total_steps=300))
    assert schedule[-1] - best < 1e-2


def test_train_with_schedule_is_seeded_and_learns():
    images = data.load_images("digits-sklearn")
    kwargs = dict(widths=(64, 32, 10), lr=0.01, warmup_steps=5, num_epochs=3, batch_size=64)
    run = ad.train_with_schedule(images, seed=0, **kwargs)
    again = ad.train_with_schedule(images, seed=0, **kwargs)
    assert run.losses == again.losses and run.accuracy == again.accuracy
    assert run.accuracy > 0.8 and run.losses[-1] < run.losses[0] / 3
    assert len(run.losses) == 3 * math.ceil(len(images.y_train) / 64)
