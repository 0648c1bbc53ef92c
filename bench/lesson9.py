"""ddp_training: throughput of one process and of DDP with 1, 2 and 4 workers, same global batch; and how far
DDP's arithmetic drifts from whole batches under plain SGD and under Adam, over seeds."""

import tempfile

import torch
import torch.nn.functional as F

import common
import ddp_training as lesson

STEPS = 300
MARKS = [50, 100, 200, 300, 400, 600, 1000]  # steps after which the drift is read
SEEDS = [0, 1, 2]


def run(workers, threads, folder):
    argv = ["--workers", str(workers), "--threads", str(threads), "--steps", str(STEPS), "--out", folder]
    return lesson.main([*argv, "--quiet", "--no-figure"])


def throughput(timed):
    table = []
    with tempfile.TemporaryDirectory() as folder:
        for workers, threads in [(1, 1), (2, 1), (4, 1), (1, 2)]:
            m, _ = timed(run, workers, threads, folder, repeat=1)
            if not table:  # the single-process reference, measured inside the first run
                table.append(
                    {
                        "setting": "one process, no DDP",
                        "threads in all": 1,
                        "steps/s": f"{m['ref_steps_per_s']:.1f}",
                        "examples/s": f"{m['ref_examples_per_s']:.0f}",
                        "communication": "-",
                        "max param diff": "-",
                    }
                )
            table.append(
                {
                    "setting": f"DDP, {workers} worker(s) x {m['batch_size'] // workers}, {threads} thread(s) each",
                    "threads in all": workers * threads,
                    "steps/s": f"{m['ddp_steps_per_s']:.1f}",
                    "examples/s": f"{m['ddp_examples_per_s']:.0f}",
                    "communication": f"{m['comm_share']:.0%}",
                    "max param diff": f"{m['max_param_diff']:.1e}",
                }
            )
    batch = lesson.parse_args([]).batch_size
    return f"{STEPS} steps of the default model, global batch {batch}, on this machine's CPU (gloo)", table


def drift(optimizer, lr, seed):
    """{step: largest |parameter difference|} between whole batches and 2 workers' arithmetic, in one process.

    Both models start from the lesson's initial weights and take the lesson's batches. The second
    computes what 2 DDP workers compute: each half's mean loss, the two gradients averaged.
    """
    args = lesson.parse_args(["--seed", str(seed), "--lr", str(lr)])
    itos, (Xtr, Ytr, _, _), weights = lesson.start(args)
    whole, halves = (lesson.initial_model(itos, args, weights) for _ in range(2))
    optimizers = [optimizer(model.parameters(), lr=lr) for model in (whole, halves)]
    batches = common.batch_generator(seed)
    found = {}
    for step in range(1, max(MARKS) + 1):
        batch = lesson.draw_batch(len(Xtr), args, batches)
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        F.cross_entropy(whole(Xtr[batch]), Ytr[batch]).backward()
        for part in batch.chunk(2):
            (F.cross_entropy(halves(Xtr[part]), Ytr[part]) / 2).backward()
        for o in optimizers:
            o.step()
        if step in MARKS:
            found[step] = lesson.max_difference(lesson.snapshot(whole), lesson.snapshot(halves))
    return found


def drift_rows():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the lesson's workers and reference: the thread count changes the rounding
    table = []
    try:
        for name, optimizer, lr in [("SGD", torch.optim.SGD, 0.1), ("Adam", torch.optim.Adam, 3e-3)]:
            for seed in SEEDS:
                found = drift(optimizer, lr, seed)
                row = {"optimizer": f"{name}, lr {lr:g}", "seed": seed}
                row |= {f"after {step}": f"{found[step]:.1e}" for step in MARKS}
                table.append(row)
    finally:
        torch.set_num_threads(threads)
    return (
        "largest |parameter difference| between whole batches of 256 and the same batches as 2 halves with their "
        "gradients averaged (DDP's arithmetic), one process, 1 thread, the lesson's model, weights and batches"
    ), table


def rows(timed):
    return [throughput(timed), drift_rows()]
