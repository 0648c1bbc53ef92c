"""Mini-batch gradient descent with Dataset and DataLoader: the data pipeline leaves the training loop.

What you will learn
- a `Dataset` is two methods, `__len__` and `__getitem__`; the training loop never sees how the
  data is stored: in memory, or in a file on disk read row by row (`--memmap`);
- a `DataLoader` cuts a Dataset into shuffled mini-batches, in an order that follows `--seed`;
- mini-batch gradient descent takes N / batch_size steps per epoch instead of one, so with the same
  learning rates it learns faster per epoch. Per gradient step it is no faster, and with a constant
  rate it hovers near the optimum instead of landing on it: the batch gradients are noisy.

The model and the update are those of lesson 1 (scalar w and b, an update under torch.no_grad());
the only new idea is where the batches come from. The reference is closed-form least squares,
computed by streaming over the Dataset, so it also works for data that does not fit in memory.

Run it:
    python LR_miniBatch_datasetDataLoader.py                          # batches of 20
    python LR_miniBatch_datasetDataLoader.py --batch-size 100         # full batch, for comparison
    python LR_miniBatch_datasetDataLoader.py --save-npy line.npy      # also write the data to a file
    python LR_miniBatch_datasetDataLoader.py --memmap line.npy        # train from that file
"""

# %% Setup
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import common


def parse_args(argv):
    p = common.parser(
        __doc__, epochs=50, lr=None, lr_help="one shared learning rate for w and b (default: --lr-w and --lr-b)"
    )
    p.add_argument("--lr-w", type=common.positive_float, default=1e-5, help="learning rate of the slope w")
    p.add_argument("--lr-b", type=common.positive_float, default=0.01, help="learning rate of the bias b")
    p.add_argument("--batch-size", type=common.positive_int, default=20, help="examples per gradient step")
    p.add_argument("--n", type=common.positive_int, default=100, help="points on the noisy line")
    p.add_argument("--slope", type=common.data_number(), default=3.0, help="true slope of the noisy line")
    p.add_argument("--intercept", type=common.data_number(), default=2.0, help="true intercept of the noisy line")
    p.add_argument(
        "--noise",
        type=common.data_number(common.non_negative_float),
        default=100.0,
        help="standard deviation of the noise",
    )
    p.add_argument("--memmap", metavar="PATH", help="train from the (x, y) rows of this .npy file, read from disk")
    p.add_argument(
        "--save-npy",
        type=common.output_file,
        metavar="PATH",
        help="write the noisy line as an (N, 2) .npy file to PATH",
    )
    args = p.parse_args(argv)
    if args.memmap is None and args.n < 3:
        p.error("argument --n: give at least 3 points (a line through 2 fits them exactly: nothing to compare)")
    if args.lr is not None:
        args.lr_w = args.lr_b = args.lr
    return args


# %% Data: two Datasets with the same interface
class NoisyLine(Dataset):
    """n points evenly spaced in [-100, 100], y = slope * x + intercept + Gaussian noise, in memory."""

    def __init__(self, n=100, slope=3.0, intercept=2.0, noise=100.0, generator=None):
        self.x = torch.linspace(-100, 100, n)
        self.y = slope * self.x + intercept + noise * torch.randn(n, generator=generator)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class NpyLine(Dataset):
    """The (x, y) rows of an (N, 2) .npy file, memory-mapped: a row is read from disk when asked for.

    Opening the file reads only its header, so this works for files larger than the memory.
    """

    def __init__(self, path):
        try:
            self.rows = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            raise common.LessonError(f"--memmap {path}: no such file") from None
        except EOFError:
            raise common.LessonError(f"--memmap {path}: empty, not a .npy file") from None
        except (ValueError, OSError) as e:
            raise common.LessonError(f"--memmap {path}: not a .npy file ({e})") from None
        if self.rows.ndim != 2 or self.rows.shape[1] != 2 or self.rows.shape[0] < 2:
            raise common.LessonError(f"--memmap {path}: expected an (N, 2) array of x, y rows, got {self.rows.shape}")
        if not np.issubdtype(self.rows.dtype, np.floating):
            raise common.LessonError(f"--memmap {path}: expected floating-point numbers, got {self.rows.dtype}")

    def __len__(self):
        return self.rows.shape[0]

    def __getitem__(self, i):
        x, y = self.rows[i]  # only this row is read from disk
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def save_npy(data, path):
    """Write a Dataset's rows as an (N, 2) float32 .npy file."""
    x, y = zip(*(data[i] for i in range(len(data))))
    rows = np.stack([torch.stack(x).numpy(), torch.stack(y).numpy()], axis=1).astype(np.float32)

    def write(tmp):
        with open(tmp, "wb") as f:  # np.save to a file object adds no ".npy" to the name
            np.save(f, rows)

    common.write_atomically(path, write)


# %% Model and training loop
def train(data, lr_w, lr_b, batch_size, epochs, seed, device):
    """Mini-batch gradient descent from w = b = 0; returns w and b after every gradient step."""
    # The batch order has a stream of its own, apart from the one that drew the data: the order is
    # the same whether the data comes from memory or from a file, and for every batch size it is
    # the seed's one shuffle of the rows, cut into batches of that size.
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=common.batch_generator(seed))
    w = torch.zeros((), device=device, requires_grad=True)
    b = torch.zeros((), device=device, requires_grad=True)
    history = {"w": [0.0], "b": [0.0], "steps_per_epoch": len(loader), "diverged": None}
    for epoch in range(1, epochs + 1):
        for x, y in loader:  # each (x, y) is one shuffled mini-batch of batch_size rows
            x, y = x.to(device), y.to(device)
            y_hat = w * x + b
            loss = ((y_hat - y) ** 2).mean()  # the loss of this batch only
            loss.backward()
            with torch.no_grad():
                w -= lr_w * w.grad
                b -= lr_b * b.grad
            w.grad.zero_()
            b.grad.zero_()
            history["w"].append(w.item())
            history["b"].append(b.item())
        if not (np.isfinite(history["w"][-1]) and np.isfinite(history["b"][-1])):
            history["diverged"] = epoch
            break
    return history


# %% Run: data, reference, training, result
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)

    if args.memmap:
        data = NpyLine(args.memmap)
        source = f"{args.memmap} (memory-mapped)"
    else:
        data = NoisyLine(args.n, args.slope, args.intercept, args.noise, common.generator(args.seed))
        source = "noisy line"
    if args.save_npy:
        save_npy(data, args.save_npy)
        say(f"wrote {len(data)} rows to {args.save_npy}")
    if args.batch_size > len(data):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the data ({len(data)} rows)")

    stats = line_statistics(data)
    ref_w, ref_b, ref_loss = least_squares(stats)
    if ref_loss <= 1e-12 * stats["yy"] / stats["n"]:  # the gap, loss / ref_loss - 1, would mean nothing
        raise common.LessonError(
            f"the points lie on a line to within rounding (least-squares loss {ref_loss:.3g}): nothing to compare "
            f"against; {'use other data' if args.memmap else 'add --noise'}"
        )
    limit = full_batch_limit(stats)
    say(f"data: {source}, {len(data)} rows, batches of {args.batch_size}, device {device}")
    say(f"least squares: w = {ref_w:.4f}, b = {ref_b:.4f}, loss = {ref_loss:.6g}")

    start = time.perf_counter()
    history = train(data, args.lr_w, args.lr_b, args.batch_size, args.epochs, args.seed, device)
    seconds = time.perf_counter() - start
    if history["diverged"] is not None:
        raise common.LessonError(
            f"diverged at epoch {history['diverged']}: w, b are no longer finite; full-batch gradient descent "
            f"on these data is stable only for one shared lr < {limit:.3g}, and mini-batches need less"
        )

    w, b = history["w"][-1], history["b"][-1]
    loss = float(mse(w, b, stats))
    gap = loss / ref_loss - 1
    steps = args.epochs * history["steps_per_epoch"]
    say(f"mini-batch gradient descent: {args.epochs} epochs, {steps} steps ({seconds:.2f} s)")
    say(f"w = {w:.4f}, b = {b:.4f}, loss = {loss:.6g}; gap to least squares: {gap:.2e}")

    metrics = {
        "loss": loss,
        "ref_loss": ref_loss,
        "gap": gap,
        "seconds": seconds,
        "w": w,
        "b": b,
        "ref_w": ref_w,
        "ref_b": ref_b,
        "epochs": args.epochs,
        "steps": steps,
        "batch_size": args.batch_size,
        "device": str(device),
    }
    if not args.no_figure:
        # The figure compares this run with full-batch descent and with other batch sizes, at the
        # same rates and epochs: trained here, and printed.
        full = train(data, args.lr_w, args.lr_b, len(data), args.epochs, args.seed, device)
        say(f"for comparison, full batch ({len(data)} rows, {args.epochs} steps): gap {gaps(full, stats)[-1]:.2e}")
        sweep = {}  # batch size -> gap after the same epochs (nan: diverged)
        for size in [s for s in (2, 5, 10, 20, 50, 100, 200, 500) if s < len(data)] + [len(data)]:
            run = full if size == len(data) else train(data, args.lr_w, args.lr_b, size, args.epochs, args.seed, device)
            sweep[size] = gaps(run, stats)[-1] if run["diverged"] is None else np.nan
        say("batch size: gap after the same epochs: " + ", ".join(f"{s}: {g:.2e}" for s, g in sweep.items()))
        path = plot(args, data, stats, history, full, sweep)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Reference: least squares from sums streamed over the Dataset
def line_statistics(data, chunk=4096):
    """n, sum x, sum y, sum x^2, sum x y, sum y^2 in float64, reading the data one chunk at a time.

    They are all least squares needs: the MSE of any (w, b) follows from them, and so does the optimum.
    """
    s = np.zeros(6)
    for x, y in DataLoader(data, batch_size=chunk):  # in order, no shuffling: just reading
        x, y = x.double(), y.double()
        s += [len(x), x.sum(), y.sum(), (x * x).sum(), (x * y).sum(), (y * y).sum()]
    return dict(zip(["n", "x", "y", "xx", "xy", "yy"], s))


def mse(w, b, s):
    """mean((w x + b - y)^2), expanded into the sums: works for arrays of w and b at once."""
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (w * w * s["xx"] + 2 * w * b * s["x"] + b * b * s["n"] - 2 * w * s["xy"] - 2 * b * s["y"] + s["yy"]) / s["n"]


def least_squares(s):
    """Solve the normal equations [[sum x^2, sum x], [sum x, n]] [w, b] = [sum x y, sum y]."""
    w, b = np.linalg.solve([[s["xx"], s["x"]], [s["x"], s["n"]]], [s["xy"], s["y"]])
    return float(w), float(b), float(mse(w, b, s))


def gaps(run, s):
    """loss / optimum - 1 after every gradient step of a run, from its w and b, in float64."""
    return mse(run["w"], run["b"], s) / least_squares(s)[2] - 1


def full_batch_limit(s):
    """The largest stable shared rate of full-batch gradient descent, 2 / largest curvature (lesson 1)."""
    hessian = 2 / s["n"] * np.array([[s["xx"], s["x"]], [s["x"], s["n"]]])
    return 2 / np.linalg.eigvalsh(hessian).max()


# %% Look: per epoch, per step, the fitted lines, and the batch size
def plot(args, data, stats, history, full, sweep):
    """The lesson's figure, four panels, from the runs made in main; returns the saved path."""
    ref_w, ref_b, _ = least_squares(stats)
    mini, batch = f"mini-batches of {args.batch_size}", f"full batch ({len(data)})"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    fig.suptitle(
        f"Mini-batch vs full-batch gradient descent, same rates (lr_w = {args.lr_w:.2g}, lr_b = {args.lr_b:.2g})",
        fontsize=13,
    )

    # (a) per epoch: the mini-batch run took batches-per-epoch steps for each full-batch step
    ax = axes[0, 0]
    per_epoch = slice(None, None, history["steps_per_epoch"])
    ax.semilogy(gaps(history, stats)[per_epoch], "o-", ms=3, label=mini)
    ax.semilogy(gaps(full, stats), "s-", ms=3, label=batch)
    ax.set(title="(a) per epoch (= per example seen): mini-batches win", xlabel="epoch", ylabel="loss / optimum - 1")
    ax.legend()

    # (b) per gradient step: the fair comparison of the updates themselves
    ax = axes[0, 1]
    ax.semilogy(gaps(history, stats), lw=1, label=mini)
    ax.semilogy(gaps(full, stats), lw=2, label=batch)
    ax.set(
        title="(b) per gradient step: no faster, and noisy",
        xlabel="gradient step (one update of w and b)",
        ylabel="loss / optimum - 1",
    )
    ax.legend()

    # (c) the data and the fitted lines after a few epochs
    ax = axes[1, 0]
    epoch = min(5, args.epochs)
    shown = np.linspace(0, len(data) - 1, min(len(data), 500)).astype(int)  # at most 500 points
    x, y = (np.array([float(data[i][k]) for i in shown]) for k in (0, 1))
    ax.scatter(x, y, s=10, color="0.6", label="data")
    grid = np.array([x.min(), x.max()])
    ax.plot(grid, ref_w * grid + ref_b, "k--", lw=1.5, label="least squares")
    for run, name, color in [(history, mini, "C0"), (full, batch, "C1")]:
        step = epoch * run["steps_per_epoch"]
        ax.plot(grid, run["w"][step] * grid + run["b"][step], color=color, lw=2, label=name)
    ax.set(title=f"(c) the fitted lines after {epoch} epochs", xlabel="x", ylabel="y")
    ax.legend(fontsize=8)

    # (d) batch size: more steps per epoch, but noisier steps
    ax = axes[1, 1]
    sizes, final = list(sweep), list(sweep.values())
    ax.loglog(sizes, final, "o-", color="C2")
    ax.axvline(args.batch_size, color="C0", ls=":", lw=1)
    ax.text(args.batch_size, np.nanmax(final), " this run", color="C0", va="top", fontsize=8)
    ax.text(0.02, 0.03, "small batches:\nmany noisy steps", transform=ax.transAxes, fontsize=8)
    ax.text(0.98, 0.03, "large batches:\nfew steps per epoch", transform=ax.transAxes, ha="right", fontsize=8)
    ax.set(
        title=f"(d) batch size: gap after {args.epochs} epochs, same rates",
        xlabel="batch size (examples per step)",
        ylabel="loss / optimum - 1",
    )

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "LR_miniBatch_datasetDataLoader")


if __name__ == "__main__":
    common.run(main)
