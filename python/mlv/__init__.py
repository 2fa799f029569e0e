"""mlv from Python: read data tracked by mlv, in this repository or another one.

In the style of ``dvc.api``::

    import mlv
    with mlv.open("data/train.csv", mode="r") as f:   # streamed, verified
        for line in f: ...
    blob = mlv.read("models/model.bin", rev="v1.0")
    mlv.get_url("data/images")          # {"a.png": "s3://bucket/ab/ab12...", ...}
    mlv.ls(repo="https://example.com/registry.git", path="datasets")
    mlv.lineage.show("models/model.bin")

Paths are relative to the repository's root. ``repo`` is ``None`` (the repository holding the
current directory), a local path, or a URL of another repository. Errors are ``MlvError``
subclasses whose message is the command line's.
"""

import io
import json

from . import _mlv
from . import lineage
from ._mlv import (
    BusyError,
    EnvironmentError,
    FailureError,
    IntegrityError,
    MlvError,
    RefusedError,
)

__version__ = _mlv.__version__

__all__ = [
    "open",
    "read",
    "get_url",
    "ls",
    "lineage",
    "MlvError",
    "RefusedError",
    "IntegrityError",
    "BusyError",
    "EnvironmentError",
    "FailureError",
]

_open = open  # the builtin, before this module's `open` shadows it


class _Raw(io.RawIOBase):
    """The native reader as a raw binary stream (for io.BufferedReader / TextIOWrapper)."""

    def __init__(self, native):
        super().__init__()
        self._native = native
        self.name = native.path

    def readable(self):
        return True

    def readinto(self, b):
        data = self._native.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def readall(self):
        return self._native.read(-1)

    def close(self):
        if not self.closed:
            self._native.close()
        super().close()


def _check_mode(mode):
    if mode not in ("r", "rb", "rt"):
        raise ValueError(f"mlv.open: mode {mode!r} is not supported (use 'r' or 'rb': data is read-only)")
    return mode == "rb"


def open(path, repo=None, rev=None, remote=None, mode="rb", encoding=None):
    """Opens a tracked file for reading: a file object (a context manager).

    The content streams from the local cache when it holds the object, else from the remote
    (``remote``, default: the repository's default remote; another repository given by
    ``repo`` always uses its own default remote); it is hashed as it is read and the
    read that reaches the end raises ``IntegrityError`` unless it is intact. ``mode`` is
    ``"rb"`` (bytes) or ``"r"`` (text, decoded with ``encoding``, default UTF-8).
    """
    binary = _check_mode(mode)
    native = _mlv.open(str(path), repo=_str(repo), rev=rev, remote=remote)
    buffered = io.BufferedReader(_Raw(native), buffer_size=1 << 20)
    if binary:
        if encoding is not None:
            raise ValueError("mlv.open: binary mode takes no encoding")
        return buffered
    return io.TextIOWrapper(buffered, encoding=encoding or "utf-8")


def read(path, repo=None, rev=None, remote=None, mode="rb", encoding=None):
    """The whole content of a tracked file: ``bytes`` (mode ``"rb"``) or ``str`` (mode ``"r"``).
    Verified like ``open``."""
    binary = _check_mode(mode)
    native = _mlv.open(str(path), repo=_str(repo), rev=rev, remote=remote)
    try:
        data = native.read_all()
    finally:
        native.close()
    return data if binary else data.decode(encoding or "utf-8")


def get_url(path, repo=None, rev=None, remote=None):
    """The URL of a tracked file's object on the remote (``str``: ``s3://...``, ``gs://...``,
    ``az://...`` or a local path), or for a tracked directory a ``dict`` of its files' URLs keyed
    by their path below it. A format 2 remote (the default for new remotes) has no object URLs:
    raises ``MlvError`` (use a remote added with ``mlv remote add NAME URL --format 1``)."""
    return _mlv.get_url(str(path), repo=_str(repo), rev=rev, remote=remote)


def ls(repo=None, path=None, rev=None, recursive=False):
    """What a repository tracks (with mlv and with git) under ``path`` at ``rev``: the entries
    of ``mlv ls --json``, dicts with ``path``, ``type`` (``file``/``dir``), ``tracked``
    (``mlv``/``git``), ``size`` (None for a directory git tracks), ``files`` (a tracked
    directory's file count) and ``digest`` (data tracked by mlv). ``recursive``: every file
    below ``path``."""
    return json.loads(_mlv.ls_json(repo=_str(repo), path=_str(path), rev=rev, recursive=recursive))


def _str(p):
    return None if p is None else str(p)
