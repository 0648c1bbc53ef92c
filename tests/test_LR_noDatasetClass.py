"""Lesson 1, LR_noDatasetClass.py: gradient descent by hand reaches closed-form least squares."""

import json

import pytest
import torch

import LR_noDatasetClass as lesson
from tests.conftest import assert_one_line_error, assert_png, metrics_of, smoke_run


def line(n=100, seed=0):
    return lesson.noisy_line(n, 3.0, 2.0, 100.0, torch.Generator().manual_seed(seed))


def gap(history, x, y, mean=0.0, std=1.0):
    w, b = lesson.to_raw_units(history["w"][-1], history["b"][-1], mean, std)
    return lesson.mse(w, b, x, y) / lesson.least_squares(x, y)[2] - 1


def test_default_run_reaches_least_squares_and_reports_it(tmp_path):
    metrics = lesson.main(["--quiet", "--no-figure", "--metrics", str(tmp_path / "m.json")])
    assert metrics["gap"] < 1e-4
    assert metrics["gap"] == pytest.approx(metrics["loss"] / metrics["ref_loss"] - 1)
    assert metrics["w"] == pytest.approx(metrics["ref_w"], rel=1e-4)
    assert metrics["b"] == pytest.approx(metrics["ref_b"], rel=1e-3)
    assert json.loads((tmp_path / "m.json").read_text()) == metrics


def test_the_default_run_ends_on_the_float32_floor():
    metrics = metrics_of(lesson, ["--quiet", "--no-figure"])  # the run results/ is checked against too
    # Least squares with its w and b rounded to float32 is a few 1e-15 above the optimum: the floor.
    assert 0 < metrics["float32_floor"] < 1e-13
    # The run lands within a few float32 steps of the optimum: its gap is of the floor's size. Both are
    # a few dozen float64 steps (2.2e-16) and move with the CPU kernels (results/spread/LR_noDatasetClass.txt);
    # gap / floor measured 1.08 to 2.0 under ATEN_CPU_CAPABILITY=default and avx2, seeds 0 to 2.
    assert metrics["gap"] < 4 * metrics["float32_floor"]


def test_least_squares_is_the_minimum():
    x, y = line()
    w, b, loss = lesson.least_squares(x, y)
    assert w == pytest.approx(3.0, abs=0.2)  # the noisy line's true slope
    for dw, db in [(1e-3, 0), (-1e-3, 0), (0, 0.1), (0, -0.1)]:
        assert lesson.mse(w + dw, b + db, x, y) > loss


def test_first_epoch_gradients_equal_the_hand_derived_formulas():
    x, y = line()
    w0, b0 = 0.5, -1.0
    history = lesson.train(x, y, w0, b0, 1e-4, 0.1, epochs=1)
    residual = (y - (w0 * x + b0)).double()
    # L = mean((w x + b - y)^2)  =>  dL/dw = -2 mean((y - y_hat) x),  dL/db = -2 mean(y - y_hat)
    assert history["first_grads"][0] == pytest.approx(float(-2 * (residual * x).mean()), rel=1e-5)
    assert history["first_grads"][1] == pytest.approx(float(-2 * residual.mean()), rel=1e-5)
    # On raw x the slope's gradient is orders of magnitude larger than the bias's.
    assert abs(history["first_grads"][0]) > 100 * abs(history["first_grads"][1])


def test_thermometer_gradient_ratio_is_about_fifty_as_in_the_book():
    x, y = torch.tensor(lesson.THERMOMETER_T_U), torch.tensor(lesson.THERMOMETER_T_C)
    grad_w, grad_b = lesson.train(x, y, 1.0, 0.0, 1e-4, 1e-4, epochs=1)["first_grads"]
    assert grad_w == pytest.approx(4517.3, rel=1e-4) and grad_b == pytest.approx(82.6, rel=1e-4)


@pytest.mark.parametrize("data", ["line", "thermometer"])
def test_normalized_x_reaches_least_squares_in_few_epochs_in_raw_units(data):
    x, y = line() if data == "line" else (torch.tensor(lesson.THERMOMETER_T_U), torch.tensor(lesson.THERMOMETER_T_C))
    mean, std = x.mean().item(), x.std().item()
    history = lesson.train((x - mean) / std, y, 0.0, 0.0, 0.1, 0.1, epochs=60)
    assert gap(history, x, y, mean, std) < 1e-6
    w, b = lesson.to_raw_units(history["w"][-1], history["b"][-1], mean, std)
    ref_w, ref_b, _ = lesson.least_squares(x, y)
    assert w == pytest.approx(ref_w, rel=1e-4) and b == pytest.approx(ref_b, rel=1e-4)


def test_thermometer_with_separate_rates_on_raw_x_stalls_by_700_epochs_above_what_float32_can_hold():
    run = ["--data", "thermometer", "--quiet", "--no-figure"]
    metrics = lesson.main([*run, "--epochs", "700"])
    assert metrics["gap"] < 1e-9
    assert metrics["w"] == pytest.approx(0.5368, abs=1e-3) and metrics["b"] == pytest.approx(-17.30, abs=0.05)
    # stalled: 1,300 more epochs change neither w nor b, though the rounded optimum lies far lower
    later = lesson.main([*run, "--epochs", "2000"])
    assert (later["w"], later["b"], later["gap"]) == (metrics["w"], metrics["b"], metrics["gap"])
    assert metrics["float32_floor"] < metrics["gap"] / 1000
    # normalized x gets below the stall within 70 epochs
    assert lesson.main([*run, "--normalize", "--epochs", "70"])["gap"] < metrics["gap"]


def test_one_shared_rate_leaves_b_behind():
    x, y = line()
    ref_w, ref_b, _ = lesson.least_squares(x, y)
    history = lesson.train(x, y, 0.0, 0.0, 1e-4, 1e-4, epochs=100)
    assert history["w"][-1] == pytest.approx(ref_w, rel=1e-4)
    assert abs(history["b"][-1] - ref_b) > 0.9 * abs(ref_b)  # b has barely moved from 0


def test_stable_limit_is_two_over_the_largest_curvature():
    x, y = line()
    limit = lesson.stable_scale(x, 1.0, 1.0)
    # x is symmetric around 0, so the Hessian is diag(2 mean x^2, 2) and the limit 1 / mean x^2.
    assert limit == pytest.approx(1 / float((x.double() ** 2).mean()), rel=1e-6)
    below = lesson.train(x, y, 0.0, 0.0, 0.98 * limit, 0.98 * limit, epochs=2000)
    above = lesson.train(x, y, 0.0, 0.0, 1.02 * limit, 1.02 * limit, epochs=2000)
    assert below["loss"][-1] < below["loss"][0] and above["diverged"] is not None


def test_at_the_stable_limit_w_oscillates_and_at_half_of_it_w_converges_in_one_step():
    x, y = (t.double() for t in line())  # float64, so that the factors are not blurred by rounding
    ref_w = lesson.least_squares(x, y)[0]
    limit = lesson.stable_scale(x, 1.0, 1.0)
    # mean(x) = 0 makes the Hessian diagonal: w's error is multiplied by 1 - 2 lr mean(x^2) every epoch.
    at_limit = lesson.train(x, y, 0.0, 0.0, limit, limit, epochs=20)
    errors = [w - ref_w for w in at_limit["w"]]
    assert all(e_next == pytest.approx(-e, rel=1e-6) for e, e_next in zip(errors, errors[1:]))
    half = lesson.train(x, y, 0.0, 0.0, limit / 2, limit / 2, epochs=1)
    assert half["w"][1] == pytest.approx(ref_w, rel=1e-9)
    assert half["b"][1] == pytest.approx(half["b"][0] + 2 * limit / 2 * (lesson.least_squares(x, y)[1] - half["b"][0]))


def test_same_seed_same_numbers(learner_threads):
    run = ["--epochs", "20", "--quiet", "--no-figure"]
    first, again = lesson.main([*run, "--seed", "7"]), lesson.main([*run, "--seed", "7"])
    other = lesson.main([*run, "--seed", "8"])
    for key in ["loss", "ref_loss", "w", "b", "grad_w0"]:
        assert first[key] == again[key]
        assert first[key] != other[key]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda():
    cpu = lesson.main(["--device", "cpu", "--quiet", "--no-figure"])
    cuda = lesson.main(["--device", "cuda", "--quiet", "--no-figure"])
    assert cuda["device"].startswith("cuda") and cuda["gap"] < 1e-4
    assert cuda["w"] == pytest.approx(cpu["w"], rel=1e-5)


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--epochs", "0"], ["--epochs", "positive"]),
        (["--epochs", "-3"], ["--epochs", "positive"]),
        (["--lr", "0"], ["--lr", "positive"]),
        (["--lr-w=-1e-4"], ["--lr-w", "positive"]),
        (["--lr-b", "nan"], ["--lr-b", "positive"]),
        (["--data", "weather"], ["--data", "invalid choice"]),
        (["--noise", "-1"], ["--noise"]),
    ],
)
def test_bad_flags_get_a_one_line_error(cli, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--no-figure"])
    assert status == 2
    assert_one_line_error(status, err, *phrases)


def test_too_large_a_learning_rate_stops_at_the_epoch_it_diverges(cli):
    status, out, err = cli(lesson, ["--lr", "1e-3", "--no-figure"])
    assert_one_line_error(status, err, "diverged at epoch", "stable only for lr < 0.000294")
    assert "nan" not in out.lower()


def test_slightly_too_large_rate_still_fails_clearly(cli):
    status, _, err = cli(lesson, ["--lr", "3.1e-4", "--epochs", "50", "--no-figure"])
    assert_one_line_error(status, err, "diverging", "0.000294")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_device_gets_a_one_line_error(cli):
    status, _, err = cli(lesson, ["--device", "cuda", "--no-figure"])
    assert_one_line_error(status, err, "cuda", "--device cpu")


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("LR_noDatasetClass")
    assert status == 0, err
    assert "gap to least squares" in out and "nan" not in out.lower()
    assert_png(figs / "LR_noDatasetClass.png")
