#!/usr/bin/env bash
# The host's folders are the pipeline's stages, in this order; a folder may
# include only from its own stage or an earlier one, never from a later one
# (CONTRIBUTING.md, "Layout"). Prints every include that runs back up the
# pipeline, with its file and line, and exits 1 if there is any.
# Usage: scripts/check_layering.sh [--edges]   (--edges: print the folder graph)
set -euo pipefail
cd "$(dirname "$0")/../host"

STAGES=(common target plugins graph data train capture inspect annotate prepare calibrate algorithms qat convert
        export engine pipeline accuracy config conformance run cli)
declare -A rank
for i in "${!STAGES[@]}"; do rank[${STAGES[$i]}]=$i; done

status=0
declare -A edges
for dir in */; do
  dir=${dir%/}
  if [ -z "${rank[$dir]+x}" ]; then
    echo "check_layering: host/$dir is not a known stage; add it to STAGES in scripts/check_layering.sh" >&2
    status=1
    continue
  fi
  while IFS=: read -r file line text; do
    target=$(sed -E 's/^#include "([a-z_]+)\/.*/\1/' <<<"$text")
    [ "$target" = "$dir" ] && continue
    [ -z "${rank[$target]+x}" ] && continue  # qsdk/ (the SDK), generated headers
    edges["$dir -> $target"]=1
    if ((rank[$target] > rank[$dir])); then
      echo "host/$file:$line: $dir (stage ${rank[$dir]}) includes $target (stage ${rank[$target]}), a later stage: $text"
      status=1
    fi
  done < <(grep -rnE '^#include "[a-z_]+/' "$dir" | sed -E 's/^([^:]+):([0-9]+):/\1:\2:/')
done

if [ "${1:-}" = "--edges" ]; then
  for e in "${!edges[@]}"; do echo "$e"; done | sort
fi
if ((status == 0)); then echo "check_layering: ${#edges[@]} folder edges, none from an earlier stage to a later one"; fi
exit $status
