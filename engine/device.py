"""Device and execution-mode set-up: one call at the start of every entry point."""
import mindspore as ms

from engine.errors import UserError


def available_targets():
    from mindspore import hal
    found = []
    for target in ("Ascend", "GPU", "CPU"):
        try:
            if hal.is_available(target):
                found.append(target)
        except Exception:  # a backend whose plugin is missing reports by raising
            pass
    return found


def resolve_target(requested):
    found = available_targets()
    if requested == "auto":
        for target in ("Ascend", "GPU"):
            if target in found:
                return target
        return "CPU"
    if requested not in found:
        raise UserError(
            f"device_target={requested} is not available here (this MindSpore sees: "
            f"{', '.join(found) or 'nothing'}); use --device_target=CPU or install the {requested} build of MindSpore")
    return requested


def init_context(cfg, set_seed=True):
    """Set mode, device and seed from the config; returns the device target in use."""
    target = resolve_target(cfg.device_target)
    mode = ms.GRAPH_MODE if cfg.mode == "GRAPH" else ms.PYNATIVE_MODE
    kwargs = {"mode": mode, "device_target": target}
    if target != "CPU":
        kwargs["device_id"] = int(cfg.device_id)
    try:
        ms.set_context(**kwargs)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"cannot use device_target={target} device_id={cfg.device_id}: {str(e).splitlines()[0]}") from None
    if set_seed:
        ms.set_seed(int(cfg.seed))
    return target
