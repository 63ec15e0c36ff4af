#!/bin/sh
set -eu
# recipe for libffi: written in issue 7

