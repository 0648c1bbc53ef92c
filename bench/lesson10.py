"""transformer_names: dev loss against wall time, the transformer and lesson 6's MLP at equal budgets.

For each budget (seconds of training, dev evaluations excluded) and seed, both models train from
scratch for as many steps as take that long at the speed a short run of each measures just before;
each lays its whole schedule (warm-up, cosine decay) over those steps, so each is trained for the
budget, not stopped in the middle of a longer run. The actual training seconds are in the table.

    python -m bench transformer_names                                   # every budget, seed 0
    BENCH_BUDGETS="30 60" BENCH_SEEDS="0 1 2" python -m bench transformer_names
    BENCH_BUDGETS=600 BENCH_FLAGS="--layers 4 --dropout 0.15" python -m bench transformer_names

BENCH_FLAGS trains the transformer with other flags than the lesson's defaults, a configuration for
a longer budget; those rows train no MLP (the defaults' rows, where that budget and seed were run, have it).

Rows already measured are kept in results/bench/transformer_names.json and shown with the new ones,
so the budgets can be run in parts, or seeds in parallel processes (each on one thread); a row
measured again replaces the old one. The load average at
the start of each row says how busy the machine was (it shares its cores with whatever else runs).
"""

import json
import os
import tempfile
import time
from pathlib import Path

import torch

import common
import transformer_names as lesson
from tools import spread

BUDGETS = [30, 60, 120, 300, 600]
STORE = common.REPO / "results" / "bench" / "transformer_names.json"
PROBE_STEPS = 300


def transformer_run(steps, seed, out, flags=()):
    every = ["--steps", str(steps), "--eval-every", str(max(1, steps // 10)), "--seed", str(seed)]
    return lesson.main([*flags, *every, "--no-compare", "--quiet", "--no-figure", "--samples", "0", "--out", out])


def row(budget, seed, flags=()):
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        probe = transformer_run(PROBE_STEPS, seed, out, flags)
        # the speed after the probe's first tenth: its first steps are slower (memory, the optimizer's state)
        done, seconds = (probe["history"][k][-1] - probe["history"][k][0] for k in ("step", "time"))
        steps = max(1, round(budget * done / seconds))
        transformer = transformer_run(steps, seed, out, flags)
    measured = {
        "budget": budget,
        "seed": seed,
        "load": load,
        "flags": " ".join(flags),
        "transformer": {"steps": steps, "seconds": transformer["seconds"], "dev": transformer["dev_loss"]},
        "mlp": None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": spread.machine().removeprefix("machine: "),
    }
    if not flags:
        mlp = lesson.lesson6_for(budget, lesson.parse_args(["--seed", str(seed)]))
        measured["mlp"] = {"steps": mlp["steps"], "seconds": mlp["seconds"], "dev": mlp["dev_loss"]}
    return measured


def rows(timed):
    # One thread: both models alike, and a second bench process (other seeds) can use the other core.
    torch.set_num_threads(1)
    budgets = [float(b) for b in os.environ.get("BENCH_BUDGETS", " ".join(map(str, BUDGETS))).split()]
    seeds = [int(s) for s in os.environ.get("BENCH_SEEDS", "0").split()]
    flags = os.environ.get("BENCH_FLAGS", "").split()
    for budget in budgets:
        for seed in seeds:
            measured = row(budget, seed, flags)
            # read again just before writing: another bench process (other seeds) may have added rows
            stored = json.loads(STORE.read_text()) if STORE.exists() else {}
            stored[" ".join([f"{budget:g}", str(seed), *flags])] = measured
            text = json.dumps(stored, indent=1) + "\n"
            common.write_atomically(STORE, lambda tmp, text=text: Path(tmp).write_text(text))
    stored = json.loads(STORE.read_text()) if STORE.exists() else {}
    table = []
    measured = sorted(stored.values(), key=lambda r: (bool(r.get("flags")), r.get("flags", ""), r["budget"], r["seed"]))
    for r in measured:
        t, m = r["transformer"], r["mlp"]
        table.append(
            {
                "transformer flags": r.get("flags") or "defaults",
                "budget s": f"{r['budget']:g}",
                "seed": r["seed"],
                "load": f"{r['load']:.1f}",
                "transformer steps": t["steps"],
                "transformer s": f"{t['seconds']:.0f}",
                "transformer dev": f"{t['dev']:.4f}",
                "MLP steps": m["steps"] if m else "-",
                "MLP s": f"{m['seconds']:.0f}" if m else "-",
                "MLP dev": f"{m['dev']:.4f}" if m else "-",
                "lower": ("transformer" if t["dev"] < m["dev"] else "MLP") if m else "-",
            }
        )
    for flags, budget in sorted({(r.get("flags", ""), r["budget"]) for r in measured}, key=lambda k: (bool(k[0]), k)):
        same = [r for r in measured if r["budget"] == budget and r.get("flags", "") == flags]
        if len(same) < 2:
            continue
        t = [r["transformer"]["dev"] for r in same]
        m = [r["mlp"]["dev"] for r in same if r["mlp"]]
        wins = sum(a < b for a, b in zip(t, m))
        table.append(
            {
                "transformer flags": flags or "defaults",
                "budget s": f"{budget:g}",
                "seed": f"{len(same)} seeds",
                "load": "",
                "transformer steps": "",
                "transformer s": "",
                "transformer dev": f"{sum(t) / len(t):.4f} ({min(t):.4f}-{max(t):.4f})",
                "MLP steps": "",
                "MLP s": "",
                "MLP dev": f"{sum(m) / len(m):.4f} ({min(m):.4f}-{max(m):.4f})" if m else "-",
                "lower": f"transformer {wins} of {len(same)}" if m else "-",
            }
        )
    title = (
        f"dev loss after equal training budgets, transformer (lesson defaults unless flags are given, steps sized to "
        f"the budget) against "
        f"lesson 6's MLP (its defaults, likewise); {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"
    )
    return title, table
