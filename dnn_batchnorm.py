"""A deep network that trains: initialization, activation statistics through depth, and BatchNorm.

What you will learn
- the loss a model that knows nothing should have: ln 27 = 3.2958 for 27 characters; a larger
  initial loss means random preferences among the characters (logits of std sigma cost about
  sigma^2 / 2 nats more), so the output layer starts scaled down (--out-scale);
- how the scale of the initial weights decides what reaches the deep layers: far too large and the
  tanh units saturate at +-1 (a saturated unit passes back almost no gradient, and the layers'
  gradients end up on scales far apart); too small and the activations shrink layer by layer;
  PyTorch's default nn.Linear init shrinks them too, through tanh; Kaiming's std = gain / sqrt(fan_in)
  with PyTorch's gain for tanh, 5/3 (He et al. derived sqrt(2), for ReLU), keeps them about constant;
- a reference for all of it: for wide layers the variance q of the pre-activations follows the
  one-dimensional recursion q' = sigma_w^2 E[tanh(sqrt(q) z)^2] + sigma_b^2, z standard normal
  (mean-field theory: Poole et al. 2016, Schoenholz et al. 2017); the script prints it next to what
  it measures, layer by layer;
- the gradients through depth (the weight gradients of each layer after one backward pass), and
  the size of each update against the size of the weights during training (rule of thumb: ~1e-3);
- BatchNorm (--norm batch) normalizes each unit over the batch, so the weight scale no longer changes
  what the layers compute, and the network trains whatever the init (not equally well: AdamW's steps
  are still sized against the weights); its train / eval modes differ (batch statistics against
  running averages), and sampling one name at a time needs eval mode;
- lesson 6's MLP rebuilt from PyTorch's modules: nn.Embedding, nn.Linear, nn.BatchNorm1d, nn.Tanh.

B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein, S. Ganguli (2016), Exponential expressivity in deep
neural networks through transient chaos, NeurIPS. S. Schoenholz, J. Gilmer, S. Ganguli,
J. Sohl-Dickstein (2017), Deep Information Propagation, ICLR. S. Ioffe, C. Szegedy (2015), Batch
Normalization, ICML. K. He, X. Zhang, S. Ren, J. Sun (2015), Delving Deep into Rectifiers, ICCV.

Run it:
    python dnn_batchnorm.py                                 # five configurations, about a minute
    python dnn_batchnorm.py --init normal --no-compare      # one configuration: N(0, 1) weights, BatchNorm
    python dnn_batchnorm.py --init default --norm none --layers 10 --no-compare
"""

# %% Setup
import copy
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import common
import mlp_embedding  # lesson 6: the names, the split, the examples and the bigram reference

INITS = ["normal", "small", "default", "kaiming"]
NORMS = {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}
# The configurations trained side by side with the same steps, seed and batches (the batches come from a
# generator of their own, so they do not depend on how many weights a configuration draws first):
# (init, norm, layers, hidden); layers / hidden None means those of the command line. The last one is
# lesson 6's model.
COMPARED = [
    ("normal", "none", None, None),
    ("default", "none", None, None),
    ("kaiming", "none", None, None),
    ("kaiming", "batch", None, None),
    ("default", "none", 2, 256),
]
LESSON6 = ("default", "none", 2, 256)  # with lesson 6's block 8 and embedding 24: its model, trained the same way
COLORS = {("normal", "none"): "C0", ("small", "none"): "C1", ("default", "none"): "C2", ("kaiming", "none"): "C3",
          ("kaiming", "batch"): "C4"}  # fmt: skip
SATURATED = 0.97  # |tanh| above this: the unit's gradient, 1 - tanh^2, is below 6 % of its peak
PROBE = 2048  # training examples in the batch that measures the statistics at initialization


def parse_args(argv):
    p = common.parser(__doc__, epochs=None, lr=3e-3, lr_help="peak learning rate of AdamW")
    p.add_argument(
        "--data",
        default=common.REPO / "data" / "names.txt",
        metavar="PATH",
        help="word list, one word per line (default: data/names.txt beside the lessons)",
    )
    p.add_argument(
        "--val-fraction",
        type=common.fraction,
        default=0.1,
        help="share of words for dev, and again for test (as in lesson 6)",
    )
    p.add_argument("--block-size", type=common.positive_int, default=8, help="characters of context")
    p.add_argument("--emb-dim", type=common.positive_int, default=24, help="size of each character's vector")
    p.add_argument("--hidden", type=common.positive_int, default=128, help="units in each hidden layer (at least 2)")
    p.add_argument("--layers", type=common.positive_int, default=6, help="hidden layers (the depth)")
    p.add_argument(
        "--init",
        choices=INITS,
        default="kaiming",
        help="weights: normal = N(0, 1); small = N(0, 0.01^2); default = PyTorch's nn.Linear, "
        "U(-1/sqrt(fan_in), 1/sqrt(fan_in)); kaiming = N(0, ((5/3) / sqrt(fan_in))^2)",
    )
    p.add_argument(
        "--norm",
        choices=list(NORMS),
        default="batch",
        help="normalization between each linear layer and its tanh: none, BatchNorm, or LayerNorm",
    )
    p.add_argument(
        "--out-scale",
        type=common.positive_float,
        default=0.1,
        help="the output layer's initial weights are drawn like the others, then multiplied by this",
    )
    p.add_argument("--batch-size", type=common.positive_int, default=256, help="examples per step")
    p.add_argument("--steps", type=common.positive_int, default=2000, help="gradient steps of each configuration")
    p.add_argument(
        "--weight-decay", type=common.non_negative_float, default=0.1, help="decoupled weight decay of AdamW"
    )
    p.add_argument("--eval-every", type=common.positive_int, default=200, help="steps between dev evaluations")
    p.add_argument(
        "--no-compare",
        action="store_true",
        help="train only the --init / --norm configuration, not the others beside it (quicker)",
    )
    p.add_argument(
        "--out",
        type=common.output_dir,
        default=common.REPO / "out" / "dnn_batchnorm",
        metavar="DIR",
        help="checkpoint folder (default: out/dnn_batchnorm beside the lessons)",
    )
    p.add_argument("--samples", type=common.non_negative_int, default=10, help="names to sample at the end")
    args = p.parse_args(argv)
    if not 0 <= args.val_fraction < 0.5:
        p.error(f"argument --val-fraction: must be in [0, 0.5), got {args.val_fraction}")
    if args.hidden < 2:
        p.error(
            f"argument --hidden: needs at least 2 units, got {args.hidden}: the statistics are spreads over a layer"
        )
    if args.batch_size < 2 and (args.norm == "batch" or not args.no_compare):
        p.error(
            f"--batch-size {args.batch_size}: BatchNorm normalizes each unit over the batch, which needs at least "
            "2 examples (the comparison runs use BatchNorm too: add --no-compare with --norm none or layer)"
        )
    return args


# %% Model: lesson 6's MLP, built from PyTorch's modules
class MLP(nn.Module):
    """Embedding, then `layers` x (Linear -> norm -> tanh), then a Linear output layer of 27 logits."""

    def __init__(self, vocab_size, block_size, emb_dim, hidden, layers, norm):
        super().__init__()
        self.C = nn.Embedding(vocab_size, emb_dim)
        # BatchNorm subtracts each unit's mean over the batch, so a bias before it would do nothing: its
        # own shift (beta) takes the bias's place. LayerNorm normalizes each example over its units: a bias
        # before it loses only its mean over the units, and the rest is divided by that example's std, an
        # effect that varies from example to example and that no fixed shift after it can give. So with
        # LayerNorm (and no norm) the linear layers keep their biases.
        widths = [block_size * emb_dim] + [hidden] * layers
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=norm != "batch") for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(NORMS[norm](hidden) for _ in range(layers))
        self.tanh = nn.Tanh()
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, X, record=None):
        """Logits (n, vocab) for contexts X (n, block_size); `record` (a list) collects each layer's
        pre-activations and tanh outputs, to look at."""
        h = self.C(X).flatten(1)  # each character's vector, the block's vectors concatenated
        for linear, norm in zip(self.linears, self.norms):
            a = norm(linear(h))
            h = self.tanh(a)
            if record is not None:
                record.append((a, h))
        return self.out(h)


def weight_std(init, fan_in):
    """The standard deviation of the initial weights of a layer with `fan_in` inputs."""
    return {
        "normal": 1.0,
        "small": 0.01,
        "default": 1 / math.sqrt(3 * fan_in),  # U(-s, s) has std s / sqrt(3), and nn.Linear uses s = 1/sqrt(fan_in)
        "kaiming": (5 / 3) / math.sqrt(fan_in),  # torch.nn.init.calculate_gain("tanh") = 5/3
    }[init]


@torch.no_grad()
def initialize(model, init, out_scale, gen):
    """Draw every parameter with the seeded generator (PyTorch's own init draws from a global one)."""
    model.C.weight.copy_(torch.randn(model.C.weight.shape, generator=gen))  # nn.Embedding's N(0, 1)
    for linear in [*model.linears, model.out]:
        fan_in = linear.in_features
        std = weight_std(init, fan_in)
        if init == "default":  # uniform, for the weights and the bias alike
            linear.weight.copy_((torch.rand(linear.weight.shape, generator=gen) * 2 - 1) * std * math.sqrt(3))
        else:
            linear.weight.copy_(torch.randn(linear.weight.shape, generator=gen) * std)
        if linear.bias is not None:
            bound = 1 / math.sqrt(fan_in) if init == "default" and linear is not model.out else 0.0
            linear.bias.copy_((torch.rand(linear.bias.shape, generator=gen) * 2 - 1) * bound)
    model.out.weight.mul_(out_scale)  # small logits: the first guesses are near uniform, without random preferences


# %% Training loop
@torch.no_grad()
def evaluate(model, X, Y, batch=65_536):
    """Mean cross-entropy over all of X, Y in eval mode: BatchNorm uses its running statistics."""
    was_training = model.training
    model.eval()
    total = sum(
        F.cross_entropy(model(X[i : i + batch]), Y[i : i + batch], reduction="sum").item()
        for i in range(0, len(X), batch)
    )
    model.train(was_training)
    return total / len(X)


def train(model, Xtr, Ytr, Xdev, Ydev, args, batches, on_eval=None, ratio_every=10):
    """Mini-batch AdamW; returns the history (losses, update-to-data ratios) and the best dev state.

    As in lesson 6, the batches are drawn with replacement from `batches`, a generator of their own
    (common.batch_generator(seed)): every configuration of one seed trains on the same batches.
    """
    decayed = [linear.weight for linear in [*model.linears, model.out]]  # weight decay on the weight matrices only
    others = [p for p in model.parameters() if all(p is not w for w in decayed)]
    optimizer = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": args.weight_decay}, {"params": others, "weight_decay": 0.0}], lr=args.lr
    )
    warmup = min(100, args.steps // 10)

    def rate(step):  # linear warm-up, then cosine decay to 1 % of the peak (as in lesson 6)
        if step < warmup:
            return (step + 1) / warmup
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    history = {"step": [], "train": [], "dev": [], "time": [], "ratio_step": [], "ratio": []}
    best = {"dev": float("inf"), "state": None, "step": 0}
    evaluating, running = 0.0, None
    start = time.perf_counter()
    model.train()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * rate(step)
        batch = torch.randint(0, len(Xtr), (args.batch_size,), generator=batches).to(Xtr.device)
        loss = F.cross_entropy(model(Xtr[batch]), Ytr[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        watch = step % ratio_every == 0
        if watch:
            before = [linear.weight.detach().clone() for linear in model.linears]
        optimizer.step()
        if watch:  # how far this step moved each layer's weights, against their size
            history["ratio_step"].append(step)
            history["ratio"].append(
                [float((lin.weight.detach() - w).norm() / w.norm()) for lin, w in zip(model.linears, before)]
            )
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        guess = math.log(model.out.out_features)  # uniform guessing; far above it, the run has diverged
        if not math.isfinite(running) or running > 2 * guess:
            raise common.LessonError(
                f"diverged at step {step}: the running loss {running:.3g} is over twice uniform guessing's "
                f"{guess:.2f}; lower --lr (now {args.lr:g})"
            )
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            tic = time.perf_counter()
            dev = evaluate(model, Xdev, Ydev) if len(Xdev) else running
            evaluating += time.perf_counter() - tic
            history["step"].append(step + 1)
            history["train"].append(running)
            history["dev"].append(dev)
            history["time"].append(time.perf_counter() - start - evaluating)
            if dev < best["dev"]:
                best = {"dev": dev, "state": copy.deepcopy(model.state_dict()), "step": step + 1}
            if on_eval:
                on_eval(step + 1, running, dev, best)
    history["seconds"] = time.perf_counter() - start - evaluating
    return history, best


# %% The reference: mean-field theory of signal propagation
Z = np.linspace(-10, 10, 4001)  # a fine grid for E over z ~ N(0, 1): it also resolves tanh(sqrt(q) z) when
P_Z = np.exp(-(Z**2) / 2) / np.exp(-(Z**2) / 2).sum()  # q is large and tanh a near step (Gauss-Hermite is not)


def tanh_second_moment(q):
    """E[tanh(sqrt(q) z)^2] for z ~ N(0, 1): a one-dimensional Gaussian integral."""
    return float((np.tanh(math.sqrt(q) * Z) ** 2 * P_Z).sum())


def tanh_slope_second_moment(q):
    """E[tanh'(sqrt(q) z)^2] = E[(1 - tanh^2)^2]: how much of an error signal a layer passes back."""
    return float(((1 - np.tanh(math.sqrt(q) * Z) ** 2) ** 2 * P_Z).sum())


def mean_field(x2, sigma_w2, sigma_b2, norm):
    """Predicted pre-activation variance q and tanh output second moment, layer by layer.

    x2: the mean square of the inputs (the embedding vectors); per layer, sigma_w2 = fan_in * Var(W) and
    sigma_b2 = Var(b). A unit's pre-activation sum_i W_i h_i + b sums many independent terms: it is
    Gaussian, with variance q = sigma_w2 * mean(h^2) + sigma_b2, and the next layer sees tanh of it.
    """
    q_layers, h2_layers = [], []
    second_moment = x2
    for sw2, sb2 in zip(sigma_w2, sigma_b2):
        q = sw2 * second_moment + sb2
        if norm != "none":  # BatchNorm and LayerNorm rescale every pre-activation to variance 1
            q = 1.0
        second_moment = tanh_second_moment(q)
        q_layers.append(q)
        h2_layers.append(second_moment)
    return np.array(q_layers), np.array(h2_layers)


@torch.no_grad()
def init_statistics(model, init, X, Y):
    """Measured and predicted statistics of a freshly initialized model on the batch X, Y."""
    record = []
    model.train()  # as training sees it: BatchNorm with the batch's own statistics
    logits = model(X, record)
    loss = F.cross_entropy(logits, Y).item()
    x = model.C(X).flatten(1)
    sigma_w2 = [lin.in_features * weight_std(init, lin.in_features) ** 2 for lin in model.linears]
    sigma_b2 = [0.0 if lin.bias is None or init != "default" else 1 / (3 * lin.in_features) for lin in model.linears]
    norm = model_norm(model)
    q, h2 = mean_field(float(x.pow(2).mean()), sigma_w2, sigma_b2, norm)
    # Backwards, an example's error dL/da is multiplied per layer by the next layer's weights and tanh's
    # slope: in variance by chi = sigma_w^2 (of the layer above) * E[tanh'(sqrt(q) z)^2] (Schoenholz et al.).
    # Not with BatchNorm: it divides out the weights' scale sigma_w^2 (and its backward subtracts the
    # batch's mean error), so this chi predicts nothing there.
    chi = [sw2 * tanh_slope_second_moment(ql) for sw2, ql in zip(sigma_w2[1:], q[:-1])]
    return {
        "loss": loss,
        "logit_std": float(logits.std(dim=1, correction=0).pow(2).mean().sqrt()),  # across the characters
        "top_prob": float(logits.softmax(dim=1).max(dim=1).values.mean()),
        "top_right": float((logits.argmax(dim=1) == Y).float().mean()),
        "chi": chi if norm == "none" else None,
        # std of dL/da, first hidden layer / last
        "error_growth_predicted": math.sqrt(math.prod(chi)) if norm == "none" else None,
        "pre_std": [float(a.pow(2).mean().sqrt()) for a, _ in record],  # the mean is 0: std = root mean square
        "pre_std_predicted": np.sqrt(q).tolist(),
        "act_std": [float(h.pow(2).mean().sqrt()) for _, h in record],
        "act_std_predicted": np.sqrt(h2).tolist(),
        "saturated": [float((h.abs() > SATURATED).float().mean()) for _, h in record],
        "activations": [h.flatten()[:20_000].cpu().numpy() for _, h in record],  # for the histograms
    }


def model_norm(model):
    return next(name for name, kind in NORMS.items() if isinstance(model.norms[0], kind))


def init_gradients(model, X, Y):
    """Per-layer std of the weight gradients after one backward pass at initialization."""
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(X), Y).backward()
    stds = [float(linear.weight.grad.std(correction=0)) for linear in model.linears]
    model.zero_grad(set_to_none=True)
    return stds


def init_errors(model, X, Y):
    """Per layer, the root mean square of each example's own error dL/da (its loss's gradient with
    respect to the pre-activations), before examples are averaged into a batch's weight gradient."""
    model.train()
    record = []
    loss = F.cross_entropy(model(X, record), Y, reduction="sum")  # a sum: each example's own gradient
    errors = torch.autograd.grad(loss, [a for a, _ in record])
    return [float(e.pow(2).mean().sqrt()) for e in errors]


# %% Checkpoints and samples
def save_checkpoint(path, state, itos, config, step, dev_loss):
    """The model's weights (and BatchNorm's running statistics), vocabulary and configuration, atomically."""
    saved = {"state": {k: v.cpu() for k, v in state.items()}, "itos": itos, "config": config}
    saved.update(step=step, dev_loss=dev_loss)
    common.write_atomically(path, lambda tmp: torch.save(saved, tmp))


def build(vocab_size, args, init, norm, layers, hidden, gen, device):
    model = MLP(vocab_size, args.block_size, args.emb_dim, hidden, layers, norm)
    initialize(model, init, args.out_scale, gen)
    return model.to(device)


@torch.no_grad()
def sample(model, itos, block_size, gen, max_length=30):
    """One name, one character at a time: a batch of one, so BatchNorm must use its running statistics."""
    model.eval()
    context, out = [0] * block_size, []
    device = model.C.weight.device
    while len(out) < max_length:
        probs = F.softmax(model(torch.tensor([context], device=device)), dim=1).cpu()
        ix = int(torch.multinomial(probs[0], 1, generator=gen))
        if ix == 0:
            break
        out.append(itos[ix])
        context = [*context[1:], ix]
    return "".join(out)


@torch.no_grad()
def evaluate_in_train_mode(model, X, Y, batch_size, gen=None):
    """The classic bug: the dev loss with BatchNorm left in train mode, each batch normalized by itself.

    With `gen` the examples are shuffled first (random batches, as in training); without, the batches
    hold consecutive examples, the characters of a few names.
    """
    model = copy.deepcopy(model).train()  # a copy: train mode would also move the running statistics
    if gen is not None:
        order = torch.randperm(len(X), generator=gen).to(X.device)
        X, Y = X[order], Y[order]
    total = sum(
        F.cross_entropy(model(X[i : i + batch_size]), Y[i : i + batch_size], reduction="sum").item()
        for i in range(0, len(X) - batch_size + 1, batch_size)  # whole batches only: a batch of 1 fails
    )
    return total / (len(X) // batch_size * batch_size)


def name(init, norm, layers, hidden):
    return f"{layers} x {hidden}, {init} init, norm {norm}"


# %% Run
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    checkpoint = args.out / "model.pt"

    # Lesson 6's data: the same shuffle (seed), the same split into train / dev / test words.
    gen = common.generator(args.seed)
    words = mlp_embedding.load_words(args.data, gen)
    train_words, dev_words, test_words = mlp_embedding.split_words(words, args.val_fraction)
    itos = [mlp_embedding.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    Xtr, Ytr = mlp_embedding.examples(train_words, stoi, args.block_size)
    Xdev, Ydev = mlp_embedding.examples(dev_words, stoi, args.block_size)
    Xte, Yte = mlp_embedding.examples(test_words, stoi, args.block_size)
    if args.batch_size > len(Xtr):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the data ({len(Xtr)} examples)")
    if len(Xtr) < 2:  # BatchNorm's statistics at initialization need two examples at least
        raise common.LessonError(f"--data {args.data}: too little to train on ({len(Xtr)} training example)")
    probe = torch.randint(0, len(Xtr), (min(PROBE, len(Xtr)),), generator=gen)
    Xtr, Ytr, Xdev, Ydev, Xte, Yte = (t.to(device) for t in (Xtr, Ytr, Xdev, Ydev, Xte, Yte))
    Xpr, Ypr = Xtr[probe.to(device)], Ytr[probe.to(device)]
    ref_loss = mlp_embedding.bigram_nll(dev_words, stoi) if dev_words else mlp_embedding.bigram_nll(train_words, stoi)
    vocab = len(itos)
    say(
        f"data: {len(train_words)} / {len(dev_words)} / {len(test_words)} train / dev / test words, "
        f"{len(Xtr)} training examples, {vocab} characters, device {device}"
    )
    say(f"the best bigram model of the dev words themselves: {ref_loss:.4f} nats per character")

    # At initialization: the loss, and what reaches each layer, measured and predicted.
    def fresh(init, norm, layers=args.layers, hidden=args.hidden):
        return build(vocab, args, init, norm, layers, hidden, common.generator(args.seed), device)

    model = fresh(args.init, args.norm)
    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"model: block {args.block_size}, embedding {args.emb_dim}, {args.layers} x {args.hidden} tanh, "
        f"init {args.init}, norm {args.norm}, {n_params} parameters"
    )
    stats = init_statistics(model, args.init, Xpr, Ypr)
    stats["grad_std"] = init_gradients(model, Xpr, Ypr)
    full_scale = fresh(args.init, args.norm)
    with torch.no_grad():
        full_scale.out.weight.div_(args.out_scale)  # the same draw, not scaled down
    at_full_scale = init_statistics(full_scale, args.init, Xpr, Ypr)
    loss_full_scale = at_full_scale["loss"]
    say(
        f"initial loss on {len(Xpr)} training examples: {stats['loss']:.4f}; knowing nothing: ln {vocab} = "
        f"{math.log(vocab):.4f}; with the output layer at full scale (--out-scale 1): {loss_full_scale:.4f}"
    )
    say(
        f"  at full scale the logits have std {at_full_scale['logit_std']:.3f} across the characters "
        f"(sigma^2 / 2 = {at_full_scale['logit_std'] ** 2 / 2:.3f}); the top probability is "
        f"{at_full_scale['top_prob']:.3f} on average, and the top character is the right one for "
        f"{at_full_scale['top_right']:.1%} of the examples"
    )
    say("at initialization, measured (mean-field prediction):")
    say("layer | pre-activation std | tanh output std | saturated | weight gradient std")
    for i in range(args.layers):
        say(
            f"{i + 1:5d} | {stats['pre_std'][i]:7.3g} ({stats['pre_std_predicted'][i]:7.3g}) | "
            f"{stats['act_std'][i]:.4f} ({stats['act_std_predicted'][i]:.4f}) | "
            f"{stats['saturated'][i]:9.1%} | {stats['grad_std'][i]:.2e}"
        )

    def look(init, norm):
        model = fresh(init, norm)
        measured = {"grad_std": init_gradients(model, Xpr, Ypr), "error_rms": init_errors(model, Xpr, Ypr)}
        return init_statistics(model, init, Xpr, Ypr) | measured

    inits = {(init, norm): look(init, norm) for norm in ["none", "batch"] for init in INITS}
    shown = [(init, "none") for init in INITS] + [("kaiming", "batch")]
    say("tanh output std at initialization for each init, measured (mean-field prediction):")
    say("layer" + "".join(f"{f'{init}, norm {norm}':>21s}" for init, norm in shown))
    for i in range(args.layers):
        cells = (f"{inits[c]['act_std'][i]:.3g} ({inits[c]['act_std_predicted'][i]:.3g})" for c in shown)
        say(f"{i + 1:5d}" + "".join(f"{cell:>21s}" for cell in cells))
    say("saturated" + "".join(f"{np.mean(inits[c]['saturated']):17.0%}" + " " * 4 for c in shown).rstrip())
    say("weight gradient std after one backward pass at initialization:")
    for i in range(args.layers):
        say(f"{i + 1:5d}" + "".join(f"{inits[c]['grad_std'][i]:21.2e}" for c in shown))
    say(f"growth from layer {args.layers} back to layer 1, measured (mean-field prediction for dL/da):")
    grads = [inits[c]["grad_std"][0] / inits[c]["grad_std"][-1] for c in shown]
    errors = [(inits[c]["error_rms"][0] / inits[c]["error_rms"][-1], inits[c]["error_growth_predicted"]) for c in shown]
    say("weights" + "".join(f"{g:23.3g}x" for g in grads) + "   (gradients, batch averages)")
    cells = [f"{m:.3g}x ({p:.3g}x)" if p is not None else f"{m:.3g}x (-)" for m, p in errors]
    say("dL/da  " + "".join(f"{cell:>24s}" for cell in cells) + "   (each example's own; -: no mean-field")
    say(" " * 7 + "prediction with BatchNorm, which divides out the weights' scale that the prediction is made of)")
    say("chi per layer, mean-field (layer 1 first):")
    for c in [("normal", "none"), ("kaiming", "none")]:
        say(f"  {c[0]:8s}" + " ".join(f"{x:.3g}" for x in inits[c]["chi"]))
    worst = max(abs(m / p - 1) for s in inits.values() for m, p in zip(s["pre_std"], s["pre_std_predicted"]) if p > 0)
    spread = max(  # in any layer, the largest std of the four inits minus the smallest
        max(stds) - min(stds) for stds in zip(*(inits[(i, "batch")]["act_std"] for i in INITS))
    )
    say(
        f"measured against mean-field: the pre-activation std differs by at most {worst:.1%} in any layer above "
        f"(finite width: {args.hidden} units per layer, not infinitely many)"
    )
    say(f"with BatchNorm the four inits give the same tanh std to within {spread:.4f} in every layer")

    # Training: the chosen configuration first (checkpointed), then the others with the same steps and batches.
    say(f"training: AdamW at {args.lr:g}, batches of {args.batch_size}, {args.steps} steps per configuration")
    configs = [(args.init, args.norm, args.layers, args.hidden)]
    if not args.no_compare:
        for init, norm, layers, hidden in COMPARED:
            config = (init, norm, layers or args.layers, hidden or args.hidden)
            if config not in configs:
                configs.append(config)
    config_main = {"block_size": args.block_size, "emb_dim": args.emb_dim, "hidden": args.hidden,
                   "layers": args.layers, "norm": args.norm}  # fmt: skip

    def report(step, train_loss, dev_loss, best):
        if dev_loss <= best["dev"]:
            save_checkpoint(checkpoint, best["state"], itos, config_main, best["step"], best["dev"])
        say(f"step {step:6d} | train {train_loss:.4f} | dev {dev_loss:.4f}")

    runs = {}
    for config in configs:
        # Weights from one stream, batches from another: a model of another size draws more weights,
        # but every configuration trains on the same batches.
        model = build(vocab, args, *config, common.generator(args.seed), device)
        batches = common.batch_generator(args.seed)
        history, best = train(model, Xtr, Ytr, Xdev, Ydev, args, batches, report if not runs else None)
        model.load_state_dict(best["state"])
        runs[config] = {"history": history, "best": best, "model": model}
        say(f"{name(*config):40s} dev {best['dev']:.4f} (step {best['step']}), {history['seconds']:.1f} s of training")

    main_run = runs[configs[0]]
    model, history = main_run["model"], main_run["history"]
    metrics = {
        "loss": evaluate(model, Xtr, Ytr),
        "dev_loss": evaluate(model, Xdev, Ydev) if len(Xdev) else None,
        "test_loss": evaluate(model, Xte, Yte) if len(Xte) else None,
        "ref_loss": ref_loss,
        "seconds": history["seconds"],
        "best_step": main_run["best"]["step"],
        "parameters": n_params,
        "device": str(device),
        "init_loss": stats["loss"],
        "init_loss_full_scale": loss_full_scale,
        "init_full_scale": {k: at_full_scale[k] for k in ["logit_std", "top_prob", "top_right"]},
        "init_compared": {
            f"{c[0]}, norm {c[1]}": {k: inits[c][k] for k in ["grad_std", "error_rms", "error_growth_predicted", "chi"]}
            for c in shown
        },
        "init": {k: v for k, v in stats.items() if k != "activations"},
        "compared": {
            name(*c): {"dev_loss": r["best"]["dev"], "seconds": r["history"]["seconds"]} for c, r in runs.items()
        },
    }
    compared = metrics["dev_loss"] if metrics["dev_loss"] is not None else metrics["loss"]
    metrics["gap"] = compared / ref_loss - 1
    losses = ", ".join(
        f"{split} {metrics[key]:.4f}"
        for split, key in [("train", "loss"), ("dev", "dev_loss"), ("test", "test_loss")]
        if metrics[key] is not None
    )
    say(f"best model (step {metrics['best_step']}): {losses} nats; {history['seconds']:.1f} s of training")
    say(f"against the bigram optimum of the dev words: {metrics['gap']:+.1%}")
    lesson6 = runs.get(LESSON6)
    if lesson6 is not None and lesson6 is not main_run:
        seconds6 = lesson6["history"]["seconds"]
        metrics["lesson6_dev_loss"] = lesson6["best"]["dev"]
        say(
            f"lesson 6's model (2 x 256, default init, no norm), the same steps: dev {lesson6['best']['dev']:.4f} "
            f"in {seconds6:.1f} s of training; this model: dev {main_run['best']['dev']:.4f} "
            f"in {history['seconds']:.1f} s"
        )
        # At equal training time: this model's best dev loss among the evaluations made within those seconds.
        within = [dev for dev, t in zip(history["dev"], history["time"]) if t <= seconds6]
        if within:
            metrics["dev_loss_at_lesson6_seconds"] = min(within)
            say(f"  at equal training time ({seconds6:.1f} s), this model's dev loss was {min(within):.4f}")
    ratios = np.array(history["ratio"])
    quarter = max(1, len(ratios) // 4)
    metrics["update_ratio_start"] = ratios[:quarter].mean(0).tolist()
    metrics["update_ratio_end"] = ratios[-quarter:].mean(0).tolist()
    say(
        "update / weights, |dW| / |W| per layer (rule of thumb: about 1e-3): first quarter "
        + " ".join(f"{r:.1e}" for r in metrics["update_ratio_start"])
        + "; last quarter "
        + " ".join(f"{r:.1e}" for r in metrics["update_ratio_end"])
    )

    if args.norm == "batch" and len(Xdev) >= args.batch_size:
        metrics["dev_loss_train_mode"] = evaluate_in_train_mode(
            model, Xdev, Ydev, args.batch_size, common.generator(args.seed)
        )
        metrics["dev_loss_train_mode_16"] = evaluate_in_train_mode(model, Xdev, Ydev, 16, common.generator(args.seed))
        metrics["dev_loss_train_mode_16_in_order"] = evaluate_in_train_mode(model, Xdev, Ydev, 16)
        say(
            f"BatchNorm: dev loss in eval mode (running statistics) {metrics['dev_loss']:.4f}; left in train mode "
            f"(each batch normalized by itself), random batches of {args.batch_size}: "
            f"{metrics['dev_loss_train_mode']:.4f}, of 16: {metrics['dev_loss_train_mode_16']:.4f}"
        )
        say(
            f"  and batches of 16 consecutive examples (a few names): {metrics['dev_loss_train_mode_16_in_order']:.4f}"
            ": a batch's statistics now carry the very characters it predicts, a leak"
        )
        try:
            model.train()(Xdev[:1])
        except ValueError as e:
            say(f"BatchNorm in train mode, a batch of one: {e}; so sampling runs in eval mode")
    sample_gen = common.generator(args.seed)
    names = [sample(model, itos, args.block_size, sample_gen) for _ in range(args.samples)]
    metrics["samples"] = names
    if names:
        say("samples: " + ", ".join(names))

    if not args.no_figure:
        path = plot(args, inits, runs, configs[0], metrics)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Look: activations at init, the mean-field prediction, dev loss per configuration, update sizes
def plot(args, inits, runs, main_config, metrics):
    fig = plt.figure(figsize=(16, 10))
    grid = fig.add_gridspec(2, 12)
    fig.suptitle(
        f"A {args.layers}-layer tanh MLP on names: initialization, activation statistics, BatchNorm "
        f"({args.layers} x {args.hidden}, {args.steps} steps each)",
        fontsize=13,
    )
    panels = [("normal", "none"), ("small", "none"), ("default", "none"), ("kaiming", "none")]
    colors = plt.cm.viridis(np.linspace(0, 0.9, args.layers))
    for k, (init, norm) in enumerate(panels):
        ax = fig.add_subplot(grid[0, 3 * k : 3 * k + 3])
        s = inits[(init, norm)]
        for i, h in enumerate(s["activations"]):
            scale = max(float(np.abs(h).max()), 1e-12) if init == "small" else 1.0
            ax.hist(h / scale, bins=60, histtype="step", color=colors[i], density=True, label=f"layer {i + 1}")
        unit = " / its max" if init == "small" else ""
        ax.set(title=f"({'abcd'[k]}) init {init}: tanh outputs", xlabel=f"activation{unit}", yticks=[])
        ax.text(0.5, 0.97, f"saturated: {np.mean(s['saturated']):.0%}", transform=ax.transAxes, ha="center", va="top")
        if k == 0:
            ax.legend(fontsize=7, loc="center")

    ax = fig.add_subplot(grid[1, 0:4])
    layers = np.arange(1, args.layers + 1)
    for init, norm in [*panels, ("kaiming", "batch")]:
        s = inits[(init, norm)]
        ax.semilogy(layers, s["act_std_predicted"], color=COLORS[(init, norm)], lw=1.5, label=f"{init}, norm {norm}")
        ax.semilogy(layers, s["act_std"], "o", color=COLORS[(init, norm)], ms=6, mfc="none")
    ax.plot([], [], "ko", mfc="none", label="measured")
    ax.plot([], [], "k-", label="mean-field prediction")
    ax.set(title="(e) tanh output std per layer at initialization", xlabel="layer", ylabel="std (log scale)")
    ax.legend(fontsize=7)

    ax = fig.add_subplot(grid[1, 4:8])
    for k, (config, run) in enumerate(runs.items()):
        label = name(*config) + (" (lesson 6's model)" if config == LESSON6 else "")
        color = "C5" if config == LESSON6 else COLORS.get(config[:2], f"C{6 + k}")
        width = 2.5 if config == main_config else 1.2
        ax.plot(run["history"]["step"], run["history"]["dev"], marker=".", color=color, lw=width, label=label)
    ax.axhline(metrics["ref_loss"], color="0.3", ls="--", lw=1, label="best bigram model of the dev words")
    ax.set(title="(f) dev loss during training, same steps and batches", xlabel="step", ylabel="dev loss (nats)")
    top = min(3.0, max(max(r["history"]["dev"]) for r in runs.values()) + 0.05)
    ax.set_ylim(min(r["best"]["dev"] for r in runs.values()) - 0.05, top)
    ax.legend(fontsize=7)

    ax = fig.add_subplot(grid[1, 8:12])
    history = runs[main_config]["history"]
    ratios = np.array(history["ratio"])
    for i in range(ratios.shape[1]):
        ax.semilogy(history["ratio_step"], ratios[:, i], color=colors[i], lw=1, label=f"layer {i + 1}")
    ax.axhline(1e-3, color="C3", ls="--", lw=1, label="rule of thumb, 1e-3")
    ax.set(title=f"(g) update / weights per step: {main_config[0]} init, norm {main_config[1]}", xlabel="step")
    ax.set_ylabel("|dW| / |W| (log scale)")
    ax.legend(fontsize=7)

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "dnn_batchnorm")


if __name__ == "__main__":
    common.run(main)
