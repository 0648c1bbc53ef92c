"""Lesson 7, exercise 2: ReLU in place of tanh, and the init that keeps its signal steady.

Swap the lesson's model.tanh for nn.ReLU() (forward calls self.tanh after each linear layer) with no
normalization, and measure the pre-activation std of each layer at initialization, on a batch of
real contexts, as the lesson does for tanh. Two weight inits: the lesson's Kaiming for tanh,
std (5/3) / sqrt(fan_in), and Kaiming for ReLU, std sqrt(2) / sqrt(fan_in).
Run: python -m exercises.lesson7_relu
"""

import math

import torch
from torch import nn

import common
import dnn_batchnorm as lesson7
import mlp_embedding as lesson6


@torch.no_grad()
def pre_activation_stds(model, X):
    record = []
    model(X, record)
    return [float(a.pow(2).mean().sqrt()) for a, _ in record]


def run(argv=(), batch=2048):
    args = lesson7.parse_args(["--norm", "none", *argv])
    gen = common.generator(args.seed)
    words = lesson6.load_words(args.data, gen)
    train_words, _, _ = lesson6.split_words(words, args.val_fraction)
    itos = [lesson6.BOUNDARY, *sorted(set("".join(words)))]
    Xtr, _ = lesson6.examples(train_words, {c: i for i, c in enumerate(itos)}, args.block_size)
    X = Xtr[torch.randint(0, len(Xtr), (batch,), generator=gen)]

    result = {}
    for name, gain in [("tanh_gain", 5 / 3), ("relu_gain", math.sqrt(2))]:
        model = lesson7.build(
            len(itos), args, "kaiming", "none", args.layers, args.hidden, common.generator(args.seed), "cpu"
        )
        model.tanh = nn.ReLU()
        with torch.no_grad():  # redraw the hidden layers' weights with this gain (biases stay 0)
            for linear in model.linears:
                std = gain / math.sqrt(linear.in_features)
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=gen) * std)
        stds = pre_activation_stds(model, X)
        result[f"{name}_first"], result[f"{name}_last"] = stds[0], stds[-1]
        result[f"{name}_growth"] = (stds[-1] / stds[0]) ** (1 / (len(stds) - 1))  # per layer
    result["embedding_rms"] = float(model.C(X).detach().pow(2).mean().sqrt())
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.3f}")
