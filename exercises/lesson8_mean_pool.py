"""Lesson 8, exercise 2: a global average pool in place of the global max pool.

The CNN's forward changes one line, `maps.amax(dim=(2, 3))` to `maps.mean(dim=(2, 3))`; everything
else (data, split, weights, batches, training on centred digits, testing at every position) is the
lesson's. Both CNNs start from the lesson's initial weights and see the lesson's batches, so the
max-pool CNN is the lesson's CNN.
Run: python -m exercises.lesson8_mean_pool   (the lesson's default sizes; flags as the lesson's)
"""

import sys

import torch

import cnn_digits as lesson8
import common


class MeanPoolCNN(lesson8.CNN):
    def forward(self, x):
        return self.classify(self.features(x).mean(dim=(2, 3)))  # how much of each feature, on average


def run(argv=()):
    args = lesson8.parse_args(list(argv))
    d = lesson8.shift_distance(args.canvas)
    gen = common.generator(args.seed)
    Xtr, Ytr, Xte, Yte = lesson8.load_data(args.test_fraction, gen)
    weights = gen.get_state()  # where the lesson draws its CNN's weights, right after the split
    result = {}
    for name, kind in [("max", lesson8.CNN), ("mean", MeanPoolCNN)]:
        gen.set_state(weights)  # the same weights for both: the two classes have the same parameters
        model = lesson8.init_weights(kind(args.channels, args.kernel), gen)
        batches = common.batch_generator(args.seed)  # the lesson's batch stream, from its start
        lesson8.train(model, Xtr, Ytr, args, batches, "cpu", lambda _: None, name)
        with torch.no_grad():
            predicted = lesson8.every_position(lambda x, m=model: m(x).argmax(1).numpy(), Xte, args.canvas)
        grid = (predicted == Yte.numpy()).mean(-1)
        result[f"{name}_centred"], result[f"{name}_shifted"] = lesson8.summary(grid, d)
        result[f"{name}_at_largest_shift"] = float(lesson8.by_distance(grid, d)[-1])
    return result


if __name__ == "__main__":
    for key, value in run(sys.argv[1:]).items():
        print(f"{key}: {value:.1%}")
