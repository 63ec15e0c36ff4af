#!/usr/bin/env python3
"""Size and build time of every artifact of the repo's workspace found in the given stores.

For the closing note of issue 7: `benches/artifacts.py STORE [STORE...]` runs
`refine plan //... --output json` against each store and, for each cached target, reads its
manifest (the compressed size of its layers) and its provenance record (the action's wall
time, the platform it ran for, under which emulator). Targets in no store are listed as such.
"""
import json
import os
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
refine = os.environ.get("REFINE", os.path.join(root, "target/release/refine"))


def blob(store, digest):
    with open(os.path.join(store, "blobs/sha256", digest.split(":", 1)[1]), "rb") as f:
        return json.load(f)


found = {}
labels = []
for store in sys.argv[1:]:
    out = subprocess.run(
        [refine, "--store", store, "plan", "//...", "--output", "json"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    for node in json.loads(out):
        if node["label"] not in labels:
            labels.append(node["label"])
        if node["status"] != "cached" or node["label"] in found:
            continue
        m = blob(store, node["digest"])
        size = sum(layer["size"] for layer in m.get("layers", []))
        prov_digest = m.get("annotations", {}).get("dev.refine.provenance")
        prov = blob(store, prov_digest) if prov_digest else {}
        found[node["label"]] = (size, prov.get("seconds"), prov.get("platform", "?"),
                                prov.get("emulator") or "native")

print(f"{'target':48} {'platform':8} {'how':28} {'size MB':>9} {'build s':>9}")
for label in labels:
    if label in found:
        size, secs, platform, how = found[label]
        s = f"{secs:9.1f}" if secs is not None else f"{'?':>9}"
        print(f"{label:48} {platform:8} {how:28} {size / 1e6:9.2f} {s}")
    else:
        print(f"{label:48} {'-':8} {'not built in these stores':28}")
