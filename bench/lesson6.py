"""mlp_embedding: the configuration of Karpathy's lecture "Building makemore Part 2: MLP" and this lesson's
defaults, trained side by side; the runs behind the choice of --lr and --weight-decay; the default run
over seeds."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

import common
import mlp_embedding as lesson

LECTURE = [
    *("--block-size", "3", "--emb-dim", "10", "--hidden", "200", "--layers", "1"),
    *("--optimizer", "sgd", "--lr", "0.1", "--schedule", "step", "--batch-size", "32", "--steps", "200000"),
    *("--eval-every", "5000", "--weight-decay", "0"),
]


# One flag changed at a time from the defaults (--lr 3e-3, --weight-decay 0.2, 10,000 steps).
SWEEP = [
    ["--lr", "1e-3"],
    ["--lr", "6e-3"],
    ["--lr", "1.2e-2"],
    *(["--weight-decay", d] for d in ["0.01", "0.1", "0.4"]),
]
SEEDS = [0, 1, 2]


def run(argv):
    """(history, best, dev loss, test loss) of `python mlp_embedding.py ARGV`: its draws, its batches."""
    args = lesson.parse_args([*argv, "--quiet", "--no-figure"])
    gen = common.generator(args.seed)
    words = lesson.load_words(args.data, gen)
    train_words, dev_words, test_words = lesson.split_words(words, args.val_fraction)
    itos = [lesson.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    data = [lesson.examples(w, stoi, args.block_size) for w in (train_words, dev_words, test_words)]
    params = lesson.init_model(len(itos), args, gen)
    history, best = lesson.train(params, *data[0], *data[1], args, common.batch_generator(args.seed))
    return history, best, lesson.evaluate(best["params"], *data[1]), lesson.evaluate(best["params"], *data[2])


def dev_loss(argv):
    """The best checkpoint's dev loss of `python mlp_embedding.py ARGV`, in a process of its own, one thread."""
    torch.set_num_threads(1)
    return run(argv)[2]


def first_time_below(history, target):
    below = np.flatnonzero(np.array(history["dev"]) <= target)
    return history["time"][below[0]] if len(below) else None


def rows(timed):
    # The untimed runs first, side by side in processes of their own; then the timed runs alone.
    argvs = [[*flags, "--seed", str(seed)] for flags in [[], *SWEEP] for seed in SEEDS]
    with ProcessPoolExecutor(2) as pool:
        devs = dict(zip(map(tuple, argvs), pool.map(dev_loss, argvs)))
    lecture, _ = timed(run, LECTURE, repeat=1)
    default, _ = timed(run, [], repeat=1)
    target = lecture[2]
    t_lecture, t_default = first_time_below(lecture[0], target), first_time_below(default[0], target)
    table = [
        {
            "configuration": name,
            "steps": steps,
            "training seconds": f"{history['seconds']:.0f}",
            f"seconds to dev {target:.4f}": f"{t:.1f}" if t is not None else "never",
            "final dev": f"{dev:.4f}",
            "final test": f"{test:.4f}",
        }
        for name, steps, (history, _, dev, test), t in [
            ("lecture: block 3, emb 10, 200 tanh, SGD 0.1 -> 0.01, batch 32", 200_000, lecture, t_lecture),
            ("default: block 8, emb 24, 2 x 256 tanh, AdamW, batch 256", None, default, t_default),
        ]
    ]
    table[1]["steps"] = lesson.parse_args([]).steps
    ratio = f"{t_lecture / t_default:.1f}x less time" if t_default else "never reached"
    title = f"dev loss and time to the lecture configuration's final dev loss; default: {ratio} (CPU)"

    sweep = []
    for flags in [[], *SWEEP]:
        dev = [devs[(*flags, "--seed", str(seed))] for seed in SEEDS]
        base = [devs[("--seed", str(seed))] for seed in SEEDS]
        sweep.append(
            {
                "flags": " ".join(flags) or "(defaults: --lr 3e-3 --weight-decay 0.2)",
                **{f"dev, seed {s}": f"{d:.4f}" for s, d in zip(SEEDS, dev)},
                "max - min": f"{max(dev) - min(dev):.4f}",
                "minus the default, per seed": " ".join(f"{d - b:+.4f}" for d, b in zip(dev, base)),
            }
        )
    sweep_title = (
        "one flag changed from the defaults, 10,000 steps: dev loss of the best checkpoint over seeds "
        f"{', '.join(map(str, SEEDS))} (the seed changes the split, the initial weights and the batches)"
    )
    return [(title, table), (sweep_title, sweep)]
