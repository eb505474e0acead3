"""One writer per run directory: `train` holds <run_dir>/train.lock while it runs.

The lock is an flock(2) on the file, which the kernel releases when the holder dies, however
it dies (kill -9 included), so a stale lock can never block a run: a lock file that names a
process but is not locked is taken over, with one line saying so. The file names its holder
(host, pid, start time, command) so that a refused `train` can say who holds the directory.
It is emptied, not deleted, on release (deleting could let two processes lock two different
files of the same name). A multi-worker run's workers share the directory: only the chief
holds it.
"""

import errno
import fcntl
import os
import socket
import sys
import time

from tfcharrnn.errors import UsageError, cannot_write

LOCK_FILE = "train.lock"


class RunLock:

    def __init__(self, run_dir: str, log=print):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_FILE)
        self._log = log
        self._fd = None

    def acquire(self):
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise cannot_write("--checkpoint_dir", self.run_dir, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise UsageError(
                f"{self.run_dir} is in use by another train process ({holder or 'unknown'}); "
                f"wait for it to finish or stop it, or pass another --checkpoint_dir") from None
        previous = _read(fd)
        if previous:
            self._log(f"took over the lock of {self.run_dir}: its holder ({previous}) no "
                      f"longer runs")
        holder = (f"pid {os.getpid()} on {socket.gethostname()}, started "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:300]}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8", "replace"), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _read(fd) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
