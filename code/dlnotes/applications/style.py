"""Neural style transfer: change an image's pixels until its features have one image's content, another's style.

A fixed convolutional network extracts features at several depths. The *content* loss is the
mean squared difference of deep features between the synthesised and the content image; the
*style* loss the mean squared difference of their Gram matrices (the correlations between a
layer's channels, which forget where things are) against the style image; the *total
variation* loss, the mean absolute difference of neighbouring pixels, keeps the image smooth.
The total loss is their weighted sum, and the optimiser moves the image, never the network.

Offline there are no pretrained weights, so the default extractor is a randomly initialised,
frozen network; random convolutional features are known to synthesise textures well
(Ustyuzhaninov et al., 2017). The full profile uses torchvision's VGG-19 through the download
registry, as d2l does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes import download

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTRACTORS = ("random", "vgg19")
# torchvision's vgg19().features: the first conv of each block (style), and conv4_4 (index 25, the fourth
# block's last conv) for content
VGG19_LAYERS = (0, 5, 10, 19, 25, 28)


class FeatureExtractor(nn.Module):
    """A frozen network's activations after the layers ``taps`` (indices into ``layers``), for normalised images."""

    def __init__(self, layers: nn.Sequential, *, taps: tuple[int, ...], content_layers: tuple[int, ...],
                 style_layers: tuple[int, ...]):
        super().__init__()
        self.layers = layers[:max(taps) + 1]
        self.taps = tuple(taps)
        self.content_layers, self.style_layers = tuple(content_layers), tuple(style_layers)  # indices into taps
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)  # the network is never trained here
        self.eval()

    def forward(self, images: Tensor) -> list[Tensor]:  # (B, 3, H, W) in [0, 1] -> one (B, C_i, H_i, W_i) per tap
        x, features = (images - self.mean) / self.std, []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                features.append(x)
        return features


def random_features(*, widths: tuple[int, ...] = (32, 64, 128, 128), seed: int = 0) -> FeatureExtractor:
    """Blocks of (2 x 2 average pool,) 3 x 3 conv, ReLU with He-initialised random weights; every block is tapped.

    Content: the third block's output; style: every block's.
    """
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    in_channels = 3
    for i, width in enumerate(widths):
        conv = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2 / (9 * in_channels)) ** 0.5)
            conv.bias.zero_()
        layers += ([nn.AvgPool2d(2)] if i else []) + [conv, nn.ReLU()]
        in_channels = width
    taps = tuple(i for i, layer in enumerate(layers) if isinstance(layer, nn.ReLU))
    return FeatureExtractor(nn.Sequential(*layers), taps=taps, content_layers=(min(2, len(taps) - 1),),
                            style_layers=tuple(range(len(taps))))


def vgg19_features() -> FeatureExtractor:
    """torchvision's VGG-19 with ImageNet weights from the download registry (548 MB; full profile)."""
    from torchvision.models import vgg19

    net = vgg19()
    net.load_state_dict(torch.load(download.fetch("vgg19-imagenet"), map_location="cpu", weights_only=True))
    return FeatureExtractor(net.features, taps=VGG19_LAYERS, content_layers=(4,), style_layers=(0, 1, 2, 3, 5))


def feature_extractor(kind: str, *, seed: int = 0) -> FeatureExtractor:
    """``"random"`` (offline, the default profile) or ``"vgg19"`` (pretrained, through the registry)."""
    if kind == "random":
        return random_features(seed=seed)
    if kind == "vgg19":
        return vgg19_features()
    raise ValueError(f"unknown feature extractor {kind!r}; known: {', '.join(EXTRACTORS)}")


def gram(features: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, C): the channels' inner products over all positions, divided by C H W."""
    B, C, H, W = features.shape
    X = features.reshape(B, C, H * W)
    return X @ X.transpose(1, 2) / (C * H * W)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference of two feature maps."""
    return F.mse_loss(features, target)


def style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Mean squared difference of the Gram matrix of ``features`` and the style image's."""
    return F.mse_loss(gram(features), target_gram)


def tv_loss(images: Tensor) -> Tensor:
    """Total variation: half the mean absolute difference of vertical plus horizontal neighbours."""
    return 0.5 * ((images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
                  + (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean())


@dataclass
class StyleRun:
    """The synthesised image (3, H, W) and, per step, each weighted loss term and their sum."""

    image: Tensor
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def transfer(extractor: FeatureExtractor, content: Tensor, style: Tensor, *, steps: int, lr: float,
             content_weight: float, style_weight: float, tv_weight: float, init: str = "content",
             generator: torch.Generator | None = None) -> StyleRun:
    """Optimise an image (3, H, W) in [0, 1] with Adam so that it keeps ``content`` and takes on ``style``.

    The total loss is content_weight * content + style_weight * (sum of the style layers' losses)
    + tv_weight * total variation. ``init``: start from the content image or from uniform noise.
    The image is clamped to [0, 1] after every step.
    """
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if content.dim() != 3 or style.dim() != 3:
        raise ValueError(f"content and style are single images (3, H, W), got {tuple(content.shape)} "
                         f"and {tuple(style.shape)}")
    with torch.no_grad():
        content_features, style_features = extractor(content[None]), extractor(style[None])
        content_targets = [content_features[i] for i in extractor.content_layers]
        style_grams = [gram(style_features[i]) for i in extractor.style_layers]
    start = content.clone() if init == "content" else torch.rand(content.shape, generator=generator)
    image = start[None].requires_grad_(True)  # (1, 3, H, W): the only parameter
    optimizer = torch.optim.Adam([image], lr=lr)
    run, began = StyleRun(image=start), time.perf_counter()
    for _ in range(steps):
        features = extractor(image)
        terms = {"content": content_weight * sum(content_loss(features[i], t)
                                                 for i, t in zip(extractor.content_layers, content_targets)),
                 "style": style_weight * sum(style_loss(features[i], g)
                                             for i, g in zip(extractor.style_layers, style_grams)),
                 "tv": tv_weight * tv_loss(image)}
        total = sum(terms.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
        for name, value in [*terms.items(), ("total", total)]:
            run.losses.setdefault(name, []).append(value.item())
    run.image, run.seconds = image.detach()[0], time.perf_counter() - began
    return run


def stained_glass(height: int, width: int, *, cells: int = 40, lead: float = 1.5, seed: int = 0) -> Tensor:
    """A generated style image (3, H, W): Voronoi cells of saturated colours with dark borders ("lead")."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(cells, 2, generator=generator) * torch.tensor([height, width], dtype=torch.float)
    colours = torch.rand(cells, 3, generator=generator)
    colours = colours / colours.amax(dim=1, keepdim=True)  # the brightest channel at 1: saturated
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float), torch.arange(width, dtype=torch.float),
                                indexing="ij")
    distance = (torch.stack([rows, cols], dim=-1)[:, :, None, :] - centres).norm(dim=-1)  # (H, W, cells)
    nearest = distance.topk(2, dim=-1, largest=False).values  # (H, W, 2)
    image = colours[distance.argmin(dim=-1)].permute(2, 0, 1).clone()  # (3, H, W)
    image[:, nearest[..., 1] - nearest[..., 0] < lead] = 0.05  # near the border of two cells
    return image


def high_frequency_energy(image: Tensor) -> float:
    """Mean squared difference of neighbouring pixels (3, H, W): how grainy an image is."""
    vertical, horizontal = image[:, 1:] - image[:, :-1], image[:, :, 1:] - image[:, :, :-1]
    return 0.5 * (vertical.pow(2).mean() + horizontal.pow(2).mean()).item()
