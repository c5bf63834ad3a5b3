"""Training across processes (notebook 13): data parallelism by hand, DDP and FSDP on CPU processes over gloo.

Notebook 13 writes the training scripts in cells (``%%writefile``): data parallelism by hand, then the same loop
with PyTorch's ``DistributedDataParallel`` and ``fully_shard`` (FSDP), each launched by ``torchrun`` and checked
against one process training on the same global batch; then the library path, ``accelerate launch`` with
:func:`lmkit.training.fit`. This module holds what those scripts, the notebook and the tests share; the loops
themselves are the lesson, and stay in the cells:

| name | what it is |
|---|---|
| :func:`check_world_size`, :func:`shard` | the global batch split into equal contiguous shards, one per process |
| :func:`lesson_problem`, :func:`lesson_model` | notebook 10's tiny GPT on the training plays: seeded, no dropout |
| :func:`full_state`, :func:`save_weights`, :func:`load_weights` | the weights to compare: :func:`max_difference`, :func:`relative_distance` |
| :func:`launch`, :func:`write_report` | ``torchrun --standalone --nproc-per-node N script ...``, checked first |
| :class:`CollectiveLog` | every collective a process calls, with the bytes it hands over (a dispatch mode) |
| :func:`loopback_bytes`, :func:`bench_collectives` | bytes really sent over the loopback interface (Linux) |
| :func:`state_bytes`, :func:`zero_bytes` | memory per process measured, and the ZeRO arithmetic (Rajbhandari et al. 2020) |
| :func:`ring_bytes` | bytes one process sends in a ring collective (Patarasuk and Yuan 2009) |
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from lmkit import checks

# ------------------------------------------------------------------------------------------------ the global batch
def check_world_size(global_batch: int, world_size: int) -> int:
    """The shard size ``global_batch // world_size``; a one-line ``ValueError`` unless ``world_size`` divides it.

    Equal shards make the mean of the per-process mean losses equal the mean over the global batch, which is what
    lets data parallelism reproduce one process exactly. Called before any process starts (:func:`launch`) and again
    in each worker.
    """
    global_batch = checks.integer("global_batch", global_batch, low=1, fix="examples per optimizer step, e.g. 8")
    world_size = checks.integer("world_size", world_size, low=1, fix="the number of processes, e.g. 2")
    if global_batch % world_size:
        checks.fail(f"global_batch={global_batch} is not divisible by world_size={world_size}: pick a global batch "
                    f"that is a multiple of {world_size} (e.g. {world_size * max(1, global_batch // world_size)}), "
                    "or another number of processes")
    return global_batch // world_size


def shard(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rows ``[rank·b, (rank+1)·b)`` of ``tensor`` [B, ...] with ``b = B / world_size`` (contiguous shards)."""
    size = check_world_size(tensor.shape[0], world_size)
    rank = checks.integer("rank", rank, low=0, high=world_size - 1, fix="0 <= rank < world_size")
    return tensor[rank * size:(rank + 1) * size]


# ---------------------------------------------------------------------------------------------- the lesson problem
@dataclass
class Problem:
    """A seeded training problem: ``batches`` [(x, y)] of global batches of character windows, and the model sizes."""

    batches: list[tuple[torch.Tensor, torch.Tensor]]
    vocab_size: int
    block_size: int
    n_layer: int
    n_embd: int
    lr: float = 3e-3

    @property
    def global_batch(self) -> int:
        return int(self.batches[0][0].shape[0])


def lesson_problem(steps: int = 10, global_batch: int = 8, *, block_size: int = 32, n_layer: int = 2,
                   n_embd: int = 64, seed: int = 0, chars: int = 200_000) -> Problem:
    """``steps`` global batches of ``global_batch`` windows of ``block_size`` characters from the training plays.

    Every process builds the same list from the same seed, then keeps its shard; one process keeps all of it.
    """
    from lmkit import tinygpt as tg
    from lmkit.data import corpus

    steps = checks.integer("steps", steps, low=1, fix="optimizer steps, e.g. 10")
    checks.integer("global_batch", global_batch, low=1, fix="examples per optimizer step, e.g. 8")
    text = corpus("train", max_chars=chars)
    tok = tg.CharTokenizer.from_text(text)
    ids = tok.encode(text)
    gen = torch.Generator().manual_seed(seed)
    batches = [tg.get_batch(ids, block_size, global_batch, gen) for _ in range(steps)]
    return Problem(batches, len(tok), block_size, n_layer, n_embd)


def lesson_model(problem: Problem, seed: int = 0) -> nn.Module:
    """Notebook 10's tiny GPT (two heads, no dropout) with weights drawn from ``seed``: the same on every process."""
    from lmkit import tinygpt as tg

    torch.manual_seed(seed)
    cfg = tg.GPTConfig(vocab_size=problem.vocab_size, block_size=problem.block_size, n_layer=problem.n_layer,
                       n_head=2, n_embd=problem.n_embd, dropout=0.0)
    return tg.GPT(cfg)


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter as a whole tensor (an FSDP shard is gathered with ``full_tensor()``), tied ones once."""
    out = {}
    for name, p in model.named_parameters():
        p = p.detach()
        if hasattr(p, "full_tensor"):
            p = p.full_tensor()
        out[name.removeprefix("module.")] = p.clone().contiguous()
    return out


# ------------------------------------------------------------------------------------------ weights and reports
def save_weights(model: nn.Module | dict, path: str | os.PathLike) -> Path:
    """:func:`full_state` of ``model`` (or a dict of tensors already gathered) written atomically as safetensors.

    Under FSDP, gathering the shards is a collective: call :func:`full_state` on every process, then save the dict
    on rank 0 only.
    """
    from safetensors.torch import save_file

    from lmkit.files import atomic_file

    weights = model if isinstance(model, dict) else full_state(model)
    with atomic_file(path) as tmp:
        save_file(weights, str(tmp))
    return Path(path)


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (no pickle is read)."""
    from safetensors.torch import load_file

    return load_file(str(path))


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two sets of weights with the same names; a one-line error if the
    names differ."""
    if a.keys() != b.keys():
        checks.fail(f"the weights have different names ({sorted(set(a) ^ set(b))[:4]}...): compare the same model")
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def relative_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """``‖a − b‖ / ‖a‖`` over all the tensors of two sets of weights with the same names (Frobenius norms): a
    distance that one element whose update Adam decided by the sign of a rounding error cannot dominate."""
    max_difference(a, b)  # the same names, or a one-line error
    num = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a)
    den = sum(float((a[k].double() ** 2).sum()) for k in a)
    return (num / den) ** 0.5 if den else float("inf")


def write_report(out: str | os.PathLike, rank: int, report: dict) -> Path:
    """Write one process's report as ``out/rank{rank}.json`` (atomically); :func:`launch` reads them back."""
    from lmkit.files import atomic_write_text

    return atomic_write_text(Path(out) / f"rank{rank}.json", json.dumps(report))


# ------------------------------------------------------------------------------------------ memory and messages
def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, int]:
    """Bytes this process holds for parameters, gradients and optimizer states (its local shards under FSDP).

    Counts tensor storage only (``numel · element_size``), each tied parameter once; gradients that are ``None``
    count 0, so call it after ``backward`` and before ``zero_grad``. Buffers, activations and the framework's own
    memory are not included: compare with :func:`zero_bytes`.
    """
    def local(t):
        return t.to_local() if hasattr(t, "to_local") else t

    params = list(model.parameters())  # named_parameters() already yields a tied tensor once
    out = {"parameters": sum(local(p).numel() * local(p).element_size() for p in params),
           "gradients": sum(local(p.grad).numel() * local(p.grad).element_size() for p in params
                            if p.grad is not None),
           "optimizer": 0}
    if optimizer is not None:
        for state in optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value) and value.dim() > 0:
                    out["optimizer"] += local(value).numel() * local(value).element_size()
    out["total"] = out["parameters"] + out["gradients"] + out["optimizer"]
    return out


def zero_bytes(n_params: int, world_size: int, stage: int, *, param_bytes: int = 4, grad_bytes: int = 4,
               optimizer_bytes: int = 8) -> float:
    """Bytes per process for parameters, gradients and optimizer states under ZeRO ``stage`` 0–3.

    Rajbhandari et al. 2020 (ZeRO), section 5, with Ψ = ``n_params`` and N = ``world_size``: stage 0 (plain data
    parallelism, DDP) keeps (p + g + o)·Ψ; stage 1 shards the optimizer states, (p + g)·Ψ + o·Ψ/N; stage 2 also the
    gradients, p·Ψ + (g + o)·Ψ/N; stage 3 (FSDP) everything, (p + g + o)·Ψ/N. The defaults are float32 training with
    AdamW (two float32 moments: o = 8); the paper's mixed precision is p = 2, g = 2, o = 12.
    """
    n = checks.integer("n_params", n_params, low=1, fix="the model's parameter count")
    world = checks.integer("world_size", world_size, low=1, fix="the number of processes")
    stage = checks.one_of("stage", stage, (0, 1, 2, 3))
    p, g, o = param_bytes, grad_bytes, optimizer_bytes
    return {0: (p + g + o) * n, 1: (p + g) * n + o * n / world, 2: p * n + (g + o) * n / world,
            3: (p + g + o) * n / world}[stage]


def ring_bytes(collective: str, nbytes: float, world_size: int) -> float:
    """Bytes one process sends in a ring ``collective`` over a buffer of ``nbytes`` (Patarasuk and Yuan 2009).

    ``reduce_scatter`` (``nbytes`` = the full input) and ``all_gather`` (``nbytes`` = the full output) send
    (N−1)/N of it; ``all_reduce`` is one of each, 2(N−1)/N. No algorithm sends less per process (each process must
    send or receive the other processes' parts); the ring reaches the bound, and a library may send more (notebook
    13 measures gloo's).
    """
    checks.one_of("collective", collective, ("all_reduce", "reduce_scatter", "all_gather"))
    world = checks.integer("world_size", world_size, low=1, fix="the number of processes")
    share = (world - 1) / world
    return nbytes * (2 * share if collective == "all_reduce" else share)


_COLLECTIVES = {"allreduce_": "all_reduce", "_allgather_base_": "all_gather", "allgather_": "all_gather",
                "allgather_into_tensor_coalesced_": "all_gather", "_reduce_scatter_base_": "reduce_scatter",
                "reduce_scatter_": "reduce_scatter", "reduce_scatter_tensor_coalesced_": "reduce_scatter",
                "broadcast_": "broadcast", "barrier": "barrier"}


class CollectiveLog:
    """A context manager that records every collective called on this process: ``[(name, nbytes)]`` in ``events``.

    It is a ``TorchDispatchMode``: the process-group operations (``c10d`` ops) pass through the dispatcher, from our
    own ``dist.all_reduce`` as from DDP's reducer and FSDP, so one recorder sees all three. ``nbytes`` is the size of
    the full buffer, summed over the tensors of a coalesced call: the inputs of an all-reduce or a reduce-scatter,
    the outputs of an all-gather. The recorder costs Python time on every operation of the process while it is on:
    never time a step that it records.
    """

    def __init__(self):
        self.events: list[tuple[str, int]] = []

    def __enter__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        log = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                op = getattr(func, "_opname", "") if "c10d" in str(func) else ""
                if op:
                    name = _COLLECTIVES.get(op, op)
                    # the full buffer: a reduce-scatter's inputs (its second argument), every other op's first
                    buffers = args[1] if name == "reduce_scatter" and len(args) > 1 else args[0] if args else ()
                    log.events.append((name, sum(t.numel() * t.element_size()
                                                 for t in torch.utils._pytree.tree_leaves(buffers) if torch.is_tensor(t))))
                return func(*args, **(kwargs or {}))

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)

    def totals(self) -> dict[str, int]:
        """Bytes handed to each kind of collective, summed: ``{"all_reduce": ..., ...}``."""
        out: dict[str, int] = {}
        for name, nbytes in self.events:
            out[name] = out.get(name, 0) + nbytes
        return out


def loopback_bytes() -> int | None:
    """Bytes sent so far through the loopback interface ``lo`` (``/proc/net/dev``, Linux); ``None`` elsewhere.

    Processes on one machine talk over TCP on ``lo`` under gloo, so the difference of two readings taken around a
    step (with a barrier before each) is what the step sent, plus TCP/IP headers and anything else using ``lo``.
    """
    try:
        for line in Path("/proc/net/dev").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[8])
    except (OSError, ValueError, IndexError):
        return None
    return None


# ------------------------------------------------------------------------------------------------------ launching
@dataclass
class Launch:
    """What :func:`launch` ran: the command, its exit status, what it printed, and the seconds it took."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    reports: list[dict] = field(default_factory=list)


def launch(script: str | os.PathLike, nproc: int = 2, args: tuple | list = (), *, global_batch: int | None = None,
           threads: int = 1, module: bool = False, out: str | os.PathLike | None = None, timeout: float = 600,
           cwd: str | os.PathLike | None = None) -> Launch:
    """Run ``torchrun --standalone --nproc-per-node nproc script *args`` and wait; raise if a process failed.

    ``global_batch`` is checked against ``nproc`` first, so a batch the processes cannot split equally fails here,
    before any process starts. ``threads`` sets ``OMP_NUM_THREADS`` per process (2 processes x 1 thread use 2
    cores). ``module=True`` runs ``python -m script``. ``out``: a folder where the workers write ``rank{r}.json``;
    those reports are read back into ``Launch.reports``. torchrun runs as ``python -m torch.distributed.run`` with
    this interpreter, so the notebook's environment is the workers' environment.
    """
    nproc = checks.integer("nproc", nproc, low=1, fix="the number of processes, e.g. 2")
    checks.integer("threads", threads, low=1, fix="threads per process, e.g. 1")
    if global_batch is not None:
        check_world_size(global_batch, nproc)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd += (["-m", str(script)] if module else [str(script)]) + [str(a) for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONWARNINGS": "ignore"}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        for old in Path(out).glob("rank*.json"):
            old.unlink()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    result = Launch(cmd, done.returncode, done.stdout, done.stderr, time.perf_counter() - start)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"torchrun exited with status {done.returncode}:\n" + "\n".join(tail))
    if out is not None:
        result.reports = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*.json"),
                                                                       key=lambda p: int(p.stem[4:]))]
    return result


# -------------------------------------------------------------------------------------------- measuring collectives
def bench_collectives(nbytes: int = 4 << 20, repeats: int = 5, group=None) -> dict[str, dict[str, float]]:
    """Bytes on the loopback wire per byte of buffer for one all-reduce, all-gather and reduce-scatter.

    Run on every process of ``group`` (default: all) at once. Each reading takes the loopback counter
    (:func:`loopback_bytes`, all processes together) before an entry barrier and after an exit barrier of the group,
    so that no process can send before the first reading, and subtracts the bytes of an empty barrier pair read the
    same way. Returns ``{collective: {"median": ..., "low": ..., "high": ...}}`` over ``repeats`` readings, each
    divided by ``nbytes``: compare with ``N · ring_bytes(...) / nbytes``. Processes outside ``group`` should wait
    (e.g. in a barrier of all processes) while it runs, so that they send nothing. Returns ``{}`` where the loopback
    counter cannot be read.
    """
    import statistics

    import torch.distributed as dist

    world = dist.get_world_size(group)
    n = checks.integer("nbytes", nbytes, low=4 * world, fix="a buffer size in bytes, e.g. 4 << 20") // 4 // world
    n *= world
    full, part = torch.ones(n), torch.ones(n // world)

    def reading(call) -> int | None:
        before = loopback_bytes()
        dist.barrier(group=group)
        call()
        dist.barrier(group=group)
        after = loopback_bytes()
        return None if before is None or after is None else after - before

    calls = {"all_reduce": lambda: dist.all_reduce(full, group=group),
             "all_gather": lambda: dist.all_gather_into_tensor(full, part, group=group),
             "reduce_scatter": lambda: dist.reduce_scatter_tensor(part, full, group=group)}
    empty = [reading(lambda: None) for _ in range(repeats)]
    if None in empty:
        return {}
    overhead = statistics.median(empty)
    out = {}
    for name, call in calls.items():
        ratios = [(reading(call) - overhead) / (4 * n) for _ in range(repeats)]
        out[name] = {"median": statistics.median(ratios), "low": min(ratios), "high": max(ratios)}
    return out


def time_all_reduce(nbytes: int, repeats: int = 20, group=None) -> float:
    """Median seconds of one all-reduce of ``nbytes`` (float32) on this process, started together by a barrier.

    Two sizes give the α–β model of a collective's time (Hockney 1994; Thakur et al. 2005 for the ring):
    ``t(S) ≈ 2(N−1)·α + 2(N−1)/N · S/β``, with α the cost of one message and β the bandwidth: a 4-byte all-reduce
    measures the α term, a large one adds the β term.
    """
    import statistics

    import torch.distributed as dist

    n = max(1, checks.integer("nbytes", nbytes, low=1, fix="a buffer size in bytes") // 4)
    buffer, times = torch.ones(n), []
    for _ in range(repeats):
        dist.barrier(group=group)
        start = time.perf_counter()
        dist.all_reduce(buffer, group=group)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def summaries(stdout: str) -> list[dict]:
    """Every ``{"step": ...}`` summary object that ``python -m lmkit.finetune`` printed, from every process.

    Processes launched together share one stdout, so a summary is looked for anywhere in the text, not only at the
    start of a line (another process may have written just before it).
    """
    decoder, found, at = json.JSONDecoder(), [], stdout.find('{"step"')
    while at != -1:
        obj, end = decoder.raw_decode(stdout, at)
        found.append(obj)
        at = stdout.find('{"step"', end)
    return found
