"""Progress output: every line goes to stdout and to a log file next to the outputs."""
import os
import sys
import time


class RunLog:
    def __init__(self, path=None, mode="a"):
        self.path = path
        self._file = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, mode, encoding="utf-8")

    def __call__(self, message=""):
        print(message, flush=True)
        if self._file:
            self._file.write(message + "\n")
            self._file.flush()

    def close(self):
        if self._file:
            self._file.close()
            self._file = None


def format_duration(seconds):
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def timestamp():
    return time.strftime("%Y-%m-%d %H:%M:%S")


def warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)
