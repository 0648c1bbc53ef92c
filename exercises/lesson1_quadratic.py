"""Lesson 1, exercise 3: a quadratic model of the thermometer, t_c = w2 * u^2 + w1 * u + b, u the standardized reading.

The training loop is lesson 1's with one parameter more. t_u is standardized first (the lesson's
--normalize), so one learning rate suits all three parameters; t_u^2 of the raw readings would be
in the thousands and need a rate of its own. Run: python -m exercises.lesson1_quadratic
"""

import numpy as np
import torch

import LR_noDatasetClass as lesson1


def train_quadratic(u, y, lr, epochs):
    """Gradient descent on y_hat = w2 u^2 + w1 u + b, lesson 1's loop with three leaf tensors."""
    w2, w1, b = (torch.zeros((), requires_grad=True) for _ in range(3))
    for _ in range(epochs):
        loss = ((w2 * u**2 + w1 * u + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in (w2, w1, b):
                p -= lr * p.grad
                p.grad.zero_()
    return w2.item(), w1.item(), b.item()


def run(lr=0.1, epochs=2000):
    t_u, t_c = torch.tensor(lesson1.THERMOMETER_T_U), torch.tensor(lesson1.THERMOMETER_T_C)
    u = (t_u - t_u.mean()) / t_u.std()
    w2, w1, b = train_quadratic(u, t_c, lr, epochs)
    u64, y64 = u.double().numpy(), t_c.double().numpy()
    quadratic_loss = float(np.mean((w2 * u64**2 + w1 * u64 + b - y64) ** 2))
    exact = np.polyfit(u64, y64, 2)  # least squares for the quadratic, the new reference
    exact_loss = float(np.mean((np.polyval(exact, u64) - y64) ** 2))
    _, _, linear_loss = lesson1.least_squares(t_u, t_c)
    return {
        "linear_loss": linear_loss,
        "quadratic_loss": quadratic_loss,
        "quadratic_exact_loss": exact_loss,
        "quadratic_gap": quadratic_loss / exact_loss - 1,
        "w2": w2,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.6g}")
