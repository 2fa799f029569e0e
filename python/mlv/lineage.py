"""Lineage queries: the same documents as ``mlv lineage show/uses --json``, as plain dicts."""

import json

from . import _mlv


def show(path, repo=None, rev=None):
    """The record that produced ``path`` (a tracked path, or a digest) and its upstream chain."""
    return json.loads(_mlv.lineage_show_json(str(path), repo=None if repo is None else str(repo), rev=rev))


def uses(path, repo=None, rev=None):
    """Everything recorded as derived from ``path`` (a tracked path, or a digest)."""
    return json.loads(_mlv.lineage_uses_json(str(path), repo=None if repo is None else str(repo), rev=rev))
