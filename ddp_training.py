"""Lesson 6's model, trained with SGD on several processes by DistributedDataParallel: same arithmetic, other places.

What you will learn
- torch.distributed: a process group of N workers (ranks 0..N-1) that can exchange tensors; on the
  CPU through the gloo backend (here over the loopback address 127.0.0.1), on CUDA GPUs through nccl;
- DistributedDataParallel (DDP): each worker holds a full copy of the model and computes the
  gradient of its own share of every batch; during backward() DDP averages the gradients of all
  workers (an all-reduce), so every worker then takes the same optimizer step;
- data parallelism changes where the arithmetic happens, not what is computed: N workers with B
  examples each end where one process with batches of N * B ends, up to float rounding. The lesson
  runs that single-process reference itself and prints the largest parameter difference;
- what breaks the equivalence (BatchNorm statistics per worker, seeds per worker, uneven last
  batches) and how PyTorch deals with each;
- what it costs: steps per second with 1 and N workers, and the share of time in communication.

Run it:
    python ddp_training.py                        # starts --workers 2 processes itself (CPU: gloo)
    python ddp_training.py --workers 4 --steps 500
    torchrun --nproc-per-node 2 ddp_training.py   # let torchrun start the processes instead
"""

# %% Setup
import contextlib
import datetime
import importlib
import json
import logging
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import common
import mlp_embedding as lesson6


def parse_args(argv):
    p = common.parser(__doc__, epochs=None, lr=0.1, lr_help="learning rate of plain SGD")
    device = next(action for action in p._actions if action.dest == "device")
    device.help = "where to train; auto picks cuda when there is a GPU for every worker, else cpu (mps: no backend)"
    p.add_argument(
        "--workers",
        type=common.positive_int,
        default=2,
        help="processes to start (ignored under torchrun, which says how many there are)",
    )
    p.add_argument(
        "--batch-size",
        type=common.positive_int,
        default=256,
        help="examples per step, over all workers together; each worker takes batch-size / workers of them",
    )
    p.add_argument("--steps", type=common.positive_int, default=1000, help="gradient steps")
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
    p.add_argument(
        "--threads", type=common.positive_int, default=1, help="CPU threads of each worker (torch.set_num_threads)"
    )
    p.add_argument(
        "--timeout",
        type=common.positive_float,
        default=60.0,
        help="seconds a worker waits for the others (to form the group, and in each collective) before it gives up",
    )
    p.add_argument("--print-every", type=common.positive_int, default=200, help="steps between progress lines")
    p.add_argument(
        "--out",
        type=common.output_dir,
        default=common.REPO / "out" / "ddp_training",
        metavar="DIR",
        help="checkpoint folder (default: out/ddp_training beside the lessons)",
    )
    args = p.parse_args(argv)
    if args.timeout > 86_400:
        p.error(f"argument --timeout: at most 86400 (a day), got {args.timeout:g}")
    if not 0 <= args.val_fraction < 0.5:
        p.error(f"argument --val-fraction: must be in [0, 0.5), got {args.val_fraction}")
    return args


def check_split(batch_size, workers):
    """Each worker must get the same, non-zero number of examples: else DDP's average is not the batch mean."""
    if workers > batch_size:
        raise common.LessonError(f"{workers} workers but --batch-size {batch_size}: some worker would get no examples")
    if batch_size % workers:
        raise common.LessonError(
            f"--batch-size {batch_size} does not split evenly over {workers} workers; "
            f"use a multiple of {workers}, e.g. {batch_size // workers * workers or workers}"
        )


# %% Data: lesson 6's names, split and examples, made the same way by every worker
def load_data(args, gen):
    """itos and the (X, Y) train and dev examples; the same split as lesson 6 with the same seed."""
    words = lesson6.load_words(args.data, gen)
    train_words, dev_words, _ = lesson6.split_words(words, args.val_fraction)
    itos = [lesson6.BOUNDARY, *sorted(set("".join(words)))]
    stoi = {c: i for i, c in enumerate(itos)}
    Xtr, Ytr = lesson6.examples(train_words, stoi, args.block_size)
    Xdev, Ydev = lesson6.examples(dev_words, stoi, args.block_size)
    if args.batch_size > len(Xtr):
        raise common.LessonError(f"--batch-size {args.batch_size} is larger than the data ({len(Xtr)} examples)")
    return itos, Xtr, Ytr, Xdev, Ydev


# %% Model: lesson 6's MLP as an nn.Module, with lesson 6's initial weights
def make_model(vocab_size, args, gen, batchnorm=False):
    """Embedding, block_size * emb_dim -> hidden (tanh) x layers -> vocab logits.

    batchnorm=True puts a BatchNorm1d before the first tanh: used only to show what it does to DDP.
    """
    params = lesson6.init_model(vocab_size, args, gen)
    layers = [nn.Embedding(vocab_size, args.emb_dim), nn.Flatten()]
    width = args.block_size * args.emb_dim
    for layer in range(1, args.layers + 1):
        linear = nn.Linear(width, args.hidden)
        with torch.no_grad():  # nn.Linear keeps its weight as (out, in): lesson 6's W transposed
            linear.weight.copy_(params[f"W{layer}"].T)
            linear.bias.copy_(params[f"b{layer}"])
        layers += [linear, nn.BatchNorm1d(args.hidden)] if batchnorm and layer == 1 else [linear]
        layers.append(nn.Tanh())
        width = args.hidden
    out = nn.Linear(width, vocab_size)
    with torch.no_grad():
        layers[0].weight.copy_(params["C"])
        out.weight.copy_(params["Wout"].T)
        out.bias.copy_(params["bout"])
    return nn.Sequential(*layers, out)


def start(args):
    """(itos, (Xtr, Ytr, Xdev, Ydev), weights): the data, and the state of the seeded generator after it.

    Lesson 6 draws its initial weights from that state; so does initial_model(itos, args, weights).
    """
    gen = common.generator(args.seed)
    itos, *data = load_data(args, gen)
    return itos, data, gen.get_state()


def initial_model(itos, args, weights, batchnorm=False):
    """The run's initial model, drawn from `weights` (see start): lesson 6's initial weights.

    The DDP workers, the single-process reference, the BatchNorm runs (and the exercises) all start
    from it.
    """
    gen = torch.Generator()
    gen.set_state(weights)
    return make_model(len(itos), args, gen, batchnorm)


@torch.no_grad()
def evaluate(model, X, Y, batch=65_536):
    """Mean cross-entropy over all of X, Y."""
    model.eval()
    total = sum(
        F.cross_entropy(model(X[i : i + batch]), Y[i : i + batch], reduction="sum").item()
        for i in range(0, len(X), batch)
    )
    model.train()
    return total / len(X)


def snapshot(model):
    """A copy of the parameters, to compare with another run's later."""
    return [p.detach().clone() for p in model.parameters()]


def max_difference(first, second):
    return max((a - b).abs().max().item() for a, b in zip(first, second))


# %% Training loop: the same function for a DDP worker and for the single-process reference
def draw_batch(n, args, batches):
    """One global batch: args.batch_size example indices out of n, drawn with replacement from `batches`."""
    return torch.randint(0, n, (args.batch_size,), generator=batches)


def train(model, Xtr, Ytr, args, batches, share, steps, record_every=None, say=None):
    """`steps` steps of SGD on rows `share` of each global batch; returns the batch losses, snapshots, seconds.

    Every step draws one global batch from `batches`, a fresh common.batch_generator(args.seed) in
    every worker: the same generator in the same state, so all draw the same indices, and each trains
    on its own slice of them: `share` is slice(rank * B, (rank + 1) * B). The reference trains on all
    of it.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    device = Xtr.device
    losses = torch.zeros(steps, device=device)
    snapshots = {0: snapshot(model)} if record_every else {}
    start = time.perf_counter()
    try:
        for step in range(steps):
            batch = draw_batch(len(Xtr), args, batches)[share].to(device)
            logits = model(Xtr[batch])
            loss = F.cross_entropy(logits, Ytr[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # under DDP: the gradients of all workers are averaged here, before it returns
            optimizer.step()
            losses[step] = loss.detach()  # kept on the device: no wait for the GPU at every step
            if record_every and ((step + 1) % record_every == 0 or step + 1 == steps):
                snapshots[step + 1] = snapshot(model)
            if (step + 1) % args.print_every == 0 or step + 1 == steps:
                guess = math.log(logits.shape[1])  # uniform guessing; far above it, the run has diverged
                if not math.isfinite(loss.item()) or loss.item() > 2 * guess:
                    raise common.LessonError(
                        f"diverged at step {step}: the batch loss {loss.item():.3g} is over twice uniform "
                        f"guessing's {guess:.2f}; lower --lr (now {args.lr:g})"
                    )
                if say:
                    speed = (step + 1) / (time.perf_counter() - start)
                    say(f"step {step + 1:5d} | loss on this worker's share {loss.item():.4f} | {speed:5.0f} steps/s")
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the GPU runs behind Python: wait for it before reading the clock
    return losses, snapshots, time.perf_counter() - start


# %% Cost: how much of a step is communication
def communication_seconds(model, rounds=50):
    """Seconds that one all-reduce of all the gradients takes: the communication DDP adds to every step.

    DDP sends the gradients in buckets and starts each bucket's all-reduce as soon as backward has
    computed it, so in a large model part of this time overlaps the rest of backward. This model's
    gradients (0.5 MB) fit in DDP's first bucket (1 MiB by default): their one all-reduce starts when
    backward has computed the last of them, so none of it overlaps, and this is about what it adds.
    Measured as the steps are: `rounds` all-reduces back to back, the total divided by their number,
    a mean to set against the mean time of a step. The two are taken at different moments, so on a
    busy machine other programs may disturb one more than the other.
    """
    device = next(model.parameters()).device
    gradients = torch.zeros(sum(p.numel() for p in model.parameters()), device=device)
    dist.barrier()  # start together: else the time includes waiting for the slower worker
    start = time.perf_counter()
    for _ in range(rounds):
        dist.all_reduce(gradients)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / rounds


# %% One worker: join the group, train with DDP, leave; then rank 0 compares with the single process
def worker(rank, world_size, local_rank, args, init_method):
    """What every process runs; rank 0 alone prints, evaluates, saves, and returns the metrics."""
    say = common.say(args.quiet or rank != 0)
    # Device per rank: worker r on GPU r of its machine (local_rank), or all on the CPU.
    if args.device == "cuda":
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        # The timeout bounds every wait for the others: forming the group and every collective. A
        # worker whose peer died or hangs raises an error instead of waiting forever.
        dist.init_process_group(
            backend,
            init_method=init_method,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=args.timeout),
            device_id=device if backend == "nccl" else None,
        )
        run = train_ddp(rank, world_size, args, device, backend, say)
        dist.destroy_process_group()
        # Rank 0 alone, the others gone: evaluate, and train the single-process reference to compare.
        return compare(args, world_size, run, say) if rank == 0 else None
    finally:
        if dist.is_initialized():  # left by an error
            dist.destroy_process_group()
        torch.set_num_threads(threads)  # as it was: with one worker, this is the caller's own process


def train_ddp(rank, world_size, args, device, backend, say):
    itos, (Xtr, Ytr, Xdev, Ydev), weights = start(args)  # every model of the run starts from `weights`
    Xtr, Ytr = Xtr.to(device), Ytr.to(device)
    B = args.batch_size // world_size
    share = slice(rank * B, (rank + 1) * B)  # this worker's rows of every global batch

    model = DDP(initial_model(itos, args, weights).to(device))  # copies rank 0's weights to all: same start
    n_params = sum(p.numel() for p in model.parameters())
    say(f"{world_size} workers ({backend}, device {device.type}, {args.threads} thread(s) each), each with")
    say(f"the whole model ({n_params} parameters) and {B} of every {args.batch_size} examples; {args.steps} steps")
    record_every = max(1, args.steps // 20)
    batches = common.batch_generator(args.seed)  # the same stream in every worker: the same global batches
    losses, snapshots, seconds = train(model, Xtr, Ytr, args, batches, share, args.steps, record_every, say)
    # Each worker saw only its share: the loss of the whole batch is the mean of the workers' losses.
    dist.all_reduce(losses)
    losses /= world_size
    comm = communication_seconds(model)

    # The same start with a BatchNorm layer, for a few steps: plain, and (GPUs only) SyncBatchNorm.
    bn_runs = {}
    bn_steps = min(50, args.steps)
    kinds = ["batchnorm", "syncbatchnorm"] if device.type == "cuda" else ["batchnorm"]
    if B < 2:  # BatchNorm needs 2 rows or more to have a variance
        kinds = []
    for kind in kinds:
        bn_model = initial_model(itos, args, weights, batchnorm=True)
        if kind == "syncbatchnorm":  # statistics over all workers' rows: an all-gather in every forward
            bn_model = nn.SyncBatchNorm.convert_sync_batchnorm(bn_model)
        # By default (forward_sync_buffers, named broadcast_buffers before PyTorch 2.13) every forward
        # first copies rank 0's buffers, here BatchNorm's running mean and variance, to every worker.
        # The parameters compared below do not depend on them: in training mode BatchNorm normalizes
        # with the batch's own statistics.
        bn_model = DDP(bn_model.to(device))
        train(bn_model, Xtr, Ytr, args, common.batch_generator(args.seed), share, bn_steps)
        bn_runs[kind] = snapshot(bn_model.module)

    if rank == 0:
        save_checkpoint(args.out / "model.pt", model.module, itos, args)
    dist.barrier()  # nobody leaves before the checkpoint is written (a next step could read it)
    return {
        "model": model.module,
        "itos": itos,
        "data": (Xtr, Ytr, Xdev.to(device), Ydev.to(device)),
        "weights": weights,
        "losses": losses.cpu(),
        "snapshots": snapshots,
        "seconds": seconds,
        "comm": comm,
        "bn_runs": bn_runs,
        "bn_steps": bn_steps,
    }


def save_checkpoint(path, model, itos, args):
    config = {k: getattr(args, k) for k in ["block_size", "emb_dim", "hidden", "layers"]}
    state = {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "itos": itos, "config": config}
    common.write_atomically(path, lambda tmp: torch.save(state, tmp))


# %% Result: the single-process reference, the same steps on whole batches
def compare(args, world_size, run, say):
    model, itos, weights = run["model"], run["itos"], run["weights"]
    Xtr, Ytr, Xdev, Ydev = run["data"]
    reference = initial_model(itos, args, weights).to(Xtr.device)
    batches = common.batch_generator(args.seed)  # the workers' batches, each whole
    ref_losses, ref_snapshots, ref_seconds = train(
        reference, Xtr, Ytr, args, batches, slice(None), args.steps, max(1, args.steps // 20)
    )
    steps = sorted(run["snapshots"])
    differences = [max_difference(run["snapshots"][s], ref_snapshots[s]) for s in steps]
    max_diff = max(differences)
    metrics = {
        "loss": evaluate(model, Xtr, Ytr),
        "ref_loss": evaluate(reference, Xtr, Ytr),
        "dev_loss": evaluate(model, Xdev, Ydev) if len(Xdev) else None,
        "ref_dev_loss": evaluate(reference, Xdev, Ydev) if len(Xdev) else None,
        "max_param_diff": max_diff,
        "max_loss_diff": (run["losses"] - ref_losses.cpu()).abs().max().item(),
        "workers": world_size,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "ddp_steps_per_s": args.steps / run["seconds"],
        "ref_steps_per_s": args.steps / ref_seconds,
        "comm_ms": run["comm"] * 1e3,
        "comm_share": run["comm"] / (run["seconds"] / args.steps),
        "seconds": run["seconds"],
        "ref_seconds": ref_seconds,
        "device": str(Xtr.device),
    }
    metrics["gap"] = metrics["loss"] / metrics["ref_loss"] - 1
    metrics["ddp_examples_per_s"] = metrics["ddp_steps_per_s"] * args.batch_size
    metrics["ref_examples_per_s"] = metrics["ref_steps_per_s"] * args.batch_size
    say(
        f"DDP, {world_size} workers x {args.batch_size // world_size}: train loss {metrics['loss']:.6f}, "
        f"dev {metrics['dev_loss'] or float('nan'):.6f}"
    )
    say(
        f"one process x {args.batch_size}:  train loss {metrics['ref_loss']:.6f}, "
        f"dev {metrics['ref_dev_loss'] or float('nan'):.6f}"
    )
    say("largest |parameter difference| DDP - one process, over the run:")
    say("  " + ", ".join(f"step {s}: {d:.1e}" for s, d in list(zip(steps, differences))[:: max(1, len(steps) // 5)]))
    say(f"  at most {max_diff:.2e}; batch losses differ by at most {metrics['max_loss_diff']:.1e}")
    if max_diff > 1e-4:
        raise common.LessonError(f"DDP and the single process differ by {max_diff:.2e} > 1e-4: not equivalent")
    say("equivalent up to float rounding: the gradient's terms are added in another order (each worker's,")
    say("then across workers), and float addition is not associative")
    say(
        f"speed: 1 process  {metrics['ref_steps_per_s']:6.1f} steps/s, "
        f"{metrics['ref_examples_per_s']:8.0f} examples/s, {ref_seconds:.2f} s ({args.threads} thread(s))"
    )
    say(
        f"       {world_size} workers {metrics['ddp_steps_per_s']:6.1f} steps/s, "
        f"{metrics['ddp_examples_per_s']:8.0f} examples/s, {run['seconds']:.2f} s ({args.threads} thread(s) each)"
    )
    say(
        f"communication: one all-reduce of all {sum(p.numel() for p in model.parameters())} gradients takes "
        f"{run['comm'] * 1e3:.2f} ms on average, {metrics['comm_share']:.0%} of the mean DDP step"
    )

    # BatchNorm: each DDP worker normalizes with the mean and variance of its own rows only.
    bn_steps = run["bn_steps"]
    bn = dict.fromkeys(["bn_diff_whole_batch", "bn_diff_per_worker", "bn_diff_sync"])
    if run["bn_runs"]:
        references = {}
        for name, pieces in [("whole batch", 1), ("per worker's rows", world_size)]:
            bn_ref = initial_model(itos, args, weights, batchnorm=True).to(Xtr.device)
            train_batchnorm_reference(bn_ref, Xtr, Ytr, args, common.batch_generator(args.seed), bn_steps, pieces)
            references[name] = snapshot(bn_ref)
        ddp_bn = run["bn_runs"]["batchnorm"]
        bn["bn_diff_whole_batch"] = max_difference(ddp_bn, references["whole batch"])
        bn["bn_diff_per_worker"] = max_difference(ddp_bn, references["per worker's rows"])
        say(f"with BatchNorm, after {bn_steps} steps, largest |parameter difference| of DDP against one process that")
        say(f"  normalizes the whole batch:          {bn['bn_diff_whole_batch']:.1e}")
        say(f"  normalizes each worker's rows apart: {bn['bn_diff_per_worker']:.1e}")
        if "syncbatchnorm" in run["bn_runs"]:
            bn["bn_diff_sync"] = max_difference(run["bn_runs"]["syncbatchnorm"], references["whole batch"])
            say(f"  normalizes the whole batch, DDP with SyncBatchNorm: {bn['bn_diff_sync']:.1e}")
        else:
            say("  (SyncBatchNorm, sharing the statistics over the workers, needs one GPU per worker: --device cuda)")
    else:
        say("BatchNorm is not compared: it needs at least 2 examples per worker")
    metrics.update(bn)
    metrics["bn_steps"] = bn_steps

    if not args.no_figure:
        curves = {"ddp": run["losses"].numpy(), "ref": ref_losses.cpu().numpy()}
        path = plot(args, metrics, curves, steps, differences)
        say(f"figure: {path}")
    if args.metrics:
        common.save_metrics(metrics, args.metrics)
    return metrics


def train_batchnorm_reference(model, Xtr, Ytr, args, batches, steps, pieces):
    """One process: each global batch cut into `pieces` equal parts, each part normalized by its own statistics.

    With pieces=1 that is ordinary BatchNorm on the whole batch; with pieces=workers it is what DDP
    computes. The loss is the mean of the parts' losses, as DDP's averaged gradient is.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    for _ in range(steps):
        batch = draw_batch(len(Xtr), args, batches).to(Xtr.device)
        parts = batch.chunk(pieces)
        loss = sum(F.cross_entropy(model(Xtr[part]), Ytr[part]) for part in parts) / pieces
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


# %% Launch: start the workers ourselves, or run as one of torchrun's
def free_port():
    """A TCP port on the loopback address that is free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_device(name, workers):
    """'cuda' or 'cpu': DDP here needs one GPU per worker; MPS has no torch.distributed backend."""
    if name == "mps":
        raise common.LessonError(
            "--device mps: torch.distributed's backends take no tensors on Apple's MPS; use --device cpu"
        )
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        return "cuda" if gpus >= workers else "cpu"
    if name == "cuda" and gpus < workers:
        raise common.LessonError(f"--device cuda with {workers} workers needs {workers} GPUs; this machine has {gpus}")
    return name


@contextlib.contextmanager
def loopback_only():
    """gloo and nccl on the loopback interface: nothing leaves this machine (else they pick one by hostname).

    A variable the user has set is kept; what is set here is undone at the end.
    """
    loopback = next((name for _, name in socket.if_nameindex() if name.startswith("lo")), None)
    added = [name for name in ["GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"] if loopback and name not in os.environ]
    os.environ.update(dict.fromkeys(added, loopback))
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def spawned_worker(rank, world_size, args, port, result_path):
    """The entry point of a process that main() started: join the group on 127.0.0.1, pass on rank 0's metrics."""
    sys.stdout.reconfigure(line_buffering=True)  # print each line as it comes, even into a pipe
    with loopback_only():
        metrics = worker(rank, world_size, rank, args, f"tcp://127.0.0.1:{port}")
    if rank == 0:
        common.save_metrics(metrics, result_path)


def launch(args, entry=None):
    """Start args.workers processes running `entry` (spawned_worker); rank 0's metrics, or a LessonError."""
    if entry is None:
        # The workers are fresh Python processes: they find `entry` by importing this file by its module
        # name. A function of a notebook or of `__main__` they could not find, so take it from the module.
        if str(common.REPO) not in sys.path:
            sys.path.insert(0, str(common.REPO))
        entry = importlib.import_module("ddp_training").spawned_worker
    # multiprocessing reads __main__.__spec__ to know what to import in each worker; IPython's %reset
    # deletes it. None says: nothing (the workers import this module, as above).
    if not hasattr(sys.modules["__main__"], "__spec__"):
        sys.modules["__main__"].__spec__ = None
    # torch's own warning that it stops the other workers would repeat our one-line message.
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "metrics.json"
        context = mp.start_processes(
            entry, (args.workers, args, free_port(), result_path), nprocs=args.workers, join=False, start_method="spawn"
        )
        try:
            while not context.join():  # returns when all are done; raises when one failed, after stopping the rest
                pass
        except KeyboardInterrupt:
            for process in context.processes:
                process.terminate()
            for process in context.processes:
                process.join()
            raise common.LessonError(f"interrupted: all {args.workers} workers stopped") from None
        except mp.ProcessRaisedException as e:
            last = e.msg.strip().splitlines()[-1].removeprefix("common.LessonError: ")
            raise common.LessonError(f"worker {e.error_index} failed, the others were stopped: {last}") from None
        except mp.ProcessExitedException as e:
            raise common.LessonError(
                f"worker {e.error_index} died ({e.signal_name or f'exit code {e.exit_code}'}), the others were stopped"
            ) from None
        if not result_path.exists():  # every worker left early without an error: Ctrl-C reached them first
            raise common.LessonError(f"interrupted: all {args.workers} workers stopped")
        metrics = json.loads(result_path.read_text())
    if common.in_notebook() and not args.no_figure:  # worker 0 drew it in its own process: show it here
        from IPython.display import Image, display

        display(Image(filename=args.figs_dir / "ddp_training.png"))
    return metrics


# %% Run
def main(argv=None):
    args = parse_args(argv)
    env = os.environ
    under_torchrun = "RANK" in env and "WORLD_SIZE" in env and "MASTER_ADDR" in env
    workers = int(env["WORLD_SIZE"]) if under_torchrun else args.workers
    # The flags and the data file are checked here, before any process starts.
    check_split(args.batch_size, workers)
    args.device = pick_device(args.device, int(env.get("LOCAL_WORLD_SIZE", workers)) if under_torchrun else workers)
    common.read_words(args.data, lesson6.BOUNDARY)
    if under_torchrun:
        return worker(int(env["RANK"]), workers, int(env.get("LOCAL_RANK", env["RANK"])), args, "env://")
    if workers == 1:  # one worker: no process to start, this one is rank 0 of a group of one
        with loopback_only():
            return worker(0, 1, 0, args, f"tcp://127.0.0.1:{free_port()}")
    return launch(args)


# %% Look: loss curves on top of each other, the parameter difference, the cost
def plot(args, metrics, curves, steps, differences):
    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    n = metrics["workers"]
    fig.suptitle(
        f"DistributedDataParallel: {n} workers x {args.batch_size // n} examples against one process x "
        f"{args.batch_size} ({metrics['device']})",
        fontsize=13,
    )

    ax = axes[0, 0]
    x = np.arange(1, len(curves["ref"]) + 1)
    ax.plot(x, curves["ref"], color="C0", lw=3, alpha=0.5, label=f"one process, batches of {args.batch_size}")
    ax.plot(x, curves["ddp"], color="C3", lw=0.8, label=f"DDP: mean of {n} workers' losses")
    ax.set(title="(a) batch loss at every step: the curves coincide", xlabel="step", ylabel="cross-entropy (nats)")
    ax.legend(fontsize=9)

    ax = axes[0, 1]
    ax.semilogy(steps[1:], differences[1:], "o-", color="C2")
    ax.axhline(1e-4, color="C3", ls="--", lw=1, label="1e-4: the bound the lesson asserts")
    ax.set(
        title="(b) largest |parameter difference|, DDP - one process",
        xlabel="step",
        ylabel="max over all parameters (log scale)",
    )
    ax.legend(fontsize=9)

    ax = axes[1, 0]
    labels = ["1 process", f"{n} workers"]
    speeds = [metrics["ref_steps_per_s"], metrics["ddp_steps_per_s"]]
    bars = ax.bar(labels, speeds, color=["C0", "C3"])
    ax.bar_label(
        bars,
        labels=[f"{s:.0f} steps/s\n{s * args.batch_size:,.0f} examples/s" for s in speeds],
        fontsize=9,
    )
    ax.set_ylim(0, max(speeds) * 1.3)
    ax.set(
        title=f"(c) throughput, {args.threads} thread{'s' if args.threads > 1 else ''} per process; "
        f"all-reduce {metrics['comm_share']:.0%} of the mean DDP step",
        ylabel="steps per second",
    )

    ax = axes[1, 1]
    cases = {
        f"no BatchNorm\n(this lesson,\n{args.steps} steps)": metrics["max_param_diff"],
        "BatchNorm: vs one process\nnormalizing each\nworker's rows": metrics["bn_diff_per_worker"],
        "BatchNorm: vs one process\nnormalizing the\nwhole batch": metrics["bn_diff_whole_batch"],
        "SyncBatchNorm: vs\nthe whole batch": metrics["bn_diff_sync"],
    }
    names = [name for name, value in cases.items() if value is not None]
    values = [cases[name] for name in names]
    # A difference of exactly 0 has no place on a log axis: its bar is drawn at the bottom, labelled 0.
    floor = 1e-9
    bars = ax.bar(names, [max(v, floor) for v in values], color=["C2", "C2", "C3", "C1"][: len(values)])
    ax.bar_label(bars, labels=[f"{v:.1e}" if v else "0 (bit for bit)" for v in values], fontsize=9)
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, 1)
    ax.axhline(1e-4, color="C3", ls="--", lw=1, label="1e-4: the bound the lesson asserts")
    ax.legend(fontsize=8, loc="upper left")
    ax.set(
        title=f"(d) what DDP computes with BatchNorm (BatchNorm runs: {metrics['bn_steps']} steps)",
        ylabel="largest |parameter difference| (log scale)",
    )
    ax.tick_params(axis="x", labelsize=8)

    fig.tight_layout()
    return common.save_figure(fig, args.figs_dir, "ddp_training")


if __name__ == "__main__":
    common.run(main)
