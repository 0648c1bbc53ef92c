"""The numbers behind two tolerances of tests/test_transformer_names.py, for one seed of the model.

    python -m tools.spread "python -m tests.spread_lesson10" --seeds 0 1 2 3 4 --save lesson10_init_and_packing

rebuilds what those tests build (the 3,000 most frequent names, shuffled and split with seed 0, as
the `names` fixture does) with the model drawn from `--seed`, and returns:
- init_gap / init_gap_out_scale_0.1: |initial loss - ln 27| on the first 512 training names, for the
  lesson's default size (width 64, 2 blocks), with the output layer scaled by the lesson's 0.03 and by 0.1;
- packed_vs_padded: the largest |difference| between a logit of the first 128 training names packed
  (two batches of 64, as training packs them) and the same logit with each name in a padded row of
  its own, for the tests' SMALL model.
"""

import argparse
import math
import tempfile
from pathlib import Path

import common
import mlp_embedding
import transformer_names as lesson
from tests.conftest import REPO
from tests.test_transformer_names import SMALL


def run(argv=()):
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    seed = p.parse_args(argv).seed
    with tempfile.TemporaryDirectory() as folder:  # the file the names_subset fixture writes
        subset = Path(folder) / "names.txt"
        subset.write_text("\n".join(common.read_words(REPO / "data" / "names.txt", ".")[:3000]))
        shuffled = mlp_embedding.load_words(subset, common.generator(0))
    train_words, _, _ = mlp_embedding.split_words(shuffled, 0.1)
    stoi = {c: i for i, c in enumerate([".", *sorted(set("".join(shuffled)))])}

    found = {}
    X, Y = lesson.sequences(train_words[:512], stoi, 16)
    default_size = lesson.parse_args([*SMALL, "--emb-dim", "64", "--layers", "2"])
    for name, out_scale in [("init_gap", 0.03), ("init_gap_out_scale_0.1", 0.1)]:
        model = lesson.build(len(stoi), default_size, common.generator(seed), "cpu").eval()
        lesson.initialize(model, common.generator(seed), out_scale)  # the same draws, another output scale
        found[name] = abs(lesson.evaluate(model, X, Y) - math.log(len(stoi)))

    X, Y = lesson.sequences(train_words[:128], stoi, 16)
    model = lesson.build(len(stoi), lesson.parse_args(SMALL), common.generator(seed), "cpu").eval()
    found["packed_vs_padded"] = lesson.packing_difference(model, X, Y, [len(w) for w in train_words[:128]])
    return found
