"""softmax_classifier: seconds to a training loss within 0.01 nats of the count optimum, GD vs Adam."""

import common
import softmax_classifier as lesson

TARGET = 0.01


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
    return f"training loss within {TARGET:g} nats of the count optimum ({title})", table
