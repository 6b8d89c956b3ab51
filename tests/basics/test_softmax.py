"""Softmax regression: softmax, log-softmax, cross-entropy and the scratch model against PyTorch."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlnotes import config, data, train
from dlnotes.basics import linreg, softmax


def logits(B=6, K=5, *, scale=3.0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(B, K, generator=g, dtype=dtype)


# ---------------------------------------------------------------- softmax and log-softmax


def test_softmax_matches_torch_rows_sum_to_one_and_keep_the_order():
    O = logits()
    P = softmax.softmax(O, dim=1)
    torch.testing.assert_close(P, torch.softmax(O, dim=1))
    torch.testing.assert_close(P.sum(dim=1), torch.ones(len(O), dtype=O.dtype))
    assert (P > 0).all()
    assert torch.equal(P.argsort(dim=1), O.argsort(dim=1))  # a monotone map: same ranking
    torch.testing.assert_close(softmax.softmax(O.T, dim=0), P.T)  # dim is honoured


def test_softmax_ignores_a_constant_shift_of_the_logits():
    O = logits()
    torch.testing.assert_close(softmax.softmax(O + 7.5, dim=1), softmax.softmax(O, dim=1))


def test_naive_softmax_overflows_where_log_softmax_does_not():
    O = torch.tensor([[1000.0, 0.0, -1000.0]])
    assert torch.isnan(softmax.softmax(O)).any()  # exp(1000) = inf, inf / inf = nan
    stable = softmax.log_softmax(O)
    assert torch.isfinite(stable).all()
    torch.testing.assert_close(stable, torch.log_softmax(O, dim=-1))
    torch.testing.assert_close(stable.exp(), torch.tensor([[1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
def test_log_softmax_matches_torch_at_every_scale(scale):
    for dtype in (torch.float32, torch.float64):
        O = logits(scale=scale, dtype=dtype)
        torch.testing.assert_close(softmax.log_softmax(O, dim=1), torch.log_softmax(O, dim=1))
        torch.testing.assert_close(softmax.log_softmax(O, dim=0), torch.log_softmax(O, dim=0))


def test_log_softmax_gradient_passes_gradcheck():
    O = logits(4, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda o: softmax.log_softmax(o, dim=1), (O,))
    assert torch.autograd.gradcheck(lambda o: softmax.softmax(o, dim=1), (O,))


# ---------------------------------------------------------------- cross-entropy


def test_cross_entropy_matches_f_cross_entropy_and_the_one_hot_form():
    O, y = logits(), torch.tensor([0, 4, 2, 2, 1, 3])
    loss = softmax.cross_entropy(O, y)
    torch.testing.assert_close(loss, F.cross_entropy(O, y))
    one_hot = F.one_hot(y, num_classes=5).to(O.dtype)
    torch.testing.assert_close(loss, -(one_hot * torch.log_softmax(O, dim=1)).sum(dim=1).mean())


def test_cross_entropy_of_a_uniform_guess_is_log_k():
    O, y = torch.zeros(4, 10), torch.tensor([0, 3, 5, 9])
    torch.testing.assert_close(softmax.cross_entropy(O, y), torch.log(torch.tensor(10.0)))


def test_cross_entropy_with_huge_logits_and_its_gradient_match_pytorch():
    O = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0], [-500.0, 500.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([2, 1, 0])
    ours, ref = O.clone().requires_grad_(), O.clone().requires_grad_()
    loss = softmax.cross_entropy(ours, y)
    loss_ref = F.cross_entropy(ref, y)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, loss_ref)
    torch.testing.assert_close(loss.detach(), torch.tensor((2000.0 + 0.0 + 1000.0) / 3, dtype=torch.float64))
    loss.backward()
    loss_ref.backward()
    torch.testing.assert_close(ours.grad, ref.grad)


def test_cross_entropy_gradcheck_and_the_formula_softmax_minus_one_hot():
    O, y = logits(5, 4).requires_grad_(), torch.tensor([3, 0, 1, 1, 2])
    assert torch.autograd.gradcheck(lambda o: softmax.cross_entropy(o, y), (O,))
    (autograd,) = torch.autograd.grad(softmax.cross_entropy(O, y), O)
    expected = (torch.softmax(O, dim=1) - F.one_hot(y, 4)).detach() / len(y)
    torch.testing.assert_close(softmax.cross_entropy_grad(O.detach(), y), expected)
    torch.testing.assert_close(softmax.cross_entropy_grad(O.detach(), y), autograd)
    # each row of the gradient sums to zero: raising every logit equally changes nothing
    torch.testing.assert_close(autograd.sum(dim=1), torch.zeros(5, dtype=O.dtype))


def test_cross_entropy_rejects_bad_labels_with_clear_messages():
    O = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"not one-hot.*argmax"):
        softmax.cross_entropy(O, F.one_hot(torch.tensor([0, 1, 2]), 4))
    with pytest.raises(ValueError, match=r"integer class indices.*float32.*long"):
        softmax.cross_entropy(O, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"expected shape \(3,\), got \(2,\)"):
        softmax.cross_entropy(O, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"expected shape \(3,\), got \(3, 1\)"):
        softmax.cross_entropy(O, torch.tensor([[0], [1], [2]]))
    with pytest.raises(ValueError, match=r"0\.\.3 for 4 classes, got values from 0 to 4"):
        softmax.cross_entropy(O, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"got values from -1"):
        softmax.cross_entropy_grad(O, torch.tensor([-1, 0, 1]))
    with pytest.raises(ValueError, match=r"float tensor of shape \(B, K\)"):
        softmax.cross_entropy(torch.zeros(3, 4, dtype=torch.long), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"float tensor of shape \(B, K\)"):
        softmax.softmax_mse_loss(torch.zeros(12), torch.tensor([0, 1, 2]))


# ---------------------------------------------------------------- the MSE alternative


def test_softmax_mse_loss_matches_its_definition_and_passes_gradcheck():
    O, y = logits(5, 4), torch.tensor([3, 0, 1, 1, 2])
    target = F.one_hot(y, 4).to(O.dtype)
    expected = F.mse_loss(torch.softmax(O, dim=1), target, reduction="sum") / len(y)
    torch.testing.assert_close(softmax.softmax_mse_loss(O, y), expected)
    assert torch.autograd.gradcheck(lambda o: softmax.softmax_mse_loss(o, y), (O.requires_grad_(),))


def test_mse_gradient_vanishes_when_confidently_wrong_but_cross_entropy_does_not():
    y = torch.tensor([0])
    norms = {}
    for loss_fn in (softmax.cross_entropy, softmax.softmax_mse_loss):
        O = torch.tensor([[0.0, 20.0, 0.0]], dtype=torch.float64, requires_grad=True)  # sure of class 1
        (grad,) = torch.autograd.grad(loss_fn(O, y), O)
        norms[loss_fn.__name__] = grad.norm().item()
    assert norms["cross_entropy"] > 1.4  # |p - y| -> sqrt(2)
    assert norms["softmax_mse_loss"] < 1e-7  # squashed by the softmax's Jacobian


# ---------------------------------------------------------------- binary case


def test_sigmoid_bce_equals_two_class_softmax_with_logits_zero_and_z():
    z = torch.linspace(-30, 30, 13, dtype=torch.float64)
    y = (torch.arange(13) % 2).long()
    bce = F.binary_cross_entropy_with_logits(z, y.to(z.dtype))
    two_class = torch.stack([torch.zeros_like(z), z], dim=1)  # (B, 2)
    torch.testing.assert_close(bce, softmax.cross_entropy(two_class, y))
    torch.testing.assert_close(torch.sigmoid(z), torch.softmax(two_class, dim=1)[:, 1])


# ---------------------------------------------------------------- the model


def test_scratch_model_matches_flatten_plus_linear_with_the_same_weights():
    torch.manual_seed(0)
    scratch = softmax.SoftmaxRegressionScratch(num_inputs=12, num_outputs=3)
    reference = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    X = torch.arange(24.0).reshape(2, 1, 3, 4) / 24  # (B, C, H, W)
    assert not torch.allclose(scratch(X), reference(X))  # they differ before the copy
    with torch.no_grad():
        reference[1].weight.copy_(scratch.W.T)
        reference[1].bias.copy_(scratch.b)
    torch.testing.assert_close(scratch(X), reference(X))
    assert scratch(X).shape == (2, 3)
    with pytest.raises(ValueError, match="has 9 values but the model expects 12"):
        scratch(torch.zeros(2, 1, 3, 3))


def test_predict_returns_argmax_in_batches():
    torch.manual_seed(0)
    model = softmax.SoftmaxRegressionScratch(num_inputs=4, num_outputs=3, sigma=1.0)
    X = torch.randn(10, 4)
    expected = model(X).argmax(dim=1)
    assert torch.equal(softmax.predict(model, X, batch_size=3), expected)
    assert softmax.predict(model, X[:0]).shape == (0,)


def test_scratch_model_overfits_a_small_real_batch():
    g = config.seed_everything(0)
    images = data.load_images("digits-sklearn", num_train=64, num_test=20)  # small, offline
    model = softmax.SoftmaxRegressionScratch(num_inputs=64, num_outputs=10)
    loader = data.TensorLoader(images.X_train, images.y_train, batch_size=16, shuffle=True, generator=g)
    history = train.fit(model=model, train_loader=loader, loss_fn=softmax.cross_entropy,
                        optimizer=linreg.SGDScratch(model.parameters(), lr=1.0), num_epochs=100,
                        metric=train.accuracy, progress=False)
    assert history["train_loss"][0] > 2.0  # starts near log 10 = 2.30
    assert history.final("train_loss") < 0.1
    assert history.final("train_accuracy") == 1.0


def test_shuffle_pixels_keeps_each_images_pixels_and_destroys_their_order():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(5, 1, 6, 6, generator=g)
    S = softmax.shuffle_pixels(X, generator=g)
    assert S.shape == X.shape
    torch.testing.assert_close(S.flatten(1).sort(1).values, X.flatten(1).sort(1).values)  # same multiset per image
    assert (S != X).float().mean() > 0.9  # but (almost) every pixel moved
    again = softmax.shuffle_pixels(X, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(S, again)  # each call draws new orders
