"""Lesson 2, LR_miniBatch_datasetDataLoader.py: Datasets, DataLoader batches, and mini-batch descent."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import common
import LR_miniBatch_datasetDataLoader as lesson
from tests.conftest import assert_one_line_error, assert_png, smoke_run

QUICK = ["--quiet", "--no-figure"]


def test_reduced_run_reaches_least_squares():
    metrics = lesson.main(["--epochs", "25", *QUICK])
    assert metrics["gap"] < 1e-3
    assert metrics["w"] == pytest.approx(metrics["ref_w"], rel=0.01)
    assert metrics["steps"] == 25 * 5  # 100 rows in batches of 20


def test_streamed_least_squares_equals_numpy_lstsq():
    data = lesson.NoisyLine(generator=common.generator(3))
    w, b, loss = lesson.least_squares(lesson.line_statistics(data, chunk=7))  # chunks that do not divide 100
    X = np.stack([data.x.double().numpy(), np.ones(len(data))], axis=1)
    (ref_w, ref_b), *_ = np.linalg.lstsq(X, data.y.double().numpy(), rcond=None)
    assert (w, b) == pytest.approx((ref_w, ref_b), rel=1e-9)
    assert loss == pytest.approx(np.mean((X @ [ref_w, ref_b] - data.y.double().numpy()) ** 2), rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 400), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_noisy_line_dataset_length_and_indexing(n, seed, data):
    line = lesson.NoisyLine(n, slope=3.0, intercept=2.0, noise=100.0, generator=common.generator(seed))
    assert len(line) == n
    i = data.draw(st.integers(0, n - 1))
    x, y = line[i]
    assert float(x) == pytest.approx(-100 + 200 * i / (n - 1), abs=1e-4)
    assert (x, y) == (line.x[i], line.y[i])
    with pytest.raises(IndexError):
        line[n]


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 300), seed=st.integers(0, 1000))
def test_npy_file_round_trip_gives_the_same_rows(tmp_path_factory, n, seed):
    path = tmp_path_factory.mktemp("npy") / "line.npy"
    line = lesson.NoisyLine(n, generator=common.generator(seed))
    lesson.save_npy(line, path)
    mapped = lesson.NpyLine(path)
    assert isinstance(mapped.rows, np.memmap)  # read from disk on demand, not loaded
    assert len(mapped) == n
    for i in {0, n // 2, n - 1}:
        assert mapped[i] == line[i]


def test_one_batch_of_everything_is_full_batch_gradient_descent():
    data = lesson.NoisyLine(generator=common.generator(0))
    history = lesson.train(data, 1e-5, 0.01, batch_size=len(data), epochs=5, seed=0, device="cpu")
    x, y = data.x.double().numpy(), data.y.double().numpy()
    w = b = 0.0
    for _ in range(5):  # the gradient descent of lesson 1, by hand
        r = w * x + b - y
        w, b = w - 1e-5 * 2 * np.mean(r * x), b - 0.01 * 2 * np.mean(r)
    assert (history["w"][-1], history["b"][-1]) == pytest.approx((w, b), rel=1e-5)


def test_mini_batches_beat_full_batch_per_epoch_not_per_step():
    data = lesson.NoisyLine(generator=common.generator(0))
    stats = lesson.line_statistics(data)
    mini = lesson.train(data, 1e-5, 0.01, 20, epochs=10, seed=0, device="cpu")
    full = lesson.train(data, 1e-5, 0.01, 100, epochs=10, seed=0, device="cpu")
    assert lesson.mse(mini["w"][-1], mini["b"][-1], stats) < lesson.mse(full["w"][-1], full["b"][-1], stats)
    # the same 10 gradient steps: mini-batches are no better than the full batch
    assert lesson.mse(mini["w"][10], mini["b"][10], stats) >= 0.9 * lesson.mse(full["w"][10], full["b"][10], stats)


class RecordedLine(lesson.NoisyLine):
    """The noisy line, noting which rows are read, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = []

    def __getitem__(self, i):
        self.read.append(int(i))
        return super().__getitem__(i)


def test_every_batch_size_cuts_the_same_shuffle_of_the_rows():
    # The batch order comes from its own stream (common.batch_generator): the same seed gives the same
    # order of rows, epoch after epoch, whatever the batch size, and whatever drew the data.
    orders = []
    for batch_size, data_seed in [(20, 0), (50, 0), (7, 5)]:
        data = RecordedLine(generator=common.generator(data_seed))
        lesson.train(data, 1e-5, 0.01, batch_size, epochs=3, seed=0, device="cpu")
        orders.append(data.read)
    assert orders[0] == orders[1] == orders[2]
    assert sorted(orders[0][:100]) == list(range(100)) and orders[0][:100] != orders[0][100:200]
    other = RecordedLine(generator=common.generator(0))
    lesson.train(other, 1e-5, 0.01, 20, epochs=3, seed=1, device="cpu")
    assert other.read != orders[0]


def test_memmap_file_gives_the_same_result_as_memory(tmp_path):
    path = tmp_path / "line.npy"
    in_memory = lesson.main(["--epochs", "10", "--save-npy", str(path), *QUICK])
    from_disk = lesson.main(["--epochs", "10", "--memmap", str(path), *QUICK])
    for key in ["loss", "ref_loss", "w", "b", "gap"]:
        assert from_disk[key] == pytest.approx(in_memory[key], rel=1e-6)


def test_same_seed_same_numbers(learner_threads):
    run = ["--epochs", "5", *QUICK]
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["1", "1", "2"])
    del first["seconds"], again["seconds"]
    assert first == again
    assert first["w"] != other["w"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda():
    metrics = lesson.main(["--device", "cuda", "--epochs", "25", *QUICK])
    assert metrics["device"].startswith("cuda") and metrics["gap"] < 1e-3


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--batch-size", "0"], ["--batch-size", "positive"]),
        (["--batch-size", "101"], ["--batch-size 101", "larger than the data"]),
        (["--epochs", "0"], ["--epochs", "positive"]),
        (["--lr-b", "0"], ["--lr-b", "positive"]),
        (["--lr", "1e-2"], ["diverged at epoch", "stable only for"]),
        (["--memmap", "no/such/file.npy"], ["no such file"]),
    ],
)
def test_bad_input_gets_a_one_line_error(cli, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--no-figure"])
    assert_one_line_error(status, err, *phrases)


@pytest.mark.parametrize(
    "content, phrase",
    [
        (b"x,y\n1,2\n", "not a .npy file"),
        (np.zeros((10, 3)), "expected an (N, 2) array"),
        (np.zeros(10), "expected an (N, 2) array"),
        (np.zeros((10, 2), dtype=np.int64), "floating-point"),
    ],
)
def test_malformed_data_file_gets_a_one_line_error(cli, tmp_path, content, phrase):
    path = tmp_path / "bad.npy"
    path.write_bytes(content) if isinstance(content, bytes) else np.save(path, content)
    status, _, err = cli(lesson, ["--memmap", str(path), "--no-figure"])
    assert_one_line_error(status, err, phrase)


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("LR_miniBatch_datasetDataLoader")
    assert status == 0, err
    assert "gap to least squares" in out and "nan" not in out.lower()
    assert_png(figs / "LR_miniBatch_datasetDataLoader.png")
