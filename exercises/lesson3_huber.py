"""Lesson 3, exercise 3: the Huber loss on the line with 5 outliers, beside the absolute and squared errors.

nn.HuberLoss(delta) is the squared error (halved) for residuals below delta and grows only linearly
above it. Targets are standardized, as in the lesson, so delta = 1 means one standard deviation of y.
The data, split, outliers, scaling and model are lesson 3's; only the loss is new, and so is its
reference, found here by scipy's L-BFGS (the objective is convex and smooth).
Run: python -m exercises.lesson3_huber
"""

import argparse

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import common
import LR_miniBatch_PyTorchWay as lesson3


def huber(r, delta):
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def run(argv=(), delta=1.0, outliers=5, epochs=100, batch_size=16, lr=0.1):
    seed = seed_of(argv)
    X_train, Y_train = lesson3.line_with_outliers(seed, 0.2, outliers)  # the data of --outliers 5
    (to_x, _), (to_y, from_y) = lesson3.standardizer(X_train), lesson3.standardizer(Y_train)
    x, z = torch.tensor(to_x(X_train), dtype=torch.float32), torch.tensor(to_y(Y_train), dtype=torch.float32)

    # The lesson's training loop with a different loss function.
    model = lesson3.LinearModel(1, 1)
    loss_fn = nn.HuberLoss(delta=delta)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    loader = DataLoader(
        TensorDataset(x, z), batch_size=batch_size, shuffle=True, generator=common.batch_generator(seed)
    )
    for _ in range(epochs):
        for xb, zb in loader:
            loss = loss_fn(model(xb), zb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()

    # The exact optimum of the same objective, in the same standardized units.
    xs, zs = to_x(X_train)[:, 0], to_y(Y_train)[:, 0]
    x0 = to_x(np.zeros((1, 1)))[0, 0]  # raw x = 0, where the line's intercept is read

    def exact_fit(delta):
        """(slope, intercept) minimizing the mean Huber loss, in standardized units."""
        return minimize(
            lambda p: huber(zs - p[0] * xs - p[1], delta).mean(), [0.0, 0.0], method="L-BFGS-B", tol=1e-14
        ).x

    def exact_intercept(delta):
        slope, intercept = exact_fit(delta)
        return float(from_y(np.array([[slope * x0 + intercept]]))[0, 0])

    with torch.no_grad():
        trained = from_y(model(torch.tensor([[x0]], dtype=torch.float32)).double().numpy())[0, 0]
    slope, intercept = exact_fit(delta)
    r = zs - slope * xs - intercept  # residuals at the exact optimum, in units of the standardized targets
    outlier = Y_train[:, 0] != lesson3.line_with_outliers(seed, 0.2, 0)[1][:, 0]  # the rows add_outliers moved
    result = {
        "intercept_trained": float(trained),
        "intercept_exact": exact_intercept(delta),
        "regular_in_quadratic_zone": int(np.sum(~outlier & (np.abs(r) <= delta))),
        "regular_rows": int(np.sum(~outlier)),
        "outliers_in_linear_zone": int(np.sum(outlier & (np.abs(r) > delta))),
        "intercept_exact_small_delta": exact_intercept(0.1),  # a quadratic zone a tenth as wide
    }
    for m in (1, 2):  # the lesson's own references for the absolute and the squared error
        predict = lesson3.fit_reference(X_train, Y_train, "standardize", m, 0.0)
        result[f"intercept_power_{m}"] = float(predict(np.zeros((1, 1)))[0, 0])
    return result


def seed_of(argv):
    """--seed N from the command line (default 0): redraws the data and batches, to see the spread."""
    p = argparse.ArgumentParser(prog=__name__)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(list(argv)).seed


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.2f}")
