"""Plumbing shared by the lessons: command line, device, seeding, figure and metrics files.

Nothing here is machine learning; each lesson keeps its data, model and training loop in its own
file. Every lesson has the same common flags:

    --epochs  --lr  --seed  --device {auto,cpu,cuda,mps}  --figs-dir  --metrics PATH  --quiet
    --no-figure

In a notebook (Jupyter, or VS Code's cells) a lesson runs with its defaults, or with the flags in the
environment variable LESSON_ARGS; `main(["--epochs", "50"])` in a cell runs it with others. There the
figure is shown under the cell as well as saved.
"""

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
from pathlib import Path

import matplotlib
import numpy as np


def in_notebook():
    """True inside a Jupyter kernel (a notebook, or VS Code's interactive window)."""
    return "ipykernel" in sys.modules


if not in_notebook():
    matplotlib.use("Agg")  # a script draws to files only: lessons run on servers and in CI with no screen

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent


class LessonError(Exception):
    """A problem the learner can fix (bad flag, missing file, diverging run): printed as one line."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is reported in one line instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        # In a notebook sys.argv holds the kernel's own arguments (-f kernel.json): use the defaults, or
        # the flags in LESSON_ARGS if Jupyter was started with it. main([...]) in a cell sets them too.
        if args is None and in_notebook():
            args = shlex.split(os.environ.get("LESSON_ARGS", ""))
        parsed = super().parse_args(args, namespace)
        # Output locations given by default are checked too, so a bad one stops the run before training.
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            if action.type in (output_dir, output_file) and value is not None:
                try:
                    action.type(value)
                except argparse.ArgumentTypeError as e:
                    self.error(f"argument {action.option_strings[-1]}: {e}")
        return parsed


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" after each flag's help, except where there is nothing to show."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not 0 <= value < float("inf"):  # also rejects nan
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def finite_float(text):
    """Any real number, but not nan or inf (a data or model parameter)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def data_number(kind=finite_float, limit=1e6):
    """The type `kind`, for a number the lesson builds its data from (a slope, a centre, a spread).

    Its size is capped: the data are float32, which keeps about 7 significant digits and overflows
    past 3.4e38 (squares past 1.8e19), so data built from larger numbers round their detail away.
    """

    def check(text):
        value = kind(text)
        if abs(value) > limit:
            raise argparse.ArgumentTypeError(
                f"must be at most {limit:g} in size (the data are float32: about 7 digits, squares overflow "
                f"past 1.8e19), got {text}"
            )
        return value

    check.__name__ = kind.__name__  # argparse names it in "invalid ... value"
    return check


def _writable_folder(folder):
    """None if files can be written in `folder` (made here if missing), else the reason why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # the one sure test that a file can be written there
            pass
    except FileExistsError:
        return "a file is in the way, not a folder"
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def output_dir(text):
    """A folder to write into: it exists or can be made, and is not a file."""
    if str(text) == "":  # Path("") would be the current folder: more likely a slip than a choice
        raise argparse.ArgumentTypeError("empty; give a folder")
    path = Path(text)
    problem = _writable_folder(path)
    if problem:
        raise argparse.ArgumentTypeError(f"{path}: {problem}")
    return path


def output_file(text):
    """A file to write: not an existing folder, and its folder exists or can be made."""
    if str(text) == "":
        raise argparse.ArgumentTypeError("empty; give a file name")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; give a file name")
    problem = _writable_folder(path.parent)
    if problem:
        raise argparse.ArgumentTypeError(f"{path}: {problem}")
    return path


def fraction(text):
    """A share of the data: 0 (none) up to, but not including, 1."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parser(doc, *, epochs, lr, lr_help="learning rate"):
    """A parser with the common flags; `doc` is the lesson's docstring (its first line is shown)."""
    if in_notebook():  # sys.argv[0] names the kernel's launcher there; flags reach the lesson as main([...])
        prog = "main"
    else:
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else None
    p = Parser(
        prog=prog,
        description=doc.strip().splitlines()[0],
        formatter_class=HelpFormatter,
    )
    if epochs is not None:  # a lesson that counts steps instead of epochs leaves this out
        p.add_argument("--epochs", type=positive_int, default=epochs, help="passes over the training data")
    p.add_argument("--lr", type=positive_float, default=lr, help=lr_help)
    p.add_argument("--seed", type=int, default=0, help="seed for every random draw")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda", "mps"],
        default="auto",
        help="where to train; auto picks cuda, then mps, then cpu",
    )
    p.add_argument(
        "--figs-dir",
        type=output_dir,
        default=REPO / "figs",
        metavar="DIR",
        help="where the figure is saved (default: figs/ beside the lessons)",
    )
    p.add_argument("--metrics", type=output_file, metavar="PATH", help="also write the final metrics as JSON to PATH")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--no-figure", action="store_true", help="skip drawing the figure (quicker experiments)")
    return p


def device(name):
    """The torch.device asked for, or a LessonError if this machine does not have it."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if name == "cuda" and not cuda:
        raise LessonError("--device cuda asked for, but this PyTorch sees no CUDA GPU (try --device cpu)")
    if name == "mps" and not mps:
        raise LessonError("--device mps asked for, but Apple's MPS is not available here (try --device cpu)")
    return torch.device(name)


def generator(seed):
    """A CPU random generator for the data and the initial weights of a run (and for sampling).

    Drawing on the CPU and then moving tensors to the device gives the same numbers on every device.
    """
    return torch.Generator().manual_seed(seed)


def batch_generator(seed):
    """A second CPU generator from the same seed, for the batch order (and dropout): its own stream.

    A bigger model draws more numbers for its initial weights; were the batches drawn from the same
    generator, that would shift them, and two runs said to share their batches would not. Seeded
    through NumPy's SeedSequence, which spreads seeds 0, 1, 2 ... far apart, it shares no draws with
    generator(seed) or generator(seed + 1).
    """
    state = np.random.SeedSequence([seed % 2**64, 1]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def say(quiet):
    """`print`, or a function that prints nothing when --quiet is given."""
    return (lambda *args, **kwargs: None) if quiet else print


def write_atomically(path, write):
    """Write through a temporary file in the same folder, so a crash never leaves half a file.

    A write that fails (disk full, folder removed meanwhile) is a LessonError naming the file; the
    temporary file is removed either way.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
        os.close(fd)
        write(tmp)
        umask = os.umask(0)  # mkstemp makes the file private (0600): give it the usual permissions
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        raise LessonError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_figure(fig, figs_dir, name):
    """Save `fig` as figs_dir/name.png and close it (in a notebook, show the saved file); returns the path."""
    import matplotlib.pyplot as plt

    try:
        path = write_atomically(Path(figs_dir) / f"{name}.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)  # closed, a figure is not drawn again at the end of a notebook cell
    if in_notebook():  # the very image the file holds, not a second drawing of the figure
        from IPython.display import Image, display

        display(Image(filename=path))
    return Path(os.path.relpath(path)) if path.resolve().is_relative_to(Path.cwd()) else path


def save_metrics(metrics, path):
    """Write the metrics dict as JSON (atomically)."""

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=2, sort_keys=True)
            f.write("\n")

    return write_atomically(path, write)


def read_words(path, boundary):
    """The words of a text file, one per line (blank lines skipped), or a LessonError saying what is wrong.

    `boundary` is the character a lesson uses to mark the start and end of a word: no word may hold it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LessonError(f"--data {path}: no such file") from None
    except OSError as e:
        raise LessonError(f"--data {path}: cannot be read ({e.strerror})") from None
    if b"\0" in raw:
        raise LessonError(f"--data {path}: a binary file, not a word list (one word per line)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LessonError(f"--data {path}: not UTF-8 text, not a word list (one word per line)") from None
    words = [line.strip() for line in text.splitlines() if line.strip()]
    if not words:
        raise LessonError(f"--data {path}: no words in it (expected one word per line)")
    bad = next((word for word in words if boundary in word), None)
    if bad is not None:
        raise LessonError(f"--data {path}: the word {bad!r} contains {boundary!r}, the start/end marker")
    return words


def run(main):
    """Call `main()` as a script: a LessonError becomes one line on stderr and exit status 1."""
    try:
        main()
    except LessonError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        sys.exit(1)
