"""Data-parallel training with MindSpore's own launcher (msrun) and collectives (HCCL on
Ascend, NCCL on GPU, MindSpore's CPU collectives here).

Semantics: batch_size is per device, the global batch is batch_size x group size; each
worker reads its own shard of every global batch (data_provider.mindrecord.
train_index_stream), gradients are averaged over the workers (gradients_mean), so N workers
of batch B take the same steps as one process of batch N*B. The learning rate is used as
given unless lr_scale_by_devices multiplies it by the group size (the linear scaling rule).
"""
import os

from engine.errors import UserError

# msrun sets these in every worker it spawns
_LAUNCHER_VARS = ("MS_ROLE", "MS_WORKER_NUM", "MS_SCHED_HOST")


class Cluster:
    def __init__(self, rank=0, size=1):
        self.rank = rank
        self.size = size

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.size > 1


def init_cluster(cfg):
    """Join the collective group when cfg.distribute is set; returns a Cluster."""
    if not cfg.distribute:
        return Cluster()
    if not all(os.environ.get(v) for v in _LAUNCHER_VARS):
        raise UserError("distribute=true needs MindSpore's launcher: start training with "
                        "bash scripts/run_distribute_train.sh (msrun), not python train.py")
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init
    try:
        init()
    except Exception as e:  # a missing backend raises RuntimeError with a long banner
        reason = str(e).strip().splitlines()[0][:300]
        if os.environ.get("MS_ROLE") == "MS_SCHED":  # msrun's scheduler returns here when the job fails
            raise UserError(f"distributed job stopped: {reason}") from None
        raise UserError(f"cannot start the collective backend for {ms.get_context('device_target')}: {reason}") from None
    rank, size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=size)
    return Cluster(rank, size)
