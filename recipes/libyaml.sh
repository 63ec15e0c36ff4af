#!/bin/sh
set -eu
# recipe for libyaml: written in issue 7

