#!/usr/bin/env python3
"""Issue 16's targets: remote format 2 beside format 1, DVC and rclone (stdlib only).

Started by bench/run-format2.sh (which installs the tools like bench/run.sh and exports DVC_BIN,
MLV_BIN, S3S_FS_BIN). One s3s-fs server for the whole run; in front of it, for the counting
passes, a counting proxy (bench/s3count.py: requests by method, body bytes each way). Times are
measured without the proxy (every byte through Python slows a transfer), counts with it, in a
separate pass. "mlv f2" is a remote turned to format 2 with `mlv remote upgrade`; "mlv f1" the
same kind of remote left at format 1.

Scenarios (--scenarios, default edits,many,local,rss; add huge, or pass --huge):

  edits  a 1 GiB file of random bytes (--edit-mib) added and pushed to S3; then, each from the
         same base, 1 MiB overwritten in the middle, 1 MiB inserted in the middle, 10 MB
         appended, 100 scattered 4 KiB edits: `add` + `push`, counted (bytes uploaded, write
         requests). Then in a clone holding the base version: check out each edit's commit and
         `pull`, counted (bytes downloaded). mlv f2 does every edit; mlv f1 and DVC move the
         whole file whatever the edit, so they do the overwrite only (--edit-tools-all: all).
         Targets: <= 2 MiB and <= 4 writes; <= 2 MiB; <= 11 MiB; <= 48 MiB; pull <= 2 MiB.
  many   `many` (20,000 files) pushed to S3 and pulled into a fresh clone: mlv f2, mlv f1,
         `rclone copy` both ways (--passes, tools alternating; fresh prefixes per pass), then
         a no-op push; then the counting pass. Targets: f2 push <= 40 writes; push and pull
         >= 3x faster than f1 and faster than rclone.
  local  `many` pushed to a fresh local-directory remote: mlv f2, mlv f1, `dvc push`
         (alternating). Target: f2 >= 5x faster than DVC.
  rss    peak RSS of f2 push and pull (fresh clone) on mixed and large (many: from `many`).
         Target: < 100 MB.
  huge   `huge-count` (1,000,000 files, --huge-files N): f2 push to S3 and a no-op push, timed;
         the no-op push counted. Targets: push <= 60 s; no-op <= 3 requests and < 5 s.

Writes results.md (tables: figure, target, met) and results.json in --out.
"""

import argparse
import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from scenario import Runner as Base, fmt, median  # noqa: E402
from s3count import CountingProxy  # noqa: E402

MIB = B.MIB
KIB = B.KIB


def mib(n):
    return f"{n / MIB:,.2f} MiB"


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


# ---------------------------------------------------------------------------------------------
# The edits (each from the same base)

EDITS = ("overwrite", "insert", "append", "scattered")
EDIT_TITLE = {
    "overwrite": "1 MiB overwritten in the middle",
    "insert": "1 MiB inserted in the middle",
    "append": "10 MB appended",
    "scattered": "100 scattered 4 KiB edits",
}
# (push bytes target, push writes target, pull bytes target); the issue sets the pull target
# on the overwrite; the other pulls are reported beside the bytes their pushes sent
EDIT_TARGET = {
    "overwrite": (2 * MIB, 4, 2 * MIB),
    "insert": (2 * MIB, None, None),
    "append": (11 * MIB, None, None),
    "scattered": (48 * MIB, None, None),
}


def make_edit(base, dest, kind):
    """Writes base with the edit `kind` applied into dest (deterministic bytes)."""
    size = os.path.getsize(base)
    rng = B.random.Random(f"edit/{kind}")
    mid = size // 2
    if kind == "insert":
        with open(base, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(_Limited(src, mid), out, 16 * MIB)
            out.write(rng.randbytes(MIB))
            shutil.copyfileobj(src, out, 16 * MIB)
        return
    shutil.copyfile(base, dest)
    with open(dest, "r+b") as f:
        if kind == "overwrite":
            f.seek(mid)
            f.write(rng.randbytes(MIB))
        elif kind == "append":
            f.seek(0, 2)
            f.write(rng.randbytes(10_000_000))
        elif kind == "scattered":
            for i in range(100):
                f.seek(i * (size // 100) + size // 200)
                f.write(rng.randbytes(4 * KIB))
        else:
            raise SystemExit(f"unknown edit {kind}")


class _Limited:
    def __init__(self, f, n):
        self.f, self.n = f, n

    def read(self, k=-1):
        k = self.n if k < 0 else min(k, self.n)
        b = self.f.read(k)
        self.n -= len(b)
        return b


# ---------------------------------------------------------------------------------------------


class Runner(Base):
    def __init__(self, args):
        super().__init__(args)
        self.server = B.S3Server("s3s-fs", self.out)
        self.proxy = CountingProxy(self.server.port)
        B.log(f"counting proxy on {self.proxy.endpoint} -> {self.server.endpoint}")
        self.targets = []  # (scenario, figure, value text, target text, met: True/False/None)
        self.figures = []  # (scenario, tool, step, time, peak RSS, requests, bytes)
        self.samples = []
        self.trash = os.path.join(self.out, "trash")
        self.trash_n = 0

    # --- helpers -------------------------------------------------------------------------------

    def discard(self, path):
        """Moves a tree aside (deleting many files makes later file creation slow on this
        machine's ext4 for minutes, docs/benchmarks.md Method); the trash is emptied at the end."""
        if not os.path.lexists(path):
            return
        self.trash_n += 1
        os.makedirs(self.trash, exist_ok=True)
        os.rename(path, os.path.join(self.trash, str(self.trash_n)))

    def target(self, scenario, figure, value, target, met):
        if self.args.quick:
            met = None
        self.targets.append((scenario, figure, value, target, met))
        B.log(f"  target {scenario}: {figure}: {value} (target {target}) {verdict(met)}")

    def figure(self, scenario, tool, step, res=None, counts=None, note=""):
        t = f"{res.secs:.2f} s" if res is not None else ""
        r = f"{res.rss_kib / 1024:.0f} MiB" if res is not None else ""
        req = up = down = ""
        if counts is not None:
            req = requests_text(counts)
            up, down = mib(counts["up_bytes"]), mib(counts["down_bytes"])
        self.figures.append((scenario, tool, step, t, r, req, up, down, note))
        self.samples.append(dict(scenario=scenario, tool=tool, step=step,
                                 secs=res.secs if res else None,
                                 rss_mib=res.rss_kib / 1024 if res else None,
                                 counts=counts, note=note))
        B.log(f"  {scenario:6s} {tool:8s} {step:34s} {t:>9s} {r:>8s} {req} up {up} down {down} {note}")

    def counted(self, argv, cwd, env=None):
        self.proxy.reset()
        res = self.sh(argv, cwd, env=env)
        return res, self.proxy.snapshot()

    def git_repo(self, path):
        os.makedirs(path)
        self.sh(["git", "init", "-q", "-b", "main"], path)

    def commit(self, repo, msg):
        B.git_commit(repo, self.env, self.log, msg)

    def mlv_remote_s3(self, repo, name, prefix, endpoint):
        m = self.mlv
        for argv in ([m, "remote", "add", name, f"s3://{B.BUCKET}/{prefix}"],
                     [m, "remote", "modify", name, "endpoint", endpoint],
                     [m, "remote", "modify", name, "allow_http", "true"],
                     [m, "remote", "modify", name, "region", "us-east-1"]):
            self.sh(argv, repo)

    def dvc_remote_s3(self, repo, name, prefix, endpoint):
        d = self.dvc
        for argv in ([d, "remote", "add", name, f"s3://{B.BUCKET}/{prefix}"],
                     [d, "remote", "modify", name, "endpointurl", endpoint],
                     [d, "remote", "modify", name, "region", "us-east-1"]):
            self.sh(argv, repo)

    def rclone_env(self, endpoint):
        up = "BENCHS3"
        env = dict(self.env)
        env.update({
            f"RCLONE_CONFIG_{up}_TYPE": "s3", f"RCLONE_CONFIG_{up}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{up}_ENDPOINT": endpoint,
            f"RCLONE_CONFIG_{up}_ACCESS_KEY_ID": B.ACCESS_KEY,
            f"RCLONE_CONFIG_{up}_SECRET_ACCESS_KEY": B.SECRET_KEY,
            f"RCLONE_CONFIG_{up}_REGION": "us-east-1",
            f"RCLONE_CONFIG_{up}_FORCE_PATH_STYLE": "true",
            f"RCLONE_CONFIG_{up}_NO_CHECK_BUCKET": "true",
        })
        return env

    def rclone(self, src, dst, endpoint, count=False):
        argv = ["rclone", "copy"] + self.args.rclone_flags.split() + [src, dst]
        env = self.rclone_env(endpoint)
        if count:
            return self.counted(argv, self.out, env=env)
        return self.sh(argv, self.out, env=env), None

    def clear_prefix(self, prefix):
        self.server.clear_prefix(prefix, self.discard)

    def mlv_push(self, repo, remote, count=False):
        argv = [self.mlv, "push", "-r", remote]
        return self.counted(argv, repo) if count else (self.sh(argv, repo), None)

    # --- edits ---------------------------------------------------------------------------------

    def base_file(self):
        size = self.args.edit_mib * MIB
        root = os.path.join(self.args.home, "datasets", f"edit-base-{self.args.edit_mib}-v1")
        path = os.path.join(root, "base.bin")
        if not os.path.exists(os.path.join(root, ".complete")):
            shutil.rmtree(root, ignore_errors=True)
            os.makedirs(root)
            B.log(f"generating {path} ({self.args.edit_mib} MiB)")
            B.write_random(path, size, "edit-base")
            open(os.path.join(root, ".complete"), "w").close()
        return path

    def scenario_edits(self):
        base = self.base_file()
        work = os.path.join(self.out, "edits")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        expected = {}
        results = {}
        for tool in self.args.edit_tools:
            edits = list(EDITS) if tool == "mlv-f2" or self.args.edit_tools_all else ["overwrite"]
            results[tool] = self._edits(tool, base, os.path.join(work, tool), edits, expected)
            # each tool's trees are 5-10 GiB: deleted before the next tool runs
            shutil.rmtree(os.path.join(work, tool), ignore_errors=True)
            self.clear_prefix(f"edits-{tool}")
        size = os.path.getsize(base)
        for kind in EDITS:
            r = results.get("mlv-f2", {}).get(kind)
            if not r:
                continue
            up_t, w_t, down_t = EDIT_TARGET[kind]
            push, pull = r["push"], r["pull"]
            title = f"{EDIT_TITLE[kind]} of {size / MIB:,.0f} MiB"
            self.target("edits", f"{title}: add + push, bytes uploaded", mib(push["up_bytes"]),
                        f"<= {mib(up_t)}", push["up_bytes"] <= up_t)
            if w_t is not None:
                self.target("edits", f"{title}: push, write requests", str(push["writes"]),
                            f"<= {w_t}", push["writes"] <= w_t)
            self.target("edits", f"{title}: pull into a clone holding the base, bytes downloaded",
                        mib(pull["down_bytes"]), f"<= {mib(down_t)}" if down_t else "(none)",
                        pull["down_bytes"] <= down_t if down_t else None)

    def _edits(self, tool, base, work, edits, expected):
        """One tool: base pushed, each edit pushed from its own branch, then pulled in a clone."""
        os.makedirs(work)
        repo = os.path.join(work, "repo")
        self.git_repo(repo)
        is_mlv = tool.startswith("mlv")
        tb = self.mlv if is_mlv else self.dvc
        prefix = f"edits-{tool}"
        if is_mlv:
            self.sh([tb, "init"], repo)
            self.mlv_remote_s3(repo, "s3", prefix, self.proxy.endpoint)
            self.commit(repo, "remote")
            if tool == "mlv-f2":
                self.sh([tb, "remote", "upgrade", "s3"], repo)
            add, push, pull, checkout = ([tb, "add", "model.bin"], [tb, "push", "-r", "s3"],
                                         [tb, "pull", "-r", "s3"], [tb, "checkout"])
        else:
            self.sh([tb, "init", "-q"], repo)
            self.sh([tb, "config", "core.analytics", "false"], repo)
            self.dvc_remote_s3(repo, "s3", prefix, self.proxy.endpoint)
            add, push, pull, checkout = ([tb, "add", "-q", "model.bin"], [tb, "push", "-q", "-r", "s3"],
                                         [tb, "pull", "-q", "-r", "s3"], [tb, "checkout", "-q"])
        self.commit(repo, "init")
        target = os.path.join(repo, "model.bin")
        shutil.copyfile(base, target)
        if "base" not in expected:
            expected["base"] = file_digest(base)
        res = self.sh(add, repo)
        self.figure("edits", tool, "add (base)", res)
        self.commit(repo, "base")
        res, c = self.counted(push, repo)
        self.figure("edits", tool, "push (base)", res, c, "through the counting proxy")
        out = {}
        for kind in edits:
            self.sh(["git", "checkout", "-q", "-b", f"e-{kind}", "main"], repo)
            make_edit(base, target, kind)
            if kind not in expected:
                expected[kind] = file_digest(target)
            res = self.sh(add, repo)
            self.figure("edits", tool, f"add ({kind})", res)
            self.commit(repo, kind)
            res, c = self.counted(push, repo)
            self.figure("edits", tool, f"push ({kind})", res, c, "through the counting proxy")
            out[kind] = dict(push=c)
            self.sh(["git", "checkout", "-q", "main"], repo)
        # the clone: the base pulled, then each edit's commit checked out and pulled
        clone = os.path.join(work, "clone")
        self.sh(["git", "clone", "-q", repo, "clone"], work)
        res, c = self.counted(pull, clone)
        self.figure("edits", tool, "pull (base, fresh clone)", res, c, "through the counting proxy")
        for kind in edits:
            self.sh(["git", "checkout", "-q", f"e-{kind}"], clone)
            res, c = self.counted(pull, clone)
            got = file_digest(os.path.join(clone, "model.bin"))
            if got != expected[kind]:
                raise RuntimeError(f"edits: {tool} pull of {kind}: the file differs")
            self.figure("edits", tool, f"pull ({kind}) over the base", res, c, "through the counting proxy")
            out[kind]["pull"] = c
            # back to the base in the workspace (untimed)
            self.sh(["git", "checkout", "-q", "main"], clone)
            self.sh(checkout, clone)
            if file_digest(os.path.join(clone, "model.bin")) != expected["base"]:
                raise RuntimeError(f"edits: {tool}: checkout of the base failed")
        return out

    # --- many (S3) -----------------------------------------------------------------------------

    def many_repo(self):
        """An mlv repository with `many` added and committed (built once), remotes f2/f1 on S3
        directly and f2c/f1c (same prefixes) through the counting proxy."""
        if getattr(self, "_many", None):
            return self._many
        src, spec = B.generate_dataset("many", self.args.quick, self.args.home)
        work = os.path.join(self.out, "many")
        os.makedirs(work, exist_ok=True)
        repo = os.path.join(work, "repo")
        self.git_repo(repo)
        self.sh([self.mlv, "init"], repo)
        shutil.copytree(src, os.path.join(repo, "data"))
        self.sh(["sync"], repo)
        self.sh([self.mlv, "add", "data"], repo)
        for name, prefix, ep in (("f2", "many-f2", self.server.endpoint), ("f1", "many-f1", self.server.endpoint),
                                 ("f2c", "many-f2", self.proxy.endpoint), ("f1c", "many-f1", self.proxy.endpoint)):
            self.mlv_remote_s3(repo, name, prefix, ep)
        self.commit(repo, "many")
        self._many = dict(src=src, spec=spec, work=work, repo=repo,
                          expected=B.tree_manifest(src, full=True))
        return self._many

    def fresh_s3(self, m):
        """Empties the remotes' prefixes; f2 is upgraded again."""
        for prefix in ("many-f2", "many-f1", "rclone-many"):
            self.clear_prefix(prefix)
        self.sh([self.mlv, "remote", "upgrade", "f2"], m["repo"])

    def scenario_many(self):
        m = self.many_repo()
        repo, work, src = m["repo"], m["work"], m["src"]
        n = m["spec"]["n"]
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        tools = ["mlv f2", "mlv f1", "rclone"]
        for p in range(self.args.passes):
            self.fresh_s3(m)
            order = tools if p % 2 == 0 else list(reversed(tools))
            B.log(f"many: pass {p + 1}/{self.args.passes} (order: {', '.join(order)})")
            for t in order:
                if t == "rclone":
                    res, _ = self.rclone(src, f"BENCHS3:{B.BUCKET}/rclone-many", self.server.endpoint)
                else:
                    res, _ = self.mlv_push(repo, t.split()[1])
                if not res.ok:
                    raise RuntimeError(f"many: {t} push failed")
                times[(t, "push")].append(res.secs)
                rss[(t, "push")].append(res.rss_kib / 1024)
                B.log(f"  many push {t:8s} {res.secs:8.3f} s {res.rss_kib / 1024:6.0f} MiB")
            for t in order:
                if t == "rclone":
                    continue
                res, _ = self.mlv_push(repo, t.split()[1])
                times[(t, "no-op push")].append(res.secs)
                rss[(t, "no-op push")].append(res.rss_kib / 1024)
            for t in order:
                dest = os.path.join(work, f"p{p}-{t.replace(' ', '-')}")
                if t == "rclone":
                    res, _ = self.rclone(f"BENCHS3:{B.BUCKET}/rclone-many", dest, self.server.endpoint)
                    got = dest
                else:
                    self.sh(["git", "clone", "-q", repo, dest], work)
                    res = self.sh([self.mlv, "pull", "-r", t.split()[1]], dest)
                    got = os.path.join(dest, "data")
                bad = B.verify(got, m["expected"], True)
                if not res.ok or bad:
                    raise RuntimeError(f"many: {t} pull failed: {bad}")
                times[(t, "pull")].append(res.secs)
                rss[(t, "pull")].append(res.rss_kib / 1024)
                B.log(f"  many pull {t:8s} {res.secs:8.3f} s {res.rss_kib / 1024:6.0f} MiB")
                self.discard(dest)
        for t in tools:
            for step in ("push", "no-op push", "pull"):
                if (t, step) in times:
                    s = times[(t, step)]
                    self.figures.append(("many", t, step, fmt(s), f"{max(rss[(t, step)]):.0f} MiB",
                                         "", "", "", f"{len(s)} passes, no proxy"))
                    self.samples.append(dict(scenario="many", tool=t, step=step, secs=s,
                                             rss_mib=rss[(t, step)]))
        self.rss_rows.append(("many", "push", max(rss[("mlv f2", "push")])))
        self.rss_rows.append(("many", "pull", max(rss[("mlv f2", "pull")])))
        # counting pass
        self.fresh_s3(m)
        counts = {}
        for t in tools:
            if t == "rclone":
                res, c = self.rclone(src, f"BENCHS3:{B.BUCKET}/rclone-many", self.proxy.endpoint, count=True)
            else:
                res, c = self.mlv_push(repo, t.split()[1] + "c", count=True)
            counts[(t, "push")] = c
            self.figure("many", t, "push (counted)", res, c, "through the counting proxy")
        for t in tools[:2]:
            res, c = self.mlv_push(repo, t.split()[1] + "c", count=True)
            counts[(t, "no-op push")] = c
            self.figure("many", t, "no-op push (counted)", res, c, "through the counting proxy")
        for t in tools:
            dest = os.path.join(work, f"count-{t.replace(' ', '-')}")
            if t == "rclone":
                res, c = self.rclone(f"BENCHS3:{B.BUCKET}/rclone-many", dest, self.proxy.endpoint, count=True)
            else:
                self.sh(["git", "clone", "-q", repo, dest], work)
                res, c = self.counted([self.mlv, "pull", "-r", t.split()[1] + "c"], dest)
            self.figure("many", t, "pull (counted)", res, c, "through the counting proxy")
            self.discard(dest)
        # targets
        w = counts[("mlv f2", "push")]["writes"]
        self.target("many", f"many ({n:,} files) push to S3, write requests (mlv f2)", str(w), "<= 40", w <= 40)
        for step in ("push", "pull"):
            f2, f1, rc = (median(times[(t, step)]) for t in tools)
            self.target("many", f"{step} time, mlv f2 against mlv f1 (s3s-fs)",
                        f"{f1 / f2:.1f}x faster ({f2:.2f} s vs {f1:.2f} s)", ">= 3x", f1 / f2 >= 3)
            self.target("many", f"{step} time, mlv f2 against rclone copy",
                        f"{rc / f2:.2f}x ({f2:.2f} s vs {rc:.2f} s)", "faster (> 1x)", rc / f2 > 1)
        nc = counts[("mlv f2", "no-op push")]
        self.target("many", "no-op push requests (mlv f2)", requests_text(nc), "(a handful)", None)

    # --- local ---------------------------------------------------------------------------------

    def scenario_local(self):
        m = self.many_repo()
        repo, work = m["repo"], m["work"]
        dvc_repo = os.path.join(work, "dvc")
        self.git_repo(dvc_repo)
        self.sh([self.dvc, "init", "-q"], dvc_repo)
        self.sh([self.dvc, "config", "core.analytics", "false"], dvc_repo)
        shutil.copytree(m["src"], os.path.join(dvc_repo, "data"))
        self.sh(["sync"], dvc_repo)
        self.sh([self.dvc, "add", "-q", "data"], dvc_repo)
        self.commit(dvc_repo, "many")
        tools = ["mlv f2", "mlv f1", "dvc"]
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        for p in range(self.args.passes):
            order = tools if p % 2 == 0 else list(reversed(tools))
            B.log(f"local: pass {p + 1}/{self.args.passes} (order: {', '.join(order)})")
            for t in order:
                dest = os.path.join(work, f"local-{p}-{t.replace(' ', '-')}")
                os.makedirs(dest)
                name = f"l{p}{t[-2:]}"
                if t == "dvc":
                    self.sh([self.dvc, "remote", "add", "-f", name, dest], dvc_repo)
                    res = self.sh([self.dvc, "push", "-q", "-r", name], dvc_repo)
                else:
                    self.sh([self.mlv, "remote", "add", name, dest], repo)
                    self.commit(repo, "remote")
                    if t == "mlv f2":
                        self.sh([self.mlv, "remote", "upgrade", name], repo)
                    res = self.sh([self.mlv, "push", "-r", name], repo)
                if not res.ok:
                    raise RuntimeError(f"local: {t} push failed")
                times[t].append(res.secs)
                rss[t].append(res.rss_kib / 1024)
                B.log(f"  local push {t:8s} {res.secs:8.3f} s {res.rss_kib / 1024:6.0f} MiB")
        for t in tools:
            self.figures.append(("local", t, "push to a local directory", fmt(times[t]),
                                 f"{max(rss[t]):.0f} MiB", "", "", "", f"{len(times[t])} passes"))
            self.samples.append(dict(scenario="local", tool=t, step="push", secs=times[t], rss_mib=rss[t]))
        f2, f1, d = (median(times[t]) for t in tools)
        self.target("local", f"many ({m['spec']['n']:,} files) push to a local directory, mlv f2 against DVC",
                    f"{d / f2:.1f}x faster ({f2:.2f} s vs {d:.2f} s; f1 {d / f1:.1f}x)", ">= 5x", d / f2 >= 5)

    # --- rss -----------------------------------------------------------------------------------

    def scenario_rss(self):
        for name in ("mixed", "large"):
            src, spec = B.generate_dataset(name, self.args.quick, self.args.home)
            work = os.path.join(self.out, "rss-" + name)
            os.makedirs(work)
            repo = os.path.join(work, "repo")
            self.git_repo(repo)
            self.sh([self.mlv, "init"], repo)
            shutil.copytree(src, os.path.join(repo, "data"))
            self.sh(["sync"], repo)
            self.sh([self.mlv, "add", "data"], repo)
            self.mlv_remote_s3(repo, "f2", f"rss-{name}", self.server.endpoint)
            self.commit(repo, name)
            self.sh([self.mlv, "remote", "upgrade", "f2"], repo)
            res, _ = self.mlv_push(repo, "f2")
            self.figure("rss", "mlv f2", f"push {name}", res, None, "no proxy, one run")
            self.rss_rows.append((name, "push", res.rss_kib / 1024))
            clone = os.path.join(work, "clone")
            self.sh(["git", "clone", "-q", repo, clone], work)
            res = self.sh([self.mlv, "pull", "-r", "f2"], clone)
            bad = B.verify(os.path.join(clone, "data"), B.tree_manifest(src, full=False), False)
            if bad:
                raise RuntimeError(f"rss: pull of {name}: {bad}")
            self.figure("rss", "mlv f2", f"pull {name} (fresh clone)", res, None, "no proxy, one run")
            self.rss_rows.append((name, "pull", res.rss_kib / 1024))
            shutil.rmtree(work, ignore_errors=True)
            self.clear_prefix(f"rss-{name}")

    def report_rss(self):
        for name, step, r in self.rss_rows:
            self.target("rss", f"peak RSS, mlv f2 {step} of {name}", f"{r:.0f} MiB", "< 100 MB",
                        r * MIB < 100e6)

    # --- huge ----------------------------------------------------------------------------------

    def scenario_huge(self):
        B.HUGE_FILES = self.args.huge_files
        src, spec = B.generate_dataset("huge-count", self.args.quick, self.args.home)
        n = spec["n"]
        work = os.path.join(self.out, "huge")
        os.makedirs(work)
        repo = os.path.join(work, "repo")
        self.git_repo(repo)
        self.sh([self.mlv, "init"], repo)
        self.sh(["cp", "-a", src, os.path.join(repo, "data")], repo)
        self.sh(["sync"], repo)
        res = self.sh([self.mlv, "add", "data"], repo)
        self.figure("huge", "mlv", "add", res, None, "")
        self.mlv_remote_s3(repo, "f2", "huge-f2", self.server.endpoint)
        self.mlv_remote_s3(repo, "f2c", "huge-f2", self.proxy.endpoint)
        self.commit(repo, "huge")
        self.sh([self.mlv, "remote", "upgrade", "f2"], repo)
        push, _ = self.mlv_push(repo, "f2")
        self.figure("huge", "mlv f2", "push to S3", push, None, "no proxy")
        noop, _ = self.mlv_push(repo, "f2")
        self.figure("huge", "mlv f2", "no-op push", noop, None, "no proxy")
        res, c = self.mlv_push(repo, "f2c", count=True)
        self.figure("huge", "mlv f2", "no-op push (counted)", res, c, "through the counting proxy")
        label = f"huge-count ({n:,} files)"
        self.target("huge", f"{label}: push to S3 (mlv f2)", f"{push.secs:.1f} s", "<= 60 s", push.secs <= 60)
        self.target("huge", f"{label}: no-op push, requests", requests_text(c), "<= 3", c["requests"] <= 3)
        self.target("huge", f"{label}: no-op push, time", f"{noop.secs:.2f} s", "< 5 s", noop.secs < 5)
        self.discard(work)
        self.clear_prefix("huge-f2")

    # --- report --------------------------------------------------------------------------------

    def report(self):
        lines = ["| scenario | figure | measured | target | met |", "|---|---|---|---|---|"]
        for s, fig, val, tgt, met in self.targets:
            lines.append(f"| {s} | {fig} | {val} | {tgt} | {verdict(met)} |")
        lines += ["", "| scenario | tool | step | time | peak RSS | requests | uploaded | downloaded | note |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in self.figures:
            lines.append("| " + " | ".join(row) + " |")
        text = "\n".join(lines) + "\n"
        print(text)
        with open(os.path.join(self.out, "results.md"), "w") as f:
            f.write(text)
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(dict(args={k: v for k, v in vars(self.args).items()},
                           machine=B.machine_info(self.out), targets=self.targets,
                           samples=self.samples), f, indent=1)

    def close(self):
        self.proxy.stop()
        self.server.stop()
        shutil.rmtree(os.path.join(self.out, "s3s-fs-root"), ignore_errors=True)
        shutil.rmtree(self.trash, ignore_errors=True)


def verdict(met):
    return "n/a" if met is None else ("met" if met else "**missed**")


def requests_text(c):
    keys = [k for k in ("PUT", "POST", "DELETE", "GET", "HEAD", "LIST") if c.get(k)]
    detail = ", ".join(f"{k} {c[k]}" for k in keys)
    return f"{c['requests']} ({detail})" if detail else "0"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--scenarios", default=None, help="edits,many,local,rss,huge (default: all but huge)")
    ap.add_argument("--huge", action="store_true", help="also run huge (slow to create: see docs/benchmarks.md)")
    ap.add_argument("--huge-files", type=int, default=None, help="files in huge-count (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="small data, one pass (smoke run; no verdicts)")
    ap.add_argument("--passes", type=int, default=None, help="passes of many and local (default 3)")
    ap.add_argument("--edit-mib", type=int, default=None, help="size of the edited file (default 1024)")
    ap.add_argument("--edit-tools", default="mlv-f2,mlv-f1,dvc")
    ap.add_argument("--edit-tools-all", action="store_true",
                    help="mlv f1 and DVC do every edit too (they move the whole file each time)")
    ap.add_argument("--rclone-flags", default="--transfers 8 --checkers 16")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default=None)
    ap.add_argument("--home", default=None)
    args = ap.parse_args()
    if args.passes is None:
        args.passes = 1 if args.quick else 3
    if args.edit_mib is None:
        args.edit_mib = 64 if args.quick else 1024
    if args.scenarios is None:
        args.scenarios = "edits,many,local,rss" + (",huge" if args.huge else "")
    args.edit_tools = [t for t in args.edit_tools.split(",") if t]
    here = os.path.dirname(os.path.abspath(__file__))
    args.home = os.path.abspath(args.home or os.environ.get("MLV_BENCH_HOME") or os.path.join(here, ".cache"))
    args.out = os.path.abspath(args.out or os.path.join(args.home, "runs", "format2-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(args.out, exist_ok=True)
    B.LOG_FILE = open(os.path.join(args.out, "bench.log"), "a")
    B.log(f"results in {args.out}")
    r = Runner(args)
    r.rss_rows = []
    failed = False
    try:
        for s in args.scenarios.split(","):
            try:
                getattr(r, "scenario_" + s.replace("-", "_"))()
            except RuntimeError as e:
                failed = True
                B.log(f"scenario {s} failed: {e}")
        r.report_rss()
        r.report()
    finally:
        r.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
