"""Lesson 7, dnn_batchnorm.py: initialization and BatchNorm decide whether a deep tanh network trains."""

import math

import numpy as np
import pytest
import torch

import common
import dnn_batchnorm as lesson
import mlp_embedding
from tests.conftest import assert_one_line_error, assert_png, smoke_run

SMALL = ["--block-size", "3", "--emb-dim", "8", "--hidden", "64", "--layers", "4", "--batch-size", "64"]


@pytest.fixture
def quick(tmp_path, names_subset):
    """Flags of a small, quick run on 3,000 names that keeps its checkpoint under tmp_path."""
    return [*SMALL, "--data", str(names_subset), "--out", str(tmp_path / "out"), "--quiet", "--no-figure"]


@pytest.fixture(scope="module")
def probe(names_subset):
    """2,048 training examples (block 8) of the names subset, to measure a fresh model on."""
    words = mlp_embedding.load_words(names_subset, common.generator(0))
    stoi = {c: i for i, c in enumerate([".", *sorted(set("".join(words)))])}
    X, Y = mlp_embedding.examples(words, stoi, 8)
    batch = torch.randint(0, len(X), (2048,), generator=common.generator(1))
    return X[batch], Y[batch], len(stoi)


def fresh(vocab, init, norm, hidden=128, layers=6, out_scale="0.1", seed=0):
    args = lesson.parse_args(["--out-scale", out_scale, "--no-compare"])
    return lesson.build(vocab, args, init, norm, layers, hidden, common.generator(seed), "cpu")


def finite_width_tolerance(model, X):
    """Per layer, 4 standard deviations of the measured std's departure from the wide-layer limit.

    Given its inputs h (a batch, second-moment matrix S = h^T h / n), a layer's measured variance is
    (1/width) sum_j w_j^T S w_j over its units' weight rows w_j: for Gaussian rows its relative standard
    deviation is sqrt(2 tr(S^2) / width) / tr(S), half that for the std. The inputs here span few
    independent directions (many contexts share characters), so tr(S^2) / tr(S)^2 is not small. Errors
    of earlier layers carry over at most one for one (tanh grows slower than linearly), so they add in
    quadrature. Uniform rows (default init) spread less than Gaussian ones: the bound holds for them too.
    """
    record = []
    with torch.no_grad():
        model(X, record)
        inputs = [model.C(X).flatten(1)] + [h for _, h in record[:-1]]
    variance, tolerance = 0.0, []
    for h, linear in zip(inputs, model.linears):
        S = h.double().T @ h.double() / len(h)
        relative = math.sqrt(2 * float((S @ S).trace()) / linear.out_features) / float(S.trace())
        variance += (relative / 2) ** 2
        tolerance.append(4 * math.sqrt(variance))
    return np.array(tolerance)


@pytest.mark.parametrize("init, hidden", [*((init, 128) for init in lesson.INITS), ("kaiming", 512)])
def test_mean_field_predicts_the_std_of_every_layer_within_the_finite_width_error(probe, init, hidden):
    X, Y, vocab = probe
    model = fresh(vocab, init, "none", hidden)
    stats = lesson.init_statistics(model, init, X, Y)
    error = np.abs(np.array(stats["pre_std"]) / np.array(stats["pre_std_predicted"]) - 1)
    tolerance = finite_width_tolerance(model, X)
    assert (error < tolerance).all(), (error, tolerance)
    # a real check, and a tighter one for wider layers: at most about 10 % (1 sd) at the last of 6 layers of 128
    assert tolerance[-1] < 0.45 * math.sqrt(128 / hidden)


def test_mean_field_sees_saturation_and_shrinking(probe):
    X, Y, vocab = probe
    stats = {init: lesson.init_statistics(fresh(vocab, init, "none"), init, X, Y) for init in lesson.INITS}
    assert min(stats["normal"]["act_std_predicted"]) > 0.9 and np.mean(stats["normal"]["saturated"]) > 0.7
    assert stats["small"]["act_std_predicted"][-1] < 1e-4  # shrinks about 9-fold per layer
    default = stats["default"]["act_std"]
    assert default[-1] < 0.3 * default[0]  # PyTorch's default shrinks too, through tanh
    kaiming = stats["kaiming"]["act_std"]
    assert kaiming[-1] > 0.75 * kaiming[0] and np.mean(stats["kaiming"]["saturated"]) < 0.2


def test_weight_gradients_through_depth(probe):
    X, Y, vocab = probe
    grads = {i: np.array(lesson.init_gradients(fresh(vocab, i, "none"), X, Y)) for i in ["normal", "kaiming", "small"]}
    # N(0, 1): the layers' gradients on scales far apart (they grow going back, the "chaotic" phase);
    # Kaiming: one scale in every layer; tiny weights: tiny gradients everywhere
    assert grads["normal"].max() / grads["normal"].min() > 10
    assert grads["kaiming"].max() / grads["kaiming"].min() < 2
    assert grads["small"].max() < 1e-3 * grads["kaiming"].min()


def test_each_examples_error_grows_backwards_as_mean_field_predicts(probe):
    X, Y, vocab = probe
    growth = {}
    for init in ["normal", "kaiming"]:
        model = fresh(vocab, init, "none")
        stats = lesson.init_statistics(model, init, X, Y)
        errors, grads = lesson.init_errors(model, X, Y), lesson.init_gradients(model, X, Y)
        growth[init] = errors[0] / errors[-1], grads[0] / grads[-1], stats
        # dL/da of one example, layer 1 against the last: the square root of the product of the layers'
        # chi (the lesson's data give 75x against 85x predicted for N(0, 1), 1.13x against 1.20x for Kaiming;
        # layers of 128 units are not the wide limit)
        assert errors[0] / errors[-1] == pytest.approx(stats["error_growth_predicted"], rel=0.25)
    # BatchNorm divides out the weights' scale that chi is made of: no prediction is claimed there
    with_batchnorm = lesson.init_statistics(fresh(vocab, "kaiming", "batch"), "kaiming", X, Y)
    assert with_batchnorm["error_growth_predicted"] is None and with_batchnorm["chi"] is None
    error, grad, stats = growth["normal"]
    # N(0, 1) is chaotic, chi far above 1 in every layer; the batch's averaged weight gradients grow less
    # than each example's error (51.7x against 75x in the lesson): the examples agree less in the first layers
    assert min(stats["chi"]) > 3 and 10 < grad < error


def test_initial_loss_is_near_ln_27_with_the_output_layer_scaled_down(probe):
    X, Y, vocab = probe
    scaled = lesson.init_statistics(fresh(vocab, "kaiming", "batch"), "kaiming", X, Y)["loss"]
    full = lesson.init_statistics(fresh(vocab, "kaiming", "batch", out_scale="1"), "kaiming", X, Y)
    assert scaled == pytest.approx(math.log(vocab), abs=0.02)
    # Random logits of std sigma (about 1 here) cost about sigma^2 / 2 nats over uniform guessing (the
    # mean of exp over 27 characters is near E[exp(sigma z)] = exp(sigma^2 / 2)); the guesses are not
    # confident (top probability far below 1/2), only wrong: the top character is rarely the right one.
    extra = full["loss"] - scaled
    assert extra > 0.2 and extra == pytest.approx(full["logit_std"] ** 2 / 2, rel=0.25)
    assert full["top_prob"] < 0.5 and full["top_right"] < 0.1


def test_batchnorm_makes_the_statistics_independent_of_the_weight_scale(probe):
    X, Y, vocab = probe
    with_norm = [lesson.init_statistics(fresh(vocab, i, "batch"), i, X, Y)["act_std"] for i in lesson.INITS]
    without = [lesson.init_statistics(fresh(vocab, i, "none"), i, X, Y)["act_std"] for i in lesson.INITS]
    assert np.ptp(np.array(with_norm), axis=0).max() < 0.01  # the same in every layer, whatever the init
    assert np.ptp(np.array(without), axis=0).max() > 0.5  # ... while without it they are worlds apart


@pytest.fixture(scope="module")
def compared(tmp_path_factory, names_subset):
    out = tmp_path_factory.mktemp("dnn")
    argv = [*SMALL, "--data", str(names_subset), "--out", str(out), "--quiet", "--no-figure", "--samples", "3"]
    return lesson.main([*argv, "--steps", "200", "--eval-every", "100", "--lr", "0.01"]), out


def test_same_budget_dev_losses_order_as_the_inits_do(compared):
    metrics, _ = compared
    dev = {key: value["dev_loss"] for key, value in metrics["compared"].items()}
    kaiming_bn, kaiming = dev["4 x 64, kaiming init, norm batch"], dev["4 x 64, kaiming init, norm none"]
    normal, default = dev["4 x 64, normal init, norm none"], dev["4 x 64, default init, norm none"]
    # Saturated (normal) or shrinking (default) activations learn slowly: after the same 200 steps both
    # trail the Kaiming init, with or without BatchNorm, by far (measured: 0.15 nats and more).
    assert max(kaiming_bn, kaiming) < min(normal, default) - 0.1
    assert metrics["dev_loss"] == pytest.approx(kaiming_bn)  # the default configuration is the one reported


def test_update_to_data_ratio_follows_the_learning_rate(compared):
    metrics, _ = compared
    start, end = np.array(metrics["update_ratio_start"]), np.array(metrics["update_ratio_end"])
    assert len(start) == 4 and (start > 1e-4).all() and (start < 0.1).all()
    assert (end < 0.5 * start).all()  # the cosine schedule takes the rate, and the steps, down


def test_batchnorm_train_mode_gives_another_dev_loss_and_samples_use_eval_mode(compared):
    metrics, out = compared
    # in train mode each example's output depends on the others in its batch: another number; worse with
    # small random batches (noisy statistics), better than it should be when a batch holds the characters
    # of the same few names (the statistics carry the answers)
    assert metrics["dev_loss_train_mode"] != pytest.approx(metrics["dev_loss"], abs=1e-4)
    assert metrics["dev_loss_train_mode_16"] > metrics["dev_loss"] + 0.01
    assert metrics["dev_loss_train_mode_16_in_order"] < metrics["dev_loss_train_mode_16"] - 0.01
    assert len(metrics["samples"]) == 3 and all(metrics["samples"])
    state = torch.load(out / "model.pt", weights_only=True)
    assert state["dev_loss"] == pytest.approx(metrics["dev_loss"], rel=1e-6)
    assert any("running_mean" in key for key in state["state"])  # eval mode needs them: they are saved


def test_every_configuration_trains_on_the_same_batches(quick, monkeypatch):
    # The configurations differ in size (4 x 64 with and without biases, lesson 6's 2 x 256), so they draw
    # different numbers of initial weights; the batches they train on must not depend on that.
    drawn, randint = [], torch.randint

    def recording(*args, **kwargs):
        out = randint(*args, **kwargs)
        if args[2] == (64,):  # the training batches (the probe of 2,048 examples is drawn once, apart)
            drawn.append(out.clone())
        return out

    monkeypatch.setattr(torch, "randint", recording)
    metrics = lesson.main([*quick, "--steps", "3", "--eval-every", "3", "--samples", "0"])
    assert len(metrics["compared"]) == 5 and len(drawn) == 5 * 3
    runs = [torch.stack(drawn[i : i + 3]) for i in range(0, len(drawn), 3)]
    assert all(torch.equal(run, runs[0]) for run in runs)
    assert not torch.equal(runs[0][0], runs[0][1])  # ... while one step's batch is not the next one's


def test_same_seed_same_numbers(quick):
    run = ["--steps", "20", "--eval-every", "10", "--no-compare", "--samples", "2", *quick]
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["5", "5", "6"])
    for key in ["loss", "dev_loss", "test_loss", "samples", "init"]:
        assert first[key] == again[key]
    assert first["loss"] != other["loss"]


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--layers", "0"], ["--layers", "positive"]),
        (["--hidden", "0"], ["--hidden", "positive"]),
        (["--init", "xavier"], ["--init", "invalid choice"]),
        (["--norm", "group"], ["--norm", "invalid choice"]),
        (["--batch-size", "1"], ["--batch-size 1", "BatchNorm", "at least 2"]),
        (["--batch-size", "1", "--norm", "none"], ["--batch-size 1", "--no-compare"]),
        (["--out-scale", "nan"], ["--out-scale", "positive"]),
        (["--val-fraction", "0.5"], ["--val-fraction", "[0, 0.5)"]),
        (["--batch-size", "10000000"], ["--batch-size 10000000", "larger than the data"]),
        (["--lr", "1e37", "--steps", "50", "--no-compare"], ["diverged at step", "lower --lr"]),
    ],
)
def test_bad_flags_get_a_one_line_error(cli, tmp_path, names_subset, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--data", str(names_subset), "--out", str(tmp_path), "--no-figure"])
    assert_one_line_error(status, err, *phrases)


def test_batch_of_one_trains_without_batchnorm(quick):
    metrics = lesson.main([*quick, "--batch-size", "1", "--norm", "layer", "--no-compare", "--steps", "20"])
    assert math.isfinite(metrics["dev_loss"]) and "dev_loss_train_mode" not in metrics


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda(quick):
    metrics = lesson.main(["--device", "cuda", "--steps", "200", "--eval-every", "100", "--lr", "0.01", *quick])
    assert metrics["device"].startswith("cuda") and len(metrics["compared"]) == 5
    assert metrics["dev_loss"] < 2.45 and metrics["dev_loss_train_mode_16"] > metrics["dev_loss"]


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("dnn_batchnorm")
    assert status == 0, err
    assert "mean-field" in out and "eval mode" in out and "samples:" in out
    assert_png(figs / "dnn_batchnorm.png")
