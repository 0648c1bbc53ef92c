"""Lesson 5, softmax_classifier.py: one linear layer + softmax reaches the count-based bigram optimum."""

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import common
import softmax_classifier as lesson
from tests.conftest import assert_one_line_error, assert_png, smoke_run

QUICK = ["--quiet", "--no-figure"]


@pytest.fixture
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("ab\naab\nba\nabba\nb\n\nbaab\n")
    return path


def test_reduced_run_on_the_names_gets_within_a_hundredth_of_a_nat(names_subset):
    metrics = lesson.main(["--data", str(names_subset), "--epochs", "40", "--samples", "0", *QUICK])
    assert 0 <= metrics["gap_nats"] < 0.01
    assert metrics["gap"] == pytest.approx(metrics["gap_nats"] / metrics["ref_loss"])
    assert metrics["dev_loss"] == pytest.approx(metrics["ref_dev_loss"], abs=0.02)


def test_tiny_word_list_reaches_its_count_optimum(words_file):
    metrics = lesson.main(["--data", str(words_file), "--val-fraction", "0", "--epochs", "300", *QUICK])
    assert 0 <= metrics["gap_nats"] < 1e-3
    assert "dev_loss" not in metrics


def test_softmax_and_nll_by_hand_equal_cross_entropy():
    logits = torch.randn(50, 7, generator=common.generator(0), dtype=torch.float64) * 3
    y = torch.randint(0, 7, (50,), generator=common.generator(1))
    assert lesson.nll_by_hand(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-12)


def test_count_optimum_computed_two_ways(words_file):
    words = common.read_words(words_file, ".")
    stoi = {c: i for i, c in enumerate(".ab")}
    x, y = lesson.pairs(words, stoi)
    by_tensor = lesson.count_nll(lesson.count_matrix(x, y, 3), x, y)
    # the same by plain counting: -mean log(count(prev, next) / count(prev))
    pair_counts = Counter(zip(x.tolist(), y.tolist()))
    prev_counts = Counter(x.tolist())
    by_hand = -np.mean([np.log(pair_counts[p] / prev_counts[p[0]]) for p in zip(x.tolist(), y.tolist())])
    assert by_tensor == pytest.approx(by_hand, rel=1e-12)


def test_count_model_is_the_minimum_and_smoothing_costs_training_loss(words_file):
    words = common.read_words(words_file, ".")
    x, y = lesson.pairs(words, {c: i for i, c in enumerate(".ab")})
    N = lesson.count_matrix(x, y, 3)
    best = lesson.count_nll(N, x, y)
    assert lesson.count_nll(N, x, y, smoothing=1.0) > best
    W = torch.randn(3, 3, generator=common.generator(0), dtype=torch.float64)
    assert F.cross_entropy(W[x], y).item() > best


def test_pairs_mark_start_and_end():
    x, y = lesson.pairs(["ab"], {".": 0, "a": 1, "b": 2})
    assert list(zip(x.tolist(), y.tolist())) == [(0, 1), (1, 2), (2, 0)]


def test_same_seed_same_samples(names_subset, learner_threads):
    run = ["--data", str(names_subset), "--epochs", "5", "--samples", "5", *QUICK]
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["2", "2", "3"])
    assert first["samples"] == again["samples"] and first["loss"] == again["loss"]
    assert first["samples"] != other["samples"]


def test_weight_decay_pulls_towards_uniform_like_smoothing(names_subset):
    run = ["--data", str(names_subset), "--epochs", "40", "--samples", "0", *QUICK]
    plain, decayed = lesson.main(run), lesson.main([*run, "--weight-decay", "1e-3"])
    assert decayed["loss"] > plain["loss"]


def test_weight_decay_is_half_lambda_times_the_sum_of_squares(words_file):
    # The meaning of --weight-decay in lessons 3 and 4: the minimum of loss + wd / 2 * sum(W^2) is where
    # the gradient of the loss is -wd * W. Trained long enough, W must satisfy that, entry by entry.
    words = common.read_words(words_file, ".")
    x, y = lesson.pairs(words, {c: i for i, c in enumerate(".ab")})
    args = lesson.parse_args(["--epochs", "3000", "--weight-decay", "0.1"])
    W, _ = lesson.train(x, y, 3, args, "cpu", "gd", 5.0)
    W.requires_grad_(True)
    F.cross_entropy(F.embedding(x, W), y).backward()
    assert torch.allclose(W.grad, -0.1 * W.detach(), atol=1e-5)
    assert W.abs().max() > 0.1  # not trivially at 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda():
    metrics = lesson.main(["--device", "cuda", "--samples", "0", *QUICK])
    assert metrics["device"].startswith("cuda") and metrics["gap_nats"] < 0.01


@pytest.mark.parametrize(
    "content, phrase",
    [
        (None, "no such file"),
        (b"", "no words"),
        (b"\n  \n", "no words"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"caf\xe9\n", "not UTF-8"),
        (b"anna\nj.r\n", "contains '.'"),
    ],
)
def test_bad_data_files_get_a_one_line_error(cli, tmp_path, content, phrase):
    path = tmp_path / "words.txt"
    if content is not None:
        path.write_bytes(content)
    status, _, err = cli(lesson, ["--data", str(path), "--no-figure"])
    assert_one_line_error(status, err, phrase)


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--epochs", "0"], ["--epochs", "positive"]),
        (["--lr", "0"], ["--lr", "positive"]),
        (["--val-fraction", "1"], ["--val-fraction", "[0, 1)"]),
        (["--optimizer", "sgd"], ["--optimizer", "invalid choice"]),
        (["--optimizer", "gd", "--lr", "1e39", "--epochs", "5"], ["diverged at step", "lower --lr"]),
    ],
)
def test_bad_flags_get_a_one_line_error(cli, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--no-figure"])
    assert_one_line_error(status, err, *phrases)


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("softmax_classifier")
    assert status == 0, err
    assert "count optimum" in out and "samples:" in out
    assert_png(figs / "softmax_classifier.png")
