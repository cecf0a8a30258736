#!/bin/sh
# tree-digest.sh DIR: print the immutable digest (spec v1) of a directory
# with standard tools only: find, sort, sha256sum (shasum on macOS), wc,
# readlink, sed. Names must be valid UTF-8 without newlines (the provider
# rejects the others), and symlink targets must not end in a newline.
set -eu
cd "$1"
if command -v sha256sum >/dev/null 2>&1; then
  sha() { sha256sum | cut -c1-64; }
else
  sha() { shasum -a 256 | cut -c1-64; }
fi
{
  printf 'immutable-tree-v1\n'
  find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort |
  while IFS= read -r p; do
    if [ -L "./$p" ]; then
      t=$(readlink "./$p")
      printf 'symlink %s %s %s\n' "$(printf '%s' "$t" | sha)" "$(printf '%s' "$t" | wc -c | tr -d ' ')" "$p"
    else
      kind=file
      [ -n "$(find "./$p" -prune -perm -u=x)" ] && kind=exec
      printf '%s %s %s %s\n' "$kind" "$(sha < "./$p")" "$(wc -c < "./$p" | tr -d ' ')" "$p"
    fi
  done
} | sha | sed 's/^/sha256:/'
