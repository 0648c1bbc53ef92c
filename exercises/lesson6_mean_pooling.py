"""Lesson 6, exercise 2: average the context's character vectors instead of concatenating them.

In forward, `F.embedding(X, C).flatten(1)` (block_size * emb_dim numbers, each character in its own
slot) becomes `.mean(1)` (emb_dim numbers: a bag of characters, order lost), and the first layer
shrinks to emb_dim inputs. Everything else is the lesson's: data, split, initialization, AdamW,
schedule, evaluation. Both models train with the same steps, seed and batches (the batch order has
a generator of its own, so the smaller model's fewer initial weights do not shift it), and their
embedding tables start from the same draw.
Run: python -m exercises.lesson6_mean_pooling   (2 x 2000 steps; other flags of mlp_embedding.py may follow)
"""

import argparse
from unittest import mock

import torch
import torch.nn.functional as F

import common
import mlp_embedding as lesson6


def forward_mean(params, X):
    """The lesson's forward with the block's vectors averaged, not concatenated."""
    h = F.embedding(X, params["C"]).mean(1)
    layer = 1
    while f"W{layer}" in params:
        h = torch.tanh(h @ params[f"W{layer}"] + params[f"b{layer}"])
        layer += 1
    return h @ params["Wout"] + params["bout"]


def run(argv=()):
    args = lesson6.parse_args(["--steps", "2000", "--eval-every", "500", *argv])  # flags given later win
    gen = common.generator(args.seed)
    words = lesson6.load_words(args.data, gen)
    train_words, dev_words, _ = lesson6.split_words(words, args.val_fraction)
    itos = [lesson6.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    Xtr, Ytr = lesson6.examples(train_words, stoi, args.block_size)
    Xdev, Ydev = lesson6.examples(dev_words, stoi, args.block_size)

    result = {}
    # concatenate: the lesson's model, with the lesson's draws (python mlp_embedding.py gives the same dev loss)
    state = gen.get_state()
    params = lesson6.init_model(len(itos), args, gen)
    _, best = lesson6.train(params, Xtr, Ytr, Xdev, Ydev, args, common.batch_generator(args.seed))
    result["concat_dev"] = best["dev"]
    result["concat_parameters"] = sum(p.numel() for p in params.values())
    # mean: the first layer sees emb_dim numbers, as if the block were one character wide
    gen.set_state(state)  # the same generator state as the concatenating model started from
    params = lesson6.init_model(len(itos), argparse.Namespace(**{**vars(args), "block_size": 1}), gen)
    with mock.patch.object(lesson6, "forward", forward_mean):  # the lesson's train and evaluate call forward
        _, best = lesson6.train(params, Xtr, Ytr, Xdev, Ydev, args, common.batch_generator(args.seed))
    result["mean_dev"] = best["dev"]
    result["mean_parameters"] = sum(p.numel() for p in params.values())
    result["bigram_optimum_dev"] = lesson6.bigram_nll(dev_words, stoi)
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
