#!/usr/bin/env python3
"""Issue 18's targets: `mlv import-dvc` (stdlib only).

Started by bench/run-import-dvc.sh (which installs the tools like bench/run.sh and exports DVC_BIN
and MLV_BIN: the release build). One DVC repository is made once: `many` (20,000 files, 1-16 KiB)
copied to data/, `dvc add data` (DVC's default cache type, reflink,copy: a copy on ext4, so DVC's
cache and the workspace each hold the bytes), committed with git.

Scenarios (--scenarios, default all):

  cache   `mlv import-dvc` against `mlv add data` of the same tree in the same state, alternating
          tools (the order reverses each pass). Before each timed command (untimed): `git reset
          --hard` + `git clean -fdq` put back data.dvc and DVC's .gitignore and remove the pointer,
          `.mlv` is deleted and `mlv init` makes a fresh one (an empty mlv cache and stat cache:
          both commands hash every byte). Also `mlv import-dvc` with the workspace copy gone (DVC's
          cache only, as after a fresh `git clone` and copying the cache): data/ is moved aside
          first. Target: import-dvc within 2x of mlv add. `--baseline OLD_MLV` adds OLD_MLV's
          import-dvc (both variants) to the alternation: a before/after in one run.
  remote  DVC's cache pushed to a DVC LOCAL remote (`dvc remote add -d`); each pass starts with
          DVC's cache and data/ moved aside (empty DVC cache, no workspace data) and a fresh
          .mlv: `mlv import-dvc` against `dvc pull`. Target: within 2x of dvc pull. A build
          without the remote source reports the outputs as not available (a `not-available*`
          skip in the --json report): then the row says so instead of a time.

Trees are moved aside into a trash emptied at the end, never deleted during a run: on ext4
without a journal (this machine) creating files soon after a mass deletion costs 10-20x more
(see bench/bench.py, Bench.discard). Times are wall-clock seconds, medians over passes, with
spreads (min-max); memory is peak RSS; ratios are of medians from this one run.
"""

import argparse
import collections
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from scenario import Runner as Base, fmt, median  # noqa: E402

NOT_AVAILABLE = "remote source not available in this build"


class Runner(Base):
    def __init__(self, args):
        super().__init__(args)
        self.repo = None
        self.trash = os.path.join(self.out, "trash")
        self.trash_n = 0

    def aside(self, path):
        """Moves a tree into the trash (emptied at the end; see the module documentation)."""
        if os.path.lexists(path):
            os.makedirs(self.trash, exist_ok=True)
            self.trash_n += 1
            os.rename(path, os.path.join(self.trash, str(self.trash_n)))

    def empty_trash(self):
        shutil.rmtree(self.trash, ignore_errors=True)

    def setup(self):
        """The DVC repository: data/ added by `dvc add`, committed; a local remote pushed to."""
        if self.repo:
            return self.repo
        src, spec = B.generate_dataset("many", self.args.quick, self.args.home)
        self.spec = spec
        work = os.path.join(self.out, "import-dvc")
        shutil.rmtree(work, ignore_errors=True)
        repo = os.path.join(work, "repo")
        os.makedirs(repo)
        d = self.dvc
        self.sh(["git", "init", "-q", "-b", "main"], repo)
        self.sh([d, "init", "-q"], repo)
        self.sh([d, "config", "core.analytics", "false"], repo)
        shutil.copytree(src, os.path.join(repo, "data"))
        self.sh([d, "add", "-q", "data"], repo)
        self.remote = os.path.join(work, "dvc-remote")
        self.sh([d, "remote", "add", "-d", "local", self.remote], repo)
        self.sh([d, "push", "-q"], repo)
        B.git_commit(repo, self.env, self.log, "data added by dvc, with a local remote")
        self.repo = repo
        return repo

    def fresh(self, repo):
        """The committed DVC state and a fresh .mlv (untimed)."""
        self.sh(["git", "reset", "-q", "--hard"], repo)
        self.sh(["git", "clean", "-fdq"], repo)
        self.aside(os.path.join(repo, ".mlv"))
        self.sh([self.mlv, "init"], repo)

    def check_imported(self, repo, res_json):
        """Exit status checked by the caller; the pointer must be there and `mlv status` clean."""
        if not os.path.exists(os.path.join(repo, "data.mlv")):
            raise RuntimeError("no pointer after the import: " + res_json)

    def import_json(self, repo, mlv=None):
        """`mlv import-dvc --json`, timed; returns (Result, parsed report, its text)."""
        out = os.path.join(self.out, "import.json")
        res = self.sh(["sh", "-c", f'exec "$0" import-dvc --json > "{out}"', mlv or self.mlv], repo, check=False)
        with open(out) as f:
            text = f.read()
        try:
            report = json.loads(text)
        except ValueError:
            raise RuntimeError(f"import-dvc (rc {res.rc}) printed no JSON: {text[:200]}")
        return res, report, text

    def scenario_cache(self):
        repo = self.setup()
        steps = ["mlv import-dvc", "mlv add", "mlv import-dvc (cache only)"]
        if self.args.baseline:
            steps += ["baseline import-dvc", "baseline import-dvc (cache only)"]
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        for p in range(self.args.passes):
            order = steps if p % 2 == 0 else list(reversed(steps))
            for label in order:
                self.fresh(repo)
                if label == "mlv add":
                    res = self.sh([self.mlv, "add", "data"], repo)
                else:
                    if label.endswith("(cache only)"):
                        self.aside(os.path.join(repo, "data"))
                    mlv = self.args.baseline if label.startswith("baseline") else None
                    res, report, text = self.import_json(repo, mlv)
                    if res.rc != 0 or report["skipped"]:
                        raise RuntimeError(f"{label}: rc {res.rc}: {text[:400]}")
                    self.check_imported(repo, text)
                st = self.sh([self.mlv, "status"], repo, check=False)
                if st.rc != 0:
                    raise RuntimeError(f"{label}: mlv status not clean after it (rc {st.rc})")
                times[label].append(res.secs)
                rss[label].append(res.rss_kib / 1024)
                B.log(f"  cache {label:28s} {res.secs:8.3f} s  {res.rss_kib / 1024:7.1f} MiB")
        data = f"many ({self.spec['n']} files)"
        add = median(times["mlv add"])
        for label in steps:
            note = "" if label == "mlv add" else f"{median(times[label]) / add:.2f}x of mlv add"
            self.rows.append(("cache", data, label, fmt(times[label]), f"{max(rss[label]):.0f} MiB", note))

    def scenario_remote(self):
        repo = self.setup()
        steps = ["mlv import-dvc", "dvc pull"]
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        unavailable = False
        for p in range(self.args.passes):
            order = steps if p % 2 == 0 else list(reversed(steps))
            for label in order:
                self.fresh(repo)
                self.aside(os.path.join(repo, "data"))
                self.aside(os.path.join(repo, ".dvc", "cache"))
                if label == "dvc pull":
                    res = self.sh([self.dvc, "pull", "-q"], repo)
                else:
                    res, report, text = self.import_json(repo)
                    if any(s["kind"].startswith("not-available") for s in report["skipped"]):
                        unavailable = True
                        B.log(f"  remote {label}: {NOT_AVAILABLE}")
                        continue
                    if res.rc != 0 or report["skipped"]:
                        raise RuntimeError(f"{label}: rc {res.rc}: {text[:400]}")
                    self.check_imported(repo, text)
                times[label].append(res.secs)
                rss[label].append(res.rss_kib / 1024)
                B.log(f"  remote {label:28s} {res.secs:8.3f} s  {res.rss_kib / 1024:7.1f} MiB")
        data = f"many ({self.spec['n']} files), DVC local remote"
        pull = median(times["dvc pull"])
        if unavailable:
            self.rows.append(("remote", data, "mlv import-dvc", NOT_AVAILABLE, "", ""))
        else:
            self.rows.append(("remote", data, "mlv import-dvc", fmt(times["mlv import-dvc"]),
                              f"{max(rss['mlv import-dvc']):.0f} MiB",
                              f"{median(times['mlv import-dvc']) / pull:.2f}x of dvc pull"))
        self.rows.append(("remote", data, "dvc pull", fmt(times["dvc pull"]), f"{max(rss['dvc pull']):.0f} MiB", ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="cache,remote")
    ap.add_argument("--quick", action="store_true", help="small data, one pass (smoke run)")
    ap.add_argument("--passes", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default=None)
    ap.add_argument("--home", default=None)
    ap.add_argument("--baseline", default=None, metavar="MLV",
                    help="another mlv binary whose import-dvc alternates with MLV_BIN's (cache scenario)")
    args = ap.parse_args()
    if args.passes is None:
        args.passes = 1 if args.quick else 5
    here = os.path.dirname(os.path.abspath(__file__))
    args.home = os.path.abspath(args.home or os.environ.get("MLV_BENCH_HOME") or os.path.join(here, ".cache"))
    args.out = os.path.abspath(args.out or os.path.join(args.home, "runs", "import-dvc-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(args.out, exist_ok=True)
    B.LOG_FILE = open(os.path.join(args.out, "bench.log"), "a")
    B.log(f"results in {args.out}")
    B.log("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    r = Runner(args)
    try:
        for s in args.scenarios.split(","):
            getattr(r, "scenario_" + s.replace("-", "_"))()
    finally:
        r.empty_trash()
    B.log("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    r.report()


if __name__ == "__main__":
    main()
