"""Lesson 8, cnn_digits.py: a CNN trained on centred digits still reads them anywhere; an MLP and an SVC do not."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cnn_digits as lesson
import common
from exercises import lesson8_mean_pool
from tests.conftest import assert_one_line_error, assert_png, smoke_run

SMALL = ["--canvas", "12", "--channels", "16,32", "--epochs", "6", "--lr", "0.01", "--quiet", "--no-figure"]
TINY = ["--canvas", "10", "--channels", "4", "--epochs", "1", "--test-fraction", "0.95", "--quiet", "--no-figure"]


@pytest.fixture(scope="module")
def reduced_run():
    """One reduced run (12 x 12 canvas, two conv layers), shared by the claim tests.

    Its numbers, under both CPU kernel families and seeds 0-2, are in results/spread/cnn_digits_reduced.txt
    (python -m tools.spread "python cnn_digits.py --canvas 12 --channels 16,32 --epochs 6 --lr 0.01"):
    at seed 0 the CNN is at 96.7 % centred and 91.3 % shifted, the SVC at 99.3 % and the MLP at 95.3 %
    centred, the same under both families (from seed to seed the CNN moves by up to 1.8 points centred
    and 5 shifted). The tests run seed 0, where the tightest bound, the CNN within 4 points of the SVC
    centred, holds by 1.4 points.
    """
    return lesson.main(SMALL)


@pytest.fixture(scope="module")
def digits():
    gen = lesson.common.generator(0)
    return lesson.load_data(0.25, gen)[2][:40]  # 40 test digits, (40, 8, 8)


def test_centred_the_cnn_is_as_good_as_the_classical_models(reduced_run):
    m = reduced_run
    assert m["cnn_centred"] > 0.93
    assert m["cnn_centred"] >= m["svc_centred"] - 0.04 and m["cnn_centred"] >= m["logreg_centred"] - 0.03
    assert m["mlp_parameters"] >= m["cnn_parameters"]


def test_shifted_only_the_cnn_keeps_its_accuracy(reduced_run):
    m = reduced_run
    assert m["cnn_shifted"] > 0.85 and m["cnn_shifted"] > m["cnn_centred"] - 0.1
    for model in ["mlp", "svc", "logreg"]:
        assert m[f"{model}_centred"] > 0.9  # they did learn the centred digits ...
        assert m[f"{model}_shifted"] < 0.4  # ... but not where else a digit can be
    assert np.isfinite(m["loss"]) and m["gap"] == pytest.approx(m["loss"] / m["ref_loss"] - 1)


def test_first_layer_is_shift_equivariant(digits):
    gen = lesson.common.generator(1)
    conv1 = lesson.init_weights(lesson.CNN([8], kernel=5), gen).features[0]
    with torch.no_grad():
        maps = conv1(lesson.at(digits, 16, 4, 4))
        shifted = conv1(lesson.at(digits, 16, 1, 7))  # 3 rows up, 3 columns right
    # Row r, column c of the original maps is row r - 3, column c + 3 of the shifted image's maps.
    assert (shifted[..., 0:13, 3:16] - maps[..., 3:16, 0:13]).abs().max() < 1e-5
    assert maps.abs().max() > 0.5  # not trivially equal: the maps are far from 0


def test_cnn_is_invariant_while_digit_and_receptive_ring_stay_on_the_canvas(digits):
    cnn = lesson.init_weights(lesson.CNN([8, 8], kernel=3), lesson.common.generator(2))  # ring of 2 pixels
    canvas = 16
    with torch.no_grad():
        logits = lesson.every_position(lambda x: cnn(x).numpy(), digits, canvas)  # (9, 9, 40, 10)
    change = np.abs(logits - logits[4, 4]).max(axis=(2, 3))
    fits = (np.arange(9) >= 2) & (np.arange(9) + 8 + 2 <= canvas)  # offsets 2 to 6
    inside = fits[:, None] & fits[None, :]
    assert change[inside].max() < 1e-5
    assert change[~inside].max() > 1e-3  # at the border it is no longer exact: the edge cuts the ring off


@settings(max_examples=40, deadline=None)
@given(
    H=st.integers(1, 20),
    k=st.integers(1, 7),
    p=st.integers(0, 3),
    s=st.integers(1, 4),
)
def test_output_size_formula_matches_conv2d(H, k, p, s):
    if k > H + 2 * p or p > k // 2:  # nn.Conv2d refuses these
        return
    out = nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, H, H))
    assert out.shape[2:] == (lesson.conv_output_size(H, k, p, s),) * 2


def test_place_puts_each_digit_at_its_own_position():
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 8, 8) + 1
    x = lesson.place(images, 10, torch.tensor([0, 2]), torch.tensor([1, 0]))
    assert x.shape == (2, 1, 10, 10)
    assert torch.equal(x[0, 0, 0:8, 1:9], images[0]) and torch.equal(x[1, 0, 2:10, 0:8], images[1])
    assert x.sum() == images.sum()  # nothing else on the canvas


def test_mlp_has_at_least_as_many_parameters_as_asked():
    for target in [1000, 14298, 56234]:
        net = lesson.mlp(16, target)
        n = lesson.n_parameters(net)
        assert n >= target and lesson.n_parameters(lesson.mlp(16, n + 1)) > n  # the smallest such width


def test_same_seed_same_numbers():
    run = ["--canvas", "10", "--channels", "4", "--epochs", "1", "--test-fraction", "0.95", "--quiet", "--no-figure"]
    run += ["--augment"]  # the random placements come from the seed too
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["3", "3", "4"])
    for key in ["loss", "cnn_shifted", "mlp_shifted", "svc_shifted"]:
        assert first[key] == again[key]
    assert first["loss"] != other["loss"]


def record_training(monkeypatch):
    """Wrap lesson.train: for every call, (the model's class, its initial weights, its batch stream's state)."""
    calls, real = [], lesson.train

    def train(model, images, labels, args, batches, *rest):
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        calls.append((type(model).__name__, weights, batches.get_state()))
        return real(model, images, labels, args, batches, *rest)

    monkeypatch.setattr(lesson, "train", train)
    return calls


def same_weights(first, second):
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_cnn_and_mlp_see_the_same_batches_and_positions_whatever_their_size(monkeypatch):
    calls = record_training(monkeypatch)
    lesson.main([*TINY, "--augment"])
    lesson.main([*TINY, "--augment", "--channels", "8,8"])  # larger networks draw more initial weights
    assert [name for name, *_ in calls] == ["CNN", "Sequential"] * 2
    start = common.batch_generator(0).get_state()  # the batch order and --augment's positions come from here
    assert all(torch.equal(state, start) for *_, state in calls)


def test_mean_pool_exercise_trains_the_lessons_cnn_and_a_twin_from_the_same_weights_and_batches(monkeypatch):
    calls = record_training(monkeypatch)
    lesson_run = lesson.main(TINY)
    exercise = lesson8_mean_pool.run(TINY)
    (_, cnn, _), _, (name_max, max_pool, _), (name_mean, mean_pool, _) = calls
    assert (name_max, name_mean) == ("CNN", "MeanPoolCNN")
    assert same_weights(max_pool, cnn) and same_weights(mean_pool, cnn)
    start = common.batch_generator(0).get_state()
    assert all(torch.equal(state, start) for *_, state in calls)
    # so the exercise's max-pool CNN is the lesson's CNN, result for result
    assert (exercise["max_centred"], exercise["max_shifted"]) == (lesson_run["cnn_centred"], lesson_run["cnn_shifted"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda():
    metrics = lesson.main(["--device", "cuda", *SMALL])
    assert metrics["device"].startswith("cuda") and metrics["cnn_shifted"] > 0.85
    assert metrics["invariance_error_inside"] < 1e-4


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--canvas", "7"], ["--canvas", "at least 9"]),
        (["--canvas", "8"], ["--canvas", "at least 9"]),
        (["--kernel", "0"], ["--kernel", "positive"]),
        (["--kernel", "4"], ["--kernel", "odd"]),
        (["--kernel", "17"], ["--kernel", "larger than the canvas"]),
        (["--channels", "0"], ["--channels", "positive"]),
        (["--channels", "16,0,32"], ["--channels", "positive"]),
        (["--channels", "16,,32"], ["--channels", "separated by commas"]),
        (["--test-fraction", "0"], ["--test-fraction", "above 0"]),
        (["--test-fraction", "1"], ["--test-fraction", "[0, 1)"]),
        (["--test-fraction", "0.999"], ["--test-fraction 0.999", "too few to train on"]),
        (["--lr", "1e30", "--canvas", "10", "--channels", "4"], ["diverged in epoch 1", "lower --lr"]),
    ],
)
def test_bad_flags_get_a_one_line_error(cli, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--epochs", "1", "--no-figure"])
    assert_one_line_error(status, err, *phrases)


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("cnn_digits")
    assert status == 0, err
    assert "CNN epoch" in out and "shifted" in out and "figure:" in out
    assert_png(figs / "cnn_digits.png")
