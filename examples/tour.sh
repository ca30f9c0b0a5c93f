#!/bin/sh
# npm start: platter's main jobs on the bundled example disk (examples/disk.img,
# 4 MiB, MBR: p1 FAT12, p2 ext4). Nothing outside a temporary folder is written.
set -e
cd "$(dirname "$0")/.."
platter() { node dist/cli/main.js "$@"; }
step() { printf '\n$ platter %s\n' "$*"; platter "$@"; }
show() { printf '\n$ %s\n' "$*"; "$@"; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

step capture examples/disk.img "$OUT/disk.img" --hash sha256 --map "$OUT/disk.map"
show cat "$OUT/disk.map"
step parts examples/disk.img
step hash examples/disk.img --hash sha256,md5
step iso examples -o "$OUT/examples.iso" -V EXAMPLES
step info "$OUT/examples.iso"
step ls "$OUT/examples.iso" -l

step ls examples/disk.img --part 2 -l -R
step cat examples/disk.img --part 2 /home/alice/hostname-link
step ls examples/disk.img --part 1 -l
step extract examples/disk.img --part 1 -o "$OUT/fat-files"
ls -lR "$OUT/fat-files" | sed "s|$OUT/||"
