#!/usr/bin/env bash
# A/B of two mlv binaries on the `many` dataset (generate it first with bench/run.sh): no-op
# status, status with 1% changed, add after change, checkout of deleted data, pull into a fresh
# clone from a local remote. The binaries alternate (order flips each pass); prints every sample
# and the median of 5.  Usage: bench/ab.sh OLD_MLV NEW_MLV
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=$(realpath "$1"); NEW=$(realpath "$2")
DS=$(ls -d "${MLV_BENCH_HOME:-$ROOT/bench/.cache}"/datasets/many-*/ | head -1)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N); echo "$e - $s" | bc; }
for v in old new; do
  bin=$([ $v = old ] && echo "$OLD" || echo "$NEW"); r=$W/$v; mkdir -p $r; cd $r; git init -q; git config user.email a@b; git config user.name t
  cp -r "$DS" data; $bin init >/dev/null 2>&1; $bin add data >/dev/null 2>&1
  $bin remote add origin $W/remote-$v --default >/dev/null 2>&1; $bin push >/dev/null 2>&1
  git add -A >/dev/null; git commit -qm v1
done
declare -A R
for pass in 1 2 3 4 5; do
  for v in $( [ $((pass%2)) = 1 ] && echo "old new" || echo "new old"); do
    bin=$([ $v = old ] && echo "$OLD" || echo "$NEW"); r=$W/$v; cd $r
    R[$v,status]+="$(t $bin status) "
    # 1% changed: touch-modify 200 files
    for f in $(find data -type f | sort | head -200); do echo x >> $f; done
    R[$v,status1]+="$(t $bin status) "
    R[$v,addchg]+="$(t $bin add data) "
    rm -rf data/*
    R[$v,checkout]+="$(t $bin checkout --force data) "
    rm -rf $W/clone-$v; git clone -q $r $W/clone-$v; cd $W/clone-$v
    R[$v,pull]+="$(t $bin pull) "
    cd $r; git add -A >/dev/null; git commit -qm "p$pass" >/dev/null || true; $bin push >/dev/null 2>&1
  done
done
for k in status status1 addchg checkout pull; do
  for v in old new; do
    echo "$k $v: $(echo ${R[$v,$k]} | tr ' ' '\n' | sort -n | tr '\n' ' ')  median=$(echo ${R[$v,$k]} | tr ' ' '\n' | sort -n | sed -n 3p)"
  done
done
