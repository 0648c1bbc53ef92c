"""Lesson 2, exercise 2: lesson 1's thermometer readings as a Dataset, trained by lesson 2's loop.

The Dataset standardizes t_u once, in __init__ (lesson 1's --normalize), so one rate suits w and b.
lesson 2's train() and its streamed least squares need nothing but __len__ and __getitem__.
Run: python -m exercises.lesson2_thermometer
"""

import argparse

import torch
from torch.utils.data import Dataset

import LR_miniBatch_datasetDataLoader as lesson2
import LR_noDatasetClass as lesson1


class Thermometer(Dataset):
    """(standardized t_u, t_c) pairs of the 11 readings."""

    def __init__(self):
        t_u = torch.tensor(lesson1.THERMOMETER_T_U)
        self.x = (t_u - t_u.mean()) / t_u.std()
        self.y = torch.tensor(lesson1.THERMOMETER_T_C)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def run(argv=(), lr=0.1, epochs=20):
    seed = seed_of(argv)  # the readings are fixed: the seed changes only the batch order
    data = Thermometer()
    stats = lesson2.line_statistics(data)
    result = {}
    for batch_size in (11, 4, 1):  # full batch, then mini-batches: the last one of an epoch has 3 rows
        history = lesson2.train(data, lr, lr, batch_size, epochs, seed, torch.device("cpu"))
        result[f"gap_batch_{batch_size}"] = float(lesson2.gaps(history, stats)[-1])
        result[f"steps_batch_{batch_size}"] = len(history["w"]) - 1
    return result


def seed_of(argv):
    """--seed N from the command line (default 0): redraws the batch order (the readings are fixed)."""
    p = argparse.ArgumentParser(prog=__name__)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(list(argv)).seed


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.3g}")
