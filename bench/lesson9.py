"""ddp_training: throughput of one process and of DDP with 1, 2 and 4 workers, same global batch."""

import tempfile

import ddp_training as lesson

STEPS = 300


def run(workers, threads, folder):
    argv = ["--workers", str(workers), "--threads", str(threads), "--steps", str(STEPS), "--out", folder]
    return lesson.main([*argv, "--quiet", "--no-figure"])


def rows(timed):
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
