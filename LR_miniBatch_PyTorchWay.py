"""Linear regression the PyTorch way: nn.Module, a loss module, torch.optim, a DataLoader, validation.

What you will learn
- the model is an `nn.Module` around `nn.Linear`; `nn.MSELoss` is the loss; an optimizer from
  `torch.optim` does the update (`zero_grad`, `backward`, `step`) that lessons 1 and 2 wrote by hand;
- a train/validation split: only the training loss is back-propagated, so the validation rows never
  reach a gradient; their loss is computed under `torch.no_grad()`, which saves building a graph;
- feature scaling: standardizing each feature on the training split makes gradient descent fast,
  while `torch.nn.functional.normalize`, which rescales each *row* to length 1, is a different model
  that cannot reach the least-squares fit at all;
- optimizers: SGD with momentum, and Adam.
Extras, after the main run in this file: weight decay (in SGD and Adam a coupled L2 penalty, so
ridge regression is the reference), and the choice of loss, mean |y - y_hat|^m with m = 1, 2, 4,
pulled differently by outliers.

Data: a noisy line drawn as in lessons 1 and 2, with noise of its own (default), scikit-learn's
diabetes data (442 patients, 10 features, bundled with scikit-learn), California housing
(scikit-learn downloads it on first use), or a synthetic crop-yield problem with 3 inputs and 2
targets. Every result is checked against the optimum of the same problem on the same training
split (scikit-learn's solvers, or scipy's), with two exceptions that the printout names: with
--scaling rownorm the reference stays on standardized features, and for --loss-power 1 with a
penalty it is the best that L-BFGS finds.

Run it:
    python LR_miniBatch_PyTorchWay.py --dataset diabetes
    python LR_miniBatch_PyTorchWay.py --dataset diabetes --scaling rownorm   # the common mistake
    python LR_miniBatch_PyTorchWay.py --dataset diabetes --optimizer adam
    python LR_miniBatch_PyTorchWay.py --dataset crops                        # 3 inputs, 2 targets
    python LR_miniBatch_PyTorchWay.py --outliers 5 --loss-power 1            # a robust fit
"""

# %% Setup
import time
import urllib.error
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import common

DEFAULT_LR = {"sgd": 0.1, "adam": 0.3}


def parse_args(argv):
    p = common.parser(__doc__, epochs=100, lr=None, lr_help="learning rate (default: 0.1 for sgd, 0.3 for adam)")
    p.add_argument("--dataset", choices=["line", "diabetes", "california", "crops"], default="line", help="which data")
    p.add_argument(
        "--batch-size",
        type=common.positive_int,
        help="examples per gradient step (default: 16 on the line, 128 on the other data sets, or all training rows "
        "if fewer)",
    )
    p.add_argument(
        "--val-fraction", type=common.fraction, default=0.2, help="share of rows held out for validation, in [0, 1)"
    )
    p.add_argument(
        "--scaling",
        choices=["standardize", "rownorm", "none"],
        default="standardize",
        help="standardize each feature on the training split, normalize each row to length 1, or nothing",
    )
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="torch.optim.SGD or torch.optim.Adam")
    p.add_argument("--momentum", type=common.fraction, default=0.9, help="momentum of SGD, in [0, 1)")
    p.add_argument(
        "--weight-decay", type=common.non_negative_float, default=0.0, help="L2 penalty on the weights (not the bias)"
    )
    p.add_argument(
        "--schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="learning rate over the epochs: cosine decay to 0, or constant",
    )
    p.add_argument(
        "--loss-power",
        type=common.finite_float,
        default=2.0,
        help="train on mean(|y - y_hat|^m), m in [1, 8]; 2 is the MSE",
    )
    p.add_argument(
        "--outliers",
        type=common.non_negative_int,
        default=0,
        help="training targets to push far off, to see the loss's pull",
    )
    args = p.parse_args(argv)
    if args.loss_power < 1:
        p.error(f"argument --loss-power: must be at least 1 (below, the loss is not convex), got {args.loss_power}")
    if args.loss_power > 8:  # the losses are float32, whose largest number is 3.4e38
        p.error(f"argument --loss-power: must be at most 8 (already 1000^8 = 1e24), got {args.loss_power}")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    return args


# %% Data
def load_dataset(name, gen):
    """Features X (n, d) and targets Y (n, k) as float64 numpy arrays, and their names."""
    from sklearn import datasets

    if name == "line":  # lessons 1 and 2: y = 3 x + 2 + noise of standard deviation 100
        x = torch.linspace(-100, 100, 100, dtype=torch.float64)
        y = 3 * x + 2 + 100 * torch.randn(100, generator=gen, dtype=torch.float64)
        return x[:, None].numpy(), y[:, None].numpy(), ["x"], ["y"]
    if name == "crops":  # yields of apples and oranges from temperature, rainfall and humidity
        X = np.stack(
            [
                60 + 40 * torch.rand(200, generator=gen, dtype=torch.float64).numpy(),  # temperature, F
                40 + 100 * torch.rand(200, generator=gen, dtype=torch.float64).numpy(),  # rainfall, mm
                30 + 50 * torch.rand(200, generator=gen, dtype=torch.float64).numpy(),  # humidity, %
            ],
            axis=1,
        )
        W, b = np.array([[0.4, 0.6, 0.3], [0.2, 0.9, 0.5]]), np.array([-30.0, -50.0])
        Y = X @ W.T + b + 5 * torch.randn(200, 2, generator=gen, dtype=torch.float64).numpy()
        return X, Y, ["temperature", "rainfall", "humidity"], ["apples", "oranges"]
    if name == "diabetes":
        bunch = datasets.load_diabetes()  # shipped inside scikit-learn: works offline
        return bunch.data, bunch.target[:, None], list(bunch.feature_names), ["disease progression"]
    try:
        with warnings.catch_warnings():  # scikit-learn warns on each retry; one error line is enough
            warnings.simplefilter("ignore")
            bunch = datasets.fetch_california_housing(n_retries=1)  # downloaded once, then cached
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise common.LessonError(
            "--dataset california: scikit-learn downloads this data on first use, and the download failed "
            f"({type(e).__name__}: {e}); run once with network access, or use --dataset diabetes"
        ) from None
    return bunch.data, bunch.target[:, None], list(bunch.feature_names), ["median house value"]


def split(n, val_fraction, gen):
    """Shuffled row indices of the training and validation splits."""
    order = torch.randperm(n, generator=gen).numpy()
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]


def standardizer(A_train):
    """(scale, unscale): subtract the training mean, divide by the training standard deviation, and back.

    The statistics come from the training split only: taking them from all rows would leak the
    validation data into training.
    """
    mean, std = A_train.mean(axis=0), A_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a column constant on the training rows: nothing to rescale
    return (lambda A: (A - mean) / std), (lambda Z: Z * std + mean)


def scaler(kind, X_train):
    """The feature transform: standardize, rownorm or none."""
    if kind == "standardize":
        return standardizer(X_train)[0]
    if kind == "rownorm":
        # What torch.nn.functional.normalize(X) does: each row divided by its length. That throws away
        # each example's overall size and mixes its features, so it is a different model, not a rescaling.
        return lambda X: torch.nn.functional.normalize(torch.as_tensor(X), dim=1).numpy()
    return lambda X: X


# %% Model
class LinearModel(nn.Module):
    """y_hat = x W^T + b: one nn.Linear, with k outputs for k targets."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        # The loss is convex: any start leads to the same optimum, so start from the simplest, zero.
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):
        return self.linear(x)


# %% Training loop
def train(X_train, Y_train, X_val, Y_val, args, device, scaling, optimizer_name, lr):
    """Train a LinearModel; returns predict(X) in raw units and the per-epoch history."""
    features = scaler(scaling, X_train)
    # Standardized targets too: then every weight is of order 1 whatever the units of y, and one
    # learning rate suits every data set. Predictions are mapped back to the data's units.
    to_target, from_target = standardizer(Y_train)

    def tensor(A):
        return torch.as_tensor(np.asarray(A), dtype=torch.float32, device=device)

    y_mean, y_std = tensor(Y_train.mean(axis=0)), tensor(Y_train.std(axis=0))  # to report losses in y's units
    X_train, X_val = tensor(features(X_train)), tensor(features(X_val))
    Z_train, Y_train, Y_val = tensor(to_target(Y_train)), tensor(Y_train), tensor(Y_val)
    loader = DataLoader(
        TensorDataset(X_train, Z_train),
        batch_size=args.batch_size,
        shuffle=True,
        generator=common.batch_generator(args.seed),  # its own stream: every variant sees the same batches
    )

    model = LinearModel(X_train.shape[1], Y_train.shape[1]).to(device)
    loss_fn = nn.MSELoss() if args.loss_power == 2 else PowerLoss(args.loss_power)  # other powers: see below main
    # --weight-decay: in SGD and Adam it adds weight_decay * W to the gradient, which is the gradient
    # of an L2 penalty weight_decay / 2 * |W|^2 added to the loss ("coupled" L2; Adam then rescales it
    # with the rest of the gradient). So the optimum is ridge regression's, the reference below.
    # AdamW (lesson 6) instead shrinks the weights directly, outside Adam's rescaling: decoupled.
    # Only the weights, as in ridge regression: penalizing the bias would pull the predictions
    # towards 0, not the slopes towards flat.
    groups = [
        {"params": [model.linear.weight], "weight_decay": args.weight_decay},
        {"params": [model.linear.bias], "weight_decay": 0.0},
    ]
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=args.momentum)
    else:
        optimizer = torch.optim.Adam(groups, lr=lr)
    # Cosine decay lowers the rate along half a cosine, from lr at the first epoch to lr / 4000 at the
    # last (for 100 epochs): mini-batch gradients are noisy (lesson 2), and a shrinking step lets the
    # parameters settle on the optimum instead of jittering around it.
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs) if args.schedule == "cosine" else None
    )

    history = {"train": [], "val": [], "seconds": [], "diverged": None}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        # train() and eval() switch the layers that act differently in training and evaluation
        # (dropout, BatchNorm: lesson 7). nn.Linear has none, so here they change nothing; the habit
        # keeps a model correct once it gains such layers.
        model.train()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()  # gradients accumulate (lesson 1): clear them first
            loss.backward()  # only the training loss is back-propagated
            optimizer.step()
        if scheduler:
            scheduler.step()

        # Validation, and the loss on the whole training split, in the data's units. The validation
        # rows stay out of training because their loss is never back-propagated; no_grad only saves
        # the memory and time of building a graph that no backward() would use.
        model.eval()
        with torch.no_grad():
            train_loss = loss_fn(model(X_train) * y_std + y_mean, Y_train).item()
            val_loss = loss_fn(model(X_val) * y_std + y_mean, Y_val).item() if len(X_val) else float("nan")
        history["seconds"].append(time.perf_counter() - start)
        if not np.isfinite(train_loss):
            history["diverged"] = epoch
            break
        history["train"].append(train_loss)
        history["val"].append(val_loss)

    def predict(X):
        with torch.no_grad():
            return from_target(model(tensor(features(X))).double().cpu().numpy())

    return predict, history


# %% Run: data, split, reference, training, result
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    gen = common.generator(args.seed)

    X, Y, feature_names, target_names = load_dataset(args.dataset, gen)
    train_rows, val_rows = split(len(X), args.val_fraction, gen)
    X_train, Y_train, X_val, Y_val = X[train_rows], Y[train_rows], X[val_rows], Y[val_rows]
    if len(X_train) <= X.shape[1]:  # one row per weight and one for the bias, or the fit is not unique
        raise common.LessonError(
            f"--val-fraction {args.val_fraction:g} leaves {len(X_train)} training rows, and a linear fit of "
            f"{X.shape[1]} feature(s) needs at least {X.shape[1] + 1}: lower --val-fraction"
        )
    if args.outliers > len(X_train):
        raise common.LessonError(f"--outliers {args.outliers} is more than the {len(X_train)} training rows")
    if args.batch_size is None:  # mini-batches on every data set: 5 per epoch on the line's 80 training rows
        args.batch_size = min(16 if args.dataset == "line" else 128, len(X_train))
    if args.batch_size > len(X_train):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the {len(X_train)} training rows")
    Y_train = add_outliers(Y_train, args.outliers, gen)  # none by default; see the extras below main
    say(
        f"data: {args.dataset}, {len(X_train)} training and {len(X_val)} validation rows, "
        f"{X.shape[1]} feature(s) -> {Y.shape[1]} target(s); device {device}"
    )

    # The reference: the optimum of the same problem, from the solvers after main. Row normalization
    # changes the problem, so the reference then stays on standardized features: the best fit a
    # linear model can reach on these training rows.
    m = args.loss_power
    ref_predict = fit_reference(
        X_train, Y_train, "standardize" if args.scaling == "rownorm" else args.scaling, m, args.weight_decay
    )
    ref_loss = power_loss(ref_predict(X_train), Y_train, m)
    ref_val_loss = power_loss(ref_predict(X_val), Y_val, m) if len(X_val) else None

    predict, history = train(X_train, Y_train, X_val, Y_val, args, device, args.scaling, args.optimizer, args.lr)
    if history["diverged"] is not None:
        raise common.LessonError(
            f"diverged at epoch {history['diverged']}: the training loss is no longer finite; {hint(args)}"
        )
    seconds = history["seconds"][-1]
    loss = power_loss(predict(X_train), Y_train, m)
    val_loss = power_loss(predict(X_val), Y_val, m) if len(X_val) else None
    gap = loss / ref_loss - 1
    name = "MSE" if m == 2 else f"mean |y - y_hat|^{m:g}"
    say(
        f"{args.optimizer} (lr {args.lr:g}, {args.schedule}), {args.scaling} features, batches of {args.batch_size}: "
        f"{args.epochs} epochs in {seconds:.2f} s"
    )
    if args.scaling == "rownorm":
        say(f"reference: {ref_predict.solver} on the same training split, with standardized features")
    else:
        say(f"reference: {ref_predict.solver} on the same training split")
    say(f"training {name}: {loss:.6g}; reference optimum: {ref_loss:.6g}; gap: {gap:.2e}")
    if len(X_val):
        say(f"validation {name}: {val_loss:.6g}; reference: {ref_val_loss:.6g}")
    if args.scaling == "rownorm":
        # The best fit on row-normalized features: is the different model also a worse one here?
        own_loss = power_loss(fit_reference(X_train, Y_train, "rownorm", m, args.weight_decay)(X_train), Y_train, m)
        verdict = (
            f"{own_loss / ref_loss - 1:.2e} above the optimum: a different, worse model"
            if own_loss > ref_loss * (1 + 1e-9)
            else "no worse than the optimum on these data"
        )
        say(f"the best fit on row-normalized features has training {name} {own_loss:.6g}, {verdict}")

    metrics = {
        "loss": loss,
        "ref_loss": ref_loss,
        "gap": gap,
        "seconds": seconds,
        "val_loss": val_loss,
        "ref_val_loss": ref_val_loss,
        "epochs": args.epochs,
        "n_train": len(X_train),
        "n_val": len(X_val),
        "batch_size": args.batch_size,
        "device": str(device),
    }
    if args.scaling == "rownorm":
        metrics["rownorm_optimum"] = own_loss
    if X.shape[1] == 1 and Y.shape[1] == 1:  # a line: report w and b in the units of the raw data
        inputs = np.array([[0.0], [1.0]])
        b, w_plus_b = predict(inputs)[:, 0]
        ref_b, ref_w_plus_b = ref_predict(inputs)[:, 0]
        metrics.update(w=float(w_plus_b - b), b=float(b), ref_w=float(ref_w_plus_b - ref_b), ref_b=float(ref_b))
    if not args.no_figure:
        # The figure compares this run with other feature scalings and optimizers: trained here.
        this = f"{args.scaling}, {args.optimizer}"
        runs = {this: history}
        variants = [("standardize", "sgd"), ("standardize", "adam"), ("rownorm", "sgd"), ("none", "sgd")]
        for scaling, optimizer in variants:
            name = f"{scaling}, {optimizer}"
            if name == this:
                continue
            lr = args.lr if optimizer == args.optimizer else DEFAULT_LR[optimizer]
            runs[name] = train(X_train, Y_train, X_val, Y_val, args, device, scaling, optimizer, lr)[1]
            run = runs[name]
            end = f"{run['train'][-1] / ref_loss - 1:.2e}" if run["diverged"] is None else "none, it diverged"
            say(f"for comparison, {name} (lr {lr:g}): training gap {end}")
        order = [f"{scaling}, {optimizer}" for scaling, optimizer in variants]  # same colours in every figure
        runs = dict(sorted(runs.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))
        # ... and the pull of outliers on each loss: exact fits of the line's training rows with 5 outliers.
        x, y = line_with_outliers(args.seed, args.val_fraction, 5)
        fits = {power: fit_reference(x, y, "none", power, 0.0) for power in (1, 2, 4)}
        intercepts = [f"{fit(np.zeros((1, 1)))[0, 0]:.2f} for m = {power}" for power, fit in fits.items()]
        say(
            f"the line's {len(x)} training rows with 5 outliers (the data of --outliers 5), exact fits of "
            f"mean |y - y_hat|^m: intercept {', '.join(intercepts)}"
        )
        data = X_train, Y_train, X_val, Y_val
        path = plot(args, *data, runs, ref_loss, ref_val_loss, predict, target_names, (x, y, fits))
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Extras: other losses than the MSE, and outliers to see them differ
class PowerLoss(nn.Module):
    """--loss-power m: mean(|y - y_hat|^m); m = 2 is nn.MSELoss, m = 1 the mean absolute error (nn.L1Loss).

    The larger m, the more the largest residuals count: a few outliers pull the whole fit.
    """

    def __init__(self, power):
        super().__init__()
        self.power = power

    def forward(self, y_hat, y):
        return (y - y_hat).abs().pow(self.power).mean()


def add_outliers(Y, k, gen):
    """--outliers k: push k random targets 10 standard deviations away, a few broken measurements."""
    Y = Y.copy()
    rows = torch.randperm(len(Y), generator=gen)[:k].numpy()
    Y[rows] += 10 * Y.std(axis=0)
    return Y


def line_with_outliers(seed, val_fraction, k):
    """The training rows of `--dataset line --outliers k`: the same draws, in the same order, as main."""
    gen = common.generator(seed)
    X, Y, *_ = load_dataset("line", gen)
    train_rows, _ = split(len(X), val_fraction, gen)
    return X[train_rows], add_outliers(Y[train_rows], k, gen)


def hint(args):
    """What to change when a run diverges: what makes the steps too large depends on the run."""
    if args.optimizer == "adam":
        return f"lower --lr (now {args.lr:g})"
    if args.loss_power > 2:
        return (
            f"with --loss-power {args.loss_power:g} the gradient grows with the residual to the power "
            f"{args.loss_power - 1:g}, so large residuals (outliers) take huge steps: lower --lr (now {args.lr:g}) "
            "or use --optimizer adam, whose steps stay of the order of the rate however large the gradient"
        )
    if args.scaling != "standardize":
        return f"--lr {args.lr:g} is too large for these features: try --scaling standardize, or a smaller --lr"
    return f"lower --lr (now {args.lr:g}), or use --optimizer adam"


def power_loss(Y_hat, Y, power):
    """mean(|Y - Y_hat|^m) in float64 numpy: how main scores the model and the reference alike."""
    return float(np.mean(np.abs(np.reshape(Y, np.shape(Y_hat)) - Y_hat) ** power))


# %% References: the optimum of the same problem, from solvers outside PyTorch
def fit_reference(X_train, Y_train, scaling, power, weight_decay):
    """The optimum of the problem the model is trained on; returns its predict(X) in raw units.

    Same training rows, same feature transform, same standardized targets and penalty. Without a
    penalty, standardizing features or targets does not change the predictions of the optimum.
    """
    features, (to_target, from_target) = scaler(scaling, X_train), standardizer(Y_train)
    ref = reference(features(X_train), to_target(Y_train), power, weight_decay)

    def predict(X):
        return from_target(np.reshape(ref.predict(features(X)), (len(X), -1)))

    predict.solver = getattr(ref, "description", type(ref).__name__)  # which solver gave it, for the printout
    return predict


def reference(X, Y, power, weight_decay):
    """The minimizer of mean(|Y - X W^T - b|^power) + weight_decay / 2 * |W|^2, as a fitted model."""
    from sklearn.linear_model import LinearRegression, Ridge

    if power == 2 and weight_decay == 0:
        return LinearRegression().fit(X, Y)
    if power == 2:
        # --weight-decay: Ridge minimizes |Y - X W - b|^2 + alpha |W|^2 with sums; we minimize a mean over
        # all n * k entries plus weight_decay / 2 |W|^2 (the coupled L2 of SGD and Adam): alpha = n k wd / 2.
        return Ridge(alpha=Y.size * weight_decay / 2).fit(X, Y)
    if power == 1 and weight_decay == 0:
        return MedianRegression().fit(X, Y)
    return PowerRegression(power, weight_decay).fit(X, Y)


class MedianRegression:
    """min over W, b of mean(|Y - X W^T - b|): one median regression per target, each a linear program.

    The targets share no parameters, so the mean over all n * k entries is minimized target by
    target, and each is solved exactly by scikit-learn's QuantileRegressor.
    """

    description = "QuantileRegressor, one linear program per target,"

    def fit(self, X, Y):
        from sklearn.linear_model import QuantileRegressor

        self.fits = [QuantileRegressor(quantile=0.5, alpha=0, solver="highs").fit(X, y) for y in Y.T]
        return self

    def predict(self, X):
        return np.stack([fit.predict(X) for fit in self.fits], axis=1)


class PowerRegression:
    """min over W, b of mean(|Y - X W^T - b|^m) + weight_decay / 2 * |W|^2 with scipy's L-BFGS.

    For m > 1 the objective is convex and smooth, so the solver's answer is the optimum (to its
    tolerance). For m = 1 with a penalty it is convex but has kinks, where L-BFGS has no guarantee:
    the reference is then the best L-BFGS finds, and the printout says so.
    """

    def __init__(self, power, weight_decay):
        self.power, self.weight_decay = power, weight_decay
        self.description = "scipy L-BFGS" + (" (m = 1 is not smooth: not guaranteed optimal)" if power == 1 else "")

    def fit(self, X, Y):
        from scipy.optimize import minimize

        n, d = X.shape
        k = Y.shape[1]
        A = np.hstack([X, np.ones((n, 1))])

        def objective(theta):
            T = theta.reshape(k, d + 1)
            R = A @ T.T - Y
            W = T[:, :d]
            value = np.mean(np.abs(R) ** self.power) + self.weight_decay / 2 * np.sum(W**2)
            grad = self.power * (np.sign(R) * np.abs(R) ** (self.power - 1)).T @ A / R.size
            grad[:, :d] += self.weight_decay * W
            return value, grad.ravel()

        start = np.linalg.lstsq(A, Y, rcond=None)[0].T.ravel()
        theta = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 10_000, "gtol": 1e-10}).x
        T = theta.reshape(k, d + 1)
        self.coef_, self.intercept_ = T[:, :d], T[:, d]
        return self

    def predict(self, X):
        return X @ self.coef_.T + self.intercept_


# %% Look: scaling and optimizers, predictions, and the choice of loss
def plot(args, X_train, Y_train, X_val, Y_val, runs, ref_loss, ref_val_loss, predict, target_names, outlier_fits):
    """The lesson's figure, four panels, from the runs and fits made in main; returns the saved path."""
    this = f"{args.scaling}, {args.optimizer}"
    tops = {"train": [], "val": []}  # the y range of the runs that did not diverge
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    fig.suptitle(
        f"Linear regression the PyTorch way on the {args.dataset} data ({len(X_train)} training rows)", fontsize=13
    )
    for name, run in runs.items():
        style = {"lw": 2.5 if name == this else 1.3, "label": name + (" (this run)" if name == this else "")}
        epochs = np.arange(1, len(run["train"]) + 1)
        if run["diverged"] is not None:
            style["label"] += f", diverged at epoch {run['diverged']}"
        else:
            tops["train"].append(max(run["train"]) / ref_loss - 1)
            tops["val"].append(max(run["val"]))
        axes[0, 0].semilogy(epochs, np.array(run["train"]) / ref_loss - 1, **style)
        if len(X_val):
            axes[0, 1].plot(epochs, run["val"], **style)
    axes[0, 0].axhline(1e-3, color="0.5", ls=":", lw=0.8)
    axes[0, 0].set_ylim(top=3 * max(tops["train"]))  # a diverging run leaves through the top
    axes[0, 0].set(
        title="(a) training loss above the exact optimum",
        xlabel="epoch",
        ylabel="training loss / optimum - 1",
    )
    axes[0, 0].legend(fontsize=8)
    ax = axes[0, 1]
    if len(X_val):
        ax.axhline(ref_val_loss, color="k", ls="--", lw=1, label="the exact optimum's")
        ax.set_yscale("log")
        ax.set_ylim(top=1.5 * max(tops["val"]))
        ax.set(title="(b) validation loss (never back-propagated)", xlabel="epoch", ylabel="validation loss")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no validation split\n(--val-fraction 0)", ha="center", va="center", transform=ax.transAxes)
        ax.set(title="(b) validation loss")

    # (c) predicted against actual on the validation split (or training, without one)
    ax = axes[1, 0]
    X_shown, Y_shown, which = (X_val, Y_val, "validation") if len(X_val) else (X_train, Y_train, "training")
    Y_hat = predict(X_shown)
    for k in range(Y_shown.shape[1]):
        ax.scatter(Y_shown[:, k], Y_hat[:, k], s=12, alpha=0.7, label=target_names[k])
    low, high = float(min(Y_shown.min(), Y_hat.min())), float(max(Y_shown.max(), Y_hat.max()))
    ax.plot([low, high], [low, high], "k--", lw=1, label="perfect prediction")
    ax.set(title=f"(c) this run: predicted vs actual, {which} rows", xlabel="actual", ylabel="predicted")
    ax.legend(fontsize=8)

    # (d) the choice of loss, on the noisy line with 5 outliers: exact optima for m = 1, 2, 4
    ax = axes[1, 1]
    x, y, fits = outlier_fits
    ax.scatter(x, y, s=10, color="0.6", label="the line's training rows, 5 outliers")
    grid = np.linspace(x.min(), x.max(), 2)[:, None]
    for (m, fit), color in zip(fits.items(), ["C0", "C1", "C3"]):
        ax.plot(grid, fit(grid)[:, 0], color=color, lw=2, label=f"min mean |y - y_hat|^{m}")
    ax.set(title="(d) choice of loss: outliers pull harder as m grows", xlabel="x", ylabel="y")
    ax.legend(fontsize=8)

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "LR_miniBatch_PyTorchWay")


if __name__ == "__main__":
    common.run(main)
