#!/usr/bin/env python3
"""Generate a synthetic refine workspace of N rules and the equivalent build.ninja.

Usage: gen_workspace.py N OUTDIR

The graph: one base; packs in files of 1,000 rules; each pack depends on the base and on up
to two earlier packs (a deterministic pseudo-random choice), so the graph is deep and wide.
build.ninja has one edge per rule with the same inputs, so that `ninja -n` walks the same
graph that `refine query //...` loads.
"""
import os
import random
import sys

n = int(sys.argv[1])
out = sys.argv[2]
os.makedirs(os.path.join(out, "rules"), exist_ok=True)
os.makedirs(os.path.join(out, "recipes"), exist_ok=True)
with open(os.path.join(out, "workspace.kdl"), "w") as f:
    f.write('workspace "synthetic"\n')
    f.write('platform "s390x" arch="s390x" policy="manylinux_2_28" base="//base:root"\n')
    f.write('defaults {\n    platform "s390x"\n}\n')
with open(os.path.join(out, "rules", "base.kdl"), "w") as f:
    f.write('base "root" {\n    arch "s390x"\n    policy "manylinux_2_28"\n'
            '    bootstrap "debootstrap" version="1.0.128" suite="bookworm"\n}\n')
open(os.path.join(out, "recipes", "p.sh"), "w").write("#!/bin/sh\n")

rng = random.Random(42)
per_file = 1000
labels = []
ninja = ["rule touch\n  command = touch $out\n\n", "build out/base/root: touch\n"]
for i in range(n - 1):
    pkg = f"p{i // per_file}"
    name = f"pack{i}"
    deps = []
    if labels:
        for _ in range(2):
            deps.append(labels[rng.randrange(max(0, len(labels) - 2000), len(labels))])
        deps = sorted(set(deps))
    labels.append((pkg, name))
    path = os.path.join(out, "rules", pkg + ".kdl")
    with open(path, "a") as f:
        f.write(f'pack "{name}" {{\n    version "1.0"\n    recipe "recipes/p.sh"\n')
        if deps:
            f.write("    packs " + " ".join(f'"//{p}:{d}"' for p, d in deps) + "\n")
        f.write("}\n")
    inputs = " ".join(["out/base/root"] + [f"out/{p}/{d}" for p, d in deps])
    ninja.append(f"build out/{pkg}/{name}: touch {inputs}\n")
ninja.append("default " + " ".join(["out/base/root"] + [f"out/{p}/{d}" for p, d in labels]) + "\n")
open(os.path.join(out, "build.ninja"), "w").write("".join(ninja))
