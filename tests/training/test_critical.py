"""Critical points: Hessians by double backward, the second-order test, Newton's search for ∇f = 0."""

import pytest
import torch

from dlnotes.basics import ml_basics
from dlnotes.training import critical

F64 = dict(dtype=torch.float64)


def bowl(t):
    return (t**2).sum(-1)  # x² + y²


def cap(t):
    return -(t**2).sum(-1)  # -x² - y²


def saddle(t):
    return t[..., 0] ** 2 - t[..., 1] ** 2  # x² - y²


@pytest.mark.parametrize("f, kind, eigenvalues", [
    (bowl, "minimum", [2.0, 2.0]), (cap, "maximum", [-2.0, -2.0]), (saddle, "saddle", [-2.0, 2.0])])
def test_quadratics_are_classified_with_their_eigenvalues(f, kind, eigenvalues):
    point = critical.classify_critical_point(f, torch.zeros(2, **F64))
    assert point.kind == kind
    torch.testing.assert_close(point.eigenvalues, torch.tensor(eigenvalues, **F64))


def test_higher_order_critical_points_are_degenerate_but_mixed_signs_are_saddles():
    zero = torch.zeros(2, **F64)
    for f in (lambda t: t[..., 0] ** 4 + t[..., 1] ** 2,  # a minimum
              lambda t: t[..., 0] ** 3 + t[..., 1] ** 2,  # not a minimum
              lambda t: -t[..., 0] ** 4 + t[..., 1] ** 2):  # a saddle
        assert critical.classify_critical_point(f, zero).kind == "degenerate"
    # one zero, one positive, one negative eigenvalue: the negative one already decides
    assert critical.classify_critical_point(lambda t: t[..., 0] ** 2 - t[..., 1] ** 2 + t[..., 2] ** 4,
                                            torch.zeros(3, **F64)).kind == "saddle"


def test_hessian_matches_an_analytic_one():
    # f = x² y + sin(x) e^y: H = [[2y - sin x e^y, 2x + cos x e^y], [2x + cos x e^y, sin x e^y]]
    f = lambda t: t[..., 0] ** 2 * t[..., 1] + torch.sin(t[..., 0]) * torch.exp(t[..., 1])  # noqa: E731
    x, y = torch.tensor(0.7, **F64), torch.tensor(-0.4, **F64)
    s, c, e = torch.sin(x), torch.cos(x), torch.exp(y)
    expected = torch.stack([torch.stack([2 * y - s * e, 2 * x + c * e]), torch.stack([2 * x + c * e, s * e])])
    torch.testing.assert_close(critical.hessian(f, torch.stack([x, y])), expected)


def test_hessian_matches_torch_autograd_functional_on_a_batch():
    torch.manual_seed(0)
    A = torch.randn(4, 4, **F64)
    f = lambda t: torch.tanh(t @ A).pow(3).sum(-1) + (t**2).prod(-1)  # noqa: E731  (..., 4) -> (...)
    points = torch.randn(5, 4, **F64)
    ours = critical.hessian(f, points)  # (5, 4, 4): one Hessian per row
    reference = torch.stack([torch.autograd.functional.hessian(f, p) for p in points])
    assert not torch.allclose(ours[0], ours[1])  # not the same matrix everywhere
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(critical.gradient(f, points[2]),
                               torch.autograd.functional.jacobian(f, points[2]))


def test_hessian_of_a_linear_function_is_zero():
    torch.testing.assert_close(critical.hessian(lambda t: t.sum(-1), torch.ones(2, 3, **F64)), torch.zeros(2, 3, 3, **F64))


def test_second_order_approx_is_exact_for_a_quadratic_and_third_order_accurate_otherwise():
    points = torch.tensor([[0.3, -1.0], [2.0, 0.5]], **F64)
    torch.testing.assert_close(critical.second_order_approx(saddle, torch.tensor([1.0, 1.0], **F64), points),
                               saddle(points))
    center = torch.tensor([0.5, -0.2], **F64)
    errors = [(critical.second_order_approx(critical.himmelblau, center, (center + h)[None])
               - critical.himmelblau(center + h)).abs().item() for h in (1e-2, 1e-3)]
    assert 5e2 < errors[0] / errors[1] < 2e3  # error ∝ h³: a tenth of h, a thousandth of the error


def test_classify_refuses_a_point_that_is_not_critical():
    with pytest.raises(ValueError, match="not a critical point"):
        critical.classify_critical_point(bowl, torch.ones(2, **F64))
    with pytest.raises(ValueError, match="one point"):
        critical.classify_critical_point(bowl, torch.zeros(3, 2, **F64))


def test_minimum_ratio():
    eig = torch.tensor([[-1.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]], **F64)
    torch.testing.assert_close(critical.minimum_ratio(eig), torch.tensor([0.5, 1.0], **F64))


def test_finder_recovers_the_nine_critical_points_of_a_separable_quartic():
    f = lambda t: ((t**2 - 1) ** 2).sum(-1)  # noqa: E731  critical where x, y ∈ {-1, 0, 1}
    g = torch.linspace(-2, 2, 9, **F64)
    found = critical.find_critical_points(f, starts=torch.cartesian_prod(g, g))
    expected = torch.cartesian_prod(*[torch.tensor([-1.0, 0.0, 1.0], **F64)] * 2)
    assert len(found) == 9
    assert torch.cdist(expected, found).min(dim=1).values.max() < 1e-8
    kinds = [critical.classify_critical_point(f, p).kind for p in found]
    assert kinds.count("minimum") == 4 and kinds.count("saddle") == 4 and kinds.count("maximum") == 1


def test_finder_recovers_himmelblaus_minima_and_maximum():
    g = torch.linspace(-5, 5, 10, **F64)
    found = critical.find_critical_points(critical.himmelblau, starts=torch.cartesian_prod(g, g), bounds=(-6, 6))
    assert len(found) == 9
    known = torch.tensor([[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126],
                          [-0.270845, -0.923039]], **F64)  # four minima, one maximum
    assert torch.cdist(known, found).min(dim=1).values.max() < 1e-5
    kinds = [critical.classify_critical_point(critical.himmelblau, p).kind for p in found]
    assert sorted(kinds) == ["maximum"] + ["minimum"] * 4 + ["saddle"] * 4


def test_two_weight_loss_has_a_saddle_at_the_origin_and_a_valley_of_minima():
    point = critical.classify_critical_point(critical.two_weight_loss, torch.zeros(2, **F64))
    assert point.kind == "saddle"
    torch.testing.assert_close(critical.hessian(critical.two_weight_loss, torch.zeros(2, **F64)),
                               torch.tensor([[0.0, -2.0], [-2.0, 0.0]], **F64))
    u = point.eigenvectors[:, 0]  # eigenvalue -2: along w1 = w2
    assert critical.two_weight_loss(0.1 * u) < critical.two_weight_loss(torch.zeros(2, **F64))
    # on the valley w1 w2 = 1 the loss is 0 and one eigenvalue is 0: the second order cannot decide
    valley = critical.classify_critical_point(critical.two_weight_loss, torch.tensor([2.0, 0.5], **F64))
    assert valley.kind == "degenerate" and abs(valley.eigenvalues[0]) < 1e-12


def test_newton_on_gradient_validates_its_input():
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        critical.newton_on_gradient(bowl, torch.zeros(2, **F64))
    with pytest.raises(ValueError, match="num_steps"):
        critical.newton_on_gradient(bowl, torch.zeros(1, 2, **F64), num_steps=0)


def test_mlp_loss_matches_nn_modules_with_the_same_weights():
    widths = (2, 3, 1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    X, y = torch.randn(7, 2, **F64), torch.randn(7, **F64)
    theta = torch.cat([net[0].weight.T.reshape(-1), net[0].bias, net[2].weight.T.reshape(-1), net[2].bias]).detach()
    assert len(theta) == ml_basics.mlp_num_params(widths)
    expected = ((net(X)[:, 0] - y) ** 2).mean()
    torch.testing.assert_close(critical.mlp_loss(theta, X, y, widths=widths), expected)
    batch = torch.stack([theta, torch.zeros_like(theta)])  # (2, P): two networks at once
    torch.testing.assert_close(critical.mlp_loss(batch, X, y, widths=widths)[0], expected)
    with pytest.raises(ValueError, match="need 13 parameters"):
        critical.mlp_loss(theta[:-1], X, y, widths=widths)


def test_mlp_critical_points_are_critical_and_described():
    X = torch.linspace(-2, 2, 20, **F64)[:, None]
    y = torch.sin(3 * X[:, 0])
    out = critical.mlp_critical_points(X, y, widths=(1, 3, 1), num_models=8, lr=0.2, train_steps=300,
                                       newton_steps=60, generator=torch.Generator().manual_seed(0))
    assert out["converged"] >= 1
    assert ((out["ratio"] >= 0) & (out["ratio"] <= 1)).all()
    assert (out["min_eig"] <= out["max_eig"]).all()
