"""Lesson 9, ddp_training.py: DDP over 2 workers computes what one process computes with the whole batch."""

import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist

import common
import ddp_training as lesson
import mlp_embedding as lesson6
from exercises import lesson9_accumulation
from tests.conftest import REPO, SMOKE_ARGS, assert_one_line_error, assert_png, smoke_run

SMALL = ["--block-size", "3", "--emb-dim", "8", "--hidden", "32", "--layers", "1", "--batch-size", "32"]


def test_script_run_of_two_workers_ends_where_one_process_ends_even_launched_like_a_notebook():
    # The script run (tests/scripts.py) executes the file with runpy as `__main__`, as a notebook runs
    # its code: in a namespace that is not the module `ddp_training`, where the spawned workers must
    # still find their entry point.
    status, _, err, figs = smoke_run("ddp_training")
    assert status == 0, err
    folder = figs.parent
    m = json.loads((folder / "metrics.json").read_text())

    assert m["workers"] == 2 and m["max_param_diff"] <= 1e-4
    assert m["loss"] == pytest.approx(m["ref_loss"], abs=1e-5) and m["loss"] < 3.0  # it trained (uniform: 3.3)
    # BatchNorm: DDP normalizes each worker's rows apart, not the whole batch
    assert m["bn_diff_per_worker"] <= 1e-6 and m["bn_diff_whole_batch"] > 1e-3
    # Timings, measured: only their signs are certain. The all-reduce and the steps are timed at
    # different moments, so on a busy machine the all-reduce's mean can exceed the mean step (1.13 seen).
    assert m["ddp_steps_per_s"] > 0 and m["ref_steps_per_s"] > 0 and m["comm_share"] > 0

    # Independently of the lesson's own comparison: rank 0's checkpoint against one process trained here,
    # with the data and initial weights from the seed's generator, the batches from its batch stream.
    args = lesson.parse_args(SMOKE_ARGS["ddp_training"])
    gen = common.generator(args.seed)
    itos, Xtr, Ytr, _, _ = lesson.load_data(args, gen)
    reference = lesson.make_model(len(itos), args, gen)
    lesson.train(reference, Xtr, Ytr, args, common.batch_generator(args.seed), slice(None), args.steps)
    saved = torch.load(folder / "out" / "model.pt", weights_only=True)["model"]
    # The bound the lesson asserts; a run from other weights or on other batches differs by over 1e-2.
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=1e-4)
    # Exercise 2's single process, accumulating the two workers' slices, ends there too.
    accumulated = lesson9_accumulation.models(args)["divided"].state_dict()
    for name, value in accumulated.items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=1e-4)


def test_accumulation_exercise_starts_from_the_lessons_weights_and_batches(names_subset, tmp_path, monkeypatch):
    # Record every training's initial weights and batch stream: the lesson's DDP run and reference
    # (one worker, in this process) and the exercise's three runs.
    calls = []

    def recording(train):
        def wrapped(model, Xtr, Ytr, args, batches, *rest, **kwargs):
            module = getattr(model, "module", model)  # inside DDP
            if not any(isinstance(m, torch.nn.BatchNorm1d) for m in module.modules()):
                calls.append(([p.detach().clone() for p in module.parameters()], batches.get_state()))
            return train(model, Xtr, Ytr, args, batches, *rest, **kwargs)

        return wrapped

    monkeypatch.setattr(lesson, "train", recording(lesson.train))
    monkeypatch.setattr(lesson9_accumulation, "train_accumulating", recording(lesson9_accumulation.train_accumulating))
    argv = [*SMALL, "--steps", "2", "--data", str(names_subset), "--out", str(tmp_path)]
    lesson.main([*argv, "--workers", "1", "--quiet", "--no-figure"])
    lesson9_accumulation.models(lesson.parse_args([*argv, "--workers", "2"]))
    assert len(calls) == 5  # DDP, its reference; the exercise's reference, divided, not divided
    weights, start = calls[0][0], common.batch_generator(0).get_state()
    for params, state in calls:
        assert all(torch.equal(p, q) for p, q in zip(params, weights)) and torch.equal(state, start)


def test_model_is_lesson_6s_model():
    args = lesson.parse_args(SMALL + ["--layers", "2"])
    params = lesson6.init_model(27, args, common.generator(3))
    model = lesson.make_model(27, args, common.generator(3))
    X = torch.randint(0, 27, (10, args.block_size), generator=common.generator(4))
    torch.testing.assert_close(model(X), lesson6.forward(params, X))


def hanging_worker(rank, world_size, args, port, result_path):
    """Rank 1 joins the group, then stops answering; rank 0 is the lesson's own worker."""
    (args.out / f"pid{rank}").write_text(str(os.getpid()))
    if rank == 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=1, world_size=2, timeout=datetime.timedelta(seconds=60)
        )
        time.sleep(600)
    lesson.spawned_worker(rank, world_size, args, port, result_path)


def test_a_stuck_worker_times_out_and_takes_the_others_down(names_subset, tmp_path):
    args = lesson.parse_args([*SMALL, "--data", str(names_subset), "--out", str(tmp_path), "--timeout", "1"])
    start = time.perf_counter()
    with pytest.raises(common.LessonError, match="worker 0 failed, the others were stopped") as error:
        lesson.launch(args, entry=hanging_worker)
    assert time.perf_counter() - start < 200  # the 1 s timeout (and the start of 2 processes), not rank 1's 600 s sleep
    assert len(str(error.value).splitlines()) == 1
    for rank in [0, 1]:  # no stray process is left behind
        with pytest.raises(ProcessLookupError):
            os.kill(int((tmp_path / f"pid{rank}").read_text()), 0)


def test_forming_the_group_times_out_when_a_worker_never_comes():
    args = lesson.parse_args([*SMALL, "--timeout", "1"])
    args.device = "cpu"
    start = time.perf_counter()
    with pytest.raises(dist.DistError):
        lesson.worker(0, 2, 0, args, f"tcp://127.0.0.1:{lesson.free_port()}")
    assert time.perf_counter() - start < 15


def like_a_terminals_foreground_job():
    """In the child before it starts: a process group of its own, which Ctrl-C in a terminal sends SIGINT
    to (the launcher and every worker it starts), and SIGINT handled as a terminal leaves it. A shell
    without job control (a script, `bash -c`, some CI runners) starts a background job (`pytest &`) with
    SIGINT ignored, which stays ignored across fork and exec."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_every_worker(names_subset, tmp_path):
    command = [sys.executable, str(REPO / "ddp_training.py"), *SMALL, "--steps", "1000000", "--print-every", "20"]
    command += ["--data", str(names_subset), "--out", str(tmp_path), "--no-figure"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=like_a_terminals_foreground_job
    )
    try:
        for line in process.stdout:
            if line.startswith("step"):  # the workers are training
                break
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert_one_line_error(process.returncode, err, "interrupted: all 2 workers stopped")
    for _ in range(50):  # no process of the session is left (multiprocessing's helper may take a moment)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the run are still alive after Ctrl-C")


@pytest.mark.parametrize(
    "argv, phrases",
    [
        (["--workers", "0"], ["--workers", "positive"]),
        (["--workers", "-2"], ["--workers", "positive"]),
        (["--workers", "3", "--batch-size", "2"], ["3 workers but --batch-size 2", "no examples"]),
        (["--workers", "2", "--batch-size", "33"], ["--batch-size 33", "split evenly", "multiple of 2"]),
        (["--timeout", "0"], ["--timeout", "positive"]),
        (["--device", "mps"], ["MPS", "--device cpu"]),
        (["--data", "no/such/file.txt"], ["no/such/file.txt", "no such file"]),
    ],
)
def test_bad_input_stops_before_any_process_starts(cli, monkeypatch, tmp_path, argv, phrases):
    monkeypatch.setattr(lesson, "launch", lambda args: pytest.fail("a worker was started"))
    status, _, err = cli(lesson, [*argv, "--out", str(tmp_path), "--no-figure"])
    assert_one_line_error(status, err, *phrases)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_two_gpus_match_one(names_subset, tmp_path):
    argv = [*SMALL, "--steps", "60", "--data", str(names_subset), "--out", str(tmp_path), "--device", "cuda"]
    m = lesson.main([*argv, "--quiet", "--no-figure"])
    assert m["device"].startswith("cuda") and m["max_param_diff"] <= 1e-4 and m["bn_diff_sync"] <= 1e-4


def test_script_runs_as_a_learner_runs_it():
    status, out, err, figs = smoke_run("ddp_training")
    assert status == 0, err
    assert "equivalent up to float rounding" in out and "steps/s" in out and "communication" in out
    assert_png(figs / "ddp_training.png")
