"""Lesson 3, exercise 3: the Huber loss on the line with 5 outliers, beside the absolute and squared errors.

nn.HuberLoss(delta) is the squared error (halved) for residuals below delta and grows only linearly
above it. Targets are standardized, as in the lesson, so delta = 1 means one standard deviation of y.
The data, split, outliers, scaling and model are lesson 3's; only the loss is new, and so is its
reference, found here by scipy's L-BFGS (the objective is convex and smooth).
Run: python -m exercises.lesson3_huber
"""

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import common
import LR_miniBatch_PyTorchWay as lesson3


def huber(r, delta):
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def run(delta=1.0, outliers=5, epochs=100, batch_size=16, lr=0.1, seed=0):
    gen = common.generator(seed)  # the same draws, in the same order, as the lesson's main
    X, Y, _, _ = lesson3.load_dataset("line", gen)
    train_rows, _ = lesson3.split(len(X), 0.2, gen)
    X_train, Y_train = X[train_rows], lesson3.add_outliers(Y[train_rows], outliers, gen)
    (to_x, _), (to_y, from_y) = lesson3.standardizer(X_train), lesson3.standardizer(Y_train)
    x, z = torch.tensor(to_x(X_train), dtype=torch.float32), torch.tensor(to_y(Y_train), dtype=torch.float32)

    # The lesson's training loop with a different loss function.
    model = lesson3.LinearModel(1, 1)
    loss_fn = nn.HuberLoss(delta=delta)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    loader = DataLoader(TensorDataset(x, z), batch_size=batch_size, shuffle=True, generator=common.generator(seed))
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

    def exact_intercept(delta):
        p = minimize(lambda p: huber(zs - p[0] * xs - p[1], delta).mean(), [0.0, 0.0], method="L-BFGS-B", tol=1e-14).x
        return float(from_y(np.array([[p[0] * x0 + p[1]]]))[0, 0])

    with torch.no_grad():
        trained = from_y(model(torch.tensor([[x0]], dtype=torch.float32)).double().numpy())[0, 0]
    result = {
        "intercept_trained": float(trained),
        "intercept_exact": exact_intercept(delta),
        "intercept_exact_small_delta": exact_intercept(0.1),  # a quadratic zone a tenth as wide
    }
    for m in (1, 2):  # the lesson's own references for the absolute and the squared error
        predict = lesson3.fit_reference(X_train, Y_train, "standardize", m, 0.0)
        result[f"intercept_power_{m}"] = float(predict(np.zeros((1, 1)))[0, 0])
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.2f}")
