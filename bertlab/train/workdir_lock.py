"""One run per workdir: an advisory lock that the kernel drops when its process dies.

Two trainers on one workdir would delete and rewrite each other's checkpoints and write every
metric row twice. The first takes `workdir/.lock` with flock (pid, host and start time
inside, for the message); a second refuses, naming that process. A killed run leaves the file
but not the lock, so its rerun starts at once. Only process 0 of a multi-host run takes it
(the hosts share the workdir). Object stores (gs://) have no such lock: none is taken there.
"""

import datetime
import fcntl
import json
import os
import socket

import jax

LOCK_FILE = ".lock"


class WorkdirInUse(RuntimeError):
  pass


class WorkdirLock:
  """`with WorkdirLock(workdir):` holds the workdir for the block."""

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
    self._fd = None

  def __enter__(self):
    if "://" in self.path or jax.process_index() != 0:
      return self
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(fd, 4096).decode(errors="replace").strip()
      os.close(fd)
      raise WorkdirInUse(
          f"{os.path.dirname(self.path)} is in use by another run ({holder or 'unknown'}). "
          "Wait for it or stop it, or use another --workdir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(dict(
        pid=os.getpid(), host=socket.gethostname(),
        since=datetime.datetime.now().isoformat(timespec="seconds"))).encode())
    self._fd = fd
    return self

  def __exit__(self, *exc):
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
    return False
