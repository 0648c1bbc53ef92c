"""Logistic regression: a line mapped to a probability by the sigmoid, trained with binary cross-entropy.

What you will learn
- the model is still one `nn.Linear`; its output z = w x + b is a score (a logit), and the sigmoid
  sigma(z) = 1 / (1 + exp(-z)) turns it into the probability of class 1;
- the prediction is class 1 where that probability is above 0.5, that is where z > 0: the decision
  boundary is the point (or plane) where w x + b = 0, x = -b / w in one dimension;
- the loss is the binary cross-entropy, -mean(y log p + (1 - y) log(1 - p));
- why the hand-written formula breaks: in float32 the sigmoid of any score from 24 ln 2 = 16.64 up
  is exactly 1 (it reaches exactly 0 only below about -88.7). Then log(1 - p) = log(0) = -inf:
  for an example with y = 1 the term (1 - y) log(1 - p) is 0 * -inf = nan, for one with y = 0 the
  loss is +inf. `nn.BCELoss` clamps the log at -100; `nn.BCEWithLogitsLoss` never forms p at all
  and computes the loss from z with a stable formula: the one to use;
- when the classes are linearly separable (in one dimension: they do not overlap) there is no best
  finite line (the loss keeps falling as |w| grows); a weight decay restores a finite optimum.

Data: 1-D points of two classes, class 0 around -3 and class 1 around 5 (standard deviation 2), or
scikit-learn's bundled breast-cancer data (30 features). The reference is scikit-learn's
LogisticRegression with the same objective on the same training split.

Run it:
    python LogReg_PyTorch.py                          # BCEWithLogitsLoss, the stable choice
    python LogReg_PyTorch.py --loss handwritten       # the formula by hand: nan, and a clear error
    python LogReg_PyTorch.py --loss bce               # nn.BCELoss on probabilities: clamped, works
    python LogReg_PyTorch.py --std 0.5                # classes that do not overlap
    python LogReg_PyTorch.py --dataset breast_cancer  # 30 features, L2 penalty matched to sklearn
"""

# %% Setup
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import common

DEFAULT_LR = {"sgd": 0.5, "adam": 0.1}


def parse_args(argv):
    p = common.parser(__doc__, epochs=300, lr=None, lr_help="learning rate (default: 0.5 for sgd, 0.1 for adam)")
    p.add_argument("--dataset", choices=["noisy", "breast_cancer"], default="noisy", help="which data")
    p.add_argument("--n", type=common.positive_int, default=100, help="points of the 1-D data")
    p.add_argument("--mean0", type=common.data_number(), default=-3.0, help="centre of class 0 (1-D data)")
    p.add_argument("--mean1", type=common.data_number(), default=5.0, help="centre of class 1 (1-D data)")
    p.add_argument(
        "--std", type=common.data_number(common.positive_float), default=2.0, help="spread of each class (1-D data)"
    )
    p.add_argument(
        "--val-fraction",
        type=common.fraction,
        help="share of rows held out for validation, in [0, 1) (default: 0 on the 1-D data, 0.2 on breast_cancer)",
    )
    p.add_argument(
        "--batch-size",
        type=common.positive_int,
        help="examples per gradient step (default: 20 on the 1-D data, 128 on breast_cancer)",
    )
    p.add_argument(
        "--loss",
        choices=["handwritten", "bce", "bce_logits"],
        default="bce_logits",
        help="the formula by hand on sigmoid outputs, nn.BCELoss on sigmoid outputs, or nn.BCEWithLogitsLoss",
    )
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="torch.optim.SGD or Adam")
    p.add_argument(
        "--weight-decay",
        type=common.non_negative_float,
        help="L2 penalty on the weights (default: 0 on the 1-D data; 0.01 on breast_cancer, which is separable)",
    )
    args = p.parse_args(argv)
    # Defaults that depend on the data set: the 1-D data is small (and overlaps at the default seed),
    # breast_cancer is larger and separable (so it needs a penalty to have an optimum).
    cancer = args.dataset == "breast_cancer"
    if args.val_fraction is None:
        args.val_fraction = 0.2 if cancer else 0.0
    if args.weight_decay is None:
        args.weight_decay = 0.01 if cancer else 0.0
    if args.batch_size is None:
        args.batch_size = 128 if cancer else 20
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    return args


# %% Data
class NoisyBinaryData(Dataset):
    """n points on a line: each is class 1 with probability 1/2, drawn around mean0 or mean1."""

    def __init__(self, n=100, mean0=-3.0, mean1=5.0, std=2.0, generator=None):
        self.y = (torch.rand(n, 1, generator=generator) < 0.5).float()
        centre = torch.where(self.y == 1, torch.tensor(mean1), torch.tensor(mean0))
        self.x = centre + std * torch.randn(n, 1, generator=generator)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def load_dataset(args, gen):
    """Features X (n, d) and labels y (n, 1) as float64 numpy arrays."""
    if args.dataset == "noisy":
        data = NoisyBinaryData(args.n, args.mean0, args.mean1, args.std, gen)
        return data.x.double().numpy(), data.y.double().numpy()
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)  # shipped with scikit-learn: works offline
    return X, y[:, None].astype(np.float64)


def split(n, val_fraction, gen):
    order = torch.randperm(n, generator=gen).numpy()
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]


# %% Model and losses
class LogisticModel(nn.Module):
    """z = x W^T + b, one score (logit) per example; sigmoid(z) is the probability of class 1."""

    def __init__(self, n_in):
        super().__init__()
        self.linear = nn.Linear(n_in, 1)
        nn.init.zeros_(self.linear.weight)  # the loss is convex: start at zero, p = 0.5 everywhere
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):
        return self.linear(x)  # logits; the losses below decide where the sigmoid goes


def handwritten_bce(z, y):
    p = torch.sigmoid(z)
    return -torch.mean(y * torch.log(p) + (1 - y) * torch.log(1 - p))


LOSSES = {
    "handwritten": handwritten_bce,
    "bce": lambda z, y: nn.functional.binary_cross_entropy(torch.sigmoid(z), y),  # nn.BCELoss: log clamped at -100
    # log(1 + exp(-z)) + (1 - y) z, the same loss written in z, computed without overflow for any z
    "bce_logits": nn.BCEWithLogitsLoss(),
}


# %% Training loop
def train(X_train, y_train, X_val, y_val, args, device, optimizer_name, lr):
    """Mini-batch training; returns predict_proba(X) and the per-epoch history."""

    def tensor(A):
        return torch.as_tensor(np.asarray(A), dtype=torch.float32, device=device)

    X_train, y_train, X_val, y_val = map(tensor, (X_train, y_train, X_val, y_val))
    loader = DataLoader(
        TensorDataset(X_train, y_train),
        batch_size=args.batch_size,
        shuffle=True,
        generator=common.batch_generator(args.seed),  # the batch order: a stream apart from the data's
    )
    model = LogisticModel(X_train.shape[1]).to(device)
    loss_fn = LOSSES[args.loss]
    groups = [
        {"params": [model.linear.weight], "weight_decay": args.weight_decay},
        {"params": [model.linear.bias], "weight_decay": 0.0},  # as in scikit-learn: the bias is free
    ]
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    else:
        optimizer = torch.optim.Adam(groups, lr=lr)
    # Decay the rate towards 0 over the run, so the noisy mini-batch steps settle (lessons 2 and 3).
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)

    history = {"loss": [], "accuracy": [], "val_accuracy": [], "seconds": [], "diverged": None}
    # The last epoch with a gradient that is not exactly 0, and the last in which w changed: on
    # separable data the sigmoid saturates, p - y rounds to 0 in float32, and training stops by itself.
    history["last_gradient_epoch"] = history["last_move_epoch"] = 0
    history["w"], history["b"] = [model.linear.weight[0].tolist()], [model.linear.bias.item()]  # epoch 0
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for batch, (x, y) in enumerate(loader, 1):
            z = model(x)
            loss = loss_fn(z, y)
            if not torch.isfinite(loss):
                p = torch.sigmoid(z)
                history.update(diverged=epoch, batch=batch, bad_loss=loss.item())
                history["saturated"] = sorted(z[(p == 0) | (p == 1)].tolist())  # the scores it happened to
                return None, history
            optimizer.zero_grad()
            loss.backward()
            if any(p.grad.any() for p in model.parameters()):
                history["last_gradient_epoch"] = epoch
            optimizer.step()
        scheduler.step()

        with torch.no_grad():
            z = model(X_train)
            history["loss"].append(nn.functional.binary_cross_entropy_with_logits(z, y_train).item())
            history["accuracy"].append(((z > 0).float() == y_train).float().mean().item())
            if len(X_val):
                history["val_accuracy"].append(((model(X_val) > 0).float() == y_val).float().mean().item())
            history["w"].append(model.linear.weight[0].tolist())
            history["b"].append(model.linear.bias.item())
        if history["w"][-1] != history["w"][-2]:
            history["last_move_epoch"] = epoch
        history["seconds"].append(time.perf_counter() - start)

    def predict_proba(X):
        with torch.no_grad():
            return torch.sigmoid(model(tensor(X))).double().cpu().numpy()

    return predict_proba, history


# %% Run: data, split, reference, training, result
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    gen = common.generator(args.seed)

    X, y = load_dataset(args, gen)
    train_rows, val_rows = split(len(X), args.val_fraction, gen)
    X_train, y_train, X_val, y_val = X[train_rows], y[train_rows], X[val_rows], y[val_rows]
    if len(np.unique(y_train)) < 2:
        raise common.LessonError(
            f"the training split ({len(X_train)} rows) does not hold both classes: "
            "use more points (--n) or a lower --val-fraction"
        )
    if np.all(X_train == X_train[0]):  # float32 rounded the spread away: no boundary to find
        raise common.LessonError(
            "every training point has the same x in float32: spread the data (--std, --mean0, --mean1)"
        )
    if args.batch_size > len(X_train):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the {len(X_train)} training rows")
    if args.dataset == "breast_cancer":  # 30 features of very different scales: standardize (lesson 3)
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a feature constant on the training rows: nothing to rescale
        X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    say(f"data: {args.dataset}, {len(X_train)} training and {len(X_val)} validation rows, device {device}")

    # Without a penalty, separable classes have no finite optimum: nothing to compare against.
    unbounded = args.weight_decay == 0 and separable(X_train, y_train)
    if unbounded:
        say(
            "the classes are linearly separable: the log-loss has no minimum, it keeps falling as |w| grows, "
            "so there is no finite reference and no gap to report; --weight-decay > 0 makes the optimum finite"
        )
        ref = None
    else:
        ref = reference(X_train, y_train, args.weight_decay)

    predict_proba, history = train(X_train, y_train, X_val, y_val, args, device, args.optimizer, args.lr)
    if history["diverged"] is not None:
        # Which one depends on the row: -log(0) = +inf where the label's own log is log(0) (class 0
        # with p = 1, class 1 with p = 0), and 0 * -inf = nan where it is the other log (class 1 with p = 1).
        bad = history["bad_loss"]
        why = "0 * log(0) = 0 * -inf = nan" if np.isnan(bad) else "-log(0) = +inf for a row on the wrong side"
        scores = ", ".join(f"{z:.2f}" for z in history["saturated"][:4]) + (
            ", ..." if len(history["saturated"]) > 4 else ""
        )
        raise common.LessonError(
            f"the {args.loss} loss became {bad} at epoch {history['diverged']}, mini-batch {history['batch']}: "
            f"the sigmoid of the scores z = {scores} is exactly 0 or 1 in float32, and {why}; "
            "use --loss bce_logits (or bce)"
        )
    seconds = history["seconds"][-1]
    p_train = predict_proba(X_train)
    loss = log_loss(p_train, y_train)
    accuracy = float(np.mean((p_train > 0.5) == y_train))
    metrics = {
        "loss": loss,
        "accuracy": accuracy,
        "seconds": seconds,
        "separable": unbounded,
        "last_gradient_epoch": history["last_gradient_epoch"],
        "last_move_epoch": history["last_move_epoch"],
        "device": str(device),
    }
    say(f"{args.optimizer} (lr {args.lr:g}), {args.loss} loss, {args.epochs} epochs in {seconds:.2f} s")
    if ref is not None:
        ref_loss = log_loss(ref.predict_proba(X_train)[:, 1], y_train)
        ref_accuracy = float(ref.score(X_train, y_train[:, 0]))
        gap = loss / ref_loss - 1
        metrics.update(ref_loss=ref_loss, gap=gap, ref_accuracy=ref_accuracy)
        say(f"training log-loss: {loss:.6f}; scikit-learn's optimum: {ref_loss:.6f}; gap: {gap:.2e}")
        if args.weight_decay:
            # What both minimize is the penalized objective. At its optimum the log-loss alone still has
            # a slope (the penalty balances it), so the log-loss gap above moves with the first power
            # of the distance to the optimum, and can be negative; this one moves with the square.
            penalty = args.weight_decay / 2
            objective = loss + penalty * np.sum(np.square(history["w"][-1]))
            ref_objective = ref_loss + penalty * np.sum(np.square(ref.coef_))
            metrics["objective_gap"] = float(objective / ref_objective - 1)
            say(
                f"penalized objective: {objective:.6f}; scikit-learn's: {ref_objective:.6f}; "
                f"gap: {metrics['objective_gap']:.2e}"
            )
        say(f"training accuracy: {accuracy:.3f}; scikit-learn's: {ref_accuracy:.3f}")
    else:
        metrics.update(ref_loss=0.0, gap=None, ref_accuracy=1.0)
        say(f"training log-loss: {loss:.6f} (its infimum is 0); training accuracy: {accuracy:.3f}")
        if history["last_gradient_epoch"] < args.epochs:  # the loss had no more slope that float32 can hold
            say(
                f"after epoch {history['last_gradient_epoch']} every gradient was exactly 0 in float32 (each p - y "
                f"was exactly 0); w moved on by momentum alone until epoch {history['last_move_epoch']}, then stopped"
            )
    if len(X_val):
        metrics["val_accuracy"] = float(np.mean((predict_proba(X_val) > 0.5) == y_val))
        if ref is not None:
            metrics["ref_val_accuracy"] = float(ref.score(X_val, y_val[:, 0]))
        say(f"validation accuracy: {metrics['val_accuracy']:.3f}")
    if X.shape[1] == 1:
        w, b = history["w"][-1][0], history["b"][-1]
        metrics.update(w=w, b=b, boundary=-b / w)
        line = f"decision boundary x = -b / w = {-b / w:.3f}"
        if ref is not None:
            metrics.update(ref_w=float(ref.coef_[0, 0]), ref_boundary=float(-ref.intercept_[0] / ref.coef_[0, 0]))
            line += f"; scikit-learn's: {metrics['ref_boundary']:.3f}"
        say(line)
    # Epoch by epoch, what the figure draws and its notes quote: accuracy, the gap above the optimum, w.
    metrics["history"] = {"accuracy": history["accuracy"]}
    if ref is not None:
        metrics["history"]["gap"] = epoch_gaps(X_train, y_train, history, ref, ref_loss, args.weight_decay).tolist()
    if X.shape[1] == 1:
        metrics["history"]["w"] = [w[0] for w in history["w"]]  # from epoch 0, the starting point

    if not args.no_figure:
        path = plot(args, X_train, y_train, history, ref, metrics)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Reference: scikit-learn, and whether a finite optimum exists
def separable(X, y):
    """True if some plane puts every example strictly on its own class's side (a linear program).

    Then the unpenalized log-loss has no minimum: scaling w up always lowers it.
    """
    from scipy.optimize import linprog

    signs = 2 * y[:, 0] - 1
    A = -signs[:, None] * np.hstack([X, np.ones((len(X), 1))])  # sign * (w x + b) >= 1 for every row
    result = linprog(np.zeros(A.shape[1]), A_ub=A, b_ub=-np.ones(len(X)), bounds=(None, None), method="highs")
    return result.status == 0


def reference(X, y, weight_decay):
    """scikit-learn's LogisticRegression with our objective.

    We minimize mean(log-loss) + weight_decay / 2 * |w|^2; scikit-learn minimizes
    C * sum(log-loss) + 1/2 * |w|^2. Multiplying ours by 1 / weight_decay gives C = 1 / (n * weight_decay);
    with no penalty, C = inf. Neither penalizes the bias.
    """
    from sklearn.linear_model import LogisticRegression

    C = np.inf if weight_decay == 0 else 1 / (len(X) * weight_decay)
    return LogisticRegression(C=C, tol=1e-10, max_iter=100_000).fit(X, y[:, 0])


def log_loss(p, y):
    """-mean(y log p + (1 - y) log(1 - p)) in float64, p clipped away from 0 and 1."""
    p = np.clip(np.reshape(p, -1), 1e-15, 1 - 1e-15)
    y = np.reshape(y, -1)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# %% Look: the sigmoid as it learns, the boundary, loss and accuracy
def epoch_gaps(X_train, y_train, history, ref, ref_loss, weight_decay):
    """Each epoch's training log-loss over scikit-learn's optimum, minus 1; with a penalty, of the penalized
    objective, which both minimize (see main)."""
    # the log-loss of each epoch's w, b in float64: float32 sums blur differences below 1e-6
    scores = X_train @ np.array(history["w"][1:]).T + np.array(history["b"][1:])
    losses = np.array([log_loss(1 / (1 + np.exp(-z)), y_train) for z in scores.T])
    optimum = ref_loss
    if weight_decay:
        losses += weight_decay / 2 * np.sum(np.square(history["w"][1:]), axis=1)
        optimum += weight_decay / 2 * np.sum(np.square(ref.coef_))
    return losses / optimum - 1


def plot(args, X_train, y_train, history, ref, metrics):
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), width_ratios=[1.4, 1, 1])
    fig.suptitle(f"Logistic regression on the {args.dataset} data: {args.loss} loss, {args.optimizer}", fontsize=13)

    ax = axes[0]
    if X_train.shape[1] == 1:
        x = X_train[:, 0]
        ax.scatter(x, y_train[:, 0], s=14, c=y_train[:, 0], cmap="coolwarm", alpha=0.7, label="data (class 0 / 1)")
        grid = np.linspace(x.min() - 1, x.max() + 1, 400)
        epochs = sorted({0, 1, 3, 10, args.epochs} & set(range(len(history["w"]))))
        for epoch, color in zip(epochs, plt.cm.viridis(np.linspace(0, 0.9, len(epochs)))):
            w, b = history["w"][epoch][0], history["b"][epoch]
            ax.plot(grid, 1 / (1 + np.exp(-(w * grid + b))), color=color, label=f"sigmoid(w x + b), epoch {epoch}")
        ax.axvline(metrics["boundary"], color="k", lw=1.5, label=f"boundary x = -b/w = {metrics['boundary']:.2f}")
        if ref is not None:
            ax.axvline(metrics["ref_boundary"], color="C1", ls="--", lw=1.5, label="scikit-learn's boundary")
        ax.axhline(0.5, color="0.6", ls=":", lw=1)
        ax.set(title="(a) probability of class 1", xlabel="x", ylabel="p(class 1 | x)")
    else:
        scores = X_train @ np.array(history["w"][-1]) + history["b"][-1]
        for label, color in [(0, "C0"), (1, "C3")]:
            ax.hist(scores[y_train[:, 0] == label], bins=30, color=color, alpha=0.6, label=f"class {label}")
        ax.axvline(0, color="k", lw=1.5, label="boundary: score 0")
        ax.set(title="(a) scores w x + b of the training rows", xlabel="score (logit)", ylabel="rows")
    ax.legend(fontsize=8)

    ax = axes[1]
    epochs = np.arange(1, len(history["loss"]) + 1)
    if ref is not None:
        what = "log-loss + penalty" if args.weight_decay else "log-loss"
        ax.semilogy(epochs, metrics["history"]["gap"], label="this run")
        ax.axhline(1e-3, color="0.5", ls=":", lw=0.8)
        ax.set(title=f"(b) training {what} above scikit-learn's optimum", ylabel=f"{what} / optimum - 1")
    else:
        ax.semilogy(epochs, history["loss"], label="this run")
        ax.set(title="(b) training log-loss: separable, it only falls", ylabel="log-loss")
    ax.set(xlabel="epoch")
    ax.legend(fontsize=8)

    ax = axes[2]
    ax.plot(epochs, history["accuracy"], label="training")
    if history["val_accuracy"]:
        ax.plot(epochs, history["val_accuracy"], label="validation")
    if ref is not None:
        ax.axhline(metrics["ref_accuracy"], color="C1", ls="--", lw=1, label="scikit-learn, training")
    ax.set(title="(c) accuracy: share of rows on the right side", xlabel="epoch", ylabel="accuracy")
    ax.legend(fontsize=8)

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "LogReg_PyTorch")


if __name__ == "__main__":
    common.run(main)
