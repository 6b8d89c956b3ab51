"""House prices: preprocessing, log-RMSE, K-fold splits, the pipeline from frames to a submission."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dlnotes import config
from dlnotes.training import house


def tiny_frames():
    """5 labelled houses, 3 unlabelled: numbers with gaps, a category with gaps and one unseen value."""
    train = pd.DataFrame({
        "Id": [1, 2, 3, 4, 5],
        "Area": [50.0, 80.0, np.nan, 120.0, 100.0],
        "Rooms": [2, 3, 3, 5, 4],
        "Zone": ["A", "B", None, "A", "C"],
        "Roof": ["flat", "gable", "gable", "flat", "gable"],
        "SalePrice": [100_000.0, 150_000.0, 140_000.0, 260_000.0, 210_000.0],
    })
    test = pd.DataFrame({
        "Id": [6, 7, 8],
        "Area": [70.0, np.nan, 200.0],
        "Rooms": [2, 4, 6],
        "Zone": ["B", "Z", None],  # "Z" never occurs in the training frame
        "Roof": ["gable", "flat", "flat"],
    })
    return train, test


def test_numeric_columns_are_standardised_and_missing_numbers_become_zero():
    train, test = tiny_frames()
    d = house.preprocess_frames(train, test, stats_from="train")
    numeric = d.X_train[:, :2].double()  # (5, 2): Area, Rooms
    assert d.preprocessor.numeric == ("Area", "Rooms")
    assert numeric[2, 0] == 0  # the missing Area, set to the mean after standardising
    rooms = numeric[:, 1]
    torch.testing.assert_close(rooms.mean(), torch.tensor(0.0, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(rooms.std(), torch.tensor(1.0, dtype=torch.float64))  # ddof=1, like pandas
    area = numeric[[0, 1, 3, 4], 0]  # the observed values: mean 0, std 1 among them
    torch.testing.assert_close(area.mean(), torch.tensor(0.0, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(area.std(), torch.tensor(1.0, dtype=torch.float64))
    assert not torch.isnan(d.X_test).any()
    # the test rows use the training statistics: Area 200 is (200 - 87.5) / sd of the four values
    expected = (200 - 87.5) / np.std([50, 80, 120, 100], ddof=1)
    assert d.X_test[2, 0].item() == pytest.approx(expected, rel=1e-6)


def test_statistics_from_train_and_test_together_differ_from_train_only():
    train, test = tiny_frames()
    only_train = house.preprocess_frames(train, test, stats_from="train").preprocessor
    both = house.preprocess_frames(train, test, stats_from="all").preprocessor
    assert only_train.mean["Rooms"] == pytest.approx(3.4)
    assert both.mean["Rooms"] == pytest.approx((17 + 12) / 8)
    assert "Z" in both.categories["Zone"] and "Z" not in only_train.categories["Zone"]
    with pytest.raises(ValueError, match="stats_from"):
        house.preprocess_frames(train, test, stats_from="test")


def test_one_hot_columns_sum_to_one_per_categorical_and_unseen_values_count_as_missing():
    train, test = tiny_frames()
    d = house.preprocess_frames(train, test)
    cols = d.preprocessor.columns
    assert d.X_train.dtype == torch.float32 and d.X_train.shape == (5, len(cols))
    assert d.X_test.shape == (3, len(cols))  # the same columns for both frames
    assert cols == ("Area", "Rooms", "Zone_A", "Zone_B", "Zone_C", "Zone_nan",
                    "Roof_flat", "Roof_gable", "Roof_nan")
    for X in (d.X_train, d.X_test):
        for prefix in ("Zone_", "Roof_"):
            idx = [i for i, c in enumerate(cols) if c.startswith(prefix)]
            torch.testing.assert_close(X[:, idx].sum(dim=1), torch.ones(len(X)))
    nan_col = cols.index("Zone_nan")
    assert d.X_train[:, nan_col].tolist() == [0, 0, 1, 0, 0]  # the None in the training frame
    assert d.X_test[:, nan_col].tolist() == [0, 1, 1]  # the unseen "Z" and the None
    assert d.X_test[0, cols.index("Zone_B")] == 1


def test_a_constant_column_becomes_zeros_instead_of_nan():
    frame = pd.DataFrame({"a": [3.0, 3.0, 3.0], "b": [1.0, 2.0, 3.0]})
    X = house.fit_preprocessor(frame).transform(frame)
    assert torch.equal(X[:, 0], torch.zeros(3))


def test_prepare_and_transform_reject_bad_input():
    train, test = tiny_frames()
    with pytest.raises(ValueError, match="lacks the column"):
        house.preprocess_frames(train.drop(columns=["SalePrice"]), test)
    with pytest.raises(ValueError, match="unlabelled"):
        house.preprocess_frames(train, train)
    bad = train.copy()
    bad.loc[0, "SalePrice"] = 0.0
    with pytest.raises(ValueError, match="positive"):
        house.preprocess_frames(bad, test)
    pre = house.fit_preprocessor(train.drop(columns=["Id", "SalePrice"]))
    with pytest.raises(ValueError, match="lacks columns"):
        pre.transform(test.drop(columns=["Roof"]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        house.fit_preprocessor(train.iloc[:1])


def test_log_rmse_is_the_rmse_of_the_logs():
    g = torch.Generator().manual_seed(0)
    y = 1e5 * (1 + torch.rand(50, 1, generator=g, dtype=torch.float64))
    y_hat = y * torch.exp(0.2 * torch.randn(50, 1, generator=g, dtype=torch.float64))
    expected = torch.sqrt(nn.functional.mse_loss(y_hat.log(), y.log()))
    torch.testing.assert_close(house.log_rmse(y_hat, y), expected)
    assert house.log_rmse(y, y).item() == 0
    # 10 % too high everywhere is a log-RMSE of log 1.1, whatever the price
    torch.testing.assert_close(house.log_rmse(1.1 * y, y), torch.tensor(math.log(1.1), dtype=torch.float64))


def test_log_rmse_ignores_the_currency():
    g = torch.Generator().manual_seed(1)
    y = 1e3 + 1e5 * torch.rand(20, 1, generator=g, dtype=torch.float64)
    y_hat = y + 1e3 * torch.randn(20, 1, generator=g, dtype=torch.float64)
    assert (y_hat >= 1).all() and (7.3 * y_hat >= 1).all()  # no clamping on either scale
    torch.testing.assert_close(house.log_rmse(7.3 * y_hat, 7.3 * y), house.log_rmse(y_hat, y))
    # the plain RMSE does scale, so the invariance is a property of the log, not of the data
    rmse = lambda a, b: torch.sqrt(((a - b) ** 2).mean())
    assert rmse(7.3 * y_hat, 7.3 * y) > 7 * rmse(y_hat, y)


def test_log_rmse_clamps_predictions_and_rejects_non_positive_targets():
    y = torch.tensor([[100.0], [200.0]])
    clamped = house.log_rmse(torch.tensor([[-5.0], [0.5]]), y)
    torch.testing.assert_close(clamped, house.log_rmse(torch.ones(2, 1), y))
    assert torch.isfinite(clamped)
    with pytest.raises(ValueError, match="positive targets"):
        house.log_rmse(torch.ones(2, 1), torch.tensor([[1.0], [0.0]]))
    with pytest.raises(ValueError, match="positive targets"):
        house.log_rmse(torch.ones(2, 1), torch.tensor([[1.0], [-3.0]]))
    with pytest.raises(ValueError, match="shape"):
        house.log_rmse(torch.ones(2, 1), torch.ones(2))


def test_log_mse_and_exp_output_train_on_log_prices():
    model = house.house_model(3, num_hiddens=4, log_target=True)
    assert isinstance(model[-1], house.ExpOutput) and len(model) == 4
    X = torch.randn(6, 3)
    assert (model(X) > 0).all()
    z = torch.randn(6, 1, dtype=torch.float64, requires_grad=True)
    y = torch.rand(6, 1, dtype=torch.float64) + 0.5
    # the squared loss on log prices sees exp(z) exactly as the log of the label sees y
    torch.testing.assert_close(house.log_mse(z.exp(), y), ((z - y.log()) ** 2).mean())
    assert torch.autograd.gradcheck(lambda a: house.log_mse(a.exp(), y), (z,))
    assert isinstance(house.house_model(3)[0], nn.Linear) and len(house.house_model(3)) == 1
    with pytest.raises(ValueError, match="num_hiddens"):
        house.house_model(3, num_hiddens=-1)


def synthetic_frames(n_train=120, n_test=30, seed=0):
    """Prices that grow with area and depend on a category: a model must learn both."""
    rng = np.random.default_rng(seed)

    def frame(n, start):
        area = rng.uniform(40, 200, n)
        zone = rng.choice(["A", "B", "C"], n)
        price = 2000 * area * np.where(zone == "A", 1.5, 1.0) * np.exp(0.05 * rng.standard_normal(n))
        return pd.DataFrame({"Id": np.arange(start, start + n), "Area": area, "Zone": zone, "SalePrice": price})

    return frame(n_train, 1), frame(n_test, 1 + n_train).drop(columns=["SalePrice"])


def test_k_fold_scores_every_fold_and_the_log_model_learns():
    train, test = synthetic_frames()
    d = house.preprocess_frames(train, test)
    result = house.k_fold(d.X_train, d.y_train, k=4, generator=config.seed_everything(0), num_hiddens=0,
                          log_target=True, lr=0.3, weight_decay=0.0, num_epochs=30, batch_size=32)
    assert len(result.valid_log_rmse) == len(result.histories) == 4
    assert result.curve("test_log_rmse").shape == (30,)
    spread = d.y_train.log().std().item()  # log-RMSE of predicting the mean log price
    assert result.mean_valid < 0.5 * spread
    assert result.histories[0].final("test_log_rmse") == pytest.approx(result.valid_log_rmse[0], rel=1e-5)


def test_pipeline_writes_a_submission(tmp_path):
    train, test = synthetic_frames()
    d = house.preprocess_frames(train, test)
    path = tmp_path / "submission.csv"
    model, history, submission = house.fit_and_submit(
        d, path=path, generator=config.seed_everything(0), progress=False,
        num_hiddens=8, log_target=True, lr=0.05, weight_decay=0.0, num_epochs=30, batch_size=16)
    written = pd.read_csv(path)
    assert list(written.columns) == ["Id", "SalePrice"] and len(written) == len(test)
    assert written["Id"].tolist() == test["Id"].tolist()
    assert (written["SalePrice"] > 0).all()
    np.testing.assert_allclose(written["SalePrice"], submission["SalePrice"], rtol=1e-6)
    assert history.final("train_log_rmse") < history["train_log_rmse"][0]
