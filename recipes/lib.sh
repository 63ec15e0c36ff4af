# recipes/lib.sh: the helpers refine's recipe and action scripts share. Not run on its own: a
# script sources it with the one line
#
#     . "$REFINE_LIB"
#
# alone on its line, and refine's executor then stages this file in the sandbox and sets
# REFINE_LIB to it. Its digest enters the key of exactly the actions whose script holds that
# line (docs/actions.md, "recipes/lib.sh"): editing it rebuilds them, and nothing else.
# Set ME (the script's name) before sourcing: under refine every script runs as
# /src/recipe.sh, so $0 does not say which one failed.
# shellcheck shell=sh

# die MESSAGE...: "ME: MESSAGE" on stderr, then exit 1.
die() { echo "${ME:-${0##*/}}: $*" >&2; exit 1; }

# pick_src PATTERN...: the input file. REFINE_SRC is that file, or the /src folder holding it
# (refine's executor passes the folder): then the one file there matching one of the
# patterns, and an error when none or several match.
pick_src() {
    if [ -f "$REFINE_SRC" ]; then echo "$REFINE_SRC"; return 0; fi
    [ -d "$REFINE_SRC" ] || { echo "${ME:-$0}: REFINE_SRC=$REFINE_SRC does not exist" >&2; return 1; }
    set +f
    found=''
    for pat in "$@"; do
        for f in "$REFINE_SRC"/$pat; do
            [ -f "$f" ] && found="$found${found:+
}$f"
        done
    done
    set -f
    n=$(printf '%s' "$found" | grep -c . || true)
    [ "$n" -eq 1 ] || { echo "${ME:-$0}: want one of '$*' in $REFINE_SRC, found $n" >&2; return 1; }
    echo "$found"
}

# tool_venv DIR: a venv at DIR for REFINE_PYTHON, and `pipi ARGS...` to run pip for it. The
# venv is made without pip and filled by the interpreter's own pip (`--python`, pip >= 22.3):
# cheaper than ensurepip unpacking pip into every venv (seconds natively, much more under
# qemu). An interpreter without pip gets ensurepip inside the venv instead.
tool_venv() {
    VENV=$1
    "$REFINE_PYTHON" -m venv --without-pip "$VENV"
    if "$REFINE_PYTHON" -m pip --version >/dev/null 2>&1; then
        pipi() { "$REFINE_PYTHON" -m pip --python "$VENV/bin/python" "$@"; }
    else
        "$VENV/bin/python" -m ensurepip --default-pip >/dev/null ||
            die "$REFINE_PYTHON has neither pip nor ensurepip"
        pipi() { "$VENV/bin/python" -m pip "$@"; }
    fi
}

# run COMMAND ARGS...: prints the command line on stderr ("+ COMMAND ARGS", an argument quoted
# where it holds anything but plain characters), then runs it, so that an action's full log
# says what ran, not only what it printed.
run() {
    printf '+' >&2
    for arg in "$@"; do
        case $arg in
            '' | *[!A-Za-z0-9_./=:,@%+-]*) printf " '%s'" "$arg" >&2 ;;
            *) printf ' %s' "$arg" >&2 ;;
        esac
    done
    printf '\n' >&2
    "$@"
}
