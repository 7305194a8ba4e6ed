"""One training step on any device and any number of processes: torchrun process groups, batch shards, sums, rank-0 writes.

Launch (the single-process command, behind torchrun)::

    torchrun --nproc_per_node N -m neurokd train ...                                  one machine, N processes
    torchrun --nnodes M --node_rank R --nproc_per_node N \\
             --rdzv_backend c10d --rdzv_endpoint HOST:PORT -m neurokd train ...      M machines

:func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and opens the process group: backend ``nccl`` when the run's
device is CUDA (rank ``r`` uses ``cuda:LOCAL_RANK``), ``gloo`` on CPU. Without those variables, or
with ``WORLD_SIZE=1``, nothing here does anything: every function below is then the identity and
the single-process run is unchanged, operation for operation.

How a run of W processes equals a run of one process with the same ``batch_size`` B:

* batches: every rank draws the same seeded permutation and cuts the same global batches of B
  samples; rank ``r`` takes its contiguous share ``idx.tensor_split(W)[r]`` (sizes differ by at
  most one; :func:`shard_range`). With augmentation the global batch is augmented first, with
  the same generator on every rank, and then shared out, so each sample gets the crop and flip it
  gets in one process. A last global batch of fewer than W samples is dropped (each rank needs one).
* gradients: every loss of neurokd.losses is a batch mean, and DistributedDataParallel averages
  the ranks' gradients, so rank ``r`` back-propagates its local mean loss times ``w_r``::

      w_r = n_r * W / B        =>   1/W sum_r w_r * (1/n_r) sum_{b in r} l_b = 1/B sum_b l_b

  which is the gradient of the global batch mean (equal shares: w_r = 1).
* BatchNorm: on CUDA with W > 1 the model's BatchNorm layers become ``SyncBatchNorm`` (statistics
  over the global batch, as in one process). PyTorch's SyncBatchNorm runs on GPUs only, so on CPU
  (gloo) each rank normalises with its own share's statistics and DDP copies rank 0's running
  statistics to the others at each step: a CPU run of a model with BatchNorm (conv1d, vgg) is
  close to, not equal to, the single-process run. Models without BatchNorm (mlp) match.
* metrics: training loss sums, correct counts, sample counts and spike counts
  (:class:`~neurokd.activity.ActivityCounter`) are summed over ranks (:func:`sum_over_ranks`,
  :func:`reduce_counter`) before anything is reported; evaluation splits the val/test set into W
  contiguous shards and sums the same way, so the numbers are those of one process.
* files: only rank 0 writes the run folder (:func:`is_main`); checks that decide whether a run may
  start run on rank 0 and their error reaches every rank (:func:`on_rank0`). On ``--resume`` every
  rank reads ``checkpoint.pt`` after rank 0 has prepared the folder, so ``--out`` must be on a
  filesystem all nodes see (as for any multi-node torchrun job).
* teacher logits (datasets without augmentation): rank 0 computes them once, exactly as a
  single-process run does, and broadcasts them (:func:`broadcast_from_rank0`); every rank then
  holds the same tensor.

Devices: :class:`TrainingSet` puts a training split where its batches are cut. On CPU the
tensors stay where they are. On CUDA the whole split is copied to the GPU once when it takes at
most :data:`RESIDENT_FRACTION` of the free GPU memory (GSC: ~0.2 GB, CIFAR-10: ~0.55 GB), so a
batch is one gather on the GPU; otherwise each batch is gathered on the host straight into pinned
memory and copied asynchronously. There are no loader worker processes: the data are in-memory
tensors and a batch is one ``index_select``, which workers would only add inter-process copies to.
The training step itself (forward, loss, backward, optimizer) is the same code on every device.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
from typing import Callable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

from neurokd.errors import NeurokdError

# A training split is copied to the GPU whole when it needs at most this fraction of the free memory.
RESIDENT_FRACTION = 0.25


# ---- the process group -------------------------------------------------------------------------
def launched_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when the process was not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise NeurokdError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer; launch with torchrun") from exc


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``; 0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> torch.device:
    """Open the process group when launched by torchrun with more than one process; return this rank's device.

    ``device`` is the resolved ``--device`` (cpu or cuda). On CUDA rank r uses ``cuda:LOCAL_RANK``
    and the ``nccl`` backend; on CPU the ``gloo`` backend. Called again (e.g. by each run of a
    study), it reuses the open group. Single process: returns ``device`` unchanged.
    """
    if launched_world_size() <= 1 and not dist.is_initialized():
        return device
    if device.type == "cuda":
        lr = local_rank()
        if device.index is not None and device.index != lr:
            raise NeurokdError(f"--device {device} under torchrun: each process uses cuda:LOCAL_RANK; give --device cuda")
        if lr >= torch.cuda.device_count():
            raise NeurokdError(f"LOCAL_RANK {lr} but only {torch.cuda.device_count()} CUDA device(s) on this machine; "
                               "use --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(lr)
        device = torch.device("cuda", lr)
    if not dist.is_initialized():
        for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise NeurokdError(f"WORLD_SIZE={launched_world_size()} but {var} is not set; launch with torchrun")
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://",
                                device_id=device if device.type == "cuda" else None)
        atexit.register(shutdown)
    elif device.type == "cuda" and dist.get_backend() != "nccl":
        raise NeurokdError("the open process group is not nccl but the run is on CUDA; use one device type per job")
    return device


def shutdown() -> None:
    """Close the process group (registered at exit by :func:`setup`).

    Garbage is collected first, on this (the main) thread: an interrupted run leaves DDP reducers
    and pending work in reference cycles (a caught exception's frames), and were they collected
    later on one of gloo's worker threads, the process group's destructor would join that very
    thread, and the process would abort ("terminate called without an active exception", seen
    about once in a dozen interrupted-and-resumed two-process runs).
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def _comm_device() -> torch.device:
    """Where tensors must live for a collective: the current GPU with nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextlib.contextmanager
def local_leaders_first() -> Iterator[None]:
    """Run the block on each machine's local rank 0 first, then on the other ranks.

    For work that fills a cache the others then read (GSC's MFCC cache): one process per machine
    builds it. If a leader fails, the others still run the block (and usually fail the same way).
    """
    if world_size() == 1:
        yield
        return
    leader = local_rank() == 0
    if not leader:
        dist.barrier()
    try:
        yield
    finally:
        if leader:
            dist.barrier()


# ---- sharing between ranks ---------------------------------------------------------------------
def _broadcast_bytes(data: bytes | None) -> bytes:
    dev = _comm_device()
    size = torch.tensor([len(data) if data is not None else 0], dtype=torch.int64, device=dev)
    dist.broadcast(size, 0)
    buf = (torch.frombuffer(bytearray(data), dtype=torch.uint8).to(dev) if rank() == 0
           else torch.empty(int(size.item()), dtype=torch.uint8, device=dev))
    dist.broadcast(buf, 0)
    return data if rank() == 0 else bytes(buf.cpu().numpy())


def _dumps(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _loads(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)  # plain data and tensors only, never code


def on_rank0(fn: Callable[[], object]) -> object:
    """Run ``fn`` on rank 0 only and hand its result (plain data / tensors) to every rank.

    If ``fn`` raises on rank 0, every rank raises: a :class:`NeurokdError` with the same one-line
    message, any other error as a RuntimeError naming rank 0. Single process: ``fn()``.
    """
    if world_size() == 1:
        return fn()
    error: BaseException | None = None
    payload = None
    if rank() == 0:
        try:
            result = fn()
            payload = _dumps({"ok": True, "value": result})
        except BaseException as exc:  # noqa: BLE001 - re-raised below on every rank
            error = exc
            payload = _dumps({"ok": False, "neurokd": isinstance(exc, NeurokdError), "error": str(exc),
                              "code": int(getattr(exc, "exit_code", 2))})
    message = _loads(_broadcast_bytes(payload))
    if error is not None:
        raise error
    if not message["ok"]:
        if message["neurokd"]:
            exc = NeurokdError(message["error"])
            exc.exit_code = message["code"]
            raise exc
        raise RuntimeError(f"rank 0 failed: {message['error']}")
    return message["value"]


def broadcast_from_rank0(fn: Callable[[], torch.Tensor], shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """``fn()`` computed on rank 0 only (a CPU tensor of ``shape``/``dtype``), then sent to every rank.

    Used for the teacher-logit cache: the tensor every rank trains with is the one a
    single-process run computes. Single process: ``fn()``.
    """
    if world_size() == 1:
        return fn()
    dev = _comm_device()
    if rank() == 0:
        t = fn()
        if tuple(t.shape) != tuple(shape) or t.dtype != dtype:
            raise RuntimeError(f"broadcast_from_rank0: got {tuple(t.shape)} {t.dtype}, expected {tuple(shape)} {dtype}")
        buf = t.to(dev).contiguous()
    else:
        buf = torch.empty(tuple(shape), dtype=dtype, device=dev)
    dist.broadcast(buf, 0)
    return buf.cpu()


def sum_over_ranks(*values: float | int | torch.Tensor) -> list[float]:
    """Each value summed over all ranks (one all-reduce, float64: integer counts stay exact to 2^53)."""
    flat = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if world_size() > 1:
        flat = flat.to(_comm_device())
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return flat.cpu().tolist()


def reduce_counter(counter):
    """Sum an :class:`~neurokd.activity.ActivityCounter`'s spikes, neuron-steps and samples over ranks, in place.

    Every rank must have counted the same layers (the same model, at least one batch each).
    Returns the counter (unchanged with one process, or ``None`` for ``None``).
    """
    if counter is None or world_size() == 1:
        return counter
    names = list(counter.neuron_steps)
    spikes = counter.spikes
    totals = sum_over_ranks(*(spikes[n] for n in names), *(counter.neuron_steps[n] for n in names), counter.samples)
    k = len(names)
    for i, name in enumerate(names):
        counter._spikes[name] = torch.tensor(totals[i], dtype=torch.float64)
        counter.neuron_steps[name] = int(totals[k + i])
    counter.samples = int(totals[2 * k])
    return counter


# ---- shards of a batch or of an evaluation set -------------------------------------------------
def shard_range(n: int) -> slice:
    """This rank's contiguous share of ``n`` items, as ``torch.tensor_split`` cuts them (first ``n % W`` get one more)."""
    w, r = world_size(), rank()
    base, extra = divmod(n, w)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def usable_batches(batches: list[torch.Tensor]) -> list[torch.Tensor]:
    """Global batches every rank gets at least one sample of: a last batch smaller than W is dropped."""
    w = world_size()
    if w > 1 and batches and len(batches[-1]) < w:
        return batches[:-1]
    return batches


def eval_shard(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous part of an evaluation set (the whole set with one process)."""
    if world_size() == 1:
        return x, y
    if len(y) < world_size():
        raise NeurokdError(f"an evaluation set of {len(y)} samples cannot be shared by {world_size()} processes; "
                           "use fewer processes")
    sl = shard_range(len(y))
    return x[sl], y[sl]


# ---- the model -----------------------------------------------------------------------------------
class _Method(nn.Module):
    """Exposes ``module.<method>`` as ``forward`` so DistributedDataParallel can wrap a student's ``run``."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args, **kwargs):
        return getattr(self.module, self.method)(*args, **kwargs)


def wrap(model: nn.Module, device: torch.device, method: str = "forward") -> Callable:
    """What the training step calls instead of ``model.<method>``: the method itself with one
    process; with W > 1 a DistributedDataParallel of it (gradients averaged over ranks in the
    backward pass; BatchNorm -> SyncBatchNorm first on CUDA). ``model`` must already be on
    ``device``; its parameters stay the same objects, so an optimizer may be made before or after.
    """
    if world_size() == 1:
        return getattr(model, method)
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place below the top module
    target = model if method == "forward" else _Method(model, method)
    return nn.parallel.DistributedDataParallel(target, device_ids=[device.index] if device.type == "cuda" else None)


def loss_weight(n_local: int, n_global: int) -> float | None:
    """``w_r = n_r * W / B`` (module doc); ``None`` with one process (the loss is used as it is)."""
    w = world_size()
    return None if w == 1 else n_local * w / n_global


# ---- the data ------------------------------------------------------------------------------------
class TrainingSet:
    """A training split placed for its device, handing out this rank's share of each global batch.

    ``x`` inputs ``(N, ...)``, ``y`` labels ``(N,)``, ``extra`` per-sample tensors (cached teacher
    logits) or ``None``. ``resident``: keep the split on the GPU (None: when it fits, see the
    module doc). :meth:`batch` returns ``(xb, yb, eb, n_global)`` on the device.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, extra: torch.Tensor | None, device: torch.device,
                 resident: bool | None = None) -> None:
        self.device = torch.device(device)
        self.mode = "host"
        if self.device.type == "cuda":
            need = sum(t.numel() * t.element_size() for t in (x, y, extra) if t is not None)
            if resident is None:
                free, _ = torch.cuda.mem_get_info(self.device)
                resident = need <= RESIDENT_FRACTION * free
            self.mode = "resident" if resident else "pinned"
            if resident:
                x, y = x.to(self.device), y.to(self.device)
                extra = extra.to(self.device) if extra is not None else None
        self.x, self.y, self.extra = x, y, extra

    def __len__(self) -> int:
        return len(self.y)

    def _gather(self, t: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
        if t is None:
            return None
        if self.mode == "resident":
            return t[idx.to(self.device)]
        if self.mode == "pinned":
            # gathered straight into page-locked memory (PyTorch's caching host allocator keeps the block
            # until the asynchronous copy has finished), then copied without blocking the host
            buf = torch.empty((len(idx),) + tuple(t.shape[1:]), dtype=t.dtype, pin_memory=True)
            torch.index_select(t, 0, idx, out=buf)
            return buf.to(self.device, non_blocking=True)
        return t[idx].to(self.device, non_blocking=True)

    def batch(self, idx: torch.Tensor, augment: Callable | None = None, generator: torch.Generator | None = None):
        """This rank's share of the global batch ``idx`` (all of it with one process), augmented.

        With augmentation and W > 1 the whole global batch is gathered and augmented (the random
        draws of one process, same generator state on every rank) before it is shared out.
        """
        n = len(idx)
        whole = augment is not None and world_size() > 1
        own = idx if whole else idx[shard_range(n)] if world_size() > 1 else idx
        xb, yb, eb = self._gather(self.x, own), self._gather(self.y, own), self._gather(self.extra, own)
        if augment is not None:
            xb = augment(xb, generator)
        if whole:
            sl = shard_range(n)
            xb, yb = xb[sl], yb[sl]
            eb = eb[sl] if eb is not None else None
        return xb, yb, eb, n


__all__ = ["setup", "shutdown", "world_size", "rank", "local_rank", "is_main", "barrier", "local_leaders_first",
           "on_rank0", "broadcast_from_rank0", "sum_over_ranks", "reduce_counter", "shard_range", "usable_batches",
           "eval_shard", "wrap", "loss_weight", "TrainingSet", "launched_world_size", "RESIDENT_FRACTION"]
