"""dnn_batchnorm: seconds of training until each configuration's dev loss reaches a target, and how each
configuration's dev loss moves over seeds (the comparisons the lesson states hold for every seed or
are worded as the numbers allow)."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

import common
import dnn_batchnorm as lesson
import mlp_embedding

SEEDS = [0, 1, 2]
# BatchNorm with the other inits: does the init still matter once the layers are normalized?
WITH_BATCHNORM = [("normal", "batch", None, None), ("default", "batch", None, None), ("small", "batch", None, None)]


def runs(seed=0, configs=lesson.COMPARED):
    """{configuration: training history} of each configuration, with the lesson's defaults and `seed`.

    As in the lesson, each configuration draws its weights from common.generator(seed) and its batches
    from common.batch_generator(seed): every configuration of one seed trains on the same batches.
    """
    args = lesson.parse_args(["--quiet", "--no-figure", "--seed", str(seed)])
    words = mlp_embedding.load_words(args.data, common.generator(args.seed))
    train_words, dev_words, _ = mlp_embedding.split_words(words, args.val_fraction)
    itos = [mlp_embedding.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    data = [mlp_embedding.examples(w, stoi, args.block_size) for w in (train_words, dev_words)]
    histories = {}
    for init, norm, layers, hidden in configs:
        config = (init, norm, layers or args.layers, hidden or args.hidden)
        model = lesson.build(len(itos), args, *config, common.generator(args.seed), "cpu")
        histories[config], _ = lesson.train(model, *data[0], *data[1], args, common.batch_generator(args.seed))
    return histories, args


def dev_losses(seed, configs):
    """{configuration: (best dev loss, |dW| / |W| per layer over the first quarter)} of runs(seed, configs),
    in a process of its own with one thread (the seeds run side by side)."""
    torch.set_num_threads(1)
    histories, _ = runs(seed, configs)
    return {config: (min(h["dev"]), first_quarter_ratio(h).tolist()) for config, h in histories.items()}


def first_time_below(history, target):
    below = np.flatnonzero(np.array(history["dev"]) <= target)
    return history["time"][below[0]] if len(below) else None


def first_quarter_ratio(history):
    """|dW| / |W| per layer, averaged over the first quarter of the steps (as the lesson prints it)."""
    ratios = np.array(history["ratio"])
    return ratios[: max(1, len(ratios) // 4)].mean(0)


TARGET = 2.2  # a dev loss the well-initialized configurations pass in the first half of the lesson's 2,000 steps


def rows(timed):
    # Over seeds first, one process per seed; then the timed runs alone, so that their seconds are undisturbed.
    configs = [*lesson.COMPARED, *WITH_BATCHNORM]
    with ProcessPoolExecutor(len(SEEDS)) as pool:
        per_seed = dict(zip(SEEDS, pool.map(dev_losses, SEEDS, [configs] * len(SEEDS))))
    (histories, args), _ = timed(runs, repeat=1)
    target = TARGET
    table = []
    for config, history in histories.items():
        t = first_time_below(history, target)
        ratio = first_quarter_ratio(history)
        table.append(
            {
                "configuration": lesson.name(*config),
                "training seconds": f"{history['seconds']:.1f}",
                f"seconds to dev {target}": f"{t:.1f}" if t is not None else "never",
                "best dev": f"{min(history['dev']):.4f}",
                "|dW|/|W| first quarter, layers 1 .. 6": " ".join(f"{r:.1e}" for r in ratio),
            }
        )
    title = f"seconds of training to dev loss {target} ({args.steps} steps each, dev every {args.eval_every}; seed 0)"

    # Over seeds: the seed changes the split, the initial weights and the batches alike.
    reference = ("kaiming", "batch", args.layers, args.hidden)  # the lesson's default configuration
    seeds_table = []
    for init, norm, layers, hidden in configs:
        config = (init, norm, layers or args.layers, hidden or args.hidden)
        best = [per_seed[s][config][0] for s in SEEDS]
        against = [b - per_seed[s][reference][0] for s, b in zip(SEEDS, best)]
        ratio = np.array([per_seed[s][config][1] for s in SEEDS])
        seeds_table.append(
            {
                "configuration": lesson.name(*config),
                **{f"best dev, seed {s}": f"{b:.4f}" for s, b in zip(SEEDS, best)},
                "max - min": f"{max(best) - min(best):.4f}",
                "minus kaiming + batch, per seed": " ".join(f"{d:+.4f}" for d in against),
                "|dW|/|W| first quarter (mean of layers, min-max over seeds)": (
                    f"{ratio.mean(1).min():.1e} - {ratio.mean(1).max():.1e}"
                ),
            }
        )
    seeds_title = (
        f"best dev loss over seeds {', '.join(map(str, SEEDS))} ({args.steps} steps each; within a seed every "
        "configuration trains on the same batches)"
    )
    return [(title, table), (seeds_title, seeds_table)]
