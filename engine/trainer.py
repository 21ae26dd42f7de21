"""The training loop: GRAPH-mode train step, progress, checkpoints, resume, NaN guard."""
import math
import os
import time

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from data_provider.mindrecord import iter_batches, mindrecord_info, train_index_stream
from data_provider.sampling import train_mask
from engine import checkpoint as ckpt
from engine.config import make_output_dir, parse_int_list, require_file
from engine.device import init_context
from engine.distributed import init_cluster
from engine.errors import UserError
from engine.interrupt import stop_requested
from engine.log import RunLog, format_duration, timestamp
from nets.registry import build_model


LOSSES = ("mse", "mse_l1")
FIRST_STEPS_LOGGED = 3  # steps after the first that always get a progress line


class NetWithLoss(nn.Cell):
    """MSE over every frame the net predicts (thuml/OpenSTL: all T-1 generated frames);
    loss='mse_l1' adds the mean absolute error, as OpenSTL's E3DLSTM_Model trains."""

    def __init__(self, net, seq_length, loss="mse"):
        super().__init__(auto_prefix=False)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.net = net
        self.seq_length = seq_length
        self.add_l1 = loss == "mse_l1"

    def construct(self, frames, mask, *extra):
        out = self.net(frames, mask, *extra)
        aux = None
        if isinstance(out, tuple):  # nets with an extra loss term return (frames, term)
            out, aux = out
        target = frames[:, self.seq_length - out.shape[1]:]
        loss = ops.mean(ops.square(out - target))
        if self.add_l1:
            loss = loss + ops.mean(ops.abs(out - target))
        if aux is not None:
            loss = loss + aux
        return loss


class TrainStep(nn.Cell):
    """Forward, backward, optional global-norm clipping, optimizer update; returns the loss.

    Under data parallelism (engine/distributed.py) the gradients are averaged over the
    workers before clipping and the update, and the returned loss is the workers' mean."""

    def __init__(self, net_with_loss, optimizer, grad_clip=0.0):
        super().__init__(auto_prefix=False)
        self.network = net_with_loss
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.grad = ops.GradOperation(get_by_list=True)
        self.grad_clip = float(grad_clip)
        mode = ms.get_auto_parallel_context("parallel_mode")
        self.data_parallel = mode in (ms.ParallelMode.DATA_PARALLEL, ms.ParallelMode.HYBRID_PARALLEL)
        if self.data_parallel:
            from mindspore.communication import get_group_size
            self.group_size = get_group_size()
            self.grad_reducer = nn.DistributedGradReducer(self.weights, True, self.group_size)
            self.all_reduce = ops.AllReduce()

    def construct(self, frames, mask, *extra):
        loss = self.network(frames, mask, *extra)
        grads = self.grad(self.network, self.weights)(frames, mask, *extra)
        if self.data_parallel:
            grads = self.grad_reducer(grads)
            loss = self.all_reduce(loss) / self.group_size
        if self.grad_clip > 0:
            grads = ops.clip_by_global_norm(grads, self.grad_clip)
        return ops.depend(loss, self.optimizer(grads))


def learning_rates(cfg, group_size=1):
    """Per-iteration learning rate for the whole run (warm-up, then the chosen schedule)."""
    n = cfg.max_iterations
    steps = np.arange(n, dtype=np.float64)
    if cfg.lr_schedule == "cosine":
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + np.cos(math.pi * steps / n))
    elif cfg.lr_schedule == "linear":
        # SRVP's schedule (edouardelasalles/srvp train.py): constant until lr_decay_start,
        # then down by lr / (max_iterations - lr_decay_start) per step, reaching 0 on the
        # last step, as its LambdaLR stepped after each optimiser step past the burn-in
        span = max(1, n - cfg.lr_decay_start)
        lr = cfg.lr * np.clip((n - steps - 1) / span, 0.0, 1.0)
    elif cfg.lr_schedule == "onecycle":
        lr = onecycle(n, cfg.lr)
    elif cfg.lr_schedule == "step":
        lr = np.full(n, cfg.lr)
        for boundary in parse_int_list(cfg.lr_step_iters, "lr_step_iters"):
            lr[steps >= boundary] *= 0.1
    else:
        lr = np.full(n, cfg.lr)
    if cfg.warmup_iters > 0:
        lr = lr * np.minimum(1.0, (steps + 1) / cfg.warmup_iters)
    if cfg.lr_scale_by_devices:
        lr = lr * group_size
    return lr.astype(np.float32)


def onecycle(total, max_lr, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    """PyTorch's OneCycleLR with its defaults (cosine annealing, two phases), stepped once
    per iteration as OpenSTL does: max_lr / div_factor rising to max_lr over the first
    pct_start of the steps, then falling to max_lr / div_factor / final_div_factor."""
    start, low = max_lr / div_factor, max_lr / div_factor / final_div_factor
    rise_end, fall_end = float(pct_start * total) - 1, float(total - 1)
    lr = np.empty(total)
    for step in range(total):
        if step <= rise_end:
            a, b, pct = start, max_lr, step / rise_end if rise_end > 0 else 1.0
        else:
            a, b, pct = max_lr, low, (step - rise_end) / (fall_end - rise_end)
        lr[step] = b + (a - b) / 2.0 * (1.0 + math.cos(math.pi * pct))
    return lr


def step_noise(net, step, cfg, num_shards=1, shard_id=0):
    """The random inputs of a stochastic net for training step `step` (a function of seed and
    step, as the masks are, so resume is exact); () for the deterministic nets. Each worker
    of a data-parallel run takes its slice of the global batch's draw."""
    if not hasattr(net, "training_noise"):
        return ()
    rng = np.random.default_rng([int(cfg.seed), int(step), 0x5A])
    drawn = net.training_noise(rng, cfg.batch_size * num_shards)
    part = slice(shard_id * cfg.batch_size, (shard_id + 1) * cfg.batch_size)
    return tuple(ms.Tensor(np.ascontiguousarray(a[part])) for a in drawn)


def check_data_fits(cfg, path, key):
    """The stored clips must be long and large enough for the config."""
    info = mindrecord_info(path)
    t, h, w, c = info["frame_shape"]
    if t < cfg.seq_length:
        raise UserError(f"config key 'seq_length': {cfg.seq_length} frames asked but {key} {path} holds clips of {t}")
    if h != cfg.img_height or w != cfg.img_width:
        raise UserError(f"config keys 'img_height'/'img_width': frames of {cfg.img_height}x{cfg.img_width} (HxW) "
                        f"configured but {key} {path} holds {h}x{w} frames")
    if c != cfg.img_channel:
        raise UserError(f"config key 'img_channel': {cfg.img_channel} but {key} {path} holds {c} channels")
    return info


def model_prefix(cfg):
    return cfg.model_name


def resolve_resume(cfg):
    """'' -> None; 'latest'/'true' -> newest checkpoint in save_dir (None if there is none); else a path."""
    value = str(cfg.resume).strip()
    if value.lower() in ("", "false", "0", "no"):
        return None
    if value.lower() in ("latest", "true", "1", "yes"):
        return ckpt.latest_checkpoint(cfg.save_dir, model_prefix(cfg))
    if not os.path.isfile(value):
        raise UserError(f"config key 'resume': checkpoint not found: {value}")
    return value


EARLIER_RUNS = "earlier_runs"
# where a CPU user is pointed when the configured run would take more than a day
CPU_SIZED_CONFIG = "configs/quickstart_simvp_mmnist.yaml"


def check_save_dir(cfg, resume_path, is_main=True, log=print):
    """Training never mixes runs in one save_dir: a new run (no checkpoint to resume) into a
    save_dir that holds checkpoints is refused, unless start_over moves them (and the old
    train.log) to save_dir/earlier_runs/TIME/ first. So 'latest' always means this run's."""
    if resume_path:
        return
    found = ckpt.list_checkpoints(cfg.save_dir)
    if not found:
        return
    names = sorted({os.path.basename(p) for _, p in found})
    newest = max(found)[1]
    if not cfg.start_over:
        resume_hint = ("continue that run with --resume=latest, " if any(
            n.startswith(model_prefix(cfg) + "-") for n in names) else "")
        raise UserError(f"save_dir {cfg.save_dir} holds checkpoints of an earlier run ({len(names)} file(s), newest "
                        f"{os.path.basename(newest)}): {resume_hint}start a new run there with --start_over=true "
                        f"(moves them to {os.path.join(cfg.save_dir, EARLIER_RUNS)}/), or give another --save_dir")
    if not is_main:  # rank 0 moves them
        return
    base = os.path.join(cfg.save_dir, EARLIER_RUNS, time.strftime("%Y%m%d-%H%M%S"))
    dest, suffix = base, 1
    while os.path.exists(dest):
        dest, suffix = f"{base}.{suffix}", suffix + 1
    os.makedirs(dest)
    moved = [p for _, p in found]
    log_file = os.path.join(cfg.save_dir, "train.log")
    if os.path.isfile(log_file):
        moved.append(log_file)
    for path in moved:
        os.replace(path, os.path.join(dest, os.path.basename(path)))
    log(f"start_over: moved the earlier run's {len(found)} checkpoint(s){' and train.log' if len(moved) > len(found) else ''} "
        f"to {dest}")


def _silent(*_):
    pass


def param_count(net):
    return int(sum(np.prod(p.shape) for p in net.trainable_params()))


def train(cfg, log=None):
    """Train per cfg; returns a dict with the final step, last loss and checkpoint path."""
    require_file(cfg, "train_mindrecord")
    info = check_data_fits(cfg, cfg.train_mindrecord, "train_mindrecord")
    if info["num_samples"] < cfg.batch_size:
        raise UserError(f"config key 'batch_size': {cfg.batch_size} is larger than the "
                        f"{info['num_samples']} sequences in {cfg.train_mindrecord}")
    resume_path = resolve_resume(cfg)
    if cfg.pretrained_model and not resume_path:
        require_file(cfg, "pretrained_model")
    check_save_dir(cfg, resume_path, is_main=False)  # refuse before any set-up; nothing moves yet
    target = init_context(cfg)
    cluster = init_cluster(cfg)
    if cluster.is_main:
        check_save_dir(cfg, resume_path, log=log or print)
        make_output_dir(cfg, "save_dir")
        log = log or RunLog(os.path.join(cfg.save_dir, "train.log"))
    else:  # one log and one set of checkpoints: rank 0's
        log = _silent
    global_batch = cfg.batch_size * cluster.size
    if info["num_samples"] < global_batch:
        raise UserError(f"config key 'batch_size': the global batch {global_batch} ({cfg.batch_size} x "
                        f"{cluster.size} workers) is larger than the {info['num_samples']} sequences in "
                        f"{cfg.train_mindrecord}")

    net = build_model(cfg)
    passes = 2 if cfg.reverse_input else 1  # optimizer steps per iteration
    lr = np.repeat(learning_rates(cfg, cluster.size), passes)
    optimizer = nn.Adam(net.trainable_params(), learning_rate=ms.Tensor(lr), weight_decay=cfg.weight_decay)
    step_cell = TrainStep(NetWithLoss(net, cfg.seq_length, cfg.loss), optimizer, cfg.grad_clip)
    step_cell.set_train()

    start_step = 0
    if resume_path:
        params = ckpt.read_checkpoint(resume_path)
        # the learning-rate table is rebuilt from the config (max_iterations may have grown)
        ckpt.load_into(step_cell, params, resume_path, what="network and optimizer",
                       skip=("learning_rate",))
        start_step = ckpt.checkpoint_step(params) or 0
    elif cfg.pretrained_model:
        ckpt.load_weights(net, cfg.pretrained_model, log=log, cfg=cfg)

    log(f"[{timestamp()}] train {cfg.model_name} on {target} ({cfg.mode}), config {cfg.config_path or 'default_config.yaml'}")
    log(f"  data {cfg.train_mindrecord}: {info['num_samples']} clips of {info['frame_shape']}; "
        f"batch {cfg.batch_size}, seed {cfg.seed}, {param_count(net):,} parameters")
    if cluster.distributed:
        log(f"  data parallel over {cluster.size} workers: global batch {global_batch}, "
            f"lr {'x' + str(cluster.size) if cfg.lr_scale_by_devices else 'as given'}")
    if resume_path:
        log(f"  resumed from {resume_path} at step {start_step}")
    elif cfg.pretrained_model:
        log(f"  weights from {cfg.pretrained_model}")
    if start_step >= cfg.max_iterations:
        log(f"  already at step {start_step} >= max_iterations {cfg.max_iterations}: nothing to do")
        return {"step": start_step, "loss": None, "checkpoint": resume_path, "history": []}

    indices = train_index_stream(info["num_samples"], cfg.batch_size, cfg.seed, start_step,
                                 cfg.max_iterations - start_step, num_shards=cluster.size, shard_id=cluster.rank)
    batches = iter_batches(cfg.train_mindrecord, cfg.batch_size, cfg.patch_size, indices,
                           seq_length=cfg.seq_length, num_parallel_workers=cfg.num_parallel_workers)

    log(f"  compiling the training graph: the first step includes the compile "
        f"({'seconds to minutes' if target == 'CPU' else 'a minute or more'}, longer for bigger models)")
    step = start_step
    last_ckpt = resume_path
    last_loss = None
    timed_steps, timed_seconds, first_seconds = 0, 0.0, 0.0
    warned_long = False
    window_losses = []
    history = []  # (step, loss) of this run, for callers and tests

    def save(at_step):
        if not cluster.is_main:
            return last_ckpt
        return ckpt.save_checkpoint(step_cell, cfg.save_dir, model_prefix(cfg), at_step,
                                    cfg.keep_checkpoint_max, extra={"seed": int(cfg.seed)})

    try:
        for frames in batches:
            began = time.perf_counter()
            mask, eta = train_mask(step, cfg.batch_size, cfg, cluster.size, cluster.rank)
            mask_t = ms.Tensor(mask)
            extra = step_noise(net, step, cfg, cluster.size, cluster.rank)
            loss = float(step_cell(ms.Tensor(frames), mask_t, *extra).asnumpy())
            if cfg.reverse_input:
                reversed_frames = np.ascontiguousarray(frames[:, ::-1])
                loss = 0.5 * (loss + float(step_cell(ms.Tensor(reversed_frames), mask_t, *extra).asnumpy()))
            if not math.isfinite(loss):
                log(f"error: loss became {loss} at step {step + 1}; stopping. The last good checkpoint "
                    f"is {last_ckpt or '(none saved yet)'}: lower --lr or set --grad_clip, then --resume=latest")
                raise UserError(f"training diverged (loss {loss}) at step {step + 1}")
            step += 1
            last_loss = loss
            window_losses.append(loss)
            history.append((step, loss))
            elapsed = time.perf_counter() - began
            first = step == start_step + 1
            if first:  # the first step includes the graph compile: no ETA from it
                first_seconds = elapsed
                log(f"step {step}/{cfg.max_iterations}  loss {loss:.6f}  ss_eta {eta:.4f}  "
                    f"first step {elapsed:.1f} s (graph compile included)")
                window_losses = []
            else:
                timed_steps += 1
                timed_seconds += elapsed
            # the first few steps, then every log_interval
            if not first and (step % cfg.log_interval == 0 or step == cfg.max_iterations
                              or step <= start_step + FIRST_STEPS_LOGGED):
                ms_step = 1000.0 * timed_seconds / timed_steps
                eta_s = (cfg.max_iterations - step) * ms_step / 1000.0
                compiled = (f"  (graph compile ~{max(0.0, first_seconds - ms_step / 1000.0):.1f} s)"
                            if timed_steps == 1 else "")
                log(f"step {step}/{cfg.max_iterations}  loss {np.mean(window_losses):.6f}  "
                    f"ss_eta {eta:.4f}  {ms_step:.1f} ms/step  {cfg.batch_size * 1000.0 / ms_step:.2f} samples/s  "
                    f"ETA {format_duration(eta_s)}{compiled}")
                window_losses = []
                if not warned_long and target == "CPU" and timed_steps >= 2 and eta_s > 86400:
                    warned_long = True
                    log(f"note: at {ms_step / 1000.0:.1f} s/step the remaining {cfg.max_iterations - step} steps take "
                        f"~{eta_s / 86400:.1f} days on this CPU; for a CPU-sized run try "
                        f"--config_path={CPU_SIZED_CONFIG} (minutes), or fewer --max_iterations / smaller --num_hidden")
            if step % cfg.snapshot_interval == 0 or step == cfg.max_iterations:
                last_ckpt = save(step)
            if stop_requested():
                if not last_ckpt or not last_ckpt.endswith(f"-{step}.ckpt"):
                    last_ckpt = save(step)
                log(f"interrupted at step {step}: saved {last_ckpt}; continue with --resume=latest")
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if not stop_requested():  # a plain KeyboardInterrupt (no guard installed): save what we have
            if step > start_step:
                last_ckpt = save(step)
                log(f"interrupted at step {step}: saved {last_ckpt}; continue with --resume=latest")
        raise
    if step < cfg.max_iterations:
        raise UserError(f"the data pipeline ended at step {step} before max_iterations {cfg.max_iterations}")
    log(f"[{timestamp()}] done: step {step}, loss {last_loss:.6f}, checkpoint {last_ckpt}")
    return {"step": step, "loss": last_loss, "checkpoint": last_ckpt, "history": history}
