#!/usr/bin/env python3
"""Generate an N-stage pipeline for the workflow-engine benchmark (repro vs DVC).

Usage:
    python3 bench/gen_pipeline.py N OUTDIR [--seed 1] [--raw K]

Writes into OUTDIR (created; must be empty or absent):
    dvc.yaml        the pipeline, in the dvc.yaml schema  stages: NAME: {cmd, deps, outs}
    pipeline.yaml   byte-identical copy of dvc.yaml, for repro
    raw/in_XX.txt   K raw input files (default K = max(5, N // 50)), a few KiB each
    out/            empty folder the stage outputs go to (out/.gitkeep keeps it)

The DAG (deterministic for a given N and --seed; stage names s0001..sNNNN are
already in a topological order):
    * the first K stages, and ~5% of the rest, are roots that read one raw file;
    * every other stage reads 1-3 distinct earlier outputs (50% one, 35% two,
      15% three). Each pick is the immediately preceding stage with p = 0.4
      (long chains), otherwise a recent stage (geometric look-back, mean ~10:
      local trees), or, with p = 0.15, any earlier stage (long-range fan-in);
    * each stage writes exactly one small file, out/<name>.txt (< 100 bytes).
Commands are cheap POSIX shell, one process pipeline per stage:
    root:      md5sum raw/in_03.txt > out/s0001.txt
    one dep:   echo s0042 | cat - out/s0041.txt | md5sum > out/s0042.txt
    two/three: cat out/a.txt out/b.txt | md5sum > out/s0043.txt
           or  wc -c out/a.txt out/b.txt > out/s0044.txt   (every third multi-dep stage)
Outputs are byte-for-byte deterministic, so a second run is a true no-op.
The YAML uses only block mappings/sequences and plain scalars that need no
quoting; it parses the same under DVC (ruamel.yaml) and repro (serde-saphyr).
"""
from __future__ import annotations

import argparse
import os
import random
import sys


def build(n: int, seed: int, k_raw: int) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    raws = [f"raw/in_{i:02d}.txt" if k_raw <= 100 else f"raw/in_{i:04d}.txt" for i in range(1, k_raw + 1)]
    width = max(4, len(str(n)))
    stages = []
    multi = 0
    for i in range(n):
        name = f"s{i + 1:0{width}d}"
        out = f"out/{name}.txt"
        if i < k_raw or rng.random() < 0.05:
            dep = raws[i] if i < k_raw else rng.choice(raws)
            stages.append({"name": name, "cmd": f"md5sum {dep} > {out}", "deps": [dep], "outs": [out]})
            continue
        r = rng.random()
        want = 1 if r < 0.5 else (2 if r < 0.85 else 3)
        want = min(want, i)
        picks: list[int] = []
        while len(picks) < want:
            u = rng.random()
            if u < 0.4:
                j = i - 1
            elif u < 0.85:
                j = i - 1 - min(i - 1, int(rng.expovariate(0.1)))
            else:
                j = rng.randrange(i)
            if j not in picks:
                picks.append(j)
        picks.sort()
        deps = [stages[j]["outs"][0] for j in picks]
        if len(deps) == 1:
            cmd = f"echo {name} | cat - {deps[0]} | md5sum > {out}"
        else:
            multi += 1
            if multi % 3 == 0:
                cmd = f"wc -c {' '.join(deps)} > {out}"
            else:
                cmd = f"cat {' '.join(deps)} | md5sum > {out}"
        stages.append({"name": name, "cmd": cmd, "deps": deps, "outs": [out]})
    return stages, raws


def to_yaml(stages: list[dict]) -> str:
    lines = ["stages:"]
    for s in stages:
        lines.append(f"  {s['name']}:")
        lines.append(f"    cmd: {s['cmd']}")
        lines.append("    deps:")
        lines.extend(f"      - {d}" for d in s["deps"])
        lines.append("    outs:")
        lines.extend(f"      - {o}" for o in s["outs"])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of stages")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--raw", type=int, default=None, help="number of raw input files (default max(5, N//50))")
    args = ap.parse_args()
    if args.n < 1:
        sys.exit("N must be >= 1")
    k_raw = args.raw if args.raw is not None else max(5, args.n // 50)
    k_raw = max(1, min(k_raw, args.n))

    if os.path.exists(args.outdir) and os.listdir(args.outdir):
        sys.exit(f"{args.outdir} exists and is not empty")
    stages, raws = build(args.n, args.seed, k_raw)
    os.makedirs(os.path.join(args.outdir, "raw"), exist_ok=True)
    os.makedirs(os.path.join(args.outdir, "out"), exist_ok=True)
    open(os.path.join(args.outdir, "out", ".gitkeep"), "w").close()
    rng = random.Random(args.seed + 1_000_003)
    for r in raws:
        with open(os.path.join(args.outdir, r), "w") as f:
            for line in range(100):
                f.write(f"{r} {line} {rng.getrandbits(64):016x}\n")
    text = to_yaml(stages)
    for fn in ("dvc.yaml", "pipeline.yaml"):
        with open(os.path.join(args.outdir, fn), "w") as f:
            f.write(text)

    n_edges = sum(len(s["deps"]) for s in stages)
    # longest path length (stages are in topological order)
    depth: dict[str, int] = {}
    for s in stages:
        depth[s["outs"][0]] = 1 + max((depth.get(d, 0) for d in s["deps"]), default=0)
    print(f"{args.n} stages, {len(raws)} raw inputs, {n_edges} dependency edges, "
          f"longest chain {max(depth.values())} stages -> {args.outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
