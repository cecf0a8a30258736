#!/usr/bin/env bash
# Fails, naming each, on tracked files that are build outputs or too large
# to belong in git: an executable or object file anywhere (ELF, Mach-O, PE,
# WebAssembly, ar archives such as Go's .a, Java classes), and any file over
# 1 MiB outside a testdata/ directory. Checks the files git tracks (the
# index), as they are in the work tree; run by `make lint`.
set -euo pipefail
cd "$(dirname "$0")/.."
max=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  # Deleted but not yet staged, or a symlink: nothing to read.
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  magic=$(od -An -tx1 -N8 -- "$f")
  magic=${magic//[[:space:]]/}
  kind=
  case $magic in
    7f454c46*) kind="ELF executable or object" ;;
    feedface*|feedfacf*|cefaedfe*|cffaedfe*) kind="Mach-O executable or object" ;;
    cafebabe*) kind="Mach-O universal binary or Java class" ;;
    4d5a*) kind="PE (Windows) executable or DOS MZ" ;;
    0061736d*) kind="WebAssembly module" ;;
    213c617263683e0a) kind="ar archive (.a, .deb)" ;;
  esac
  if [ -n "$kind" ]; then
    echo "check-tracked: $f: $kind: build outputs do not belong in git" >&2
    bad=1
  fi
  case /$f in
    */testdata/*) ;;
    *)
      size=$(wc -c <"$f")
      if [ $((size)) -gt "$max" ]; then
        echo "check-tracked: $f: $((size)) bytes, over 1 MiB outside testdata/" >&2
        bad=1
      fi
      ;;
  esac
done < <(git ls-files -z)
if [ "$bad" -ne 0 ]; then
  echo "check-tracked: untrack those files (git rm --cached) and ignore them in .gitignore" >&2
  exit 1
fi
