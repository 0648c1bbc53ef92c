"""How far a run's numbers move across CPU kernel families and seeds: the spread behind a tolerance.

PyTorch picks its vectorized CPU kernels by what the processor offers (AVX-512, AVX2, or the plain
build); ATEN_CPU_CAPABILITY forces one family. Float sums taken in another order change the last
digits, and training amplifies them. This runs one command under every family this CPU supports
and for several seeds, each in its own process, and prints every number the run returns:

    python -m tools.spread "python softmax_classifier.py"
    python -m tools.spread "python cnn_digits.py --epochs 4" --seeds 0 1 2 3 4
    python -m tools.spread "python -m exercises.lesson8_mean_pool" --save lesson8_mean_pool

The command is written as in ANSWERS.org; `--seed N` is appended to its flags (a command whose
module takes no flags runs once per kernel family). --save NAME also writes the table to
results/spread/NAME.txt, the file a tolerance's comment names. Another CPU model adds its own table
to that file, under a line naming the machine, so a tolerance can be set outside every spread seen.
"""

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUNNER = """
import importlib, inspect, json, sys, tempfile
import torch
words = json.loads(sys.argv[1])
if words[1] == "-m":
    module = importlib.import_module(words[2])
    metrics = module.run(words[3:]) if len(words) > 3 else module.run()
else:
    lesson = importlib.import_module(words[1].removesuffix(".py"))
    argv = [*words[2:], "--quiet", "--no-figure"]
    if '"--out"' in inspect.getsource(lesson.parse_args):  # checkpoints go to a temporary folder
        argv += ["--out", tempfile.mkdtemp()]
    metrics = lesson.main(argv)
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "metrics": metrics}))
"""


def capabilities():
    """The kernel families this CPU can run: the plain build always, AVX2 and AVX-512 where its flags say so."""
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    found = ["default"]
    if "avx2" in flags:
        found.append("avx2")
    if "avx512f" in flags:
        found.append("avx512")
    return found


def numbers(metrics, prefix=""):
    """{dotted key: float} of every number in a metrics dict (lists and nested dicts included)."""
    found = {}
    items = metrics.items() if isinstance(metrics, dict) else enumerate(metrics)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            found[name] = float(value)
        elif isinstance(value, (dict, list)):
            found.update(numbers(value, f"{name}."))
    return found


def machine():
    """The CPU model and torch version: different CPUs of one kernel family may still differ (MKL and oneDNN
    pick their own code paths)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), model)
    import torch  # only for its version: the runs themselves are subprocesses

    return f"machine: {model}, torch {torch.__version__}"


def merged(old, text, here):
    """The saved file's tables with this machine's replaced by text; a table saved before machines were
    named counts as an earlier machine's."""
    sections, current = {}, None
    for line in old.splitlines(keepends=True):
        if line.startswith("machine: "):
            current = line.rstrip("\n")
            sections[current] = ""
        else:
            current = current or "machine: not recorded"
            sections[current] = sections.get(current, "") + line
    sections[here] = text
    return "\n".join(f"{name}\n{body.rstrip(chr(10))}\n" for name, body in sections.items())


def run_once(words, capability, seed):
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
    if seed is not None:
        words = [*words, "--seed", str(seed)]
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(words)], cwd=REPO, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"{shlex.join(words)} under {capability}: failed\n{out.stderr.strip().splitlines()[-1]}")
    return numbers(json.loads(out.stdout.strip().splitlines()[-1])["metrics"])


def table(command, seeds):
    words = shlex.split(command)
    families = capabilities()
    runs = {(c, s): run_once(words, c, s) for c in families for s in seeds}
    lines = [
        f"{command}: kernel families {', '.join(families)}; seeds {', '.join(map(str, seeds))}",
        "each seed's value under the last family; spread over kernels = largest |difference| between families"
        " at the same seed; over seeds = max - min",
        f"{'result':<32}  "
        + "  ".join(f"{f'seed {s}, {families[-1]}':>18}" for s in seeds)
        + f"  {'over kernels':>12}  {'over seeds':>12}",
    ]
    for key in runs[families[-1], seeds[0]]:
        values = {cs: r[key] for cs, r in runs.items() if key in r}
        if not all(math.isfinite(v) for v in values.values()):
            continue
        # a result that some runs do not return (a metric of one outcome only) is measured where it is
        both = [s for s in seeds if all((c, s) in values for c in families)]
        gaps = [max(values[c, s] for c in families) - min(values[c, s] for c in families) for s in both]
        kernels = max(gaps, default=0.0)
        per_seed = [values[families[-1], s] for s in seeds if (families[-1], s) in values]
        spread = max(per_seed) - min(per_seed)
        missing = "" if len(values) == len(runs) else f"  (in {len(values)} of {len(runs)} runs)"
        shown = "  ".join(
            f"{values[families[-1], s]:>18.10g}" if (families[-1], s) in values else f"{'-':>18}" for s in seeds
        )
        line = f"{key:<32}  {shown}  {kernels:>12.3g}  {spread:>12.3g}{missing}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("command", help='a command as in ANSWERS.org, e.g. "python softmax_classifier.py --epochs 20"')
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run (default: 0 1 2)")
    p.add_argument("--no-seed", action="store_true", help="the command takes no --seed: vary the kernels only")
    p.add_argument("--save", metavar="NAME", help="also write the table to results/spread/NAME.txt")
    args = p.parse_args(argv)
    text = table(args.command, [None] if args.no_seed else args.seeds)
    print(text, end="")
    if args.save:
        path = REPO / "results" / "spread" / f"{args.save}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(merged(path.read_text() if path.exists() else "", text, machine()))


if __name__ == "__main__":
    main()
