"""Lesson 6, mlp_embedding.py: a character MLP with an embedding table beats the best bigram model."""

import shlex

import pytest
import torch

import mlp_embedding as lesson
from bench.lesson6 import LECTURE
from tests.conftest import assert_one_line_error, assert_png, smoke_run

SMALL = ["--block-size", "3", "--emb-dim", "8", "--hidden", "64", "--layers", "1", "--batch-size", "64"]


@pytest.fixture
def quick(tmp_path, names_subset):
    """Flags of a small, quick run on 3,000 names that keeps its checkpoint under tmp_path."""
    return [
        *SMALL,
        "--data",
        str(names_subset),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
        "--no-figure",
        "--samples",
        "3",
    ]


def test_reduced_run_beats_the_bigram_optimum_on_dev(quick):
    metrics = lesson.main(["--steps", "600", "--eval-every", "200", "--lr", "0.01", *quick])
    assert metrics["dev_loss"] < metrics["ref_loss"]  # below even the bigram model counted on dev itself
    assert metrics["gap"] == pytest.approx(metrics["dev_loss"] / metrics["ref_loss"] - 1)
    assert metrics["test_loss"] < 2.6


def test_same_seed_same_numbers(quick, learner_threads):
    run = ["--steps", "60", "--eval-every", "30", *quick]
    first, again, other = (lesson.main([*run, "--seed", s]) for s in ["5", "5", "6"])
    for key in ["loss", "dev_loss", "test_loss", "samples"]:
        assert first[key] == again[key]
    assert first["loss"] != other["loss"]


def record_batches(monkeypatch, batch_size):
    """A list that fills with every batch of `batch_size` indices drawn from now on."""
    drawn, randint = [], torch.randint

    def recording(*args, **kwargs):
        out = randint(*args, **kwargs)
        if args[2] == (batch_size,):
            drawn.append(out.clone())
        return out

    monkeypatch.setattr(torch, "randint", recording)
    return drawn


def test_batch_order_does_not_depend_on_the_model_size(quick, monkeypatch):
    drawn = record_batches(monkeypatch, 64)
    run = [*quick, "--steps", "3", "--eval-every", "3", "--samples", "0"]
    lesson.main([*run, "--hidden", "32"])
    lesson.main([*run, "--hidden", "64", "--layers", "2"])  # many more initial weights drawn first
    assert len(drawn) == 2 * 3
    assert all(torch.equal(a, b) for a, b in zip(drawn[:3], drawn[3:]))
    assert not torch.equal(drawn[0], drawn[1])


def test_mean_pooling_exercise_trains_both_models_on_the_same_batches(quick, monkeypatch):
    from exercises import lesson6_mean_pooling

    drawn = record_batches(monkeypatch, 64)
    started, train = [], lesson.train

    def recording_train(params, *args, **kwargs):
        started.append(params["C"].detach().clone())
        return train(params, *args, **kwargs)

    monkeypatch.setattr(lesson, "train", recording_train)
    lesson6_mean_pooling.run([*quick, "--steps", "3", "--eval-every", "3"])
    assert len(drawn) == 2 * 3 and all(torch.equal(a, b) for a, b in zip(drawn[:3], drawn[3:]))
    assert len(started) == 2 and torch.equal(started[0], started[1])  # the same initial embedding table


def test_checkpoint_round_trip_and_sample_only(quick, tmp_path):
    trained = lesson.main(["--steps", "100", "--eval-every", "50", *quick])
    state = lesson.load_checkpoint(tmp_path / "out" / "model.pt")
    assert state["dev_loss"] == pytest.approx(trained["dev_loss"], rel=1e-6)
    assert state["config"] == {"block_size": 3, "emb_dim": 8, "hidden": 64, "layers": 1}
    sampled = lesson.main(["--sample-only", "--samples", "3", "--out", str(tmp_path / "out"), "--quiet"])
    assert sampled["samples"] == trained["samples"]  # same model, same seed: same names


def test_ctrl_c_keeps_the_best_checkpoint(quick, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = lesson.forward

    def ctrl_c_once(params, X):  # the learner presses Ctrl-C some way past the evaluation at step 20
        calls["n"] += 1
        if calls["n"] == 45:
            raise KeyboardInterrupt
        return original(params, X)

    monkeypatch.setattr(lesson, "forward", ctrl_c_once)
    metrics = lesson.main(["--steps", "1000", "--eval-every", "20", *quick, "--samples", "0"])
    assert 20 <= metrics["best_step"] < 1000
    assert lesson.load_checkpoint(tmp_path / "out" / "model.pt")["step"] == metrics["best_step"]


@pytest.mark.parametrize(
    "damage, phrase",
    [
        (lambda path: path.write_bytes(b"not a checkpoint at all"), "not a readable checkpoint"),
        (lambda path: path.write_bytes(path.read_bytes()[:200]), "not a readable checkpoint"),
        (lambda path: torch.save({"params": {}, "itos": [".", "a"], "config": {}}, path), "does not match"),
        (lambda path: path.unlink(), "no checkpoint"),
    ],
)
def test_damaged_checkpoint_gets_a_one_line_error(cli, quick, tmp_path, damage, phrase):
    lesson.main(["--steps", "20", "--eval-every", "10", *quick])
    damage(tmp_path / "out" / "model.pt")
    status, _, err = cli(lesson, ["--sample-only", "--out", str(tmp_path / "out")])
    assert_one_line_error(status, err, phrase)


def test_a_custom_word_list_generalizes_to_unseen_words(quick, tmp_path):
    # Words of a made-up language: a consonant of "bdk", then a vowel of "ao", 1 to 3 times (258 words).
    syllables = [c + v for c in "bdk" for v in "ao"]
    words = [*syllables, *(a + b for a in syllables for b in syllables)]
    words += [a + b for a in words[6:] for b in syllables]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(words))
    run = ["--data", str(path), "--val-fraction", "0.2", "--steps", "300", "--lr", "0.01", "--batch-size", "32"]
    metrics = lesson.main([*quick, *run, "--eval-every", "100"])
    train_words, dev_words, _ = lesson.split_words(lesson.load_words(path, lesson.common.generator(0)), 0.2)
    assert len(dev_words) == 52 and not set(dev_words) & set(train_words)  # dev: words never seen in training
    # The rule (consonant, vowel, consonant or end) carries over to the unseen words: their loss is far below
    # the uniform log(6) = 1.79 and below the bigram model counted on the dev words themselves.
    assert metrics["dev_loss"] < metrics["ref_loss"] < 1.2


def test_sgd_applies_the_weight_decay(quick):
    run = ["--steps", "40", "--eval-every", "40", "--optimizer", "sgd", "--lr", "0.1", *quick]
    plain, decayed = lesson.main([*run, "--weight-decay", "0"]), lesson.main([*run, "--weight-decay", "1"])
    assert decayed["loss"] != plain["loss"]


def test_docstring_gives_the_lecture_configuration_of_the_benchmark():
    doc = lesson.__doc__.replace("\\\n", " ")
    line = next(line for line in doc.splitlines() if "--block-size 3" in line)
    argv = shlex.split(line)[2:]  # after "python mlp_embedding.py"
    assert dict(zip(argv[::2], argv[1::2])) == dict(zip(LECTURE[::2], LECTURE[1::2]))


def test_examples_pad_the_start_with_the_boundary():
    X, Y = lesson.examples(["ab"], {".": 0, "a": 1, "b": 2}, block_size=3)
    assert X.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2]] and Y.tolist() == [1, 2, 0]


def test_bigram_reference_is_the_count_optimum():
    stoi = {".": 0, "a": 1, "b": 2}
    # ".ab." ".b." : pairs (.a) (ab) (b.) (.b) (b.): after "." a or b, after "a" b, after "b" "."
    expected = -(2 * torch.log(torch.tensor(0.5))) / 5
    assert lesson.bigram_nll(["ab", "b"], stoi) == pytest.approx(float(expected))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda(quick):
    metrics = lesson.main(["--device", "cuda", "--steps", "600", "--eval-every", "200", "--lr", "0.01", *quick])
    assert metrics["device"].startswith("cuda") and metrics["dev_loss"] < metrics["ref_loss"]


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--block-size", "0"], ["--block-size", "positive"]),
        (["--hidden", "0"], ["--hidden", "positive"]),
        (["--steps", "0"], ["--steps", "positive"]),
        (["--batch-size", "10000000"], ["--batch-size 10000000", "larger than the data"]),
        (["--val-fraction", "0.5"], ["--val-fraction", "[0, 0.5)"]),
        (["--lr", "1e37", "--steps", "50", "--optimizer", "sgd"], ["diverged at step", "lower --lr"]),
    ],
)
def test_bad_flags_get_a_one_line_error(cli, tmp_path, names_subset, argv, phrases):
    status, _, err = cli(lesson, [*argv, "--data", str(names_subset), "--out", str(tmp_path), "--no-figure"])
    assert_one_line_error(status, err, *phrases)


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("mlp_embedding")
    assert status == 0, err
    assert "steps/s" in out and "samples:" in out
    assert_png(figs / "mlp_embedding.png")
