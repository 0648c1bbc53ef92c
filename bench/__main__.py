"""Each lesson's time-to-target comparison, side by side in one process.

python -m bench                      # every lesson
python -m bench LR_noDatasetClass    # one lesson

Each lesson's table is also written to results/bench/LESSON.txt, the committed copy that README.org
quotes: numbers in the text come from there.
"""

import argparse
import sys
import time
from pathlib import Path

import common
from bench import lesson1, lesson2, lesson3, lesson4, lesson5, lesson6, lesson7, lesson8, lesson9, lesson10

SUITES = {
    "LR_noDatasetClass": lesson1.rows,
    "LR_miniBatch_datasetDataLoader": lesson2.rows,
    "LR_miniBatch_PyTorchWay": lesson3.rows,
    "LogReg_PyTorch": lesson4.rows,
    "softmax_classifier": lesson5.rows,
    "mlp_embedding": lesson6.rows,
    "dnn_batchnorm": lesson7.rows,
    "cnn_digits": lesson8.rows,
    "ddp_training": lesson9.rows,
    "transformer_names": lesson10.rows,
}


def timed(fn, *args, repeat=3, **kwargs):
    """(result, seconds) of the fastest of `repeat` calls fn(*args, **kwargs): the least disturbed one."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        if best is None or seconds < best[1]:
            best = (result, seconds)
    return best


def format_table(title, rows):
    """rows: dicts with the same keys, as an aligned table under its title."""
    columns = list(rows[0])
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("lessons", nargs="*", metavar="LESSON", help=f"any of {', '.join(SUITES)} (default: all)")
    args = p.parse_args(argv)
    unknown = set(args.lessons) - set(SUITES)
    if unknown:
        p.error(f"unknown lesson {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}")
    for name in args.lessons or SUITES:
        tables = SUITES[name](timed)  # (title, rows), or a list of them
        tables = tables if isinstance(tables, list) else [tables]
        table = "\n".join(format_table(f"{name}: {title}", rows) for title, rows in tables)
        print(f"\n{table}", end="")
        save(table, common.REPO / "results" / "bench" / f"{name}.txt")


def save(text, path):
    common.write_atomically(path, lambda tmp: Path(tmp).write_text(text))


if __name__ == "__main__":
    sys.exit(main())
