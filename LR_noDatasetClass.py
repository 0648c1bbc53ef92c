"""Linear regression by hand: autograd computes the gradients, we write gradient descent ourselves.

What you will learn
- autograd: `loss.backward()` fills `.grad` of every tensor created with `requires_grad=True`
  with the partial derivative of the loss with respect to that tensor;
- the update `w -= lr * w.grad` runs under `torch.no_grad()`, outside the graph;
- gradients accumulate across `backward()` calls, so they are zeroed after each update;
- learning rates: on raw x the slope's gradient dwarfs the bias's, so one shared rate is either
  unstable for w or glacial for b. Separate rates, or normalizing x, fix it. The largest stable
  rate follows from the curvature of the loss, and the lesson computes it.

The model is y_hat = w * x + b with two scalar tensors, the loss is the mean squared error, and the
answer is checked against closed-form least squares.

Run it:
    python LR_noDatasetClass.py                     # separate rates for w and b (the default)
    python LR_noDatasetClass.py --lr 1e-4           # one shared rate, the naive way: b crawls
    python LR_noDatasetClass.py --normalize         # rescale x instead, one shared rate
    python LR_noDatasetClass.py --data thermometer  # the 11 readings of Deep Learning with PyTorch, ch. 5
    python LR_noDatasetClass.py --lr 1e-3           # too large: the run diverges and says so
"""

# %% Setup
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import common

# Deep Learning with PyTorch (Stevens, Antiga, Viehmann), chapter 5: a thermometer with unknown
# units t_u, read next to one in Celsius t_c. The relation is linear: t_c = w * t_u + b.
THERMOMETER_T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
THERMOMETER_T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]


def parse_args(argv):
    p = common.parser(
        __doc__,
        epochs=100,
        lr=None,
        lr_help="one shared learning rate for w and b, the naive way "
        "(default: separate --lr-w and --lr-b on raw x; 0.1 with --normalize)",
    )
    p.add_argument("--lr-w", type=common.positive_float, default=1e-4, help="learning rate of the slope w")
    p.add_argument("--lr-b", type=common.positive_float, default=0.1, help="learning rate of the bias b")
    p.add_argument("--normalize", action="store_true", help="train on standardized x; w, b are reported in raw units")
    p.add_argument("--data", choices=["line", "thermometer"], default="line", help="noisy line or thermometer readings")
    p.add_argument("--n", type=common.positive_int, default=100, help="points on the noisy line")
    p.add_argument("--slope", type=common.data_number(), default=3.0, help="true slope of the noisy line")
    p.add_argument("--intercept", type=common.data_number(), default=2.0, help="true intercept of the noisy line")
    p.add_argument(
        "--noise",
        type=common.data_number(common.non_negative_float),
        default=100.0,
        help="standard deviation of the noise on the line",
    )
    args = p.parse_args(argv)
    if args.data == "line" and args.n < 3:
        p.error("argument --n: give at least 3 points (a line through 2 fits them exactly: nothing to compare)")
    if args.lr is None:
        args.lr_w, args.lr_b = (0.1, 0.1) if args.normalize else (args.lr_w, args.lr_b)
    else:
        args.lr_w = args.lr_b = args.lr
    return args


# %% Data
def noisy_line(n, slope, intercept, noise, gen):
    """n evenly spaced x in [-100, 100] and y = slope * x + intercept + Gaussian noise."""
    x = torch.linspace(-100, 100, n)
    y = slope * x + intercept + noise * torch.randn(n, generator=gen)
    return x, y


def load_data(args, gen):
    if args.data == "thermometer":
        return torch.tensor(THERMOMETER_T_U), torch.tensor(THERMOMETER_T_C)
    return noisy_line(args.n, args.slope, args.intercept, args.noise, gen)


# %% Model and training loop
def train(x, y, w0, b0, lr_w, lr_b, epochs, stop_below=None):
    """Full-batch gradient descent on w, b from (w0, b0); returns the history of the run.

    Stops early when the loss stops being finite (history["diverged"] is that epoch) or, if given,
    once the loss drops below `stop_below`.
    """
    # Leaf tensors that autograd tracks: backward() will fill w.grad and b.grad.
    w = torch.tensor(w0, dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor(b0, dtype=x.dtype, device=x.device, requires_grad=True)
    history = {"loss": [], "w": [w0], "b": [b0], "diverged": None}
    for epoch in range(epochs):
        y_hat = w * x + b
        loss = ((y_hat - y) ** 2).mean()
        if not torch.isfinite(loss):
            history["diverged"] = epoch
            break
        history["loss"].append(loss.item())
        if stop_below is not None and history["loss"][-1] < stop_below:
            break

        loss.backward()  # dloss/dw into w.grad, dloss/db into b.grad
        if epoch == 0:
            history["first_grads"] = (w.grad.item(), b.grad.item())

        # The update is not part of the model, so autograd must not record it: under no_grad the
        # in-place change is allowed on a leaf and builds no graph. (The old `w.data -= ...` does
        # the same but hides the change from autograd, so a mistake there goes unnoticed.)
        with torch.no_grad():
            w -= lr_w * w.grad
            b -= lr_b * b.grad
        # backward() adds to .grad instead of overwriting it; without this the next step would
        # follow the sum of all past gradients.
        w.grad.zero_()
        b.grad.zero_()

        history["w"].append(w.item())
        history["b"].append(b.item())
    return history


def to_raw_units(w, b, mean, std):
    """w, b fitted on (x - mean) / std, expressed for raw x."""
    return w / std, b - w * mean / std


def gaps(run, x_raw, y, mean, std, ref_loss):
    """loss / optimum - 1 after every epoch of a run, evaluated in float64 from its w and b."""
    x_raw, y = np.asarray(x_raw, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ws, bs = to_raw_units(np.array(run["w"]), np.array(run["b"]), mean, std)
    return np.mean((ws[:, None] * x_raw + bs[:, None] - y) ** 2, axis=1) / ref_loss - 1


# %% Run: data, reference, training, result
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    gen = common.generator(args.seed)

    x_raw, y = load_data(args, gen)
    w0, b0 = torch.randn(2, generator=gen).tolist()  # the initial guess, from the seed too
    ref_w, ref_b, ref_loss = least_squares(x_raw, y)
    if ref_loss <= 1e-12 * np.mean(y.double().numpy() ** 2):  # the gap, loss / ref_loss - 1, would mean nothing
        raise common.LessonError(
            f"the points lie on a line to within float32 rounding (least-squares loss {ref_loss:.3g}): "
            "nothing to compare against; add --noise"
        )

    # Normalizing is a change of units for x; the fitted line is the same, the loss surface rounder.
    mean, std = (x_raw.mean().item(), x_raw.std().item()) if args.normalize else (0.0, 1.0)
    x = ((x_raw - mean) / std).to(device)
    y = y.to(device)

    scale = stable_scale(x.cpu(), args.lr_w, args.lr_b)
    shared_limit = stable_scale(x.cpu(), 1.0, 1.0)
    say(f"data: {args.data}, {len(y)} points{' (x normalized)' if args.normalize else ''}, device {device}")
    say(f"least squares: w = {ref_w:.4f}, b = {ref_b:.4f}, loss = {ref_loss:.6g}")
    say(
        f"largest stable learning rate: one shared lr < {shared_limit:.3g}; "
        f"lr_w = {args.lr_w:.3g} with lr_b = {args.lr_b:.3g}: the pair is at {1 / scale:.2f} of its limit"
    )

    start = time.perf_counter()
    history = train(x, y, w0, b0, args.lr_w, args.lr_b, args.epochs)
    seconds = time.perf_counter() - start

    if args.lr_w == args.lr_b:
        unstable = f"gradient descent is stable only for lr < {shared_limit:.3g}"
    else:
        unstable = (
            f"gradient descent is stable only below lr_w = {args.lr_w * scale:.3g}, lr_b = {args.lr_b * scale:.3g} "
            f"(same ratio), or one shared lr < {shared_limit:.3g}"
        )
    if history["diverged"] is not None:
        raise common.LessonError(f"diverged at epoch {history['diverged']}: the loss is no longer finite; {unstable}")
    if scale < 1 and history["loss"][-1] > history["loss"][0]:
        raise common.LessonError(
            f"diverging: the loss grew from {history['loss'][0]:.3g} to {history['loss'][-1]:.3g} "
            f"in {args.epochs} epochs; {unstable}"
        )

    grad_w, grad_b = history["first_grads"]
    say(
        f"first epoch: dL/dw = {grad_w:.4g}, dL/db = {grad_b:.4g}: "
        f"the slope's gradient is {abs(grad_w / grad_b):.0f} times the bias's"
    )

    w, b = to_raw_units(history["w"][-1], history["b"][-1], mean, std)
    loss = mse(w, b, x_raw, y.cpu())  # the final parameters, evaluated exactly
    gap = loss / ref_loss - 1
    floor = float32_floor(ref_w, ref_b, x_raw, y.cpu(), mean, std, ref_loss)
    say(f"gradient descent after {args.epochs} epochs ({seconds:.2f} s): w = {w:.4f}, b = {b:.4f}, loss = {loss:.6g}")
    say(f"gap to least squares: loss / optimum - 1 = {gap:.2e} (least squares rounded to float32: {floor:.2e})")

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
        "lr_w": args.lr_w,
        "lr_b": args.lr_b,
        "stable_lr": shared_limit,
        "float32_floor": floor,
        "grad_w0": grad_w,
        "grad_b0": grad_b,
        "device": str(device),
    }
    if not args.no_figure:
        # The figure sets this run beside runs with one shared rate: trained here, and printed.
        runs = {"this run": history}
        if args.lr_w != args.lr_b:  # the naive run: b gets the rate that suits w
            naive = f"one shared lr = {args.lr_w:.2g}"
            runs[naive] = train(x, y, w0, b0, args.lr_w, args.lr_w, args.epochs)
            naive_gap = gaps(runs[naive], x_raw, y.cpu(), mean, std, ref_loss)[-1]
            say(f"for comparison, {naive} for w and b: gap {naive_gap:.2e}")
        sweep = {}  # one shared rate over three decades up to past the limit: lr -> final gap (None: diverged)
        for lr in shared_limit * np.logspace(-3, np.log10(1.5), 31):
            run = train(x, y, w0, b0, lr, lr, args.epochs)
            grew = run["diverged"] is not None or run["loss"][-1] > run["loss"][0]
            sweep[lr] = None if grew else gaps(run, x_raw, y.cpu(), mean, std, ref_loss)[-1]
        best = min((g, lr) for lr, g in sweep.items() if g is not None)
        say(
            f"sweep of one shared lr, {len(sweep)} rates, {args.epochs} epochs each: best gap {best[0]:.2e} "
            f"at lr = {best[1]:.3g}; {sum(g is None for g in sweep.values())} rates above the limit diverge"
        )
        path = plot(args, x_raw, y, mean, std, runs, sweep, (ref_w, ref_b, ref_loss, floor), shared_limit)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Reference: closed-form least squares, and the largest stable learning rate
def least_squares(x, y):
    """The exact minimizer of the MSE, in float64: (w, b, loss)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    X = np.stack([x, np.ones_like(x)], axis=1)
    (w, b), *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(w), float(b), mse(w, b, x, y)


def mse(w, b, x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.mean((w * x + b - y) ** 2))


def float32_floor(ref_w, ref_b, x_raw, y, mean, std, ref_loss):
    """The gap of least squares itself once its w and b are rounded to float32, in the units trained in.

    The trained w and b are float32: no run can end much closer to the optimum than this.
    """
    w, b = np.float32(ref_w * std), np.float32(ref_b + ref_w * mean)  # the optimum in training units
    return mse(*to_raw_units(float(w), float(b), mean, std), x_raw, y) / ref_loss - 1


def hessian(x):
    """Curvature of L(w, b) = mean((w x + b - y)^2): the constant matrix 2 [[mean x^2, mean x], [mean x, 1]]."""
    x = np.asarray(x, dtype=np.float64)
    return 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])


def stable_scale(x, lr_w, lr_b):
    """How far the rates (lr_w, lr_b) can be scaled before gradient descent diverges.

    On a quadratic loss one step maps the error e to (I - P H) e with P = diag(lr_w, lr_b); it
    shrinks only if every eigenvalue of P H stays below 2. For one shared rate that is
    lr < 2 / largest eigenvalue of H. A result below 1 means these rates diverge.
    """
    root_p = np.diag(np.sqrt([lr_w, lr_b]))
    return 2 / np.linalg.eigvalsh(root_p @ hessian(x) @ root_p).max()


# %% Look: fitted lines, loss against the optimum, w and b converging, a learning-rate sweep
def plot(args, x_raw, y, mean, std, runs, sweep, reference, shared_limit):
    """The lesson's figure, four panels, from the runs made in main; returns the saved path."""
    x_raw, y_raw = x_raw.double().numpy(), y.cpu().double().numpy()
    ref_w, ref_b, ref_loss, floor = reference
    history = runs["this run"]

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    rates = f"lr_w = {args.lr_w:.2g}, lr_b = {args.lr_b:.2g}" if args.lr_w != args.lr_b else f"lr = {args.lr_w:.2g}"
    fig.suptitle(
        f"Gradient descent by hand on the {args.data} data, {rates} on {'normalized' if args.normalize else 'raw'} x",
        fontsize=13,
    )

    # (a) the data and the line after a few epochs
    ax = axes[0, 0]
    ax.scatter(x_raw, y_raw, s=12, color="0.6", label="data")
    grid = np.array([x_raw.min(), x_raw.max()])
    last = len(history["w"]) - 1
    shown = sorted({0, 1, 3, 10, last} & set(range(last + 1)))
    for epoch, color in zip(shown, plt.cm.viridis(np.linspace(0, 0.9, len(shown)))):
        w, b = to_raw_units(history["w"][epoch], history["b"][epoch], mean, std)
        label = f"epoch {epoch}" + (" (initial guess)" if epoch == 0 else "")
        ax.plot(grid, w * grid + b, color=color, lw=1.8, label=label)
    ax.plot(grid, ref_w * grid + ref_b, "k--", lw=1, label="least squares")
    ax.set(title="(a) the fitted line as training goes on", xlabel="x", ylabel="y")
    ax.legend(fontsize=8)

    # (b) how far the loss is above the optimum, on a log scale
    ax = axes[0, 1]
    lowest = 1.0
    for (name, run), style in zip(runs.items(), ["-", "--"]):
        gap = gaps(run, x_raw, y_raw, mean, std, ref_loss)
        ax.semilogy(gap, style, label=name)
        lowest = min(lowest, gap[gap > 0].min(initial=1.0))  # float64 rounding can leave a gap of 0 or below
    ax.axhline(1e-4, color="0.5", lw=0.8, ls=":")
    ax.text(last, 1e-4, "gap 1e-4", ha="right", va="bottom", fontsize=8, color="0.4")
    if floor > 0:  # no float32 w, b can do much better: the floor every run of this lesson ends on
        ax.axhline(floor, color="C3", lw=0.8, ls=":")
        ax.text(0, floor, " least squares rounded to float32", va="bottom", fontsize=8, color="C3")
        lowest = min(lowest, floor)
    ax.set_ylim(lowest / 3, None)
    ax.set(title="(b) loss above the least-squares optimum", xlabel="epoch", ylabel="loss / optimum - 1")
    ax.legend(fontsize=8)

    # (c) w and b approach their optimal values at different speeds
    ax = axes[1, 0]
    for (name, run), style in zip(runs.items(), ["-", "--"]):
        ws, bs = to_raw_units(np.array(run["w"]), np.array(run["b"]), mean, std)
        same = " (same as this run)" if name != "this run" else ""
        ax.semilogy(np.abs(ws - ref_w) / abs(ws[0] - ref_w), style, color="C0", label=f"w, {name}{same}")
        ax.semilogy(np.abs(bs - ref_b) / abs(bs[0] - ref_b), style, color="C3", label=f"b, {name}")
    ax.set_ylim(1e-7, 3)  # float32 resolution
    ax.set(
        title="(c) w and b: distance to the optimum, relative to the start",
        xlabel="epoch",
        ylabel="|w - w*| / |w0 - w*|   and   |b - b*| / |b0 - b*|",
    )
    ax.legend(fontsize=8)

    # (d) the same number of epochs with one shared rate, over a range of rates
    ax = axes[1, 1]
    stable = [(lr, g) for lr, g in sweep.items() if g is not None]
    diverged = [lr for lr, g in sweep.items() if g is None]
    top = 30 * max(g for _, g in stable)
    ax.loglog(*zip(*stable), "o-", color="C2", ms=4, label=f"gap after {args.epochs} epochs")
    label = "diverged: the loss grows without bound"
    ax.loglog(diverged, [top] * len(diverged), "x", color="C3", ms=7, mew=2, label=label)
    ax.axvspan(shared_limit, max(sweep) * 1.2, color="C3", alpha=0.08)
    ax.axvline(shared_limit, color="C3", ls="--", lw=1)
    ax.annotate(
        f"stable limit = 2 / max curvature\n= {shared_limit:.2g}",
        (shared_limit, top),
        xytext=(-8, -30),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color="C3",
    )
    ax.text(min(sweep), top / 10, "too small: stalls", va="bottom", fontsize=8)
    best = min(stable, key=lambda s: s[1])
    ax.annotate(
        "best shared rate: w converges,\nbut b barely moves" if best[1] > 1e-4 else "good",
        best,
        xytext=(-20, 40),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "0.4"},
    )
    ax.set_xlim(min(sweep) / 1.3, max(sweep) * 1.2)
    ax.set(
        title="(d) one shared rate for w and b: too small, good, too large",
        xlabel="learning rate",
        ylabel="loss / optimum - 1",
    )
    ax.legend(fontsize=8, loc="center")  # the empty middle: above the plateau, below the limit's label

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "LR_noDatasetClass")


if __name__ == "__main__":
    common.run(main)
