#!/bin/sh
# repair action with `strip`: repair.sh (the very script of an unstripped repair, staged
# beside this one as /src/repair.sh), then debug information stripped from every ELF file of
# the repaired wheel (`strip --strip-debug`: DWARF goes, symbols stay) and its RECORD
# rewritten. The action contract is docs/actions.md.
#
#   the variables of repair.sh, and `strip` (binutils) in the base
# Output: exactly one /out/<name>-<ver>-<py>-<abi>-<REFINE_POLICY>_<arch>.whl, named as
# repair.sh names it.
set -euf
umask 022
export LC_ALL=C.UTF-8 TZ=UTC
: "${REFINE_PYTHON:?REFINE_PYTHON is not set}"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH is not set}"
OUT=${REFINE_OUT:-/out}
ME=repair-strip.sh   # for die (recipes/lib.sh); repair.sh, run below, sources it too
# shellcheck source=SCRIPTDIR/../lib.sh
. "$REFINE_LIB"
command -v strip >/dev/null || die "the base has no strip (binutils)"

R=/work/repaired
rm -rf "$R"
REFINE_OUT=$R run /bin/sh -e "$(dirname "$0")/repair.sh"
set +f
set -- "$R"/*.whl
set -f
[ $# -eq 1 ] && [ -f "$1" ] || die "expected one repaired wheel, found: $*"
mkdir -p "$OUT"
# Entries keep their order, times and modes: only stripped files and RECORD change.
"$REFINE_PYTHON" - "$1" "$OUT/${1##*/}" <<'PY'
import base64, csv, hashlib, io, os, subprocess, sys, tempfile, zipfile

src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as zin:
    infos = zin.infolist()
    data = {i.filename: zin.read(i) for i in infos}
changed = {}
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "elf")
    for name, blob in data.items():
        if not blob.startswith(b"\x7fELF"):
            continue
        with open(path, "wb") as f:
            f.write(blob)
        subprocess.run(["strip", "--strip-debug", path], check=True)
        with open(path, "rb") as f:
            stripped = f.read()
        if stripped != blob:
            print(f"repair-strip.sh: {name}: {len(blob)} -> {len(stripped)} bytes")
            changed[name] = stripped
data.update(changed)
records = [n for n in data if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
if len(records) != 1:
    sys.exit(f"repair-strip.sh: expected one .dist-info/RECORD, found {records}")
out = io.StringIO()
writer = csv.writer(out, lineterminator="\n")
for row in csv.reader(io.StringIO(data[records[0]].decode())):
    if row and row[0] in changed:
        blob = changed[row[0]]
        hashed = base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).rstrip(b"=")
        row = [row[0], "sha256=" + hashed.decode(), str(len(blob))]
    writer.writerow(row)
data[records[0]] = out.getvalue().encode()
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in infos:
        zout.writestr(info, data[info.filename])
PY
chmod 0644 "$OUT/${1##*/}"
echo "repair-strip.sh: stripped ${1##*/}"
