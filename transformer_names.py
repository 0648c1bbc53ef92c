"""Self-attention and a small transformer (Vaswani et al. 2017): names, every position trained at once.

What you will learn
- attention is a weighted average: a query is compared with every key (a dot product, the score),
  the scores go through a softmax (the weights, which sum to 1), and the output is the weighted mix
  of the values; scaled dot-product attention does it for all queries at once,
  softmax(Q K^T / sqrt(d)) V, and the sqrt(d) keeps the scores of unit-variance q and k at variance 1
  instead of d, where the softmax would saturate (Bahdanau, Cho and Bengio 2015 introduced attention,
  scoring with a small network; Luong, Pham and Manning 2015 scored with the dot product; Vaswani et
  al. 2017 added the 1 / sqrt(d) and the multiple heads);
- the causal mask: position t may look at positions <= t only, so one forward pass over a name
  padded to a fixed length predicts its next character at every position at once; the padded
  targets are ignored (ignore_index), so the loss is the per-character cross-entropy of lessons 5-7;
- positions: without position embeddings and without the mask, self-attention cannot tell the order
  of its inputs (it is permutation-equivariant); a learned vector per position breaks that on purpose
  (with the causal mask a model can still infer position from how many positions it sees: Haviv et
  al. 2022);
- a block: multi-head attention and a feed-forward layer, each behind a LayerNorm (Ba, Kiros and
  Hinton 2016; placed before each branch, "pre-norm", as in GPT-2 and analysed by Xiong et al. 2020)
  and on a residual path, with dropout; why a deep stack needs that path: without it the positions'
  vectors become alike (Dong, Cordonnier and Loukas 2021), measured with lesson 7's statistics;
- packing: the names of a batch laid end to end in a few rows, with a mask that keeps each name to
  itself (Krell et al. 2021), so that a step computes names rather than padding;
- sampling one character at a time, and a cache of keys and values with which each new character
  runs every layer at its own position only, and one row of attention, instead of the whole prefix
  again;
- against lesson 6's MLP trained for the same wall time, and the bigram optimum, on the same dev words.

A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. Gomez, L. Kaiser, I. Polosukhin (2017),
Attention Is All You Need, NeurIPS. D. Bahdanau, K. Cho, Y. Bengio (2015), Neural Machine Translation
by Jointly Learning to Align and Translate, ICLR. J. Ba, J. Kiros, G. Hinton (2016), Layer
Normalization, arXiv:1607.06450. M.-T. Luong, H. Pham, C. Manning (2015), Effective Approaches to
Attention-based Neural Machine Translation, EMNLP. D. Hendrycks, K. Gimpel (2016), Gaussian Error
Linear Units (GELUs), arXiv:1606.08415. A. Radford, J. Wu, R. Child, D. Luan, D. Amodei, I. Sutskever
(2019), Language Models are Unsupervised Multitask Learners (GPT-2), OpenAI. R. Xiong et al. (2020),
On Layer Normalization in the Transformer Architecture, ICML. Y. Dong, J.-B. Cordonnier, A. Loukas
(2021), Attention is not all you need: pure attention loses rank doubly exponentially with depth,
ICML. M. M. Krell et al. (2021), Efficient Sequence Packing without Cross-contamination,
arXiv:2107.02027. A. Haviv, O. Ram, O. Press, P. Izsak, O. Levy (2022), Transformer Language Models
without Positional Encodings Still Learn Positional Information, Findings of EMNLP. It parallels
Andrej Karpathy's makemore (its transformer) and his lecture "Let's build GPT: from scratch, in
code, spelled out" (Neural Networks: Zero to Hero).

Run it:
    python transformer_names.py                   # train, compare with lesson 6's MLP for the same time
    python transformer_names.py --sample-only     # load the saved model and make up names
    python transformer_names.py --steps 1000 --no-compare   # a quick look
"""

# %% Setup
import math
import time
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import common
import mlp_embedding  # lesson 6: the names, the split, the bigram reference, and the MLP to compare with

IGNORE = -1  # the target of a padded position: F.cross_entropy(..., ignore_index=IGNORE) leaves it out
DEPTH = 8  # blocks in the fresh stacks that show why the residual path matters


def parse_args(argv):
    p = common.parser(__doc__, epochs=None, lr=5e-3, lr_help="peak learning rate of AdamW")
    p.add_argument(
        "--data",
        default=common.REPO / "data" / "names.txt",
        metavar="PATH",
        help="word list, one word per line (default: data/names.txt beside the lessons)",
    )
    p.add_argument(
        "--val-fraction", type=common.fraction, default=0.1, help="share of words for dev, and again for test"
    )
    p.add_argument(
        "--block-size",
        type=common.positive_int,
        default=16,
        help="positions per row, padded or packed: the start marker and up to block-size - 1 characters "
        "(names.txt's longest has 15)",
    )
    p.add_argument("--emb-dim", type=common.positive_int, default=64, help="width d of every position's vector")
    p.add_argument("--heads", type=common.positive_int, default=4, help="attention heads; must divide --emb-dim")
    p.add_argument("--layers", type=common.positive_int, default=2, help="transformer blocks")
    p.add_argument(
        "--dropout",
        type=common.fraction,
        default=0.05,
        help="share of the embeddings' and of each residual branch's outputs dropped in training",
    )
    p.add_argument("--batch-size", type=common.positive_int, default=64, help="names per step")
    p.add_argument("--steps", type=common.positive_int, default=6000, help="gradient steps")
    p.add_argument(
        "--weight-decay", type=common.non_negative_float, default=0.1, help="AdamW's decay of the weight matrices"
    )
    p.add_argument("--eval-every", type=common.positive_int, default=250, help="steps between dev evaluations")
    p.add_argument(
        "--no-compare",
        action="store_true",
        help="skip training lesson 6's MLP for the same wall time (quicker)",
    )
    p.add_argument(
        "--out",
        type=common.output_dir,
        default=common.REPO / "out" / "transformer_names",
        metavar="DIR",
        help="checkpoint folder (default: out/transformer_names beside the lessons)",
    )
    p.add_argument("--sample-only", action="store_true", help="load the checkpoint from --out and sample")
    p.add_argument("--samples", type=common.non_negative_int, default=10, help="names to sample at the end")
    args = p.parse_args(argv)
    if not 0 <= args.val_fraction < 0.5:
        p.error(f"argument --val-fraction: must be in [0, 0.5), got {args.val_fraction}")
    if args.emb_dim % args.heads:
        p.error(
            f"--heads {args.heads} does not divide --emb-dim {args.emb_dim}: each head gets an equal share of "
            "the width (try --heads 1, 2 or 4 with --emb-dim 64)"
        )
    return args


# %% Data: names padded to a fixed length, a target at every position
def sequences(words, stoi, block_size):
    """X: (n, block_size) inputs, the start marker then the name; Y: the next character at every position.

    "emma" with block 8: X = . e m m a . . .   Y = e m m a . - - -   (- is IGNORE: padding, no target)
    The padding after the end is never seen by a real position (the mask lets a position look back
    only), so it can be any character; it is the boundary here.
    """
    X = torch.zeros(len(words), block_size, dtype=torch.long)
    Y = torch.full((len(words), block_size), IGNORE, dtype=torch.long)
    for i, word in enumerate(words):
        ix = [stoi[c] for c in word]
        X[i, 1 : len(ix) + 1] = torch.tensor(ix, dtype=torch.long)
        Y[i, : len(ix) + 1] = torch.tensor([*ix, 0], dtype=torch.long)
    return X, Y


class Packed(NamedTuple):
    """Names laid end to end in rows of a fixed width, for training: (rows, width) each."""

    X: torch.Tensor  # inputs: each name's start marker and characters, then the next name's
    Y: torch.Tensor  # targets; IGNORE on the padding at the end of a row
    positions: torch.Tensor  # each position's place in its own name: 0 at its start marker
    name: torch.Tensor  # which name of the batch each position holds; -1 on the padding

    def allowed(self):
        """(rows, 1, width, width): a position may look at itself and the earlier positions of its own
        name, so every name sees exactly what it sees alone in a padded row (one mask for every head)."""
        width = self.X.shape[1]
        earlier = torch.ones(width, width, dtype=torch.bool, device=self.X.device).tril()
        return ((self.name[:, :, None] == self.name[:, None, :]) & earlier)[:, None]


def first_fit_decreasing(sizes, width):
    """Bins of room `width`: each size, the largest first, goes into the first bin it fits in."""
    bins, room = [], []
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        b = next((b for b, r in enumerate(room) if r >= sizes[i]), len(bins))
        if b == len(bins):
            bins.append([])
            room.append(width)
        bins[b].append(i)
        room[b] -= sizes[i]
    return bins


def pack(X, Y, lengths, batches):
    """Each batch of names (a row of `batches`, indices into X, Y) packed into rows of X's width.

    A padded row of X spends its positions after the name on padding, which costs as much to compute
    as a character: a batch of 64 random names cut after its longest name is still about a third
    padding, in rows of 16 more than half. Packed (Krell et al. 2021), the names of a batch fill a
    few rows, and the mask of `Packed.allowed` keeps each name to itself. Returns the rows of all the
    batches and where each batch's rows start.
    """
    width = X.shape[1]
    placed, starts = [], [0]  # per name: its row of X, where it starts in the packed rows, its size, its tag
    for names in batches.tolist():
        sizes = [lengths[n] + 1 for n in names]  # the start marker and the characters
        bins = first_fit_decreasing(sizes, width)
        for r, bin in enumerate(bins, start=starts[-1]):
            at = r * width
            for i in bin:  # tag: the name's place in its batch, unique in the batch (a name can come twice)
                placed.append((names[i], at, sizes[i], i))
                at += sizes[i]
        starts.append(starts[-1] + len(bins))
    src, place, size, tag = (torch.tensor(column) for column in zip(*placed))
    which = torch.repeat_interleave(torch.arange(len(size)), size)  # the name each packed position holds
    j = torch.arange(int(size.sum())) - (size.cumsum(0) - size)[which]  # its place in that name
    at = place[which] + j
    X_, Y_, positions, name = (torch.full((starts[-1] * width,), fill, dtype=torch.long) for fill in (0, IGNORE, 0, -1))
    X_[at], Y_[at] = X[src[which], j], Y[src[which], j]
    positions[at], name[at] = j, tag[which]
    return Packed(*(t.view(-1, width) for t in (X_, Y_, positions, name))), starts


def check_block_size(words, block_size, flag="--block-size"):
    """Refuse a block too short for the longest word: its last characters would have no place."""
    longest = max((len(w) for w in words), default=0)
    if longest + 1 > block_size:
        raise common.LessonError(
            f"{flag} {block_size} is shorter than the longest word ({longest} characters) plus the start marker: "
            f"its last characters and its end would not be trained or scored; give --block-size {longest + 1}"
        )


# %% Attention by hand
def attention(q, k, v, causal=True, allowed=None):
    """softmax(q k^T / sqrt(d)) v, and the weights: (..., T, d) queries against (..., S, d) keys and values.

    causal: query i is the i-th of the last T of S positions and may look at the positions up to its
    own only (with a cache of earlier keys, S > T). allowed: a (..., T, S) mask of its own instead (True
    where a query may look), as packed rows need. A masked score is -inf, so its weight is exactly 0.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if allowed is None and causal:
        T, S = scores.shape[-2:]
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return weights @ v, weights


def one_query_by_hand():
    """One query against three keys in 2-D: the scores, the softmax weights and the mix of the values."""
    q = torch.tensor([2.0, 1.0])
    K = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # the first key is the nearest to the query's direction
    V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    scores = K @ q / math.sqrt(len(q))
    weights = torch.exp(scores) / torch.exp(scores).sum()  # softmax, written out
    return {"q": q, "K": K, "V": V, "scores": scores, "weights": weights, "out": weights @ V}


def scale_statistics(gen, dims=(16, 64), keys=16, n=4096):
    """With q and k of unit-variance entries, q . k has variance d: the score std and the largest softmax
    weight (mean over n queries against `keys` keys), without and with the division by sqrt(d)."""
    found = {}
    for d in dims:
        q = torch.randn(n, 1, d, generator=gen)
        k = torch.randn(n, keys, d, generator=gen)
        scores = (q @ k.transpose(1, 2)).squeeze(1)
        for name, s in [("unscaled", scores), ("scaled", scores / math.sqrt(d))]:
            found[f"{name}_{d}"] = {
                "std": float(s.std()),
                "largest_weight": float(F.softmax(s, dim=-1).max(dim=-1).values.mean()),
            }
    return found


# %% Model: blocks of multi-head attention and feed-forward layers, pre-norm, on a residual path
class Dropout(nn.Module):
    """Dropout with a mask drawn from the model's own generator.

    nn.Dropout draws from PyTorch's global random generator, which --seed does not reach; the masks
    come from a generator seeded from the batch stream instead (on the model's device), so a run
    repeats to the last digit. Zeroes each entry with probability p and scales the rest by 1/(1-p),
    so the expected output is the input; in eval mode it does nothing.
    """

    def __init__(self, p):
        super().__init__()
        self.p, self.gen = p, None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.gen, device=x.device) >= self.p
        return x * keep / (1 - self.p)


class SelfAttention(nn.Module):
    """Multi-head causal self-attention: `heads` attentions of width d / heads side by side, then W_o."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.causal = True
        self.qkv = nn.Linear(d, 3 * d)  # W_q, W_k, W_v stacked, as nn.MultiheadAttention's in_proj_weight
        self.proj = nn.Linear(d, d)  # W_o: mixes the heads' outputs
        self.weights = None  # the last attention weights, (batch, heads, T, S), kept to draw

    def forward(self, x, cache=None, allowed=None):
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        # (B, T, d) -> (B, heads, T, d / heads): each head attends with its own slice of the width
        q, k, v = (t.view(B, T, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # sampling: the keys and values of the earlier positions are kept, not recomputed
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        out, self.weights = attention(q, k, v, causal=self.causal, allowed=allowed)
        return self.proj(out.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    """x + attention(LayerNorm(x)), then x + feed-forward(LayerNorm(x)): pre-norm, each branch added back."""

    def __init__(self, d, heads, dropout, residual=True):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), SelfAttention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))  # per position
        self.drop = Dropout(dropout)
        self.residual = residual

    def forward(self, x, cache=None, allowed=None):
        a = self.drop(self.attn(self.ln1(x), cache, allowed))
        x = x + a if self.residual else a
        f = self.drop(self.ffn(self.ln2(x)))
        return x + f if self.residual else f


class Transformer(nn.Module):
    """Character and position embeddings, `layers` blocks, a final LayerNorm and 27 logits per position."""

    def __init__(self, vocab_size, block_size, d, heads, layers, dropout, residual=True):
        super().__init__()
        self.block_size = block_size
        self.C = nn.Embedding(vocab_size, d)  # a vector per character, as lesson 6's table C
        self.P = nn.Embedding(block_size, d)  # a learned vector per position
        self.positions = True
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, heads, dropout, residual) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, vocab_size)

    def embed(self, X, start=0, packing=None):
        """The vectors the first block sees: C[X] plus the vector of each position (start: of the first;
        packing: each position's place in its own name, for packed rows)."""
        x = self.C(X)
        if self.positions:
            x = x + (self.P.weight[start : start + X.shape[1]] if packing is None else self.P(packing.positions))
        return x

    def forward(self, X, caches=None, start=0, x=None, packing=None):
        """Logits (B, T, vocab) for inputs X (B, T); x: the embedded inputs, if given instead; packing: the
        positions and the mask of packed rows (see `pack`)."""
        x = self.drop(self.embed(X, start, packing) if x is None else x)
        allowed = None if packing is None else packing.allowed()
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i], allowed)
        return self.out(self.ln(x))

    def set_dropout_generator(self, gen):
        for m in self.modules():
            if isinstance(m, Dropout):
                m.gen = gen


@torch.no_grad()
def initialize(model, gen, out_scale=0.03):
    """Draw every parameter with the seeded generator (PyTorch's own init draws from a global one).

    Linear weights N(0, 1 / fan_in), which keeps a unit-variance input at unit variance; the last layer
    of each residual branch smaller still, by 1 / sqrt(2 * layers), so that the 2 * layers branches
    added along the residual path start small next to the embeddings (the residual table shows the
    spread growing only a little from block to block; a block without the path keeps N(0, 1 / fan_in)
    there); embeddings N(0, 1);
    the output layer scaled down by out_scale so that the first guesses are near uniform (lesson 7).
    """
    residual = [b for b in model.blocks if b.residual]  # a stack without the path has no sum to keep small
    branch_ends = {id(b.attn.proj.weight) for b in residual} | {id(b.ffn[2].weight) for b in residual}
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
        elif p.dim() == 1:  # LayerNorm's scale
            p.fill_(1.0)
        elif name in ("C.weight", "P.weight"):
            p.copy_(torch.randn(p.shape, generator=gen))
        else:
            std = 1 / math.sqrt(p.shape[1])
            if id(p) in branch_ends:
                std /= math.sqrt(2 * len(model.blocks))
            if name == "out.weight":
                std *= out_scale
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def build(vocab_size, args, gen, device, residual=True, layers=None):
    model = Transformer(vocab_size, args.block_size, args.emb_dim, args.heads, layers or args.layers, args.dropout,
                        residual)  # fmt: skip
    initialize(model, gen)
    return model.to(device)


# %% Checks: the library's attention, causality, positions, the residual path
@torch.no_grad()
def library_attention_differences(model, X):
    """Max |difference| of the first block's attention, by hand, against F.scaled_dot_product_attention
    (on the same q, k, v) and against nn.MultiheadAttention given the same weights (the whole layer)."""
    model.eval()
    attn = model.blocks[0].attn
    x = model.blocks[0].ln1(model.embed(X))
    B, T, d = x.shape
    q, k, v = (t.view(B, T, attn.heads, d // attn.heads).transpose(1, 2) for t in attn.qkv(x).split(d, dim=-1))
    mine, _ = attention(q, k, v)
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    mha = nn.MultiheadAttention(d, attn.heads, batch_first=True).to(x.device)
    mha.in_proj_weight.copy_(attn.qkv.weight)
    mha.in_proj_bias.copy_(attn.qkv.bias)
    mha.out_proj.weight.copy_(attn.proj.weight)
    mha.out_proj.bias.copy_(attn.proj.bias)
    mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)  # True: may not look there
    library, _ = mha(x, x, x, attn_mask=mask, is_causal=True, need_weights=False)
    return {"sdpa": float((mine - sdpa).abs().max()), "mha": float((attn(x) - library).abs().max())}


def causality(model, X, t):
    """Changing the inputs after position t: the largest change of the logits at positions <= t (and at
    the later ones); the gradient of the logits at position t with respect to the later inputs."""
    model.eval()
    with torch.no_grad():
        changed = X.clone()
        changed[:, t + 1 :] = (X[:, t + 1 :] + 1) % model.C.num_embeddings  # every later character another one
        before, after = model(X), model(changed)
    diff = (before - after).abs()
    x = model.embed(X).detach().requires_grad_(True)
    model(X, x=x)[:, t].sum().backward()
    grad = x.grad.abs()
    return {
        "logits_up_to_t": float(diff[:, : t + 1].max()),
        "logits_after_t": float(diff[:, t + 1 :].max()),
        "grad_after_t": float(grad[:, t + 1 :].max()),
        "grad_up_to_t": float(grad[:, : t + 1].max()),
    }


@torch.no_grad()
def packing_difference(model, X, Y, lengths, batch_size=64):
    """The names X, Y, in batches of `batch_size`, packed as training packs them: the largest |difference|
    of a logit of a packed name from the same logit with the name alone in its padded row."""
    model.eval()
    batches = torch.arange(len(X) // batch_size * batch_size).view(-1, batch_size)  # a last partial batch left out
    packed, starts = pack(X.cpu(), Y.cpu(), lengths, batches)
    packed = Packed(*(t.to(X.device) for t in packed))
    rows_batch = torch.repeat_interleave(torch.arange(len(batches)), torch.tensor(starts).diff()).to(X.device)
    real = packed.name >= 0
    name = batches.to(X.device)[rows_batch[:, None].expand_as(real)[real], packed.name[real]]  # its row of X
    alone = model(X)[name, packed.positions[real]]
    return float((model(packed.X, packing=packed)[real] - alone).abs().max())


@torch.no_grad()
def permutation_differences(model, X, gen):
    """Without the causal mask: permute the positions of the inputs; how far the outputs are from the
    outputs permuted the same way, without the position embeddings and with them."""
    model.eval()
    perm = torch.randperm(X.shape[1], generator=gen).to(X.device)
    found = {}
    for positions in [False, True]:
        model.positions = positions
        for block in model.blocks:
            block.attn.causal = False
        try:
            found["with" if positions else "without"] = float((model(X[:, perm]) - model(X)[:, perm]).abs().max())
        finally:
            model.positions = True
            for block in model.blocks:
                block.attn.causal = True
    return found


@torch.no_grad()
def residual_statistics(vocab_size, args, X, Y, device):
    """Lesson 7's statistics for fresh stacks of DEPTH blocks with and without the residual path: the std
    of the vectors after each block, and how alike the positions' vectors become (the mean cosine
    similarity of two different positions of a name). Without the path, attention averages the
    positions' vectors block after block until they point the same way (Dong et al. 2021): the later
    blocks could no longer tell one position from another."""
    found = {}
    real = Y != IGNORE
    pair = real[:, :, None] & real[:, None, :] & ~torch.eye(X.shape[1], dtype=torch.bool, device=X.device)
    for residual in [True, False]:
        model = build(vocab_size, args, common.generator(args.seed), device, residual=residual, layers=DEPTH)
        model.eval()  # no dropout: the statistics of the weights themselves
        stats = {"std": [], "similarity": []}
        x = model.embed(X)
        for block in model.blocks:
            x = block(x)
            n = F.normalize(x, dim=-1)
            cos = n @ n.transpose(1, 2)  # (B, T, T): every pair of positions of a name
            stats["std"].append(float(x[real].std()))
            stats["similarity"].append(float(cos[pair].mean()))
        found["residual" if residual else "plain"] = stats
    return found


# %% Training loop
@torch.no_grad()
def evaluate(model, X, Y, batch=1024):
    """Mean cross-entropy per character over all of X, Y (padding left out), in eval mode: no dropout."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(X), batch):
        logits = model(X[i : i + batch])
        total += F.cross_entropy(logits.flatten(0, 1), Y[i : i + batch].flatten(), ignore_index=IGNORE,
                                 reduction="sum").item()  # fmt: skip
        count += int((Y[i : i + batch] != IGNORE).sum())
    model.train(was_training)
    return total / max(count, 1)


def lr_factor(step, steps):
    """The rate of `step` as a share of --lr: a linear warm-up, then a cosine decay to 1 % (as in lesson 6)."""
    warmup = min(200, steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train(model, data, args, batch_gen, on_eval=None, chunk=100):
    """Mini-batch AdamW; returns the history and the best dev state.

    The loop waits for the device once per `chunk` steps, not at every step: the batch indices are
    drawn `chunk` steps at a time, packed (on the CPU: Xtr, Ytr stay there) and moved once, each
    step's loss stays on the device, and the running loss (for the printout and the divergence check)
    is read back once per chunk. history["positions"] counts the positions the packed rows computed,
    the real ones among them, and what padded rows cut after each batch's longest name would have had.
    """
    Xtr, Ytr, lengths, Xdev, Ydev = data
    device = Xdev.device
    decayed = [p for name, p in model.named_parameters() if p.dim() == 2 and name not in ("C.weight", "P.weight")]
    others = [p for p in model.parameters() if all(p is not w for w in decayed)]
    groups = [{"params": decayed, "weight_decay": args.weight_decay}, {"params": others, "weight_decay": 0.0}]
    # fused: one operation per parameter group (the CPU's default loops over the parameters, several each)
    optimizer = torch.optim.AdamW(groups, lr=args.lr, fused=device.type in ("cpu", "cuda"))
    guess = math.log(model.out.out_features)  # uniform guessing; far above it, the run has diverged
    history = {"step": [], "train": [], "dev": [], "time": [], "seconds": 0.0}
    history["positions"] = {"packed": 0, "real": 0, "padded": 0}
    best = {"dev": float("inf"), "state": None, "step": 0}
    losses = torch.zeros(args.steps, device=device)
    running, evaluating, checked = None, 0.0, 0
    start = time.perf_counter()
    model.train()
    try:
        for step in range(args.steps):
            if step % chunk == 0:
                shape = (min(chunk, args.steps - step), args.batch_size)
                batches = torch.randint(0, len(Xtr), shape, generator=batch_gen)
                packed, starts = pack(Xtr, Ytr, lengths, batches)
                sizes = torch.tensor(lengths)[batches] + 1  # each name's positions: its start marker and characters
                counted = history["positions"]
                counted["packed"] += packed.X.numel()
                counted["real"] += int(sizes.sum())
                counted["padded"] += int(sizes.amax(dim=1).sum()) * args.batch_size  # rows cut after the longest
                packed = Packed(*(t.to(device) for t in packed))
            rows = slice(starts[step % chunk], starts[step % chunk + 1])
            batch = Packed(*(t[rows] for t in packed))
            for group in optimizer.param_groups:
                group["lr"] = args.lr * lr_factor(step, args.steps)
            logits = model(batch.X, packing=batch)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.Y.flatten(), ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)  # backward() adds to .grad: clear the last step's first
            loss.backward()
            optimizer.step()
            losses[step] = loss.detach()
            done = step + 1
            if done % args.eval_every and done % chunk and done != args.steps:
                continue
            for value in losses[checked:done].tolist():  # the running mean, and a stop if it has diverged
                checked += 1
                running = value if running is None else 0.98 * running + 0.02 * value
                if not math.isfinite(running) or running > 2 * guess:
                    raise common.LessonError(
                        f"diverged at step {checked}: the running loss {running:.3g} is over twice uniform guessing's "
                        f"{guess:.2f}; lower --lr (now {args.lr:g}; the default is {parse_args([]).lr:g})"
                    )
            history["seconds"] = time.perf_counter() - start - evaluating
            if done % args.eval_every and done != args.steps:
                continue
            tic = time.perf_counter()
            dev = evaluate(model, Xdev, Ydev) if len(Xdev) else running
            evaluating += time.perf_counter() - tic
            for key, value in [("step", done), ("train", running), ("dev", dev), ("time", history["seconds"])]:
                history[key].append(value)
            if dev < best["dev"]:
                best = {
                    "dev": dev,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                    "step": done,
                }
            if on_eval:
                on_eval(done, running, dev, done / (time.perf_counter() - start), best)
    except KeyboardInterrupt:
        history["interrupted"] = True  # Ctrl-C: stop here and keep the best model found so far
    return history, best


# %% Sampling: with and without a cache of keys and values
@torch.no_grad()
def generate(model, gen, cache, length=None):
    """Character indices drawn one at a time, from the start marker: until the end marker (length None),
    or exactly `length` of them, the end marker left out of the draw. With `cache`, each step feeds only
    the newest character and attends to the kept keys and values; without, the whole prefix again."""
    model.eval()
    device = model.C.weight.device
    context, out = [0], []
    caches = [{} for _ in model.blocks] if cache else None
    while len(out) < (length or model.block_size - 1):
        if cache:
            logits = model(torch.tensor([context[-1:]], device=device), caches, start=len(context) - 1)
        else:
            logits = model(torch.tensor([context], device=device))
        probs = F.softmax(logits[0, -1].float(), dim=0).cpu()
        if length is not None:
            probs[0] = 0.0  # a fixed length: no end before it
        ix = int(torch.multinomial(probs, 1, generator=gen))
        if ix == 0:
            break
        out.append(ix)
        context.append(ix)
    return out


def sample_names(model, itos, seed, n, cache=True):
    gen = common.generator(seed)
    return ["".join(itos[ix] for ix in generate(model, gen, cache)) for _ in range(n)]


def sampling_cost(model, seed, repeats):
    """Seconds per character, with and without the cache, drawing `repeats` sequences of block_size - 1
    characters (the lesson's length) each way from the same seed; and whether both drew the same ones."""
    length = model.block_size - 1
    found = {}
    for cache in [True, False]:
        gen = common.generator(seed)
        generate(model, common.generator(seed), cache, length)  # once untimed: the first call pays for setup
        start = time.perf_counter()
        drawn = [generate(model, gen, cache, length) for _ in range(repeats)]
        found["cache" if cache else "no_cache"] = (time.perf_counter() - start) / (repeats * length)
        found["drawn_cache" if cache else "drawn_no_cache"] = drawn
    return found


# %% Checkpoints
def save_checkpoint(path, state, itos, args, step, dev_loss):
    """The weights, the vocabulary and the configuration, written through a temporary file."""
    config = {k: getattr(args, k) for k in ["block_size", "emb_dim", "heads", "layers"]}
    saved = {"state": {k: v.cpu() for k, v in state.items()}, "itos": itos, "config": config}
    saved.update(step=step, dev_loss=dev_loss)
    common.write_atomically(path, lambda tmp: torch.save(saved, tmp))


def load_checkpoint(path):
    """(the saved dict, the model built from it), or a one-line error if the file is missing, damaged or foreign."""
    try:
        # weights_only: the unpickler is restricted to tensors and plain containers, not arbitrary objects
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise common.LessonError(f"no checkpoint at {path}: train first (without --sample-only)") from None
    except Exception as e:  # torch raises many kinds for a damaged file
        raise common.LessonError(
            f"{path} is not a readable checkpoint ({type(e).__name__}); delete it and train again"
        ) from None
    try:
        c = saved["config"]
        model = Transformer(len(saved["itos"]), c["block_size"], c["emb_dim"], c["heads"], c["layers"], 0.0)
        model.load_state_dict(saved["state"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, ZeroDivisionError):
        raise common.LessonError(f"{path} does not match this lesson's model; delete it and train again") from None
    return saved, model


# %% Reference: lesson 6's MLP, trained for the same wall time
def lesson6_run(steps, args, evals=10):
    """Lesson 6's model and training with its defaults but `steps` steps and `evals` dev evaluations: its
    words, weights and batches drawn as `python mlp_embedding.py --steps STEPS` draws them (with 10000
    steps and 10 evaluations, lesson 6's own run)."""
    argv = ["--data", str(args.data), "--val-fraction", str(args.val_fraction), "--seed", str(args.seed)]
    args6 = mlp_embedding.parse_args([*argv, "--steps", str(steps), "--eval-every", str(max(1, steps // evals))])
    device = common.device(args.device)
    gen = common.generator(args6.seed)
    words = mlp_embedding.load_words(args6.data, gen)
    train_words, dev_words, _ = mlp_embedding.split_words(words, args6.val_fraction)
    itos = [mlp_embedding.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    data = [t.to(device) for w in (train_words, dev_words) for t in mlp_embedding.examples(w, stoi, args6.block_size)]
    params = {k: v.to(device) for k, v in mlp_embedding.init_model(len(itos), args6, gen).items()}
    history, best = mlp_embedding.train(params, *data, args6, common.batch_generator(args6.seed))
    return {"dev_loss": best["dev"], "history": history, "seconds": history["seconds"], "steps": steps}


def lesson6_for(seconds, args, probe_steps=1000):
    """lesson6_run with as many steps as take `seconds` of training, at the speed a short run measures."""
    probe = lesson6_run(min(probe_steps, max(1, int(seconds * 50))), args, evals=1)
    return lesson6_run(max(1, round(seconds * probe["steps"] / max(probe["seconds"], 1e-9))), args)


# %% Run
def main(argv=None):
    args = parse_args(argv)
    say = common.say(args.quiet)
    device = common.device(args.device)
    checkpoint = args.out / "model.pt"

    if args.sample_only:
        saved, model = load_checkpoint(checkpoint)
        model.to(device)
        names = sample_names(model, saved["itos"], args.seed, args.samples or 10)
        say(f"checkpoint {checkpoint}: step {saved['step']}, dev loss {saved['dev_loss']:.4f}")
        say("\n".join(names))
        return {"samples": names, "dev_loss": saved["dev_loss"]}

    # Lesson 6's data: the same shuffle (seed), the same split into train / dev / test words.
    gen = common.generator(args.seed)
    words = mlp_embedding.load_words(args.data, gen)
    check_block_size(words, args.block_size)
    train_words, dev_words, test_words = mlp_embedding.split_words(words, args.val_fraction)
    if args.batch_size > len(train_words):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the data ({len(train_words)} names)")
    itos = [mlp_embedding.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    vocab = len(itos)
    (Xtr, Ytr), (Xdev, Ydev), (Xte, Yte) = (
        sequences(w, stoi, args.block_size) for w in (train_words, dev_words, test_words)
    )
    lengths = [len(w) for w in train_words]
    packable = (Xtr, Ytr, lengths)  # on the CPU: the batches are packed there, a chunk of steps at a time
    Xtr, Ytr, Xdev, Ydev, Xte, Yte = (t.to(device) for t in (Xtr, Ytr, Xdev, Ydev, Xte, Yte))
    ref_loss = mlp_embedding.bigram_nll(dev_words, stoi) if dev_words else mlp_embedding.bigram_nll(train_words, stoi)
    say(
        f"data: {len(train_words)} / {len(dev_words)} / {len(test_words)} train / dev / test words, padded to "
        f"{args.block_size} positions: {int((Ytr != IGNORE).sum())} training targets, {vocab} characters, "
        f"device {device}"
    )
    say(f"the best bigram model of the dev words themselves: {ref_loss:.4f} nats per character")

    # Attention as a weighted average, by hand.
    h = one_query_by_hand()
    fmt = lambda t: "(" + ", ".join(f"{x:.2f}" for x in t.tolist()) + ")"  # noqa: E731
    say(f"one query q = {fmt(h['q'])} against keys {', '.join(fmt(k) for k in h['K'])}:")
    say(f"  scores q . k / sqrt(2) = {fmt(h['scores'])}; softmax weights {fmt(h['weights'])} (they sum to 1)")
    say(f"  output = the weighted mix of the values {', '.join(fmt(v) for v in h['V'])} = {fmt(h['out'])}")
    scale = scale_statistics(common.generator(args.seed))
    for d in (16, 64):
        u, s = scale[f"unscaled_{d}"], scale[f"scaled_{d}"]
        say(
            f"d = {d}, unit-variance q and k, 16 keys: score std {u['std']:.2f} (sqrt(d) = {math.sqrt(d):g}), largest "
            f"weight {u['largest_weight']:.2f}; divided by sqrt(d): std {s['std']:.2f}, "
            f"largest weight {s['largest_weight']:.2f}"
        )

    # The model, its loss before training, and the checks that hold whatever its weights.
    model = build(vocab, args, gen, device)
    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"model: blocks {args.layers}, width {args.emb_dim}, {args.heads} heads of {args.emb_dim // args.heads}, "
        f"dropout {args.dropout:g}, {n_params} parameters; AdamW at {args.lr:g}, batches of {args.batch_size} names, "
        f"{args.steps} steps"
    )
    probe_X, probe_Y = Xtr[: min(len(Xtr), 512)], Ytr[: min(len(Ytr), 512)]
    init_loss = evaluate(model, probe_X, probe_Y)
    say(
        f"initial loss on {len(probe_X)} training names: {init_loss:.4f}; "
        f"knowing nothing: ln {vocab} = {math.log(vocab):.4f}"
    )
    stats = residual_statistics(vocab, args, probe_X, probe_Y, device)
    say(f"fresh stacks of {DEPTH} blocks at initialization, with the residual path / without it:")
    say("block | vector std  | cosine of two positions")
    r, p = stats["residual"], stats["plain"]
    for i in range(DEPTH):
        say(
            f"{i + 1:5d} | {r['std'][i]:4.2f} / {p['std'][i]:4.2f} "
            f"| {r['similarity'][i]:11.2f} / {p['similarity'][i]:4.2f}"
        )

    # Training.
    batch_gen = common.batch_generator(args.seed)
    dropout_seed = int(torch.randint(0, 2**62, (1,), generator=batch_gen))  # first, whatever the dropout: same batches
    model.set_dropout_generator(torch.Generator(device).manual_seed(dropout_seed))

    def report(step, train_loss, dev_loss, speed, best):
        if dev_loss <= best["dev"]:
            save_checkpoint(checkpoint, best["state"], itos, args, best["step"], best["dev"])
        say(f"step {step:6d} | train {train_loss:.4f} | dev {dev_loss:.4f} | {speed:5.0f} steps/s")

    history, best = train(model, (*packable, Xdev, Ydev), args, batch_gen, report)
    if history.get("interrupted"):
        say(f"interrupted: the best model so far (step {best['step']}) is in {checkpoint}")
    if best["state"] is None:
        raise common.LessonError("stopped before the first evaluation: nothing to report (see --eval-every)")
    model.load_state_dict(best["state"])
    model.set_dropout_generator(None)
    metrics = {
        "loss": evaluate(model, Xtr, Ytr),
        "dev_loss": evaluate(model, Xdev, Ydev) if len(Xdev) else None,
        "test_loss": evaluate(model, Xte, Yte) if len(Xte) else None,
        "ref_loss": ref_loss,
        "seconds": history["seconds"],
        "best_step": best["step"],
        "parameters": n_params,
        "device": str(device),
        "init_loss": init_loss,
        "history": {k: history[k] for k in ("step", "train", "dev", "time")},
        "scale": scale,
        "residual": stats,
    }
    compared = metrics["dev_loss"] if metrics["dev_loss"] is not None else metrics["loss"]
    metrics["gap"] = compared / ref_loss - 1
    losses = ", ".join(
        f"{split} {metrics[key]:.4f}"
        for split, key in [("train", "loss"), ("dev", "dev_loss"), ("test", "test_loss")]
        if metrics[key] is not None
    )
    say(f"best model (step {best['step']}): {losses} nats; {history['seconds']:.1f} s of training")
    counted = history["positions"]
    metrics["packing"] = {
        "rows_per_batch": counted["packed"] / args.block_size / max(1, history["step"][-1]),
        "real_packed": counted["real"] / counted["packed"],
        "real_padded": counted["real"] / counted["padded"],
    }
    say(f"against the bigram optimum of the dev words: {metrics['gap']:+.1%}")

    # What the trained model proves: the library computes the same attention; the mask is exact.
    check_X = (Xdev if len(Xdev) else Xtr)[:64]
    library = library_attention_differences(model, check_X)
    t = args.block_size // 2 - 1
    causal = causality(model, check_X, t)
    perm = permutation_differences(model, check_X, common.generator(args.seed))
    some = (dev_words or train_words)[:128]  # two batches of 64 (or one of what there is)
    packed_batch = min(64, len(some))
    some = some[: len(some) // packed_batch * packed_batch]
    some_X, some_Y = (t.to(device) for t in sequences(some, stoi, args.block_size))
    metrics["packing"]["logits"] = packing_difference(model, some_X, some_Y, [len(w) for w in some], packed_batch)
    metrics.update(attention_vs_sdpa=library["sdpa"], attention_vs_mha=library["mha"], causality=causal,
                   permutation=perm)  # fmt: skip
    say(
        f"attention by hand against F.scaled_dot_product_attention(..., is_causal=True): max difference "
        f"{library['sdpa']:.1e}; against nn.MultiheadAttention with the same weights: {library['mha']:.1e}"
    )
    say(
        f"causality: changing the characters after position {t} changes the logits up to it by at most "
        f"{causal['logits_up_to_t']:g} (those after it by up to {causal['logits_after_t']:.2f}); gradient of position "
        f"{t}'s logits with respect to the later inputs: at most {causal['grad_after_t']:g}"
    )
    p = metrics["packing"]
    say(
        f"packing: a batch of {args.batch_size} names filled {p['rows_per_batch']:.1f} rows of {args.block_size} "
        f"positions on average, {p['real_packed']:.0%} of them a name's, not padding (rows cut after each batch's "
        f"longest name: {p['real_padded']:.0%}); the logits of {len(some)} names packed in batches of {packed_batch} "
        f"differ from their logits alone by at most {p['logits']:g}"
    )
    say(
        f"positions, without the mask: permuting the inputs permutes the outputs to within {perm['without']:.1e} "
        f"without position embeddings; with them the outputs change by up to {perm['with']:.2f}"
    )

    # Sampling: the cache changes the cost; the characters agree because the cached keys and values are the
    # ones a full pass recomputes (equal up to float rounding, which could flip a draw near a boundary; the
    # check below says whether it did in this run).
    names = sample_names(model, itos, args.seed, args.samples)
    cost = sampling_cost(model, args.seed, repeats=max(1, min(20, args.samples * 2)))
    metrics["samples"] = names
    metrics["same_with_cache"] = names == sample_names(model, itos, args.seed, args.samples, cache=False) and (
        cost["drawn_cache"] == cost["drawn_no_cache"]
    )
    metrics["ms_per_char"] = {"cache": 1e3 * cost["cache"], "no_cache": 1e3 * cost["no_cache"]}
    say(
        f"sampling names of {args.block_size - 1} characters, one at a time: {1e3 * cost['cache']:.2f} ms per "
        f"character with the cache of keys and values, {1e3 * cost['no_cache']:.2f} ms without "
        f"({cost['no_cache'] / cost['cache']:.1f}x); "
        f"the same characters both ways: {metrics['same_with_cache']}"
    )
    if names:
        say("samples: " + ", ".join(names))

    # Lesson 6's MLP for the same wall time, on the same dev words.
    lesson6 = None
    if not args.no_compare:
        lesson6 = lesson6_for(history["seconds"], args)
        metrics["lesson6"] = {k: lesson6[k] for k in ["dev_loss", "seconds", "steps"]}
        metrics["lesson6"].update(time=lesson6["history"]["time"], dev=lesson6["history"]["dev"])
        winner = "the transformer" if compared < lesson6["dev_loss"] else "lesson 6's MLP"
        say(
            f"lesson 6's MLP (its defaults, {lesson6['steps']} steps) in {lesson6['seconds']:.1f} s of training: "
            f"dev {lesson6['dev_loss']:.4f}; the transformer in {history['seconds']:.1f} s: dev {compared:.4f}; "
            f"lower: {winner}"
        )

    if not args.no_figure:
        path = plot(args, model, itos, history, lesson6, metrics, cost, check_X)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


# %% Look: attention weights of each head, dev loss against wall time, the cost of sampling
def plot(args, model, itos, history, lesson6, metrics, cost, X):
    heads = args.heads
    fig = plt.figure(figsize=(16, 10), layout="constrained")
    grid = fig.add_gridspec(2, 3 * max(heads, 4))
    fig.suptitle(
        f"A transformer on names: blocks {args.layers}, width {args.emb_dim}, {heads} heads, "
        f"{metrics['parameters']} parameters",
        fontsize=13,
    )
    name = max((x for x in X.tolist()), key=lambda row: sum(1 for c in row[1:] if c))  # a long dev name
    length = 1 + sum(1 for c in name[1:] if c)
    model.eval()
    with torch.no_grad():
        model(torch.tensor([name[:length]], device=model.C.weight.device))
    labels = [".", *(itos[c] for c in name[1:length])]
    weights = model.blocks[-1].attn.weights[0].cpu().numpy()
    cols = 3 * max(heads, 4) // heads
    head_axes = []
    for h in range(heads):
        ax = fig.add_subplot(grid[0, h * cols : (h + 1) * cols])
        head_axes.append(ax)
        image = ax.imshow(weights[h], cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(length), labels)
        ax.set_yticks(range(length), labels)
        title = f"(a) attention weights, block {args.layers}, head 1" if h == 0 else f"head {h + 1}"
        ax.set(title=title, xlabel="key (looked at)")
        if h == 0:
            ax.set_ylabel("query (predicting the next character)")
    fig.colorbar(image, ax=head_axes, fraction=0.02, pad=0.01, shrink=0.8, label="weight")  # one scale for every head

    width = 3 * max(heads, 4) // 3
    ax = fig.add_subplot(grid[1, 0:width])
    ax.plot(history["time"], history["dev"], marker=".", label="transformer, dev")
    if lesson6 is not None:
        ax.plot(lesson6["history"]["time"], lesson6["history"]["dev"], marker=".", color="C1",
                label=f"lesson 6's MLP, dev ({lesson6['steps']} steps)")  # fmt: skip
    ax.set(title="(b) dev loss against training time, same run", xlabel="training seconds", ylabel="nats per character")
    shown = history["dev"] + (lesson6["history"]["dev"] if lesson6 is not None else [])
    bottom, top = min(shown) - 0.03, max(min(max(shown), metrics["ref_loss"] + 0.15), min(shown)) + 0.03
    ax.set_ylim(bottom, top)
    if metrics["ref_loss"] < top:
        ax.axhline(metrics["ref_loss"], color="C3", ls="--", lw=1, label="best bigram model of the dev words")
    else:  # far above the curves: say where it is instead of squeezing them
        ax.plot([], [], " ", label=f"best bigram model of the dev words: {metrics['ref_loss']:.4f}, above the plot")
    ax.legend(fontsize=8)

    ax = fig.add_subplot(grid[1, width : 2 * width])
    ax.plot(history["step"], history["train"], label="train (running mean of batch losses, dropout on)")
    ax.plot(history["step"], history["dev"], label="dev")
    ax.axvline(metrics["best_step"], color="0.5", ls=":", lw=1, label="best dev: the saved model")
    ax.set(title="(c) loss during training", xlabel="step", ylabel="nats per character")
    shown = history["train"] + history["dev"]
    ax.set_ylim(min(shown) - 0.03, max(min(max(shown), metrics["ref_loss"] + 0.15), min(shown)) + 0.03)
    ax.legend(fontsize=8)

    ax = fig.add_subplot(grid[1, 2 * width :])
    r, p = metrics["residual"]["residual"], metrics["residual"]["plain"]
    blocks = np.arange(1, DEPTH + 1)
    ax.plot(blocks, r["similarity"], "o-", label="with the residual path")
    ax.plot(blocks, p["similarity"], "s-", label="without it")
    ax.set(title=f"(d) two fresh {DEPTH}-block stacks: how alike the positions become", xlabel="block",
           ylabel="mean cosine of two positions' vectors", ylim=(0, 1.05))  # fmt: skip
    ax.legend(fontsize=8)
    return common.save_figure(fig, args.figs_dir, "transformer_names")


if __name__ == "__main__":
    common.run(main)
