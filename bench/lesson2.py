"""LR_miniBatch_datasetDataLoader: the gap after 50 epochs for each batch size, over seeds.

Mini-batch results depend on the batch order; these tables give them for several seeds, so that a
comparison the course states (which batch size ends closest) is seen to hold, or not, beyond seed 0.
"""

import torch

import common
import LR_miniBatch_datasetDataLoader as lesson
from exercises import lesson2_thermometer

SEEDS = range(5)
SIZES = [1, 2, 5, 10, 20, 50, 100]


def gap(data, stats, lr_w, lr_b, batch_size, seed, epochs):
    return lesson.gaps(lesson.train(data, lr_w, lr_b, batch_size, epochs, seed, torch.device("cpu")), stats)[-1]


def rows(timed):
    args = lesson.parse_args([])
    line = []
    for size in SIZES:
        row = {"batch size": size, "steps": args.epochs * -(-args.n // size)}
        for seed in SEEDS:
            data = lesson.NoisyLine(args.n, args.slope, args.intercept, args.noise, common.generator(seed))
            row[f"seed {seed}"] = (
                f"{gap(data, lesson.line_statistics(data), args.lr_w, args.lr_b, size, seed, args.epochs):.2e}"
            )
        line.append(row)
    slow = {"batch size": "1, rates / 10", "steps": args.epochs * args.n}
    for seed in SEEDS:
        data = lesson.NoisyLine(args.n, args.slope, args.intercept, args.noise, common.generator(seed))
        slow[f"seed {seed}"] = (
            f"{gap(data, lesson.line_statistics(data), args.lr_w / 10, args.lr_b / 10, 1, seed, args.epochs):.2e}"
        )
    line.append(slow)
    rates = f"lr_w = {args.lr_w:g}, lr_b = {args.lr_b:g}"
    title = f"noisy line (its data and batch order from each seed), {args.epochs} epochs, {rates}"

    readings = lesson2_thermometer.Thermometer()
    stats = lesson.line_statistics(readings)
    thermometer = [
        {
            "batch size": size,
            **{f"seed {seed}": f"{gap(readings, stats, 0.1, 0.1, size, seed, 20):.2e}" for seed in SEEDS},
        }
        for size in (11, 4, 1)
    ]
    return [
        (f"gap to least squares after the same epochs, by batch size and seed ({title})", line),
        (
            "lesson 2, exercise 2: the thermometer readings, one rate 0.1, 20 epochs (the seed sets the batch order)",
            thermometer,
        ),
    ]
