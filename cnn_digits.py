"""Convolution on images: weight sharing buys shift invariance (handwritten digits on a larger canvas).

What you will learn
- images as tensors of shape (N, C, H, W): N images, C channels, H rows, W columns; a convolution
  slides one small kernel over every position, so the same few weights are shared by all positions;
- kernel size k, padding p and stride s give an output of floor((H + 2p - k) / s) + 1 rows, checked
  here against what nn.Conv2d returns;
- convolution is shift-equivariant: the feature maps of a shifted image are the shifted feature maps
  of the image (the script shows it for the first layer, to float rounding); a global max pool
  then forgets where a feature was found, so the prediction becomes shift-invariant;
- where that stops being exact: at the border of the canvas, where a receptive field reaches outside;
- the experiment: every model is trained on digits at the centre of the canvas and tested on the same
  test digits at every position. A small CNN keeps its accuracy; an MLP with more parameters,
  scikit-learn's SVC (RBF kernel) and logistic regression fall to near chance (10 %);
- --augment (random positions while training) and what it does for the MLP.

The digits are scikit-learn's load_digits: 1,797 handwritten digits, 8 x 8 pixels, shipped with the
package (no download).

Run it:
    python cnn_digits.py                 # train, test every model at every position, draw the figure
    python cnn_digits.py --augment       # train the networks on randomly placed digits
    python cnn_digits.py --canvas 24     # more room to move
"""

# %% Setup
import argparse
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import common

DIGIT = 8  # load_digits images are 8 x 8 pixels
CLASSES = 10


def channel_list(text):
    """Comma-separated positive channel counts, one per convolution layer: "32,64,64"."""
    try:
        channels = [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas, got {text}") from None
    if not channels or min(channels) <= 0:
        raise argparse.ArgumentTypeError(f"every channel count must be positive, got {text}")
    return channels


def parse_args(argv):
    p = common.parser(__doc__, epochs=12, lr=3e-3, lr_help="learning rate of Adam (both networks)")
    p.add_argument("--canvas", type=common.positive_int, default=16, help="side of the blank canvas the digits go on")
    p.add_argument(
        "--channels", type=channel_list, default=[32, 64, 64], metavar="C1,C2,...", help="channels of each conv layer"
    )
    p.add_argument("--kernel", type=common.positive_int, default=3, help="side k of every (odd, k x k) conv kernel")
    p.add_argument("--batch-size", type=common.positive_int, default=64, help="digits per gradient step")
    p.add_argument("--test-fraction", type=common.fraction, default=0.25, help="share of the digits held out for test")
    p.add_argument(
        "--augment", action="store_true", help="train the networks on digits at random positions, not only centred"
    )
    args = p.parse_args(argv)
    if args.canvas <= DIGIT:
        p.error(f"argument --canvas: the digits are {DIGIT} x {DIGIT} and must have room to move: at least {DIGIT + 1}")
    if args.kernel % 2 == 0:
        p.error(f"argument --kernel: must be odd, so that padding k // 2 keeps the size, got {args.kernel}")
    if args.kernel > args.canvas:
        p.error(f"argument --kernel: {args.kernel} is larger than the canvas ({args.canvas})")
    if args.test_fraction == 0:
        p.error("argument --test-fraction: must be above 0, there must be digits to test on")
    return args


# %% Data: 8 x 8 digits placed on a larger blank canvas
def load_data(test_fraction, gen):
    """(train images, train labels, test images, test labels); images (n, 8, 8) scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images / 16, dtype=torch.float32)  # pixel values 0..16
    labels = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(images), generator=gen)
    n_test = round(len(images) * test_fraction)
    if n_test < 1 or len(images) - n_test < CLASSES:
        raise common.LessonError(f"--test-fraction {test_fraction} leaves no test digits or too few to train on")
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def place(images, canvas, top, left):
    """(n, 1, canvas, canvas) images: digit i with its top-left pixel at (top[i], left[i]), the rest blank (0)."""
    n = len(images)
    out = images.new_zeros(n, 1, canvas, canvas)
    rows = (top[:, None] + torch.arange(DIGIT))[:, :, None]  # (n, 8, 1)
    cols = (left[:, None] + torch.arange(DIGIT))[:, None, :]  # (n, 1, 8)
    out[torch.arange(n)[:, None, None], 0, rows, cols] = images
    return out


def at(images, canvas, top, left):
    """All digits at the same position (top, left)."""
    n = len(images)
    return place(images, canvas, torch.full((n,), top), torch.full((n,), left))


# %% Models: a small CNN, and an MLP with at least as many parameters
class CNN(nn.Module):
    """Conv + ReLU layers that keep the size (stride 1, padding k // 2), a global max pool, one linear layer."""

    def __init__(self, channels, kernel):
        super().__init__()
        layers, c_in = [], 1
        for c_out in channels:
            # No bias: a blank region then stays exactly 0 in every feature map, the same value as the
            # zero padding around the canvas. With a bias, blank would become some other constant and
            # the padding would stand out as an edge of its own.
            layers += [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classify = nn.Linear(c_in, CLASSES)

    def forward(self, x):  # x: (N, 1, H, W)
        maps = self.features(x)  # (N, channels[-1], H, W): where in the image each feature responds
        pooled = maps.amax(dim=(2, 3))  # (N, channels[-1]): how strongly, wherever it was
        return self.classify(pooled)


def mlp(canvas, at_least):
    """Flatten, two hidden ReLU layers of the smallest equal width with >= `at_least` parameters, 10 outputs."""
    inputs = canvas * canvas

    def count(h):
        return (inputs + 1) * h + (h + 1) * h + (h + 1) * CLASSES

    h = 1
    while count(h) < at_least:
        h += 1
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(inputs, h),
        nn.ReLU(),
        nn.Linear(h, h),
        nn.ReLU(),
        nn.Linear(h, CLASSES),
    )


@torch.no_grad()
def init_weights(model, gen):
    """He-uniform weights (suits ReLU), drawn with the seeded generator; biases 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            bound = math.sqrt(6 / m.weight[0].numel())  # fan-in: inputs that feed one output
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 2 * bound - bound)
            if m.bias is not None:
                m.bias.zero_()
    return model


def n_parameters(model):
    return sum(p.numel() for p in model.parameters())


def conv_output_size(H, k, p, s):
    """Rows of the output of a k x k convolution with padding p and stride s on H rows."""
    return (H + 2 * p - k) // s + 1


# %% Training loop (the same for both networks)
def train(model, images, labels, args, batches, device, say, name):
    """Adam on mini-batches; digits at the centre, or at a random position each time with --augment.

    `batches` is the generator of the batch order and of the random positions: one of its own, so
    that the draws do not depend on how many numbers the model's initialization took.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    n, centre, positions = len(images), (args.canvas - DIGIT) // 2, args.canvas - DIGIT + 1
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(n, generator=batches)  # the batch order comes from the seed too
        total, correct = 0.0, 0
        for i in range(0, n, args.batch_size):
            batch = order[i : i + args.batch_size]
            if args.augment:
                top, left = torch.randint(0, positions, (2, len(batch)), generator=batches)
            else:
                top = left = torch.full((len(batch),), centre)
            x = place(images[batch], args.canvas, top, left).to(device)
            y = labels[batch].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            correct += (logits.argmax(1) == y).sum().item()
        # A loss far above uniform guessing's ln 10 = 2.30 has diverged even while it is still finite:
        # at --lr 1e30 the first epoch ends with a finite mean loss of about 1.6e30.
        guess = math.log(CLASSES)
        if not math.isfinite(total) or total / n > 10 * guess:
            if math.isfinite(total):
                state = f"{total / n:.3g}, over ten times uniform guessing's {guess:.2f}"
            else:
                state = "no longer finite"
            raise common.LessonError(f"{name} diverged in epoch {epoch}: the mean loss is {state}; lower --lr")
        say(
            f"{name} epoch {epoch:3d} | loss {total / n:.4f} | train accuracy {correct / n:6.1%} | "
            f"{time.perf_counter() - start:5.1f} s"
        )
    return time.perf_counter() - start


# %% Testing at every position of the canvas
def every_position(f, images, canvas):
    """out[top, left] = f(all `images` placed at (top, left)), for every position where a digit fits."""
    positions = range(canvas - DIGIT + 1)
    return np.array([[f(at(images, canvas, top, left)) for left in positions] for top in positions])


def shift_distance(canvas):
    """d[top, left]: how far a position is from the centre, in pixels along the worse axis (max(|dy|, |dx|))."""
    offsets = np.arange(canvas - DIGIT + 1) - (canvas - DIGIT) // 2
    return np.maximum(np.abs(offsets)[:, None], np.abs(offsets)[None, :])


def by_distance(grid, d):
    """Mean of `grid` over the positions at each shift distance 0, 1, 2, ..."""
    return np.array([grid[d == r].mean() for r in range(d.max() + 1)])


def summary(grid, d):
    """(accuracy at the centre, mean accuracy over every other position)."""
    return float(grid[d == 0][0]), float(grid[d > 0].mean())


# %% Run
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    gen = common.generator(args.seed)
    C = args.canvas
    centre = (C - DIGIT) // 2
    d = shift_distance(C)
    Xtr, Ytr, Xte, Yte = load_data(args.test_fraction, gen)
    say(
        f"data: {len(Xtr)} training and {len(Xte)} test digits, 8 x 8, on a {C} x {C} canvas: "
        f"{d.size} positions, the centre at ({centre}, {centre}), shifts of up to {d.max()} pixel(s)"
    )

    # Shapes: what a conv layer does to (N, C, H, W), the formula against nn.Conv2d itself.
    x = at(Xte[:1], C, centre, centre)
    say(f"one image as a tensor: {tuple(x.shape)} = (N images, C channels, H rows, W columns)")
    for k, p, s in [(args.kernel, args.kernel // 2, 1), (3, 0, 1), (5, 2, 1), (3, 1, 2), (4, 0, 3)]:
        formula = conv_output_size(C, k, p, s)
        # On the "meta" device tensors have shapes but no numbers: nothing is computed or drawn.
        shape = tuple(nn.Conv2d(1, 4, k, stride=s, padding=p, device="meta")(x.to("meta")).shape)
        say(f"  kernel {k}, padding {p}, stride {s}: ({C} + 2*{p} - {k}) // {s} + 1 = {formula}; nn.Conv2d: {shape}")
        if shape[2:] != (formula, formula):
            raise common.LessonError(f"output size formula {formula} disagrees with nn.Conv2d {shape}")

    # The two networks, on the same seeded split.
    cnn = init_weights(CNN(args.channels, args.kernel), gen).to(device)
    net = init_weights(mlp(C, n_parameters(cnn)), gen).to(device)
    conv1 = cnn.features[0]
    dense_equivalent = (C * C) * (args.channels[0] * C * C)
    say(
        f"CNN: {' -> '.join(map(str, [1, *args.channels]))} channels, {args.kernel} x {args.kernel} kernels, "
        f"global max pool, linear: {n_parameters(cnn)} parameters"
    )
    say(f"MLP: {C * C} -> {net[1].out_features} -> {net[3].out_features} -> 10: {n_parameters(net)} parameters")
    say(
        f"weight sharing: conv layer 1 maps {C}x{C} pixels to {args.channels[0]} maps of {C}x{C} with "
        f"{conv1.weight.numel()} weights; a dense layer between the same sizes would need {dense_equivalent}"
    )
    where = "random positions" if args.augment else "the centre only"
    say(f"training both networks on digits at {where}; Adam at {args.lr:g}, batches of {args.batch_size}")
    # Both networks see the same batches (and, with --augment, the same positions): the stream of
    # batch draws is rewound to its start for the second one.
    batches = common.batch_generator(args.seed)
    first_batch = batches.get_state()
    seconds = {"cnn": train(cnn, Xtr, Ytr, args, batches, device, say, "CNN")}
    batches.set_state(first_batch)
    seconds["mlp"] = train(net, Xtr, Ytr, args, batches, device, say, "MLP")

    # The classical references, trained once on the same training digits.
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    # With --augment: one random position per training digit, in addition to the centred one, drawn
    # from the batch stream after the networks' draws, so the same for any size of network.
    if args.augment:
        top, left = torch.randint(0, C - DIGIT + 1, (2, len(Xtr)), generator=batches)
        Xflat = torch.cat([at(Xtr, C, centre, centre), place(Xtr, C, top, left)]).flatten(1).numpy()
        yflat = torch.cat([Ytr, Ytr]).numpy()
    else:
        Xflat, yflat = at(Xtr, C, centre, centre).flatten(1).numpy(), Ytr.numpy()
    classical = {"svc": SVC(kernel="rbf", C=10.0, gamma="scale"), "logreg": LogisticRegression(C=1.0, max_iter=2000)}
    for name, model in classical.items():
        tic = time.perf_counter()
        model.fit(Xflat, yflat)
        seconds[name] = time.perf_counter() - tic

    # Every model, every test digit, every position: predictions (positions, positions, n test digits).
    say(f"testing every model on the {len(Xte)} test digits at each of the {d.size} positions ...")
    with torch.no_grad():
        cnn_logits = every_position(lambda x: cnn(x.to(device)).cpu().numpy(), Xte, C)
        predictions = {
            "cnn": cnn_logits.argmax(-1),
            "mlp": every_position(lambda x: net(x.to(device)).argmax(1).cpu().numpy(), Xte, C),
        }
    for name, model in classical.items():
        predictions[name] = every_position(lambda x, m=model: m.predict(x.flatten(1).numpy()), Xte, C)
    grids = {name: (predicted == Yte.numpy()).mean(-1) for name, predicted in predictions.items()}

    with torch.no_grad():
        centred = at(Xte, C, centre, centre).to(device)
        loss = F.cross_entropy(cnn(centred), Yte.to(device)).item()
    log_p = classical["logreg"].predict_log_proba(centred.cpu().flatten(1).numpy())
    ref_loss = float(F.nll_loss(torch.from_numpy(log_p), Yte))
    metrics = {"loss": loss, "ref_loss": ref_loss, "gap": loss / ref_loss - 1, "seconds": seconds["cnn"]}
    names = {"cnn": "CNN", "mlp": "MLP", "svc": "SVC (RBF)", "logreg": "logistic regression"}
    params = {"cnn": n_parameters(cnn), "mlp": n_parameters(net), "svc": None, "logreg": None}
    say(f"{'model':20s} {'parameters':>10s} {'train s':>8s} {'centred':>8s} {'shifted':>8s}")
    for name, grid in grids.items():
        acc_centred, acc_shifted = summary(grid, d)
        metrics |= {f"{name}_centred": acc_centred, f"{name}_shifted": acc_shifted, f"{name}_seconds": seconds[name]}
        count = "" if params[name] is None else str(params[name])
        say(f"{names[name]:20s} {count:>10s} {seconds[name]:8.1f} {acc_centred:8.1%} {acc_shifted:8.1%}")
    say("shifted: the mean over every position but the centre; chance is 10 %")
    say(
        f"test cross-entropy on centred digits: CNN {loss:.4f}, logistic regression {ref_loss:.4f} "
        f"(gap {metrics['gap']:+.1%})"
    )
    for name, grid in grids.items():
        curve = " ".join(f"{a:6.1%}" for a in by_distance(grid, d))
        say(f"accuracy at shift 0, 1, ..., {d.max()}: {names[name]:20s} {curve}")
    metrics |= {"cnn_parameters": params["cnn"], "mlp_parameters": params["mlp"], "device": str(device)}

    # Why: the first layer is shift-equivariant, and the global max pool makes the output invariant.
    dy, dx = -min(2, centre), min(3, C - DIGIT - centre)  # a shift that keeps the digit on the canvas
    digit = Xte[:1]
    with torch.no_grad():
        x, x_shifted = at(digit, C, centre, centre).to(device), at(digit, C, centre + dy, centre + dx).to(device)
        maps, maps_shifted = conv1(x), conv1(x_shifted)
        # Compare where both maps exist: row r of the original is row r + dy of the shifted image's maps.
        rows, cols = slice(max(0, -dy), C - max(0, dy)), slice(max(0, -dx), C - max(0, dx))
        rows_s, cols_s = slice(max(0, dy), C - max(0, -dy)), slice(max(0, dx), C - max(0, -dx))
        equivariance = (maps_shifted[..., rows_s, cols_s] - maps[..., rows, cols]).abs().max().item()
        say(
            f"layer 1, digit shifted by ({dy:+d}, {dx:+d}): largest |maps(shifted) - shifted maps| = "
            f"{equivariance:.1e} (the maps reach {maps.abs().max().item():.2f})"
        )
    # The whole network: how far do the logits move when the digit moves away from the centre?
    change = np.abs(cnn_logits - cnn_logits[centre, centre]).max(axis=(2, 3))
    ring = len(args.channels) * (args.kernel // 2)  # how far the stack of kernels sees around a pixel
    fits = np.arange(d.shape[0])
    fits = (fits >= ring) & (fits + DIGIT + ring <= C)
    inside = fits[:, None] & fits[None, :]
    metrics |= {
        "equivariance_error": equivariance,
        "invariance_error_inside": float(change[inside].max()) if inside.any() else None,
        "invariance_error_border": float(change[~inside].max()) if (~inside).any() else None,
    }
    say(
        f"whole CNN: the receptive field reaches {ring} pixels around each pixel; the digit and that ring "
        f"stay on the canvas at {int(inside.sum())} of {d.size} positions"
    )
    if inside.any():
        most = metrics["invariance_error_inside"]
        say(f"  there the logits move by at most {most:.1e}: the same, up to float rounding")
    if (~inside).any():
        say(f"  elsewhere, by up to {metrics['invariance_error_border']:.2f}: the canvas edge cuts the ring off")

    if not args.no_figure:
        examples = {
            "filters": conv1.weight.detach().cpu()[:, 0],
            "maps": (x.cpu(), maps.cpu(), x_shifted.cpu(), maps_shifted.cpu(), (dy, dx)),
        }
        n_shown = min(8, len(Xte))
        top, left = torch.randint(0, C - DIGIT + 1, (2, n_shown), generator=gen)
        shown = place(Xte[:n_shown], C, top, left)
        with torch.no_grad():
            guesses = [model(shown.to(device)).argmax(1).cpu() for model in (cnn, net)]
        examples["predictions"] = (shown, Yte[:n_shown], *guesses)
        path = plot(args, grids, d, change, inside, names, examples)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Look: accuracy against shift, invariance, filters, feature maps, predictions
def plot(args, grids, d, change, inside, names, examples):
    fig = plt.figure(figsize=(15, 10))
    trained = "on centred digits"
    if args.augment:
        trained = "at random positions (--augment; classical models: centred + one random)"
    fig.suptitle(f"Trained {trained}, tested at every position of a {args.canvas} x {args.canvas} canvas", fontsize=14)
    top, bottom = fig.subfigures(2, 1)
    left, middle, right = top.subfigures(1, 3, width_ratios=[1.2, 1.0, 1.0])
    for panel in (left, middle, right):
        panel.subplots_adjust(top=0.82)  # room for the figure's title above the top row

    ax = left.subplots()
    distances = np.arange(d.max() + 1)
    for i, (name, grid) in enumerate(grids.items()):
        ax.plot(distances, 100 * by_distance(grid, d), "o-", color=f"C{i}", label=names[name])
    ax.axhline(10, color="0.5", ls=":", label="chance (10 %)")
    ax.set(
        title="(a) test accuracy against shift",
        xlabel="shift from the centre: max(|rows|, |columns|) in pixels",
        ylabel="accuracy (%)",
        ylim=(0, 102),
        xticks=distances,
    )
    ax.legend(fontsize=9, loc="center right", bbox_to_anchor=(1, 0.4))

    ax = middle.subplots()
    im = ax.imshow(np.log10(np.maximum(change, 1e-8)), cmap="magma", vmin=-8)
    offsets = np.arange(d.shape[0]) - (args.canvas - DIGIT) // 2
    ax.set_xticks(range(len(offsets)), [f"{o:+d}" for o in offsets])
    ax.set_yticks(range(len(offsets)), [f"{o:+d}" for o in offsets])
    rows, cols = np.nonzero(inside)
    if len(rows):
        ax.add_patch(
            plt.Rectangle(
                (cols.min() - 0.5, rows.min() - 0.5),
                cols.max() - cols.min() + 1,
                rows.max() - rows.min() + 1,
                fill=False,
                ec="C2",
                lw=2,
            )
        )
    middle.colorbar(im, ax=ax, label="log10 of the largest |logit change| (black: 0)", shrink=0.8)
    ax.set(
        title="(b) CNN: how far the logits move vs centred\n(green: digit + receptive ring on the canvas)",
        xlabel="shift right",
        ylabel="shift down",
    )

    filters = examples["filters"]
    n = min(len(filters), 32)
    axes = right.subplots(4, math.ceil(n / 4))
    k = filters.shape[-1]
    right.suptitle(f"(c) the learned {k} x {k} kernels of layer 1\n(red positive, blue negative)", fontsize=11, y=0.92)
    for i, ax in enumerate(axes.flat):
        if i < n:
            lim = float(filters[i].abs().max())
            ax.imshow(filters[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.axis("off")

    maps_fig, preds_fig = bottom.subfigures(1, 2, width_ratios=[1.4, 1.0])
    x, maps, x_shifted, maps_shifted, (dy, dx) = examples["maps"]
    channels = min(4, maps.shape[1])
    axes = maps_fig.subplots(2, channels + 1)
    maps_fig.suptitle(
        f"(d) a test digit, moved {abs(dy)} rows {'up' if dy < 0 else 'down'} and {abs(dx)} columns "
        f"{'left' if dx < 0 else 'right'}: {channels} of its layer-1 feature maps move with it",
        fontsize=11,
    )
    for row, (image, m) in enumerate([(x, maps), (x_shifted, maps_shifted)]):
        axes[row, 0].imshow(image[0, 0], cmap="gray_r")
        axes[row, 0].set_title("centred" if row == 0 else "shifted", fontsize=9)
        vmax = float(maps[0, :channels].max())
        for c in range(channels):
            axes[row, c + 1].imshow(m[0, c], cmap="viridis", vmin=0, vmax=vmax)
            axes[row, c + 1].set_title(f"map {c}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])

    images, labels, cnn_pred, mlp_pred = examples["predictions"]
    axes = preds_fig.subplots(2, 4)
    preds_fig.suptitle("(e) test digits at random positions: CNN / MLP prediction (green: CNN right)", fontsize=11)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if i >= len(images):
            ax.axis("off")
            continue
        ax.imshow(images[i, 0], cmap="gray_r")
        ok = "C2" if cnn_pred[i] == labels[i] else "C3"
        ax.set_title(f"{int(cnn_pred[i])} / {int(mlp_pred[i])}  (is {int(labels[i])})", fontsize=9, color=ok)

    return common.save_figure(fig, args.figs_dir, "cnn_digits")


if __name__ == "__main__":
    common.run(main)
