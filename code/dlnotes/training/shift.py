"""Distribution shift: covariate shift corrected by importance weights, label shift by re-estimated priors.

Both experiments use small generated data whose true distributions are known, so every estimate
(the density ratio, the new class priors) can be compared with the truth. The models are
logistic and softmax regression fitted to convergence with L-BFGS, so that differences come from
the data and the weights, not from how long something was trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


def normal_density(x: Tensor, *, mean: float, std: float) -> Tensor:
    """The density of N(mean, std²) at each x."""
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def ring_label_probability(x: Tensor, *, radius: float = 1.0, sharpness: float = 4.0) -> Tensor:
    """p(y = 1 | x) = sigmoid(sharpness (x² - radius²)): class 1 lies outside [-radius, radius].

    This is the concept both domains share; only p(x) differs between them (covariate shift).
    """
    return torch.sigmoid(sharpness * (x**2 - radius**2))


def sample_covariate_domain(n: int, *, mean: float, std: float,
                            generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n points x ~ N(mean, std²) (n,) with labels y ~ Bernoulli(ring_label_probability(x)) (n,) in {0., 1.}."""
    x = mean + std * torch.randn(n, generator=generator, dtype=torch.float64)
    y = torch.bernoulli(ring_label_probability(x), generator=generator)
    return x, y


def polynomial_features(x: Tensor, *, degree: int) -> Tensor:
    """(n,) -> (n, degree): x, x², ..., x^degree (the bias is the model's)."""
    if degree < 1:
        raise ValueError(f"degree must be at least 1, got {degree}")
    return torch.stack([x**k for k in range(1, degree + 1)], dim=1)


def fit_logistic(features: Tensor, y: Tensor, *, weights: Tensor | None = None, l2: float = 1e-4) -> nn.Linear:
    """Logistic regression minimising the (weighted) mean cross-entropy plus l2 ||w||², solved by L-BFGS.

    features (n, d), y (n,) in {0, 1}, weights (n,) >= 0 or None (all 1). The weighted loss is
    Σ β_i ℓ_i / Σ β_i: weights only change how much each example counts.
    """
    if weights is not None and (weights.shape != y.shape or (weights < 0).any()):
        raise ValueError("weights must be one non-negative number per example")
    model = nn.Linear(features.shape[1], 1, dtype=features.dtype)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    beta = torch.ones_like(y) if weights is None else weights
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        losses = nn.functional.binary_cross_entropy_with_logits(model(features).squeeze(1), y, reduction="none")
        loss = (beta * losses).sum() / beta.sum() + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def binary_accuracy(model: nn.Linear, features: Tensor, y: Tensor) -> float:
    """The share of examples where the logit's sign matches the 0/1 label."""
    with torch.no_grad():
        return ((model(features).squeeze(1) > 0).to(y.dtype) == y).double().mean().item()


def importance_weights(source: Tensor, target: Tensor, *, degree: int = 2) -> tuple[nn.Linear, Tensor]:
    """Estimate β(x) = q(x) / p(x) at the source points with a domain classifier.

    A logistic regression on polynomial features learns to tell target points (label 1) from
    source points (label 0). With balanced samples its logit h(x) estimates log q(x) / p(x), so
    β = exp(h(x)) (rescaled by n_source / n_target when the sizes differ). Returns the classifier
    and β at each source point (n_source,).
    """
    features = polynomial_features(torch.cat([source, target]), degree=degree)  # (n_s + n_t, degree)
    domain = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(source.dtype)
    classifier = fit_logistic(features, domain)
    with torch.no_grad():
        logits = classifier(polynomial_features(source, degree=degree)).squeeze(1)
    return classifier, torch.exp(logits) * len(source) / len(target)


# --- Label shift ----------------------------------------------------------------------------------


@dataclass
class LabelShiftResult:
    """Target accuracy before and after correcting for the new class priors, and the priors themselves."""

    true_priors: Tensor  # (k,) of the target domain
    estimated_priors: Tensor  # (k,) from the confusion matrix and the predictions on the target
    accuracy_before: float
    accuracy_after: float  # with the estimated priors
    accuracy_oracle: float  # with the true priors


def sample_gaussian_classes(n: int, *, priors: Tensor, means: Tensor, std: float,
                            generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n points of k classes: y ~ priors (k,), x | y ~ N(means[y], std² I). Returns X (n, d), y (n,)."""
    y = torch.multinomial(priors, n, replacement=True, generator=generator)
    X = means[y] + std * torch.randn(n, means.shape[1], generator=generator, dtype=means.dtype)
    return X, y


def fit_softmax(X: Tensor, y: Tensor, *, num_classes: int, l2: float = 1e-4) -> nn.Linear:
    """Softmax regression by L-BFGS: X (n, d), y (n,) -> a linear model with num_classes outputs."""
    model = nn.Linear(X.shape[1], num_classes, dtype=X.dtype)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(X), y) + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def estimate_target_priors(model: nn.Module, X_val: Tensor, y_val: Tensor, X_target: Tensor, *,
                           num_classes: int) -> Tensor:
    """Black-box shift estimation: solve C w = μ for w = q(y) / p(y), return q(y) = w p(y).

    C[i, j] = P(ŷ = i, y = j) on held-out source data, μ[i] = P(ŷ = i) on the unlabelled target.
    Under label shift p(x | y) is the same in both domains, so μ = C w exactly in expectation.
    """
    with torch.no_grad():
        pred_val, pred_target = model(X_val).argmax(1), model(X_target).argmax(1)
    C = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    C.index_put_((pred_val, y_val), torch.ones(len(y_val), dtype=torch.float64), accumulate=True)
    C /= len(y_val)
    mu = torch.bincount(pred_target, minlength=num_classes).double() / len(pred_target)
    w = torch.linalg.solve(C, mu).clamp(min=0)
    source_priors = torch.bincount(y_val, minlength=num_classes).double() / len(y_val)
    q = w * source_priors
    return q / q.sum()


def label_shift_experiment(*, means: Tensor, std: float, source_priors: Tensor, target_priors: Tensor,
                           num_train: int, num_val: int, num_target: int, seed: int) -> LabelShiftResult:
    """Train on the source, estimate the target priors without target labels, re-weight the posteriors.

    The corrected prediction is argmax_y p(y | x) q(y) / p(y): Bayes' rule with the new priors.
    """
    g = torch.Generator().manual_seed(seed)
    k = len(source_priors)
    X, y = sample_gaussian_classes(num_train, priors=source_priors, means=means, std=std, generator=g)
    X_val, y_val = sample_gaussian_classes(num_val, priors=source_priors, means=means, std=std, generator=g)
    X_t, y_t = sample_gaussian_classes(num_target, priors=target_priors, means=means, std=std, generator=g)
    model = fit_softmax(X, y, num_classes=k)
    estimated = estimate_target_priors(model, X_val, y_val, X_t, num_classes=k)
    with torch.no_grad():
        posterior = torch.softmax(model(X_t), dim=1)  # (n_t, k)

    def accuracy(priors: Tensor) -> float:
        return ((posterior * priors / source_priors).argmax(1) == y_t).double().mean().item()

    return LabelShiftResult(target_priors, estimated, accuracy(source_priors), accuracy(estimated),
                            accuracy(target_priors))
