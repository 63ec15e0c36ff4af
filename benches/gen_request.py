#!/usr/bin/env python3
"""Generate the inputs of benches/request-plan.sh from a real request lock.

Usage: gen_request.py sdists LOCK N KDL      add `override "X" { take "sdist" }` to request file
                                            KDL for N packages that LOCK takes as pure-Python
                                            wheels (build backends excepted: a backend built
                                            from its own sdist needs itself)
       gen_request.py drop KDL NAME...      remove those overrides again (packages that failed)
       gen_request.py rules LOCK RUNTIME OUT.kdl
                                            write the lock's wheels built from sdists as wheel
                                            rules with inline repairs, as the request expands
                                            them (docs/requests.md): the same keys
       gen_request.py built LOCK            the number of packages LOCK builds from sdists
"""
import re
import sys

# Build backends and their own dependencies: left as the index's wheels.
BACKENDS = {
    "setuptools", "wheel", "flit-core", "flit-scm", "hatchling", "hatch-vcs",
    "hatch-fancy-pypi-readme", "poetry-core", "pdm-backend", "setuptools-scm",
    "vcs-versioning", "packaging", "pluggy", "pathspec", "trove-classifiers", "editables",
    "calver", "tomli", "scikit-build-core", "meson-python", "maturin", "cython", "expandvars",
    "setuptools-rust", "semantic-version", "typing-extensions",
}

PACKAGE = re.compile(r'^    package "?([^" ]+)"? version="([^"]+)" take=(\w+) \{$')
FIELD = re.compile(r'^        (\S+) "?([^" ]+)"?(?: sha256="?([0-9a-f]{64})"?)?$')


def read_lock(path):
    """Packages of the lock's first resolution: name -> dict."""
    packages, current, seen = {}, None, 0
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("resolution "):
            seen += 1
            if seen > 1:
                break
        m = PACKAGE.match(line)
        if m:
            current = {"name": m[1], "version": m[2], "take": m[3], "requires": [], "built": []}
            packages[m[1]] = current
            continue
        m = FIELD.match(line)
        if m and current is not None:
            kind, value, sha = m[1], m[2], m[3]
            if kind == "sdist":
                current["sdist"] = (value, sha)
            elif kind == "wheel":
                current["wheel"] = (value, sha)
            elif kind == "backend":
                current["backend"] = value
            elif kind == "requires":
                current["requires"].append((value, sha))
            elif kind == "requires-built":
                current["built"].append(value.split("==")[0])
    return packages


def sdists(lock, n, kdl):
    picked = []
    for p in read_lock(lock).values():
        wheel = p.get("wheel", ("", ""))[0]
        if p["take"] == "wheel" and "sdist" in p and wheel.endswith("-none-any.whl") \
                and p["name"] not in BACKENDS:
            picked.append(p["name"])
    picked = picked[:n]
    text = open(kdl, encoding="utf-8").read().rstrip()
    assert text.endswith("}"), kdl
    lines = "".join(f'    override "{name}" {{\n        take "sdist"\n    }}\n' for name in picked)
    open(kdl, "w", encoding="utf-8").write(text[:-1] + lines + "}\n")
    print(len(picked))


def drop(kdl, names):
    text = open(kdl, encoding="utf-8").read()
    for name in names:
        text = text.replace(f'    override "{name}" {{\n        take "sdist"\n    }}\n', "")
    open(kdl, "w", encoding="utf-8").write(text)


def backend_name(backend):
    return re.split(r"[.:]", backend)[0]


def rules(lock, runtime, out):
    package = "//" + out.rsplit("/", 1)[-1].removesuffix(".kdl")
    with open(out, "w", encoding="utf-8") as fh:
        for p in read_lock(lock).values():
            if p["take"] != "sdist":
                continue
            fh.write(f'wheel "{p["name"]}" {{\n')
            fh.write(f'    source pypi="{p["name"]}" version="{p["version"]}" sha256="{p["sdist"][1]}"\n')
            fh.write('    platforms "x86_64"\n    python "3.11"\n')
            fh.write(f'    runtime "{runtime}"\n')
            if "backend" in p:
                fh.write(f'    backend "{backend_name(p["backend"])}"\n')
            for req, sha in p["requires"]:
                fh.write(f'    requires "{req}" sha256="{sha}"\n')
            for dep in p["built"]:
                fh.write(f'    requires-built "{package}:{dep}-repaired"\n')
            fh.write("    repair\n}\n\n")


def built(lock):
    print(sum(1 for p in read_lock(lock).values() if p["take"] == "sdist"))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sdists":
        sdists(args[0], int(args[1]), args[2])
    elif cmd == "drop":
        drop(args[0], args[1:])
    elif cmd == "rules":
        rules(args[0], args[1], args[2])
    elif cmd == "built":
        built(args[0])
    else:
        sys.exit(__doc__)
