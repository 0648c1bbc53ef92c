"""Lesson 10, exercise 2: train the transformer without its position embeddings.

The model's embed() adds a learned vector per position to each character's vector; here it returns
the character's vector alone. Everything else is the lesson's: data, split, initialization, batches,
dropout, AdamW, schedule, evaluation; both models train with the same steps, seed and batches.
Run: python -m exercises.lesson10_no_positions   (2 x 1000 steps of the lesson's model)
     python -m exercises.lesson10_no_positions --seed 1   (other flags of the lesson go through too)
"""

import sys
import tempfile
from unittest import mock

import transformer_names as lesson


class NoPositions(lesson.Transformer):
    """The lesson's transformer, its inputs the characters' vectors only: no P[t]."""

    def embed(self, X, start=0, packing=None):
        return self.C(X)


def run(argv=()):
    flags = [
        "--steps",
        "1000",
        "--eval-every",
        "500",
        *argv,
        "--no-compare",
        "--quiet",
        "--no-figure",
        "--samples",
        "0",
    ]
    with tempfile.TemporaryDirectory() as out:
        with_positions = lesson.main([*flags, "--out", out])
        with mock.patch.object(lesson, "Transformer", NoPositions):  # build() makes its model from this name
            without = lesson.main([*flags, "--out", out])
    return {
        "dev_with_positions": with_positions["dev_loss"],
        "dev_without_positions": without["dev_loss"],
        "bigram_optimum_dev": with_positions["ref_loss"],
        "permutation_without_positions": without["permutation"]["with"],
    }


if __name__ == "__main__":
    for key, value in run(sys.argv[1:]).items():
        print(f"{key}: {value:.4f}")
