#!/bin/sh
set -eu
# recipe for openblas: written in issue 7

