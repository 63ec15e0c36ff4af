#!/usr/bin/env python3
"""Generate build workspaces for benches/build.sh.

Usage: gen_build.py noop N OUTDIR    one busybox-root base and N-1 adopted runtimes (actions
                                    that need no sandbox), plus the equivalent build.ninja
       gen_build.py actions N OUTDIR one base and N independent trivial packs (sandboxed)
"""
import os
import shutil
import sys

mode, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
arch = os.uname().machine
os.makedirs(os.path.join(out, "rules"), exist_ok=True)
os.makedirs(os.path.join(out, "recipes"), exist_ok=True)
root_bin = os.path.join(out, "roots", "tiny", "bin")
os.makedirs(root_bin, exist_ok=True)
shutil.copy("/bin/busybox", os.path.join(root_bin, "busybox"))
for tool in ["sh", "echo", "true"]:
    os.symlink("busybox", os.path.join(root_bin, tool))
for d in ["work", "out", "src", "tmp", "proc", "dev"]:
    os.makedirs(os.path.join(out, "roots", "tiny", d), exist_ok=True)
open(os.path.join(out, "workspace.kdl"), "w").write(
    f'workspace "bench"\nplatform "host" arch="{arch}" policy="linux" base="//bases:tiny"\n'
    'defaults {\n    platform "host"\n}\n')
open(os.path.join(out, "rules", "bases.kdl"), "w").write(
    f'base "tiny" {{\n    arch "{arch}"\n    policy "linux"\n    tree "roots/tiny"\n}}\n')
if mode == "noop":
    ninja = ["rule touch\n  command = touch $out\n\n", "build out/base: touch\n"]
    per_file = 1000
    for i in range(n - 1):
        f = os.path.join(out, "rules", f"r{i // per_file}.kdl")
        with open(f, "a") as fh:
            fh.write(f'runtime "py{i}" {{\n    python "3.11" adopt="/usr/bin/python3.11-{i}"\n}}\n')
        ninja.append(f"build out/py{i}: touch out/base\n")
    open(os.path.join(out, "build.ninja"), "w").write("".join(ninja))
else:
    with open(os.path.join(out, "rules", "packs.kdl"), "w") as fh:
        for i in range(n):
            fh.write(f'pack "p{i}" {{\n    version "1"\n    recipe "recipes/p.sh"\n    env "N" "{i}"\n}}\n')
    open(os.path.join(out, "recipes", "p.sh"), "w").write('echo "$N" > "$REFINE_OUT/n"\n')
