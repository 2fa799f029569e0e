#!/usr/bin/env python3
"""Issue 15's targets: pipelines (stdlib only).

Started by bench/run-pipeline.sh (which installs the tools like bench/run.sh and exports DVC_BIN
and MLV_BIN). The same 3-stage pipeline over `many` (20,000 files) in an mlv repository
(mlv.toml) and a DVC one (dvc.yaml):

  prepare   data/ + prepare.py, params prepare.*  -> features/ (one file per top directory)
  train     features/ + train.py, params train.*  -> model.bin (8 MiB)
  evaluate  model.bin + evaluate.py               -> eval/ (a report), metrics.json

Scenarios (--scenarios, default all):

  noop     `mlv repro`, `dvc repro` and `mlv status` with nothing changed, alternating tools.
           Targets: mlv repro >= 20x faster than dvc repro; within 3x of mlv status.
  restore  a branch `exp` changed prepare.seed and was reproduced; `git checkout main` and then
           `mlv repro` restores all three stages' outputs from the run cache (no command runs:
           checked by a counter file the commands append to), against `mlv checkout` of the same
           outputs after the same `git checkout`; `dvc repro` and `dvc checkout` beside them.
           Target: mlv repro within 1.5x of mlv checkout.

Times are wall-clock seconds, medians over passes, with spreads (min-max); memory is peak RSS.
"""

import argparse
import collections
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
from scenario import Runner as Base, fmt, median  # noqa: E402

PREPARE = r'''
import os, re, sys
seed = re.search(r"seed: (\d+)", open("params.yaml").read()).group(1)
os.makedirs("features", exist_ok=True)
for top in sorted(os.listdir("data")):
    with open(os.path.join("features", top + ".bin"), "wb") as out:
        out.write(("seed " + seed + "\n").encode())
        for root, dirs, files in os.walk(os.path.join("data", top)):
            dirs.sort()
            for name in sorted(files):
                with open(os.path.join(root, name), "rb") as f:
                    out.write(f.read())
open("runs.log", "a").write("prepare\n")
'''

TRAIN = r'''
import hashlib, os, re
lr = re.search(r"lr: ([0-9.]+)", open("params.yaml").read()).group(1)
h = hashlib.sha256(lr.encode())
for name in sorted(os.listdir("features")):
    with open(os.path.join("features", name), "rb") as f:
        h.update(f.read())
block = h.digest() * 32
with open("model.bin", "wb") as out:
    for _ in range(8 * 1024 * 1024 // len(block)):
        out.write(block)
open("runs.log", "a").write("train\n")
'''

EVALUATE = r'''
import hashlib, json, os
d = hashlib.sha256(open("model.bin", "rb").read()).hexdigest()
os.makedirs("eval", exist_ok=True)
open("eval/report.txt", "w").write("model " + d + "\n")
json.dump({"acc": int(d[:4], 16) / 65536}, open("metrics.json", "w"))
open("runs.log", "a").write("evaluate\n")
'''

PARAMS = "prepare:\n  seed: {seed}\ntrain:\n  lr: 0.1\n"

DVC_YAML = """stages:
  prepare:
    cmd: python3 prepare.py
    deps: [data, prepare.py]
    params: [prepare]
    outs: [features]
  train:
    cmd: python3 train.py
    deps: [features, train.py]
    params: [train]
    outs: [model.bin]
  evaluate:
    cmd: python3 evaluate.py
    deps: [model.bin, evaluate.py]
    outs: [eval]
    metrics:
      - metrics.json:
          cache: false
"""


class Runner(Base):
    def __init__(self, args):
        super().__init__(args)
        self.repos = None

    def runs(self, repo):
        path = os.path.join(repo, "runs.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().split()

    def setup(self):
        """Both repositories, pipeline run and committed on main; branch exp with another seed."""
        if self.repos:
            return self.repos
        src, spec = B.generate_dataset("many", self.args.quick, self.args.home)
        self.spec = spec
        work = os.path.join(self.out, "pipeline")
        shutil.rmtree(work, ignore_errors=True)
        repos = {}
        for tool in ("mlv", "dvc"):
            repo = os.path.join(work, tool)
            os.makedirs(repo)
            self.sh(["git", "init", "-q", "-b", "main"], repo)
            with open(os.path.join(repo, ".gitignore"), "w") as f:
                f.write("runs.log\n")
            for name, text in (("prepare.py", PREPARE), ("train.py", TRAIN), ("evaluate.py", EVALUATE)):
                with open(os.path.join(repo, name), "w") as f:
                    f.write(text)
            with open(os.path.join(repo, "params.yaml"), "w") as f:
                f.write(PARAMS.format(seed=1))
            shutil.copytree(src, os.path.join(repo, "data"))
            if tool == "mlv":
                m = self.mlv
                self.sh([m, "init"], repo)
                self.sh([m, "add", "data"], repo)
                self.sh([m, "stage", "add", "prepare", "-i", "data", "-i", "prepare.py",
                         "-p", "params.yaml:prepare", "-o", "features", "--", "python3", "prepare.py"], repo)
                self.sh([m, "stage", "add", "train", "-i", "features", "-i", "train.py",
                         "-p", "params.yaml:train", "-o", "model.bin", "--", "python3", "train.py"], repo)
                self.sh([m, "stage", "add", "evaluate", "-i", "model.bin", "-i", "evaluate.py",
                         "-o", "eval", "-m", "metrics.json", "--", "python3", "evaluate.py"], repo)
                B.git_commit(repo, self.env, self.log, "data and pipeline")
                self.sh([m, "repro"], repo)
            else:
                d = self.dvc
                self.sh([d, "init", "-q"], repo)
                self.sh([d, "config", "core.analytics", "false"], repo)
                self.sh([d, "add", "-q", "data"], repo)
                with open(os.path.join(repo, "dvc.yaml"), "w") as f:
                    f.write(DVC_YAML)
                B.git_commit(repo, self.env, self.log, "data and pipeline")
                self.sh([d, "repro", "-q"], repo)
            B.git_commit(repo, self.env, self.log, "reproduced")
            assert self.runs(repo) == ["prepare", "train", "evaluate"], (tool, self.runs(repo))
            # branch exp: another seed, reproduced and committed
            self.sh(["git", "checkout", "-q", "-b", "exp"], repo)
            with open(os.path.join(repo, "params.yaml"), "w") as f:
                f.write(PARAMS.format(seed=2))
            self.sh([self.mlv if tool == "mlv" else self.dvc, "repro"], repo)
            B.git_commit(repo, self.env, self.log, "seed 2")
            self.sh(["git", "checkout", "-q", "main"], repo)
            self.sh([self.mlv if tool == "mlv" else self.dvc, "checkout"], repo)
            repos[tool] = repo
        self.repos = repos
        return repos

    def scenario_noop(self):
        repos = self.setup()
        steps = [("mlv repro", "mlv", ["repro"]), ("dvc repro", "dvc", ["repro"]),
                 ("mlv status", "mlv", ["status"])]
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        for p in range(self.args.passes):
            order = steps if p % 2 == 0 else list(reversed(steps))
            for label, tool, argv in order:
                repo = repos[tool]
                before = len(self.runs(repo))
                res = self.sh([self.mlv if tool == "mlv" else self.dvc] + argv, repo)
                if len(self.runs(repo)) != before:
                    raise RuntimeError(f"{label}: a stage ran in a no-op repro")
                times[label].append(res.secs)
                rss[label].append(res.rss_kib / 1024)
                B.log(f"  noop {label:12s} {res.secs:8.3f} s  {res.rss_kib / 1024:7.1f} MiB")
        data = f"3 stages over many ({self.spec['n']} files)"
        repro = median(times["mlv repro"])
        self.rows.append(("noop", data, "mlv repro", fmt(times["mlv repro"]), f"{max(rss['mlv repro']):.0f} MiB",
                          f"{median(times['dvc repro']) / repro:.1f}x faster than dvc repro; "
                          f"{repro / median(times['mlv status']):.2f}x of mlv status"))
        for label in ("dvc repro", "mlv status"):
            self.rows.append(("noop", data, label, fmt(times[label]), f"{max(rss[label]):.0f} MiB", ""))

    def scenario_restore(self):
        repos = self.setup()
        steps = [("mlv repro (run cache)", "mlv", ["repro"]), ("mlv checkout", "mlv", ["checkout"]),
                 ("dvc repro (run cache)", "dvc", ["repro"]), ("dvc checkout", "dvc", ["checkout"])]
        times = collections.defaultdict(list)
        rss = collections.defaultdict(list)
        for p in range(self.args.passes):
            order = steps if p % 2 == 0 else list(reversed(steps))
            for label, tool, argv in order:
                repo = repos[tool]
                tb = self.mlv if tool == "mlv" else self.dvc
                # the work tree holds exp's outputs, git main's pointers (untimed; -f: a restore
                # appended a record to main's lineage file)
                self.sh(["git", "checkout", "-q", "-f", "exp"], repo)
                self.sh([tb, "checkout"], repo)
                self.sh(["git", "checkout", "-q", "main"], repo)
                before = len(self.runs(repo))
                res = self.sh([tb] + argv, repo)
                if len(self.runs(repo)) != before:
                    raise RuntimeError(f"{label}: a command ran: {self.runs(repo)[before:]}")
                st = self.sh([tb, "status"], repo, check=False)
                times[label].append(res.secs)
                rss[label].append(res.rss_kib / 1024)
                B.log(f"  restore {label:22s} {res.secs:8.3f} s  {res.rss_kib / 1024:7.1f} MiB (status rc {st.rc})")
        data = f"3 stages' outputs, {self.spec['n']}-file pipeline"
        co = median(times["mlv checkout"])
        for label, _, _ in steps:
            note = ""
            if label == "mlv repro (run cache)":
                note = f"{median(times[label]) / co:.2f}x of mlv checkout"
            if label == "dvc repro (run cache)":
                note = f"{median(times['dvc checkout']) and median(times[label]) / median(times['dvc checkout']):.2f}x of dvc checkout"
            self.rows.append(("restore", data, label, fmt(times[label]), f"{max(rss[label]):.0f} MiB", note))



def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="noop,restore")
    ap.add_argument("--quick", action="store_true", help="small data, one pass (smoke run)")
    ap.add_argument("--passes", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default=None)
    ap.add_argument("--home", default=None)
    args = ap.parse_args()
    if args.passes is None:
        args.passes = 1 if args.quick else 5
    here = os.path.dirname(os.path.abspath(__file__))
    args.home = os.path.abspath(args.home or os.environ.get("MLV_BENCH_HOME") or os.path.join(here, ".cache"))
    args.out = os.path.abspath(args.out or os.path.join(args.home, "runs", "pipeline-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(args.out, exist_ok=True)
    B.LOG_FILE = open(os.path.join(args.out, "bench.log"), "a")
    B.log(f"results in {args.out}")
    r = Runner(args)
    for s in args.scenarios.split(","):
        getattr(r, "scenario_" + s.replace("-", "_"))()
    r.report()


if __name__ == "__main__":
    main()
