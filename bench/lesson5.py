"""softmax_classifier: seconds to a training loss within 0.01 nats of the count optimum, GD vs Adam."""

import common
import softmax_classifier as lesson

TARGET = 0.01


SEEDS = range(3)


def above_the_limit(x, y, V, ref_loss):
    """Plain descent at rates 50 and 100 for 200 steps: the last losses above the optimum, step by step."""
    args = lesson.parse_args(["--epochs", "200"])
    table = []
    for lr in (50.0, 100.0):
        _, history = lesson.train(x, y, V, args, "cpu", "gd", lr)
        last = history["loss"][-8:]
        table.append(
            {"rate": f"{lr:g}", **{f"step {193 + i}": f"{loss - ref_loss:.4f}" for i, loss in enumerate(last)}}
        )
    return (
        (
            "plain gradient descent, 200 full-batch steps: training loss - count optimum (nats) at the last 8 steps,"
            " each before its update (the lesson prints the loss after step 200)"
        ),
        table,
    )


def over_seeds():
    """Dev losses the lesson and its answers compare, for several seeds (each seed draws its own dev split)."""
    from exercises import lesson5_trigram

    runs = {
        "defaults (Adam, 60 steps)": [],
        "--epochs 200": ["--epochs", "200"],
        "--weight-decay 1e-5": ["--weight-decay", "1e-5"],
        "--weight-decay 1e-4": ["--weight-decay", "1e-4"],
        "--weight-decay 1e-3": ["--weight-decay", "1e-3"],
    }
    table = []
    results = {name: [] for name in runs}
    for seed in SEEDS:
        for name, flags in runs.items():
            results[name].append(lesson.main([*flags, "--seed", str(seed), "--samples", "0", "--quiet", "--no-figure"]))
    for name in runs:
        table.append({"run": name, **{f"dev, seed {s}": f"{m['dev_loss']:.4f}" for s, m in zip(SEEDS, results[name])}})
        table[-1].update({f"train, seed {s}": f"{m['loss']:.4f}" for s, m in zip(SEEDS, results[name])})
    first = results["defaults (Adam, 60 steps)"]
    table.append(
        {"run": "add-one counts", **{f"dev, seed {s}": f"{m['ref_dev_loss']:.4f}" for s, m in zip(SEEDS, first)}}
    )
    table[-1].update({f"train, seed {s}": "-" for s in SEEDS})
    trigram = [lesson5_trigram.run(["--seed", str(seed)]) for seed in SEEDS]
    table.append(
        {"run": "trigram (exercise 2)", **{f"dev, seed {s}": f"{m['trigram_dev']:.4f}" for s, m in zip(SEEDS, trigram)}}
    )
    table[-1].update({f"train, seed {s}": f"{m['trigram_train']:.4f}" for s, m in zip(SEEDS, trigram)})
    return "dev and training loss (nats per character) over seeds", table


def rows(timed):
    args = lesson.parse_args(["--quiet", "--no-figure", "--epochs", "1000"])
    train_words, _ = lesson.load_words(args.data, args.val_fraction, common.generator(args.seed))
    itos = [lesson.BOUNDARY, *sorted(set("".join(train_words)))]
    x, y = lesson.pairs(train_words, {c: i for i, c in enumerate(itos)})
    ref_loss = lesson.count_nll(lesson.count_matrix(x, y, len(itos)), x, y)

    results = []
    for optimizer in ["gd", "adam"]:
        lr = lesson.DEFAULT_LR[optimizer]
        (_, history), _ = timed(lesson.train, x, y, len(itos), args, "cpu", optimizer, lr, ref_loss + TARGET, repeat=1)
        reached = history["loss"][-1] < ref_loss + TARGET
        results.append((optimizer, lr, len(history["loss"]) if reached else None, history["seconds"][-1]))
    adam_seconds = results[-1][3]
    table = [
        {
            "optimizer (full batch)": f"{'plain gradient descent' if name == 'gd' else 'Adam'}, lr {lr:g}",
            "steps to 0.01 nats": steps or f"never in {args.epochs}",
            "seconds": f"{seconds:.2f}",
            "vs Adam": f"{seconds / adam_seconds:.1f}x" if steps else "never",
        }
        for name, lr, steps, seconds in results
    ]
    title = f"data/names.txt, {len(x)} training pairs, seed {args.seed}, CPU"
    return [
        (f"training loss within {TARGET:g} nats of the count optimum ({title})", table),
        above_the_limit(x, y, len(itos), ref_loss),
        over_seeds(),
    ]
