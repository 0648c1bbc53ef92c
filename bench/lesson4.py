"""LogReg_PyTorch: seconds to a training log-loss within 1e-3 of the optimum, SGD vs Adam vs scikit-learn."""

import numpy as np

import common
import LogReg_PyTorch as lesson

TARGET = 1e-3


SEEDS = range(5)


def separable_over_seeds():
    """Lesson 4, exercise 1 over seeds: when w stops on separable data, and what more epochs change."""
    table = []
    for seed in SEEDS:
        row = {"seed": seed}
        for epochs in (300, 600):
            flags = ["--mean0", "-10", "--mean1", "10", "--epochs", str(epochs), "--seed", str(seed)]
            m = lesson.main([*flags, "--quiet", "--no-figure"])
            row[f"w after {epochs}"] = f"{m['w']:.4f}"
            row[f"last gradient, {epochs}"] = m["last_gradient_epoch"]
            row[f"last move, {epochs}"] = m["last_move_epoch"]
        table.append(row)
    return (
        "--mean0 -10 --mean1 10 (separable): w, the last epoch with a nonzero gradient, the last in which w moved",
        table,
    )


def rows(timed):
    args = lesson.parse_args(["--quiet", "--no-figure"])
    gen = common.generator(args.seed)
    X, y = lesson.load_dataset(args, gen)
    ref, ref_seconds = timed(lesson.reference, X, y, 0.0)
    ref_loss = lesson.log_loss(ref.predict_proba(X)[:, 1], y)

    results = []
    for optimizer in ["sgd", "adam"]:
        lr = lesson.DEFAULT_LR[optimizer]
        (_, history), _ = timed(lesson.train, X, y, X[:0], y[:0], args, "cpu", optimizer, lr)
        reached = np.flatnonzero(np.array(history["loss"]) / ref_loss - 1 < TARGET)
        epoch = int(reached[0]) + 1 if len(reached) else None
        results.append(
            (
                f"torch.optim.{optimizer.upper() if optimizer == 'sgd' else 'Adam'} (lr {lr:g})",
                epoch,
                history["seconds"][epoch - 1] if epoch else None,
            )
        )
    results.append(("scikit-learn LogisticRegression (lbfgs, to tol 1e-10)", None, ref_seconds))

    fastest = min(seconds for *_, seconds in results if seconds is not None)
    table = [
        {
            "method": name,
            "epochs to 1e-3": epoch if epoch else ("-" if "scikit" in name else f"never in {args.epochs}"),
            "seconds": f"{seconds:.4f}" if seconds is not None else "-",
            "vs fastest": f"{seconds / fastest:.0f}x" if seconds is not None else "never",
        }
        for name, epoch, seconds in results
    ]
    title = f"1-D data, N = {args.n}, batches of {args.batch_size}, {args.epochs}-epoch cosine schedule, seed 0, CPU"
    return [(f"log-loss gap below {TARGET:g} ({title})", table), separable_over_seeds()]
