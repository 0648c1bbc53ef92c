"""LR_noDatasetClass: epochs and seconds of gradient descent to a gap below 1e-6 to least squares."""

import numpy as np
import torch

import LR_noDatasetClass as lesson

TARGET = 1e-6
MAX_EPOCHS = 100_000


def rows(timed):
    # float64, so that a loss within 1e-6 of the optimum is resolved (float32 carries ~7 digits).
    x, y = (t.double() for t in lesson.noisy_line(100, 3.0, 2.0, 100.0, torch.Generator().manual_seed(0)))
    ref_w, ref_b, ref_loss = lesson.least_squares(x, y)
    mean, std = x.mean().item(), x.std().item()
    x_norm = (x - mean) / std
    # The best one shared rate can do on a quadratic: 2 / (largest + smallest curvature). Here it is just
    # below the stable limit 2 / largest curvature, so print enough digits to tell the two apart.
    curvatures = np.linalg.eigvalsh(lesson.hessian(x))
    naive_lr = 2 / curvatures.sum()
    methods = {
        f"one shared lr = {naive_lr:.5g} = 2 / sum of curvatures, raw x": (x, naive_lr, naive_lr, 0.0, 1.0),
        "separate lr_w = 1e-4, lr_b = 0.1 (defaults), raw x": (x, 1e-4, 0.1, 0.0, 1.0),
        "one shared lr = 0.1 (default), normalized x": (x_norm, 0.1, 0.1, mean, std),
    }
    results = []
    for name, (inputs, lr_w, lr_b, m, s) in methods.items():
        stop = ref_loss * (1 + TARGET)
        history, seconds = timed(lesson.train, inputs, y, 0.0, 0.0, lr_w, lr_b, MAX_EPOCHS, stop_below=stop)
        w, b = lesson.to_raw_units(history["w"][-1], history["b"][-1], m, s)
        gap = lesson.mse(w, b, x, y) / ref_loss - 1
        epochs = len(history["loss"]) - 1
        results.append({"method": name, "epochs": epochs, "seconds": seconds, "gap": gap, "reached": gap < TARGET})
    base = results[0]
    table = [
        {
            "method": r["method"],
            "epochs": r["epochs"] if r["reached"] else f">{MAX_EPOCHS} (never)",
            "seconds": f"{r['seconds']:.4f}",
            "final gap": f"{r['gap']:.3e}",
            "epochs ratio": f"{base['epochs'] / r['epochs']:.0f}x fewer" if r is not base else "1x",
            "time ratio": f"{base['seconds'] / r['seconds']:.0f}x faster" if r is not base else "1x",
        }
        for r in results
    ]
    return f"gradient descent to a gap below {TARGET:g} (noisy line, N = 100, seed 0, float64, CPU)", table
