"""Lesson 5, exercise 2: a trigram model, the next character from the previous two.

The context (a, b) becomes one index, a * V + b, so W grows from V x V to V^2 x V rows of scores;
the training step (a row lookup, F.cross_entropy, Adam) is the lesson's. Words, split and the count
reference come from the lesson too. Run: python -m exercises.lesson5_trigram
"""

import argparse

import torch
import torch.nn.functional as F

import common
import softmax_classifier as lesson5


def triples(words, stoi):
    """(context index a * V + b, next character) over all words; two boundaries before each word."""
    V, xs, ys = len(stoi), [], []
    for word in words:
        chars = [lesson5.BOUNDARY, lesson5.BOUNDARY, *word, lesson5.BOUNDARY]
        for a, b, nxt in zip(chars, chars[1:], chars[2:]):
            xs.append(stoi[a] * V + stoi[b])
            ys.append(stoi[nxt])
    return torch.tensor(xs), torch.tensor(ys)


def train(x, y, rows, V, steps, lr):
    """The lesson's full-batch Adam loop on a (rows x V) table of scores."""
    W = torch.zeros(rows, V, requires_grad=True)
    optimizer = torch.optim.Adam([W], lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(F.embedding(x, W), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return W.detach()


def run(argv=(), data=common.REPO / "data" / "names.txt", steps=60, lr=0.5):
    seed = seed_of(argv)
    train_words, dev_words = lesson5.load_words(data, 0.1, common.generator(seed))  # the lesson's split
    itos = [lesson5.BOUNDARY, *sorted(set("".join(train_words + dev_words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    V = len(itos)
    result = {}
    for name, make, rows in [("bigram", lesson5.pairs, V), ("trigram", triples, V * V)]:
        x, y = make(train_words, stoi)
        x_dev, y_dev = make(dev_words, stoi)
        N = torch.zeros(rows, V, dtype=torch.float64).index_put_((x, y), torch.ones(len(x), dtype=torch.float64),
                                                                  accumulate=True)  # fmt: skip
        W = train(x, y, rows, V, steps, lr)
        result[f"{name}_count_train"] = lesson5.count_nll(N, x, y)  # the optimum of this model on training
        result[f"{name}_train"] = float(F.cross_entropy(W[x].double(), y))
        result[f"{name}_dev"] = float(F.cross_entropy(W[x_dev].double(), y_dev))
        result[f"{name}_count_dev_smoothed"] = lesson5.count_nll(N, x_dev, y_dev, smoothing=1.0)
        result[f"{name}_unseen_contexts"] = int((N.sum(dim=1) == 0).sum())  # rows never seen in training
    # Of those, the contexts (letter, end marker) cannot occur at all: nothing follows the end of a word.
    ends = [stoi[c] * V + stoi[lesson5.BOUNDARY] for c in itos[1:]]
    result["trigram_unseen_letter_then_end"] = int((N.sum(dim=1)[ends] == 0).sum())
    return result


def seed_of(argv):
    """--seed N from the command line (default 0): redraws the split of the words into training and dev."""
    p = argparse.ArgumentParser(prog=__name__)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(list(argv)).seed


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
