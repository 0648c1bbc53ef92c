"""Lesson 4, LogReg_PyTorch.py: logistic regression reaches scikit-learn's optimum; the NaN story."""

import math

import numpy as np
import pytest
import torch

import common
import LogReg_PyTorch as lesson
from tests.conftest import assert_one_line_error, assert_png, metrics_of, smoke_run

QUICK = ["--quiet", "--no-figure"]


def test_1d_defaults_match_scikit_learn():
    metrics = metrics_of(lesson, QUICK)  # the run results/ and ANSWERS.org are checked against too
    assert metrics["gap"] < 1e-3
    assert round(metrics["boundary"], 2) == round(metrics["ref_boundary"], 2)
    assert metrics["accuracy"] == metrics["ref_accuracy"]


def test_1d_at_reduced_epochs_with_adam():
    metrics = lesson.main(["--optimizer", "adam", "--lr", "0.3", "--epochs", "100", *QUICK])
    assert metrics["gap"] < 1e-3


def test_breast_cancer_matches_the_l2_penalized_logistic_regression():
    metrics = lesson.main(["--dataset", "breast_cancer", "--epochs", "150", *QUICK])
    assert metrics["objective_gap"] < 1e-3
    assert abs(metrics["gap"]) < 1e-2  # the log-loss alone moves with the first power: see main()
    assert metrics["accuracy"] == pytest.approx(metrics["ref_accuracy"], abs=0.005)
    assert metrics["val_accuracy"] > 0.9


def test_weight_decay_maps_to_scikit_learns_c():
    # Our objective with weight decay λ, minimized directly, has the same optimum as sklearn with C = 1 / (n λ).
    from scipy.optimize import minimize

    X, y = lesson.load_dataset(lesson.parse_args(["--dataset", "breast_cancer"]), None)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    decay = 0.05
    ref = lesson.reference(X, y, decay)

    def objective(theta):
        z = X @ theta[:-1] + theta[-1]
        return np.mean(np.logaddexp(0, z) - y[:, 0] * z) + decay / 2 * theta[:-1] @ theta[:-1]

    direct = minimize(objective, np.zeros(X.shape[1] + 1), method="L-BFGS-B", options={"gtol": 1e-10}).x
    assert np.allclose(direct[:-1], ref.coef_[0], atol=1e-4)


def test_handwritten_bce_equals_the_stable_loss_until_the_sigmoid_saturates():
    y = torch.tensor([[1.0], [0.0], [1.0]])
    z = torch.tensor([[2.0], [-1.5], [0.3]])
    assert lesson.handwritten_bce(z, y).item() == pytest.approx(lesson.LOSSES["bce_logits"](z, y).item(), rel=1e-6)
    saturated = torch.tensor([[20.0], [-1.5], [0.3]])  # sigmoid(20) is exactly 1.0 in float32
    assert torch.sigmoid(saturated[0]).item() == 1.0
    assert torch.isnan(lesson.handwritten_bce(saturated, y))
    assert torch.isfinite(lesson.LOSSES["bce"](saturated, y))
    assert torch.isfinite(lesson.LOSSES["bce_logits"](saturated, y))


def test_float32_sigmoid_is_exactly_one_from_24_ln_2_and_exactly_zero_only_below_minus_88_7():
    threshold = torch.tensor(24 * math.log(2))  # 16.6355...: 1 + exp(-z) rounds to 1 from here on
    assert torch.sigmoid(threshold).item() == 1.0
    assert torch.sigmoid(torch.nextafter(threshold, torch.tensor(0.0))).item() < 1.0
    assert torch.sigmoid(torch.tensor(-88.7)).item() > 0.0  # the other side saturates much later
    assert torch.sigmoid(torch.tensor(-88.8)).item() == 0.0


def test_handwritten_loss_ends_in_the_clear_message_and_bce_does_not(cli):
    status, _, err = cli(lesson, ["--loss", "handwritten", "--no-figure"])
    assert_one_line_error(status, err, "became nan at epoch", "mini-batch", "exactly 0 or 1", "--loss bce_logits")
    # It names the scores it happened to: each at or above 24 ln 2, where float32's sigmoid is exactly 1.
    scores = err.split("scores z = ", 1)[1].split(" is exactly", 1)[0].removesuffix(", ...").split(", ")
    assert scores and all(float(z) >= 24 * math.log(2) for z in scores)
    metrics = lesson.main(["--loss", "bce", *QUICK])
    assert metrics["gap"] < 1e-3


def test_a_class_0_row_with_p_equal_to_1_makes_the_handwritten_loss_inf_not_nan():
    X, y = np.array([[5.0]] * 10 + [[20.0]]), np.array([[1.0]] * 10 + [[0.0]])  # one class-0 row far right
    args = lesson.parse_args(["--loss", "handwritten", "--epochs", "20", "--batch-size", "11", "--lr", "1"])
    _, history = lesson.train(X, y, X[:0], y[:0], args, "cpu", "sgd", args.lr)
    assert history["diverged"] is not None and history["bad_loss"] == math.inf


def test_separable_classes_have_no_gap_and_say_so(capsys):
    metrics = lesson.main(["--std", "0.5", "--epochs", "20", "--no-figure"])
    out = capsys.readouterr().out
    assert metrics["separable"] and metrics["gap"] is None
    assert "linearly separable" in out and "--weight-decay" in out
    penalized = lesson.main(["--std", "0.5", "--epochs", "100", "--weight-decay", "0.01", *QUICK])
    assert not penalized["separable"] and penalized["objective_gap"] < 1e-3


def test_on_separable_data_the_gradient_becomes_exactly_zero_and_w_stops(capsys):
    metrics = lesson.main(["--mean0", "-10", "--mean1", "10", "--epochs", "60", "--no-figure"])
    out = capsys.readouterr().out
    assert metrics["separable"]
    # every p - y rounds to exactly 0 early on; momentum alone carries w on for a while, then w is fixed
    assert 0 < metrics["last_gradient_epoch"] <= metrics["last_move_epoch"] < 60
    assert f"after epoch {metrics['last_gradient_epoch']} every gradient was exactly 0" in out
    overlapping = lesson.main(["--epochs", "20", *QUICK])
    assert overlapping["last_gradient_epoch"] == overlapping["last_move_epoch"] == 20


def test_separability_check():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert lesson.separable(X, np.array([[0.0], [0.0], [1.0], [1.0]]))
    assert not lesson.separable(X, np.array([[0.0], [1.0], [0.0], [1.0]]))


def test_noisy_binary_data():
    data = lesson.NoisyBinaryData(2000, -3.0, 5.0, 2.0, common.generator(0))
    assert len(data) == 2000 and data[0][0].shape == (1,)
    x, y = data.x[:, 0], data.y[:, 0]
    assert 0.45 < y.mean() < 0.55
    assert x[y == 0].mean() == pytest.approx(-3, abs=0.2) and x[y == 1].std() == pytest.approx(2, abs=0.2)


def test_same_seed_same_numbers(learner_threads):
    run = ["--epochs", "10", *QUICK]
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["3", "3", "4"])
    del first["seconds"], again["seconds"]
    assert first == again
    assert first["loss"] != other["loss"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda():
    metrics = lesson.main(["--device", "cuda", *QUICK])
    assert metrics["device"].startswith("cuda") and metrics["gap"] < 1e-3


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--dataset", "iris"], ["--dataset", "invalid choice"]),
        (["--loss", "hinge"], ["--loss", "invalid choice"]),
        (["--val-fraction", "1"], ["--val-fraction", "[0, 1)"]),
        (["--val-fraction=-0.5"], ["--val-fraction", "[0, 1)"]),
        (["--std", "0"], ["--std", "positive"]),
        (["--std=-1"], ["--std", "positive"]),
        (["--n", "0"], ["--n", "positive"]),
        (["--batch-size", "101"], ["--batch-size 101", "larger than the 100 training rows"]),
    ],
)
def test_bad_input_gets_a_one_line_error(cli, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--no-figure"])
    assert_one_line_error(status, err, *phrases)


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("LogReg_PyTorch")
    assert status == 0, err
    assert "decision boundary" in out and "nan" not in out.lower()
    assert_png(figs / "LogReg_PyTorch.png")


def test_at_the_default_separation_9_of_40_seeds_are_separable_and_14_with_a_validation_split():
    """README.org, "Separable classes": of seeds 0 to 39, 9 draw separable data when all 100 points train,
    14 when --val-fraction 0.2 leaves 80 (fewer points, fewer chances to overlap)."""

    def separable(seed, val_fraction):
        args = lesson.parse_args(["--seed", str(seed), "--val-fraction", str(val_fraction)])
        gen = common.generator(seed)  # drawn as main draws them: the data, then the split
        X, y = lesson.load_dataset(args, gen)
        rows, _ = lesson.split(len(X), val_fraction, gen)
        return lesson.separable(X[rows], y[rows])

    assert [sum(separable(seed, f) for seed in range(40)) for f in (0.0, 0.2)] == [9, 14]
