"""LR_miniBatch_PyTorchWay: epochs and seconds to a training gap below 1e-3 on the diabetes data."""

import numpy as np

import common
import LR_miniBatch_PyTorchWay as lesson

TARGET = 1e-3


SEEDS = range(3)
# (what the course compares, flags): each run's training gap and validation MSE, seed by seed
RUNS = [
    ("diabetes, defaults", ["--dataset", "diabetes"]),
    ("diabetes, --schedule constant", ["--dataset", "diabetes", "--schedule", "constant"]),
    ("diabetes, --momentum 0", ["--dataset", "diabetes", "--momentum", "0"]),
    ("diabetes, --optimizer adam", ["--dataset", "diabetes", "--optimizer", "adam"]),
    ("line, defaults", []),
    ("line, --optimizer adam", ["--optimizer", "adam"]),
]


def over_seeds():
    table = []
    for name, flags in RUNS:
        runs = [lesson.main([*flags, "--seed", str(seed), "--quiet", "--no-figure"]) for seed in SEEDS]
        table.append({"run": name, **{f"gap, seed {s}": f"{m['gap']:.2e}" for s, m in zip(SEEDS, runs)}})
        table[-1].update({f"val MSE, seed {s}": f"{m['val_loss']:.6g}" for s, m in zip(SEEDS, runs)})
    return "the same runs over seeds (each seed draws its own split, line and batch order)", table


def rows(timed):
    args = lesson.parse_args(["--dataset", "diabetes", "--quiet", "--no-figure"])
    gen = common.generator(args.seed)
    X, Y, *_ = lesson.load_dataset("diabetes", gen)
    train_rows, val_rows = lesson.split(len(X), args.val_fraction, gen)
    data = X[train_rows], Y[train_rows], X[val_rows], Y[val_rows]
    args.batch_size = min(128, len(train_rows))
    ref_loss = lesson.power_loss(lesson.fit_reference(data[0], data[1], "standardize", 2, 0)(data[0]), data[1], 2)

    results = []
    for scaling in ["standardize", "rownorm", "none"]:
        for optimizer in ["sgd", "adam"]:
            lr = lesson.DEFAULT_LR[optimizer]
            (_, history), _ = timed(lesson.train, *data, args, "cpu", scaling, optimizer, lr)
            gaps = np.array(history["train"]) / ref_loss - 1
            reached = np.flatnonzero(gaps < TARGET)
            epoch = int(reached[0]) + 1 if len(reached) else None
            results.append(
                {
                    "features, optimizer": f"{scaling}, {optimizer} (lr {lr:g})",
                    "epochs": epoch,
                    "seconds": history["seconds"][epoch - 1] if epoch else None,
                    "gap after 100": gaps[-1],
                }
            )
    base = results[0]
    table = [
        {
            "features, optimizer": r["features, optimizer"],
            "epochs to 1e-3": r["epochs"] or f"never in {args.epochs}",
            "seconds": f"{r['seconds']:.3f}" if r["epochs"] else "-",
            f"gap after {args.epochs} epochs": f"{r['gap after 100']:.1e}",
            "time vs standardize+sgd": f"{r['seconds'] / base['seconds']:.2f}x" if r["epochs"] else "never",
        }
        for r in results
    ]
    title = f"{args.epochs} epochs, cosine schedule, batches of {args.batch_size}, seed {args.seed}, CPU"
    return [(f"diabetes, training gap below {TARGET:g} ({title})", table), over_seeds()]
