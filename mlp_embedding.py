"""A character-level MLP with an embedding table (Bengio et al. 2003): names, made up one letter at a time.

What you will learn
- an embedding table C gives every character a learned vector: C[ix] is the one-hot-times-matrix
  lookup of lesson 5, with a small vector per row instead of 27 scores;
- the vectors of the previous block_size characters are concatenated and fed to a hidden layer
  (tanh) and an output layer that gives 27 next-character logits; cross-entropy as in lesson 5;
- training on random mini-batches, with a learning rate that decays over the run (a scheduler of
  torch.optim.lr_scheduler); a quick search (loss against rate, on a log axis) narrows the rate down,
  full runs choose it;
- train / dev / test splits by word: the dev loss picks the best model and shows overfitting, the
  test loss is looked at once, at the end;
- the model must beat the best bigram model (lesson 5), even the one counted on the dev words.

Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin (2003), A Neural Probabilistic Language Model,
Journal of Machine Learning Research 3: 1137-1155.

Run it:
    python mlp_embedding.py                      # train, save the best model (times: the README's results)
    python mlp_embedding.py --sample-only        # load the saved model and make up names
    python mlp_embedding.py --steps 2000         # a quick look

The configuration of the lecture "Building makemore Part 2: MLP" (Andrej Karpathy, 2022, in the series
Neural Networks: Zero to Hero): block 3, embedding 10, one layer of 200, plain SGD at 0.1 and then 0.01
for the second half, batches of 32, 200,000 steps (a few minutes on a CPU):
    python mlp_embedding.py --block-size 3 --emb-dim 10 --hidden 200 --layers 1 --optimizer sgd --lr 0.1 \\
        --schedule step --batch-size 32 --steps 200000 --eval-every 5000 --weight-decay 0
"""

# %% Setup
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import common

BOUNDARY = "."


def parse_args(argv):
    p = common.parser(__doc__, epochs=None, lr=3e-3, lr_help="peak learning rate of AdamW")
    p.add_argument(
        "--data",
        default=common.REPO / "data" / "names.txt",
        metavar="PATH",
        help="word list, one word per line (default: data/names.txt beside the lessons)",
    )
    p.add_argument(
        "--val-fraction", type=common.fraction, default=0.1, help="share of words for dev, and again for test"
    )
    p.add_argument("--block-size", type=common.positive_int, default=8, help="characters of context")
    p.add_argument("--emb-dim", type=common.positive_int, default=24, help="size of each character's vector")
    p.add_argument("--hidden", type=common.positive_int, default=256, help="units in each hidden layer")
    p.add_argument("--layers", type=common.positive_int, default=2, help="hidden layers")
    p.add_argument("--batch-size", type=common.positive_int, default=256, help="examples per step")
    p.add_argument("--steps", type=common.positive_int, default=10_000, help="gradient steps")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw", help="AdamW, or plain SGD")
    p.add_argument(
        "--weight-decay",
        type=common.non_negative_float,
        default=0.2,
        help="weight decay of the weight matrices: each step shrinks W by lr * weight_decay * W (for SGD the "
        "gradient of weight_decay / 2 * |W|^2, as in lessons 3 to 5; AdamW applies it apart from its rescaling)",
    )
    p.add_argument(
        "--schedule",
        choices=["cosine", "step"],
        default="cosine",
        help="learning rate over the run: warm-up then cosine decay, or --lr then --lr / 10 for the second half",
    )
    p.add_argument("--eval-every", type=common.positive_int, default=1000, help="steps between dev evaluations")
    p.add_argument(
        "--out",
        type=common.output_dir,
        default=common.REPO / "out" / "mlp_embedding",
        metavar="DIR",
        help="checkpoint folder (default: out/mlp_embedding beside the lessons)",
    )
    p.add_argument("--sample-only", action="store_true", help="load the checkpoint from --out and sample")
    p.add_argument("--samples", type=common.non_negative_int, default=10, help="names to sample at the end")
    args = p.parse_args(argv)
    if not 0 <= args.val_fraction < 0.5:
        p.error(f"argument --val-fraction: must be in [0, 0.5), got {args.val_fraction}")
    return args


# %% Data: words, splits, and (context, next character) examples
def load_words(path, gen):
    words = common.read_words(path, BOUNDARY)
    order = torch.randperm(len(words), generator=gen).tolist()
    return [words[i] for i in order]


def split_words(words, fraction):
    """(train, dev, test) word lists: dev and test each get `fraction` of the words."""
    n = int(round(len(words) * fraction))
    return words[2 * n :], words[:n], words[n : 2 * n]


def examples(words, stoi, block_size):
    """X: (n, block_size) indices of the previous characters, "." before the start; Y: the next one."""
    X, Y = [], []
    for word in words:
        context = [0] * block_size
        for ch in [*word, BOUNDARY]:
            X.append(context)
            Y.append(stoi[ch])
            context = [*context[1:], stoi[ch]]
    return torch.tensor(X, dtype=torch.long).reshape(-1, block_size), torch.tensor(Y, dtype=torch.long)


def bigram_nll(words, stoi):
    """The loss of the best bigram model of these very words: their counted relative frequencies."""
    N = torch.zeros(len(stoi), len(stoi), dtype=torch.float64)
    for word in words:
        chars = [0, *(stoi[c] for c in word), 0]
        for a, b in zip(chars, chars[1:]):
            N[a, b] += 1
    P = N / N.sum(dim=1, keepdim=True).clamp(min=1)
    total = N.sum()
    return float(-(N[N > 0] * P[N > 0].log()).sum() / total)


# %% Model: embedding table, hidden layers, output layer
def init_model(vocab_size, args, gen):
    """The parameters, as plain tensors: C (embeddings), then W, b for each layer."""

    def uniform(*shape, fan_in):  # PyTorch's default for linear layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        return (torch.rand(*shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)

    params = {"C": torch.randn(vocab_size, args.emb_dim, generator=gen)}
    width = args.block_size * args.emb_dim
    for layer in range(1, args.layers + 1):
        params[f"W{layer}"] = uniform(width, args.hidden, fan_in=width)
        params[f"b{layer}"] = uniform(args.hidden, fan_in=width)
        width = args.hidden
    params["Wout"] = uniform(width, vocab_size, fan_in=width) * 0.1  # small: start near uniform predictions
    params["bout"] = torch.zeros(vocab_size)
    return params


def forward(params, X):
    """Logits (n, vocab) for contexts X (n, block_size)."""
    # Look up each character's vector, then concatenate the block. F.embedding(X, C) is the lookup C[X],
    # written as nn.Embedding (lessons 7 and 9) runs it. It is not needed for repeatable runs: on a CPU
    # both spellings repeat to the last digit from run to run. On a GPU a row's gradients may be added
    # up in parallel; torch.use_deterministic_algorithms documents which operations then repeat.
    h = F.embedding(X, params["C"]).flatten(1)
    layer = 1
    while f"W{layer}" in params:
        h = torch.tanh(h @ params[f"W{layer}"] + params[f"b{layer}"])
        layer += 1
    return h @ params["Wout"] + params["bout"]


@torch.no_grad()
def evaluate(params, X, Y, batch=65_536):
    """Mean cross-entropy over all of X, Y (in chunks, so memory stays small)."""
    total = sum(
        F.cross_entropy(forward(params, X[i : i + batch]), Y[i : i + batch], reduction="sum").item()
        for i in range(0, len(X), batch)
    )
    return total / len(X)


# %% Training loop
def train(params, Xtr, Ytr, Xdev, Ydev, args, batches, on_eval=None):
    """Mini-batch training; returns the history and the parameters with the best dev loss.

    `batches` is the generator the batch order is drawn from (common.batch_generator(seed) in the
    lesson): a stream apart from the one that drew the weights, so a model of another size sees the
    same batches. Each step draws its examples anew, with replacement: there are no epochs, and an
    example may come twice in one batch or not at all in a run.
    """
    for p in params.values():
        p.requires_grad_(True)
    optimizer = make_optimizer(params, args)
    # The rate of step t is --lr times lr_factor(t): LambdaLR, a scheduler of torch.optim.lr_scheduler
    # like the cosine one of lessons 3 and 4, sets it before every step.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: lr_factor(t, args))
    log = TrainingLog(params, Xdev, Ydev, args, on_eval)
    try:
        for step in range(args.steps):
            batch = torch.randint(0, len(Xtr), (args.batch_size,), generator=batches).to(Xtr.device)  # seeded draw
            loss = F.cross_entropy(forward(params, Xtr[batch]), Ytr[batch])
            optimizer.zero_grad(set_to_none=True)  # backward() adds to .grad: clear the last step's first
            loss.backward()
            optimizer.step()
            scheduler.step()  # the next step's rate
            log.after_step(step + 1, loss.item())  # every --eval-every steps: the dev loss, the best copy
    except KeyboardInterrupt:
        log.history["interrupted"] = True  # Ctrl-C: stop here and keep the best model found so far
    return log.history, log.best


def make_optimizer(params, args):
    """AdamW or plain SGD; weight decay on the weight matrices only, not on biases or the embeddings."""
    decayed = [p for name, p in params.items() if name.startswith("W")]
    others = [p for name, p in params.items() if not name.startswith("W")]
    groups = [{"params": decayed, "weight_decay": args.weight_decay}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr) if args.optimizer == "adamw" else torch.optim.SGD(groups, lr=args.lr)


def lr_factor(step, args):
    """The rate of `step` as a share of --lr: a linear warm-up, then a cosine decay to 1 %; or one step down."""
    if args.schedule == "step":
        return 1.0 if step < args.steps // 2 else 0.1
    warmup = min(200, args.steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, args.steps - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))


class TrainingLog:
    """The bookkeeping around the loop, kept out of its way.

    After every step: a running mean of the batch losses, and a stop if it is no longer finite. Every
    --eval-every steps: the dev loss, the history, a copy of the parameters if they are the best so far,
    and on_eval (which prints and saves the checkpoint). The time spent on dev evaluations is left out.
    """

    def __init__(self, params, Xdev, Ydev, args, on_eval):
        self.params, self.Xdev, self.Ydev, self.args, self.on_eval = params, Xdev, Ydev, args, on_eval
        self.history = {"step": [], "train": [], "dev": [], "time": [], "seconds": 0.0}
        self.best = {"dev": float("inf"), "params": None, "step": 0}
        self.running = None
        self.start, self.evaluating = time.perf_counter(), 0.0

    def after_step(self, step, loss):
        self.running = loss if self.running is None else 0.98 * self.running + 0.02 * loss
        # Uniform guessing scores ln(vocabulary); a loss far above that is a run that diverged, even while
        # tanh keeps it finite.
        guess = math.log(self.params["Wout"].shape[1])
        if not math.isfinite(self.running) or self.running > 2 * guess:
            raise common.LessonError(
                f"diverged at step {step}: the running loss {self.running:.3g} is over twice uniform guessing's "
                f"{guess:.2f}; lower --lr (now {self.args.lr:g})"
            )
        self.history["seconds"] = time.perf_counter() - self.start - self.evaluating
        if step % self.args.eval_every and step != self.args.steps:
            return
        tic = time.perf_counter()
        dev = evaluate(self.params, self.Xdev, self.Ydev) if len(self.Xdev) else self.running
        self.evaluating += time.perf_counter() - tic
        for key, value in [("step", step), ("train", self.running), ("dev", dev), ("time", self.history["seconds"])]:
            self.history[key].append(value)
        if dev < self.best["dev"]:
            self.best = {"dev": dev, "params": {k: v.detach().clone() for k, v in self.params.items()}, "step": step}
        if self.on_eval:
            self.on_eval(step, self.running, dev, step / (time.perf_counter() - self.start), self.best)


# %% Run
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    checkpoint = args.out / "model.pt"

    if args.sample_only:
        state = load_checkpoint(checkpoint)
        params = {k: v.to(device) for k, v in state["params"].items()}
        block = state["config"]["block_size"]
        sample_gen = common.generator(args.seed)
        names = [sample(params, state["itos"], block, sample_gen) for _ in range(args.samples or 10)]
        say(f"checkpoint {checkpoint}: step {state['step']}, dev loss {state['dev_loss']:.4f}")
        say("\n".join(names))
        return {"samples": names, "dev_loss": state["dev_loss"]}

    gen = common.generator(args.seed)
    words = load_words(args.data, gen)
    train_words, dev_words, test_words = split_words(words, args.val_fraction)
    itos = [BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    Xtr, Ytr = examples(train_words, stoi, args.block_size)
    Xdev, Ydev = examples(dev_words, stoi, args.block_size)
    Xte, Yte = examples(test_words, stoi, args.block_size)
    if args.batch_size > len(Xtr):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the data ({len(Xtr)} examples)")
    Xtr, Ytr, Xdev, Ydev, Xte, Yte = (t.to(device) for t in (Xtr, Ytr, Xdev, Ydev, Xte, Yte))
    ref_loss = bigram_nll(dev_words, stoi) if dev_words else bigram_nll(train_words, stoi)
    say(
        f"data: {len(train_words)} / {len(dev_words)} / {len(test_words)} train / dev / test words, "
        f"{len(Xtr)} training examples, {len(itos)} characters, device {device}"
    )
    say(f"the best bigram model of the dev words themselves: {ref_loss:.4f} nats per character")

    params = {k: v.to(device) for k, v in init_model(len(itos), args, gen).items()}
    n_params = sum(p.numel() for p in params.values())
    say(
        f"model: block {args.block_size}, embedding {args.emb_dim}, {args.layers} x {args.hidden} tanh, "
        f"{n_params} parameters; {args.optimizer} at {args.lr:g}, batches of {args.batch_size}, {args.steps} steps"
    )

    def report(step, train_loss, dev_loss, speed, best):
        if dev_loss <= best["dev"]:
            save_checkpoint(checkpoint, best["params"], itos, args, best["step"], best["dev"])
        say(f"step {step:6d} | train {train_loss:.4f} | dev {dev_loss:.4f} | {speed:5.0f} steps/s")

    history, best = train(params, Xtr, Ytr, Xdev, Ydev, args, common.batch_generator(args.seed), report)
    if history.get("interrupted"):
        say(f"interrupted: the best model so far (step {best['step']}) is in {checkpoint}")
    if best["params"] is None:
        raise common.LessonError("stopped before the first evaluation: nothing to report (see --eval-every)")
    params = best["params"]
    metrics = {
        "loss": evaluate(params, Xtr, Ytr),
        "dev_loss": evaluate(params, Xdev, Ydev) if len(Xdev) else None,
        "test_loss": evaluate(params, Xte, Yte) if len(Xte) else None,
        "ref_loss": ref_loss,
        "seconds": history["seconds"],
        "best_step": best["step"],
        "parameters": n_params,
        "device": str(device),
    }
    compared = metrics["dev_loss"] if metrics["dev_loss"] is not None else metrics["loss"]
    metrics["gap"] = compared / ref_loss - 1
    losses = ", ".join(
        f"{split} {metrics[key]:.4f}"
        for split, key in [("train", "loss"), ("dev", "dev_loss"), ("test", "test_loss")]
        if metrics[key] is not None
    )
    say(f"best model (step {best['step']}): {losses} nats; {history['seconds']:.1f} s of training")
    say(f"against the bigram optimum of the dev words: {metrics['gap']:+.1%}")
    sample_gen = common.generator(args.seed)
    names = [sample(params, itos, args.block_size, sample_gen) for _ in range(args.samples)]
    metrics["samples"] = names
    if names:
        say("samples: " + ", ".join(names))

    if not args.no_figure:
        # Panel (b) of the figure: a learning-rate search, a second short run on a fresh model.
        search = lr_search(args, len(itos), Xtr, Ytr, gen, common.batch_generator(args.seed))
        say(
            f"learning-rate search ({len(search['rates'])} AdamW steps of a fresh model, the rate raised each step): "
            f"the smoothed loss falls fastest at {search['steepest']:.1e} and is lowest at {search['lowest']:.1e}"
        )
        path = plot(args, history, params, itos, search, metrics)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Checkpoints
def save_checkpoint(path, params, itos, args, step, dev_loss):
    """Write the model, its vocabulary and configuration; through a temporary file, so never half a file."""
    config = {k: getattr(args, k) for k in ["block_size", "emb_dim", "hidden", "layers"]}
    state = {
        "params": {k: v.detach().cpu() for k, v in params.items()},
        "itos": itos,
        "config": config,
        "step": step,
        "dev_loss": dev_loss,
    }
    common.write_atomically(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path):
    """The saved state, or a one-line error if the file is missing, corrupted or not one of ours."""
    try:
        # weights_only: the unpickler is restricted to tensors and plain containers, not arbitrary objects
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise common.LessonError(f"no checkpoint at {path}: train first (without --sample-only)") from None
    except Exception as e:  # torch raises many kinds for a damaged file
        raise common.LessonError(
            f"{path} is not a readable checkpoint ({type(e).__name__}); delete it and train again"
        ) from None
    try:
        params, itos, config = state["params"], state["itos"], state["config"]
        vocab, width = len(itos), config["block_size"] * config["emb_dim"]
        assert params["C"].shape == (vocab, config["emb_dim"]) and params["W1"].shape == (width, config["hidden"])
        assert params["Wout"].shape[1] == vocab
    except (KeyError, TypeError, AssertionError, AttributeError):
        raise common.LessonError(f"{path} does not match this lesson's model; delete it and train again") from None
    return state


@torch.no_grad()
def sample(params, itos, block_size, gen, max_length=30):
    """One name: start from a context of boundaries and draw characters until the boundary comes."""
    context, out = [0] * block_size, []
    device = params["C"].device
    while len(out) < max_length:
        probs = F.softmax(forward(params, torch.tensor([context], device=device)), dim=1).cpu()
        ix = int(torch.multinomial(probs[0], 1, generator=gen))
        if ix == 0:
            break
        out.append(itos[ix])
        context = [*context[1:], ix]
    return "".join(out)


# %% Look: training curves, the learning-rate search, the embedding, the comparison
def lr_search(args, vocab_size, Xtr, Ytr, gen, batches, steps=300, window=15):
    """Loss against learning rate, raising the rate exponentially from 1e-4 to 1 over `steps` steps.

    A fresh model with weights from `gen`, on batches from `batches` (the lesson passes a new
    common.batch_generator(seed): the batches its training run began with).

    Returns the rates and batch losses, their running mean over `window` steps, and the rates where
    that mean falls fastest (per factor of ten in the rate) and where it is lowest.
    """
    params = {k: v.to(Xtr.device).requires_grad_(True) for k, v in init_model(vocab_size, args, gen).items()}
    optimizer = torch.optim.AdamW(params.values(), lr=1e-4, weight_decay=0.0)
    rates = np.logspace(-4, 0, steps)
    losses = []
    for lr in rates:
        optimizer.param_groups[0]["lr"] = lr
        batch = torch.randint(0, len(Xtr), (args.batch_size,), generator=batches).to(Xtr.device)
        loss = F.cross_entropy(forward(params, Xtr[batch]), Ytr[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > 4 * min(losses):
            break  # diverging: the rest of the range says nothing more
    rates, losses = rates[: len(losses)], np.array(losses)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    smooth_rates = rates[window // 2 : window // 2 + len(smooth)]  # each mean at the middle of its window
    slope = np.gradient(smooth, np.log10(smooth_rates))
    return {
        "rates": rates,
        "losses": losses,
        "smooth_rates": smooth_rates,
        "smooth": smooth,
        "steepest": float(smooth_rates[np.argmin(slope)]),
        "lowest": float(smooth_rates[np.argmin(smooth)]),
    }


def plot(args, history, params, itos, search, metrics):
    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    fig.suptitle(
        f"Character MLP: block {args.block_size}, embedding {args.emb_dim}, {args.layers} x {args.hidden} tanh, "
        f"{metrics['parameters']} parameters",
        fontsize=13,
    )

    ax = axes[0, 0]
    ax.plot(history["step"], history["train"], label="train (running mean of batch losses)")
    ax.plot(history["step"], history["dev"], label="dev")
    ax.axhline(metrics["ref_loss"], color="C3", ls="--", lw=1, label="best bigram model of the dev words")
    ax.axvline(metrics["best_step"], color="0.5", ls=":", lw=1, label="best dev: the saved model")
    ax.set(title="(a) loss during training", xlabel="step", ylabel="cross-entropy (nats per character)")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    ax.semilogx(search["rates"], search["losses"], color="0.75", lw=0.8, label="batch loss")
    ax.semilogx(search["smooth_rates"], search["smooth"], color="C0", label="running mean")
    ax.axvline(search["steepest"], color="0.5", ls=":", lw=1, label=f"steepest fall ({search['steepest']:.1e})")
    ax.axvline(search["lowest"], color="0.3", ls="-.", lw=1, label=f"lowest ({search['lowest']:.1e})")
    ax.axvline(args.lr, color="C3", ls="--", lw=1, label=f"--lr {args.lr:g} (the peak rate used)")
    ax.set_ylim(float(search["smooth"].min()) - 0.3, 4.0)
    ax.set(
        title=f"(b) learning-rate search: {len(search['rates'])} steps, rate raised each step",
        xlabel="learning rate (AdamW)",
        ylabel="batch loss",
    )
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    C = params["C"].detach().cpu().numpy()
    C2 = C - C.mean(axis=0)
    if C.shape[1] > 2:  # the plane of the two directions along which the vectors differ most (PCA)
        _, _, Vt = np.linalg.svd(C2, full_matrices=False)
        C2 = C2 @ Vt[:2].T
    vowels = set("aeiouy")
    for i, ch in enumerate(itos):
        color = "C3" if ch in vowels else "C2" if ch == BOUNDARY else "C0"
        ax.scatter(*C2[i], s=250, color=color, alpha=0.3)
        ax.text(*C2[i], ch, ha="center", va="center", fontsize=11)
    ax.set(title="(c) the embedding table in 2-D (vowels and y red)", xlabel="direction 1", ylabel="direction 2")

    ax = axes[1, 1]
    labels = ["bigram optimum\nof the dev words", "MLP train", "MLP dev", "MLP test"]
    values = [metrics["ref_loss"], metrics["loss"], metrics["dev_loss"] or np.nan, metrics["test_loss"] or np.nan]
    bars = ax.bar(labels, values, color=["C3", "C0", "C1", "C2"])
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylim(min(v for v in values if v == v) - 0.3, max(v for v in values if v == v) + 0.1)
    ax.set(title="(d) the MLP against the best bigram model", ylabel="nats per character")

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "mlp_embedding")


if __name__ == "__main__":
    common.run(main)
