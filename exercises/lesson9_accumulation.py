"""Lesson 9, exercise 2: gradient accumulation, DDP's arithmetic on one process.

DDP averages the gradients of W workers, each on batch-size / W examples. One process can do the
same sum in sequence: backward() on each of the W slices of the batch, each loss divided by W,
then one optimizer step; .grad accumulates the rest (lesson 1). The slices, model and initial
weights are the lesson's; the reference is its single-process training on the whole batch.
Run: python -m exercises.lesson9_accumulation
"""

import sys

import torch
import torch.nn.functional as F

import common
import ddp_training as lesson9


def train_accumulating(model, Xtr, Ytr, args, gen, pieces, divide=True):
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    B = args.batch_size // pieces
    for _ in range(args.steps):
        batch = torch.randint(0, len(Xtr), (args.batch_size,), generator=gen)  # the lesson's draw
        optimizer.zero_grad(set_to_none=True)
        for k in range(pieces):  # worker k's slice, one after the other
            rows = batch[k * B : (k + 1) * B]
            loss = F.cross_entropy(model(Xtr[rows]), Ytr[rows])
            (loss / pieces if divide else loss).backward()  # .grad adds up the pieces
        optimizer.step()


def run(argv=("--steps", "200")):
    args = lesson9.parse_args(list(argv))
    pieces = args.workers
    lesson9.check_split(args.batch_size, pieces)
    itos, Xtr, Ytr, _, _ = lesson9.load_data(args, common.generator(args.seed))

    def fresh():
        return lesson9.make_model(len(itos), args, common.generator(args.seed))

    reference = fresh()
    lesson9.train(reference, Xtr, Ytr, args, common.generator(args.seed), slice(None), args.steps)
    result = {}
    for name, divide in [("divided", True), ("not_divided", False)]:
        model = fresh()
        train_accumulating(model, Xtr, Ytr, args, common.generator(args.seed), pieces, divide)
        diff = lesson9.max_difference(lesson9.snapshot(model), lesson9.snapshot(reference))
        result[f"max_param_diff_{name}"] = diff
    return result


if __name__ == "__main__":
    for key, value in run(sys.argv[1:] or ("--steps", "200")).items():
        print(f"{key}: {value:.2g}")
