"""dnn_batchnorm: seconds of training until each configuration's dev loss reaches a target, one run each."""

import numpy as np

import common
import dnn_batchnorm as lesson
import mlp_embedding


def runs():
    """{configuration: training history} for every configuration the lesson compares, with its defaults."""
    args = lesson.parse_args(["--quiet", "--no-figure"])
    words = mlp_embedding.load_words(args.data, common.generator(args.seed))
    train_words, dev_words, _ = mlp_embedding.split_words(words, args.val_fraction)
    itos = [mlp_embedding.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    data = [mlp_embedding.examples(w, stoi, args.block_size) for w in (train_words, dev_words)]
    histories = {}
    for init, norm, layers, hidden in lesson.COMPARED:
        config = (init, norm, layers or args.layers, hidden or args.hidden)
        gen = common.generator(args.seed)
        model = lesson.build(len(itos), args, *config, gen, "cpu")
        histories[config], _ = lesson.train(model, *data[0], *data[1], args, gen)
    return histories, args


def first_time_below(history, target):
    below = np.flatnonzero(np.array(history["dev"]) <= target)
    return history["time"][below[0]] if len(below) else None


TARGET = 2.2  # a dev loss the well-initialized configurations pass in the first half of the lesson's 2,000 steps


def rows(timed):
    (histories, args), _ = timed(runs, repeat=1)
    target = TARGET
    table = []
    for config, history in histories.items():
        t = first_time_below(history, target)
        table.append(
            {
                "configuration": lesson.name(*config),
                "training seconds": f"{history['seconds']:.1f}",
                f"seconds to dev {target}": f"{t:.1f}" if t is not None else "never",
                "best dev": f"{min(history['dev']):.4f}",
            }
        )
    title = f"training seconds to dev loss {target} ({args.steps} steps each, dev evaluated every {args.eval_every})"
    return title, table
