"""Lesson 3, LR_miniBatch_PyTorchWay.py: nn.Module + torch.optim reach scikit-learn's exact solutions."""

import urllib.error

import numpy as np
import pytest
import sklearn.datasets
import torch

import common
import LR_miniBatch_PyTorchWay as lesson
from tests.conftest import assert_one_line_error, assert_png, metrics_of, smoke_run

QUICK = ["--quiet", "--no-figure"]


def test_diabetes_with_defaults_reaches_least_squares():
    metrics = metrics_of(lesson, ["--dataset", "diabetes", *QUICK])  # the run ANSWERS.org checks too
    assert metrics["gap"] < 1e-3
    assert (metrics["n_train"], metrics["n_val"]) == (354, 88)
    assert metrics["val_loss"] == pytest.approx(metrics["ref_val_loss"], rel=0.02)


def test_line_at_reduced_epochs_reports_w_and_b_in_raw_units():
    metrics = lesson.main(["--epochs", "30", "--batch-size", "16", *QUICK])
    assert metrics["gap"] < 1e-3
    assert metrics["w"] == pytest.approx(metrics["ref_w"], rel=0.01)
    # the fitted line in raw units predicts what scikit-learn's line predicts, to a few units of y
    assert metrics["b"] == pytest.approx(metrics["ref_b"], abs=5)
    assert metrics["w"] == pytest.approx(3.0, abs=0.3)  # the slope the noisy line was drawn with


def test_the_default_run_on_the_line_takes_mini_batches():
    metrics = lesson.main(["--epochs", "5", *QUICK])
    assert metrics["batch_size"] == 16 and metrics["n_train"] == 80  # 5 steps per epoch, not one


def test_every_variant_the_figure_compares_trains_on_the_same_batches(monkeypatch):
    # The batches come from a stream of their own (common.batch_generator), so the scalings and
    # optimizers differ only in what the text says they differ in. The targets of each batch are
    # standardized the same way for every feature scaling: they name the rows a batch holds.
    runs = []

    class Recording(lesson.DataLoader):
        def __iter__(self):
            for batch in super().__iter__():
                runs[-1].append(batch[1].clone())
                yield batch

    monkeypatch.setattr(lesson, "DataLoader", Recording)
    args = lesson.parse_args(["--epochs", "2", "--batch-size", "16"])
    X, Y, *_ = lesson.load_dataset("line", common.generator(0))
    for scaling, optimizer in [("standardize", "sgd"), ("rownorm", "sgd"), ("standardize", "adam")]:
        runs.append([])
        lesson.train(X[:80], Y[:80], X[80:], Y[80:], args, "cpu", scaling, optimizer, 0.1)
    assert len(runs[0]) == 10  # 2 epochs of 5 batches
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other, strict=True))
    assert not torch.equal(runs[0][0], runs[0][5])  # each epoch reshuffles


def test_sgd_step_is_the_hand_update_of_lessons_1_and_2_only_without_momentum():
    def two_steps(momentum):
        w = torch.tensor([1.0, -2.0], requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.1, momentum=momentum)
        for _ in range(2):
            optimizer.zero_grad()
            (0.5 * (w**2).sum()).backward()  # the gradient is w itself
            optimizer.step()
        return w.detach()

    start = torch.tensor([1.0, -2.0])
    assert torch.allclose(two_steps(0.0), start * 0.9 * 0.9)  # w -= lr * w.grad, twice
    # momentum 0.9: v1 = g1 = w0, w1 = 0.9 w0; v2 = 0.9 v1 + g2 = 1.8 w0, w2 = w1 - 0.1 v2 = 0.72 w0
    assert torch.allclose(two_steps(0.9), start * 0.72)


def test_adam_reaches_least_squares_too():
    assert lesson.main(["--dataset", "diabetes", "--optimizer", "adam", *QUICK])["gap"] < 1e-3


def test_two_targets_at_once():
    metrics = lesson.main(["--dataset", "crops", "--batch-size", "32", "--epochs", "60", *QUICK])
    assert metrics["gap"] < 1e-3


def test_val_fraction_zero_trains_on_all_rows():
    metrics = lesson.main(["--dataset", "diabetes", "--val-fraction", "0", "--epochs", "30", *QUICK])
    assert (metrics["n_train"], metrics["n_val"], metrics["val_loss"]) == (442, 0, None)


def test_standardization_statistics_come_from_the_training_split():
    X = np.random.default_rng(0).normal(5, 3, size=(100, 4))
    scale, unscale = lesson.standardizer(X[:80])
    assert np.allclose(scale(X[:80]).mean(axis=0), 0) and np.allclose(scale(X[:80]).std(axis=0), 1)
    assert not np.allclose(scale(X[80:]).mean(axis=0), 0)
    assert np.allclose(unscale(scale(X)), X)


def test_row_normalization_is_a_worse_model_not_a_rescaling():
    X, Y, *_ = lesson.load_dataset("diabetes", common.generator(0))
    rows = lesson.scaler("rownorm", X)(X)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1)
    best = {kind: lesson.power_loss(lesson.fit_reference(X, Y, kind, 2, 0)(X), Y, 2) for kind in ["none", "rownorm"]}
    standardized = lesson.power_loss(lesson.fit_reference(X, Y, "standardize", 2, 0)(X), Y, 2)
    assert standardized == pytest.approx(best["none"], rel=1e-9)  # standardizing changes nothing
    assert best["rownorm"] > 1.01 * best["none"]


def test_weight_decay_reaches_ridge_and_costs_training_fit():
    metrics = lesson.main(["--dataset", "diabetes", "--weight-decay", "0.05", *QUICK])
    assert abs(metrics["gap"]) < 1e-3
    plain = lesson.main(["--dataset", "diabetes", "--epochs", "5", *QUICK])["ref_loss"]
    assert metrics["ref_loss"] > plain


def test_ridge_reference_equals_the_penalized_objective_minimized_directly():
    X, Y, *_ = lesson.load_dataset("crops", common.generator(0))
    X = lesson.scaler("standardize", X)(X)
    ridge = lesson.reference(X, Y, 2, 0.1)
    direct = lesson.PowerRegression(2, 0.1).fit(X, Y)
    assert np.allclose(ridge.coef_, direct.coef_, atol=1e-5)


def test_adam_weight_decay_is_the_coupled_l2_penalty_so_it_reaches_ridge_too():
    metrics = lesson.main(["--dataset", "diabetes", "--weight-decay", "0.05", "--optimizer", "adam", *QUICK])
    assert abs(metrics["gap"]) < 1e-3


def test_mean_absolute_error_with_two_targets_is_solved_exactly_target_by_target():
    """README.org, lesson 3: on crops' training rows at m = 1 without a penalty, L-BFGS stops about 8e-5
    (relative: 2e-5) above the linear programs' 3.97134."""
    gen = common.generator(0)  # the lesson's data and split at its default seed
    X, Y, *_ = lesson.load_dataset("crops", gen)
    rows, _ = lesson.split(len(X), 0.2, gen)
    X, Y = X[rows], Y[rows]
    exact = lesson.fit_reference(X, Y, "standardize", 1, 0.0)
    features, (to_target, from_target) = lesson.scaler("standardize", X), lesson.standardizer(Y)
    lbfgs = lesson.PowerRegression(1, 0.0).fit(features(X), to_target(Y))  # the kinks of |r| leave it short
    lbfgs_loss = lesson.power_loss(from_target(np.reshape(lbfgs.predict(features(X)), Y.shape)), Y, 1)
    exact_loss = lesson.power_loss(exact(X), Y, 1)
    assert exact.solver.startswith("QuantileRegressor") and f"{exact_loss:.6g}" == "3.97134"
    assert 5e-5 < lbfgs_loss - exact_loss < 1.2e-4  # 8.5e-5 measured, in float64 with scipy's own tolerances
    assert 1e-5 < lbfgs_loss / exact_loss - 1 < 3e-5  # the relative gap, as lesson 3 measures gaps: 2.1e-5


def test_row_normalization_verdict_comes_from_the_numbers(capsys):
    lesson.main(["--scaling", "rownorm", "--epochs", "5", "--no-figure"])
    out = capsys.readouterr().out
    assert "above the optimum: a different, worse model" in out
    assert "on the same training split, with standardized features" in out  # which reference it is


def test_a_diverging_fourth_power_names_the_loss_not_the_scaling(cli):
    status, _, err = cli(lesson, ["--outliers", "5", "--loss-power", "4", "--epochs", "3", "--no-figure"])
    assert_one_line_error(status, err, "diverged at epoch", "--loss-power 4", "--optimizer adam")
    assert "--scaling" not in err  # the features are standardized already


def test_mean_absolute_error_reaches_the_median_regression_despite_outliers():
    metrics = lesson.main(["--outliers", "5", "--loss-power", "1", *QUICK])
    assert metrics["gap"] < 1e-3
    assert metrics["w"] == pytest.approx(metrics["ref_w"], rel=0.01)


def test_outliers_pull_harder_as_the_power_grows():
    gen = common.generator(0)
    x, y, *_ = lesson.load_dataset("line", gen)
    y = lesson.add_outliers(y, 5, gen)
    middle = [lesson.fit_reference(x, y, "none", m, 0)(np.zeros((1, 1)))[0, 0] for m in (1, 2, 4)]
    assert middle[0] < middle[1] < middle[2]  # the outliers lie above the line


def test_validation_rows_never_influence_training():
    args = lesson.parse_args(["--dataset", "diabetes", "--epochs", "5", "--batch-size", "64"])
    X, Y, *_ = lesson.load_dataset("diabetes", common.generator(0))
    X_train, Y_train = X[:300], Y[:300]
    runs = [
        lesson.train(X_train, Y_train, X_val, Y_val, args, "cpu", "standardize", "sgd", 0.1)[1]
        for X_val, Y_val in [(X[300:], Y[300:]), (X[300:] * 5 + 1, Y[300:] * 0)]  # any rows at all
    ]
    assert len(runs[0]["train"]) == 5 and runs[0]["train"] == runs[1]["train"]
    assert runs[0]["val"] != runs[1]["val"]


def test_same_seed_same_numbers(learner_threads):
    run = ["--dataset", "diabetes", "--epochs", "5", *QUICK]
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["4", "4", "5"])
    del first["seconds"], again["seconds"]
    assert first == again
    assert first["loss"] != other["loss"]


def test_california_offline_gets_a_clear_error(cli, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(sklearn.datasets, "fetch_california_housing", no_network)
    status, _, err = cli(lesson, ["--dataset", "california", "--no-figure"])
    assert_one_line_error(status, err, "--dataset california", "download", "--dataset diabetes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda():
    metrics = lesson.main(["--device", "cuda", "--dataset", "diabetes", *QUICK])
    assert metrics["device"].startswith("cuda") and metrics["gap"] < 1e-3


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--batch-size", "0"], ["--batch-size", "positive"]),
        (["--dataset", "diabetes", "--batch-size", "400"], ["--batch-size 400", "larger than the 354 training rows"]),
        (["--val-fraction", "1"], ["--val-fraction", "[0, 1)"]),
        (["--val-fraction=-0.1"], ["--val-fraction", "[0, 1)"]),
        (["--dataset", "iris"], ["--dataset", "invalid choice"]),
        (["--optimizer", "lbfgs"], ["--optimizer", "invalid choice"]),
        (["--loss-power", "0.5"], ["--loss-power", "at least 1"]),
        (["--dataset", "crops", "--scaling", "none"], ["diverged at epoch", "smaller --lr"]),
    ],
)
def test_bad_input_gets_a_one_line_error(cli, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--no-figure"])
    assert_one_line_error(status, err, *phrases)


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("LR_miniBatch_PyTorchWay")
    assert status == 0, err
    assert "reference optimum" in out and "nan" not in out.lower()
    assert_png(figs / "LR_miniBatch_PyTorchWay.png")
