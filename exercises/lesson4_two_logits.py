"""Lesson 4, exercise 2: two logits and softmax cross-entropy in place of one logit and the sigmoid.

The model becomes nn.Linear(1, 2), one score per class, trained with F.cross_entropy on the class
index; the data, split, optimizer and schedule are lesson 4's defaults. softmax of (z0, z1) gives
class 1 the probability sigmoid(z1 - z0): the same family of models, with the difference of the two
rows playing the lesson's single w and b. Run: python -m exercises.lesson4_two_logits
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import common
import LogReg_PyTorch as lesson4


def run(argv=()):
    args = lesson4.parse_args(list(argv))
    gen = common.generator(args.seed)
    X, y = lesson4.load_dataset(args, gen)  # the lesson's 1-D data (no validation split by default)
    x, labels = torch.tensor(X, dtype=torch.float32), torch.tensor(y[:, 0], dtype=torch.long)

    model = nn.Linear(1, 2)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    loader = DataLoader(TensorDataset(x, labels), batch_size=args.batch_size, shuffle=True,
                        generator=common.batch_generator(args.seed))  # fmt: skip
    for _ in range(args.epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()

    w, b = model.weight.detach().double()[:, 0], model.bias.detach().double()
    ref = lesson4.reference(X, y, 0.0)
    with torch.no_grad():
        p1 = torch.softmax(model(x).double(), dim=1)[:, 1].numpy()
    return {
        "boundary": float(-(b[1] - b[0]) / (w[1] - w[0])),  # where z1 = z0, i.e. p = 0.5
        "ref_boundary": float(-ref.intercept_[0] / ref.coef_[0, 0]),
        "loss": lesson4.log_loss(p1, y[:, 0]),
        "ref_loss": lesson4.log_loss(ref.predict_proba(X)[:, 1], y[:, 0]),
        "row_sum": abs(float(w[0] + w[1])),  # the two rows stay mirror images: w0 = -w1
        "w_difference": float(w[1] - w[0]),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.6g}")
