#!/usr/bin/env bash
# Manual recovery without tapechain: restores the newest chain at a local TARGET into
# OUT using only gpg, tar, rdiff and coreutils. The README walks through the same
# steps; the tests run this script on a real chain.
#
#   PASSPHRASE=… scripts/manual-recovery.sh TARGET OUT
set -euo pipefail
target=$1 out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# 1. Decode a stored file by its suffix: .gpg (gpg), .gz (gunzip), or plain.
decode() {
  case "$1" in
    *.gpg) gpg --batch --quiet --pinentry-mode loopback --passphrase "$PASSPHRASE" --decrypt "$1" ;;
    *.gz) gunzip -c "$1" ;;
    *) cat "$1" ;;
  esac
}

# 2. The chain: the newest full set, then every incremental whose START is the previous END.
full=$(ls "$target" | sed -n 's/^duplicity-full\.\([0-9]\{8\}T[0-9]\{6\}Z\)\.manifest.*/\1/p' | sort | tail -n 1)
[ -n "$full" ] || { echo "no full set in $target" >&2; exit 1; }
sets=("duplicity-full.$full")
end=$full
while next=$(ls "$target" | sed -n "s/^duplicity-inc\.$end\.to\.\([0-9]\{8\}T[0-9]\{6\}Z\)\.manifest.*/\1/p" | sort | tail -n 1) && [ -n "$next" ]; do
  sets+=("duplicity-inc.$end.to.$next")
  end=$next
done

# 3. Apply each set in order.
for set in "${sets[@]}"; do
  x="$work/x"
  rm -rf "$x" && mkdir -p "$x"
  # 3a. Decrypt its volumes in number order and unpack them into one tree.
  for n in $(ls "$target" | sed -n "s/^$set\.vol\([0-9]*\)\.difftar.*/\1/p" | sort -n); do
    decode "$target/$(ls "$target" | grep -F "$set.vol$n.difftar" | head -n 1)" | tar -xf - -C "$x"
  done
  # 3b. Join the 64 KiB chunks of large files: multivol_snapshot/P/1,2,… → snapshot/P.
  for kind in snapshot diff; do
    [ -d "$x/multivol_$kind" ] || continue
    (cd "$x/multivol_$kind" && find . -type f -name 1 -print0) | while IFS= read -r -d '' first; do
      rel=${first%/1}; rel=${rel#./}
      mkdir -p "$(dirname "$x/$kind/$rel")"
      ls "$x/multivol_$kind/$rel" | sort -n | while read -r c; do cat "$x/multivol_$kind/$rel/$c"; done > "$x/$kind/$rel"
      chmod --reference="$x/multivol_$kind/$rel/1" "$x/$kind/$rel"
      touch -r "$x/multivol_$kind/$rel/1" "$x/$kind/$rel"
    done
  done
  # 3c. Deletions: remove what the set says is gone.
  if [ -d "$x/deleted" ]; then
    # (deletions are regular-file entries; directories around them are only tar's scaffolding)
    (cd "$x/deleted" && find . -type f -print0) | while IFS= read -r -d '' p; do rm -rf "${out:?}/${p#./}"; done
  fi
  # 3d. Snapshots: whole new contents (a different type replaces what was there).
  if [ -d "$x/snapshot" ]; then
    (cd "$x/snapshot" && find . -mindepth 1 -print0) | while IFS= read -r -d '' p; do
      p=${p#./}
      if [ -d "$x/snapshot/$p" ] && [ ! -L "$x/snapshot/$p" ]; then
        { [ -d "$out/$p" ] && [ ! -L "$out/$p" ]; } || { rm -rf "${out:?}/$p"; mkdir -p "$out/$p"; }
        chmod --reference="$x/snapshot/$p" "$out/$p"
      else
        rm -rf "${out:?}/$p"
        cp -a "$x/snapshot/$p" "$out/$p"
      fi
    done
  fi
  # 3e. Deltas: rdiff patch the previous version; mode and mtime from the diff entry.
  if [ -d "$x/diff" ]; then
    (cd "$x/diff" && find . -type f -print0) | while IFS= read -r -d '' p; do
      p=${p#./}
      rdiff patch "$out/$p" "$x/diff/$p" "$work/patched"
      chmod --reference="$x/diff/$p" "$work/patched"
      touch -r "$x/diff/$p" "$work/patched"
      mv "$work/patched" "$out/$p"
    done
  fi
done
echo "restored ${#sets[@]} set(s) of the chain starting $full into $out"
