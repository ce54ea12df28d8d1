#!/usr/bin/env bash
# Redraw the pipeline's rule graph for the README: docs/rulegraph.dot (text) and docs/rulegraph.png.
# Needs graphviz (`apt-get install graphviz`). Run from anywhere after adding or renaming a rule.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs
snakemake --rulegraph --quiet all > docs/rulegraph.dot
dot -Tpng -Gdpi=150 docs/rulegraph.dot -o docs/rulegraph.png
echo "wrote docs/rulegraph.dot and docs/rulegraph.png"
