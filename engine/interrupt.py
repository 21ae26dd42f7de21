"""Ctrl-C during training: the first saves a checkpoint after the current step and stops,
the second stops at once.

MindSpore's runtime installs its own C-level SIGINT handler, which ends the process with
SIGTERM in the middle of a graph, so a Python handler never runs. Instead SIGINT is
blocked in every thread (the mask must be set before mindspore starts its threads, which
inherit it) and a watcher thread takes it with sigwait.
"""
import os
import signal
import sys
import threading

_requested = threading.Event()
_installed = False


def install():
    """Call from an entry point before mindspore is imported (main thread, POSIX only)."""
    global _installed
    if _installed or not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    threading.Thread(target=_watch, name="ctrl-c-watcher", daemon=True).start()
    _installed = True


def _watch():
    while True:
        signal.sigwait({signal.SIGINT})
        if _requested.is_set():
            print("\nsecond Ctrl-C: stopping now (the last saved checkpoint is kept)", file=sys.stderr, flush=True)
            os._exit(130)
        _requested.set()
        print("\nCtrl-C: a checkpoint is saved after the current step, then training stops "
              "(press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)


def stop_requested():
    return _requested.is_set()
