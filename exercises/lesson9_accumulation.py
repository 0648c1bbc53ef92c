"""Lesson 9, exercise 2: gradient accumulation, DDP's arithmetic on one process.

DDP averages the gradients of W workers, each on batch-size / W examples. One process can do the
same sum in sequence: backward() on each of the W slices of the batch, each loss divided by W,
then one optimizer step; .grad accumulates the rest (lesson 1). The data, the initial weights, the
global batches and their slices are the lesson's (ddp_training.start, initial_model, draw_batch and
common.batch_generator); the reference is the lesson's single-process training on whole batches.
Run: python -m exercises.lesson9_accumulation   (200 steps; flags as the lesson's)
"""

import sys

import torch
import torch.nn.functional as F

import common
import ddp_training as lesson9


def train_accumulating(model, Xtr, Ytr, args, batches, pieces, divide=True):
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    B = args.batch_size // pieces
    for _ in range(args.steps):
        batch = lesson9.draw_batch(len(Xtr), args, batches)  # the lesson's global batch
        optimizer.zero_grad(set_to_none=True)
        for k in range(pieces):  # worker k's slice, one after the other
            rows = batch[k * B : (k + 1) * B]
            loss = F.cross_entropy(model(Xtr[rows]), Ytr[rows])
            (loss / pieces if divide else loss).backward()  # .grad adds up the pieces
        optimizer.step()


def models(args):
    """{"reference", "divided", "not_divided"}: the lesson's single-process run, and the accumulating ones."""
    itos, (Xtr, Ytr, _, _), weights = lesson9.start(args)
    reference = lesson9.initial_model(itos, args, weights)
    lesson9.train(reference, Xtr, Ytr, args, common.batch_generator(args.seed), slice(None), args.steps)
    trained = {"reference": reference}
    for name, divide in [("divided", True), ("not_divided", False)]:
        model = lesson9.initial_model(itos, args, weights)
        train_accumulating(model, Xtr, Ytr, args, common.batch_generator(args.seed), args.workers, divide)
        trained[name] = model
    return trained


def run(argv=()):
    args = lesson9.parse_args(["--steps", "200", *argv])  # 200 steps unless the flags say otherwise
    lesson9.check_split(args.batch_size, args.workers)
    trained = models(args)
    reference = lesson9.snapshot(trained["reference"])
    return {
        f"max_param_diff_{name}": lesson9.max_difference(lesson9.snapshot(trained[name]), reference)
        for name in ["divided", "not_divided"]
    }


if __name__ == "__main__":
    for key, value in run(sys.argv[1:]).items():
        print(f"{key}: {value:.2g}")
