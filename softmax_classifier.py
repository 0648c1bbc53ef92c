"""A single linear layer and softmax: a character bigram model of names, checked against counting.

What you will learn
- a linear layer maps an input to one score (logit) per class; softmax turns the scores into
  probabilities, exp(z_i) / sum_j exp(z_j); argmax picks the predicted class;
- cross-entropy, the loss of classification, is the negative log-likelihood of the right class:
  -log softmax(z)[y], averaged over examples; `F.cross_entropy` is exactly that, written stably;
- multiplying a one-hot vector by a weight matrix W just selects one row of W: a lookup table
  (the idea behind the embedding table of the next lesson);
- for this model the best possible answer is known: the relative frequencies of each next
  character after each character, counted from the data. Gradient descent must approach it (it
  cannot reach it: a pair that never occurs gets probability 0 only as its score goes to -inf);
- weight decay plays the part that add-one smoothing plays for counts.

Task: predict the next character of a name from the previous one, with "." marking the start and
the end of each name: ".emma." gives the pairs (., e), (e, m), (m, m), (m, a), (a, .).

Run it:
    python softmax_classifier.py                       # Adam, 60 full-batch steps
    python softmax_classifier.py --optimizer gd --epochs 200  # plain gradient descent, rate 50
    python softmax_classifier.py --weight-decay 1e-4   # smoother, like add-one counts
    python softmax_classifier.py --data my_words.txt --samples 20
"""

# %% Setup
import time

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import common

BOUNDARY = "."  # marks both the start and the end of a word
# Plain descent is stable for rates below 2 / (the largest curvature of the loss), as in lesson 1: here
# the largest curvature is 0.0056 at the start and 0.028 at the optimum (2 / 0.028 = 71), so 50 is stable.
DEFAULT_LR = {"gd": 50.0, "adam": 0.5}


def parse_args(argv):
    p = common.parser(__doc__, epochs=60, lr=None, lr_help="learning rate (default: 0.5 for adam, 50 for gd)")
    p.add_argument(
        "--data",
        default=common.REPO / "data" / "names.txt",
        metavar="PATH",
        help="word list, one word per line (default: data/names.txt beside the lessons)",
    )
    p.add_argument("--val-fraction", type=common.fraction, default=0.1, help="share of words held out (the dev split)")
    p.add_argument("--optimizer", choices=["gd", "adam"], default="adam", help="Adam, or plain gradient descent (gd)")
    p.add_argument(
        "--weight-decay",
        type=common.non_negative_float,
        default=0.0,
        help="L2 penalty weight_decay / 2 * (sum of the squares of W), as in lessons 3 and 4: the counterpart of "
        "smoothing",
    )
    p.add_argument("--samples", type=common.non_negative_int, default=10, help="names to sample from the trained model")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    return args


# %% Data: words, a vocabulary, and (previous character, next character) pairs
def load_words(path, val_fraction, gen):
    """Training and dev words, split by word (a word's pairs never straddle the split)."""
    words = common.read_words(path, BOUNDARY)
    order = torch.randperm(len(words), generator=gen).tolist()
    n_dev = int(round(len(words) * val_fraction))
    if len(words) - n_dev < 1:
        raise common.LessonError(
            f"--data {path}: {len(words)} word(s), none left for training after the dev split: "
            "lower --val-fraction or give more words"
        )
    return [words[i] for i in order[n_dev:]], [words[i] for i in order[:n_dev]]


def pairs(words, stoi):
    """Index tensors (previous character, next character) over all words, boundaries included."""
    xs, ys = [], []
    for word in words:
        chars = [BOUNDARY, *word, BOUNDARY]
        for prev, nxt in zip(chars, chars[1:]):
            xs.append(stoi[prev])
            ys.append(stoi[nxt])
    return torch.tensor(xs), torch.tensor(ys)


# %% Reference: the count-based bigram model
def count_matrix(x, y, vocab_size):
    """N[i, j] = how often character j follows character i."""
    N = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    N.index_put_((x, y), torch.ones(len(x), dtype=torch.float64), accumulate=True)
    return N


def count_nll(N, x, y, smoothing=0.0):
    """Mean -log P(y | x) with P the (smoothed) relative frequencies of N.

    Without smoothing, on the pairs N was counted from, no bigram model has a lower loss: for each
    previous character, the best distribution over the next is the empirical one. softmax(W) only
    approaches it, since a pair counted 0 needs a score of -inf.
    """
    P = (N + smoothing) / (N + smoothing).sum(dim=1, keepdim=True)
    return float(-P[x, y].log().mean())


# %% Model: one-hot input, one linear layer, softmax
def nll_by_hand(logits, y):
    """Softmax then negative log-likelihood of the right class, written out."""
    counts = logits.exp()  # positive "counts" from any real scores
    probs = counts / counts.sum(dim=1, keepdim=True)  # softmax: each row sums to 1
    return -probs[torch.arange(len(y)), y].log().mean()


def train(x, y, vocab_size, args, device, optimizer_name, lr, stop_below=None):
    """Full-batch training of W (vocab x vocab); returns W and the loss of every step."""
    x, y = x.to(device), y.to(device)
    W = torch.zeros(vocab_size, vocab_size, device=device, requires_grad=True)  # all next chars equally likely
    optimizer = torch.optim.Adam([W], lr=lr) if optimizer_name == "adam" else None
    history = {"loss": [], "seconds": [], "diverged": None}
    start = time.perf_counter()
    for step in range(1, args.epochs + 1):
        # one_hot(x) @ W is row x[i] of W for each example i (shown in main): a lookup. W[x] looks the rows
        # up too; F.embedding(x, W) is the same lookup under the name of nn.Embedding, the next lesson's layer.
        logits = F.embedding(x, W)
        loss = F.cross_entropy(logits, y)  # = nll_by_hand(logits, y), computed stably
        history["loss"].append(loss.item())
        history["seconds"].append(time.perf_counter() - start)
        if not np.isfinite(history["loss"][-1]):
            history["diverged"] = step
            break
        if stop_below is not None and history["loss"][-1] < stop_below:
            break
        penalty = args.weight_decay / 2 * (W**2).sum()  # pulls every W[i, j] towards 0: towards uniform
        W.grad = None
        (loss + penalty).backward()
        if optimizer is None:
            with torch.no_grad():
                W -= lr * W.grad  # plain gradient descent, as in lesson 1
        else:
            optimizer.step()
    return W.detach(), history


# %% Run: data, counts, training, comparison, samples
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    gen = common.generator(args.seed)

    train_words, dev_words = load_words(args.data, args.val_fraction, gen)
    chars = sorted(set("".join(train_words + dev_words)))
    itos = [BOUNDARY, *chars]
    stoi = {c: i for i, c in enumerate(itos)}
    V = len(itos)
    x, y = pairs(train_words, stoi)
    x_dev, y_dev = pairs(dev_words, stoi)
    say(f"data: {len(train_words)} training and {len(dev_words)} dev words, {len(x)} training pairs, {V} characters")

    N = count_matrix(x, y, V)
    ref_loss = count_nll(N, x, y)
    if ref_loss == 0:  # then the relative gap, loss / ref_loss - 1, has nothing to divide by
        raise common.LessonError(
            f"--data {args.data}: in the training words every character has only one possible next one "
            "(the count model's loss is 0): nothing to learn; give more words"
        )
    say(f"count model (the optimum, which softmax(W) approaches): training loss {ref_loss:.4f} nats per character")

    # Two facts the training loop relies on, shown on a random W before training: a one-hot row times W
    # is a row of W (so the loop looks the row up), and softmax + NLL written out is F.cross_entropy.
    W_random = torch.randn(V, V, generator=gen)
    lookup_diff = (F.one_hot(x, V).float() @ W_random - W_random[x]).abs().max().item()
    by_hand, built_in = nll_by_hand(W_random[x].double(), y).item(), F.cross_entropy(W_random[x].double(), y).item()
    say(
        f"random W: one_hot(x) @ W and W[x] differ by at most {lookup_diff:g}; "
        f"softmax + NLL by hand {by_hand:.6f}, F.cross_entropy {built_in:.6f}"
    )

    W, history = train(x, y, V, args, device, args.optimizer, args.lr)
    if history["diverged"] is not None:
        raise common.LessonError(
            f"diverged at step {history['diverged']}: the loss is no longer finite; lower --lr (now {args.lr:g})"
        )
    W = W.cpu()
    loss = float(F.cross_entropy(W[x].double(), y))  # final W, whole training split, in float64
    gap = loss - ref_loss  # in nats per character; metrics also hold it relative, like every lesson
    seconds = history["seconds"][-1]
    say(f"{args.optimizer} (lr {args.lr:g}), {args.epochs} full-batch steps in {seconds:.2f} s")
    say(f"training loss {loss:.4f}; count optimum {ref_loss:.4f}; gap {gap:.4f} nats")

    metrics = {
        "loss": loss,
        "ref_loss": ref_loss,
        "gap": loss / ref_loss - 1,
        "gap_nats": gap,
        "seconds": seconds,
        "unseen_pairs": int((N == 0).sum()),  # pairs the optimum gives probability 0: W can only approach it
        "device": str(device),
    }
    if len(x_dev):
        dev_loss = float(F.cross_entropy(W[x_dev].double(), y_dev))
        smoothed = count_nll(N, x_dev, y_dev, smoothing=1.0)
        unseen = int((N[x_dev, y_dev] == 0).sum())  # dev pairs the count model gives probability 0
        metrics.update(dev_loss=dev_loss, ref_dev_loss=smoothed, unseen_dev_pairs=unseen)
        raw = f"infinite ({unseen} dev pairs never occur in training)" if unseen else f"{count_nll(N, x_dev, y_dev):.4}"
        say(f"dev loss {dev_loss:.4f}; count model with add-one smoothing {smoothed:.4f}, without smoothing {raw}")

    sample_gen = common.generator(args.seed)
    names = [sample(W, itos, sample_gen) for _ in range(args.samples)]
    metrics["samples"] = names
    if names:
        say("samples: " + ", ".join(names))

    if not args.no_figure:
        path = plot(args, history, ref_loss, W, N, itos)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


def sample(W, itos, gen, max_length=30):
    """One word: start at the boundary, draw each next character from softmax(W[previous])."""
    out, i = [], 0
    while len(out) < max_length:
        probs = torch.softmax(W[i].double(), dim=0)
        i = int(torch.multinomial(probs, 1, generator=gen))
        if i == 0:
            break
        out.append(itos[i])
    return "".join(out)


# %% Look: the loss against the optimum, learned probabilities against counted ones
def plot(args, history, ref_loss, W, N, itos):
    fig = plt.figure(figsize=(17, 6.2))
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1.15, 1.15])
    fig.suptitle(
        f"Softmax bigram model ({len(itos) - 1} characters + the boundary '.'): W learned vs counted", fontsize=13
    )

    ax = fig.add_subplot(grid[0])
    ax.semilogy(np.arange(1, len(history["loss"]) + 1), np.array(history["loss"]) - ref_loss, label=args.optimizer)
    ax.axhline(0.01, color="0.5", ls=":", lw=1)
    ax.text(len(history["loss"]), 0.01, "0.01 nats", ha="right", va="bottom", fontsize=8, color="0.4")
    ax.set(
        title="(a) training loss above the count optimum",
        xlabel="full-batch step",
        ylabel="loss - optimum (nats per character)",
    )
    ax.legend()

    learned = torch.softmax(W.double(), dim=1)
    counted = N / N.sum(dim=1, keepdim=True).clamp(min=1)
    for k, (matrix, title) in enumerate(
        [(learned, "(b) learned: softmax(W), row = previous"), (counted, "(c) counted: N / row sums")]
    ):
        ax = fig.add_subplot(grid[k + 1])
        # a square-root colour scale, so that the many small probabilities still show
        norm = matplotlib.colors.PowerNorm(0.5, vmin=0, vmax=float(counted.max()))
        image = ax.imshow(matrix.numpy(), cmap="Blues", norm=norm)
        ax.set_xticks(range(len(itos)), itos, fontsize=7)
        ax.set_yticks(range(len(itos)), itos, fontsize=7)
        ax.set(title=title, xlabel="next character", ylabel="previous character")
        fig.colorbar(image, ax=ax, fraction=0.046, label="P(next | previous)")

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "softmax_classifier")


if __name__ == "__main__":
    common.run(main)
