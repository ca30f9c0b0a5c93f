#!/bin/sh
# npm start: platter's main jobs on the bundled example disk (examples/disk.img,
# 4 MiB, MBR: p1 FAT12, p2 ext4). Nothing outside a temporary folder is written.
set -e
cd "$(dirname "$0")/.."
ROOT=$(pwd)
platter() { node "$ROOT/dist/cli/main.js" "$@"; }
step() { printf '\n$ platter %s\n' "$*"; platter "$@"; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

step parts examples/disk.img
step hash examples/disk.img --hash sha256,md5

# The two partitions as images of their own (until `--part N` reads the table itself).
dd if=examples/disk.img of="$OUT/fat.img" bs=512 skip=2048 count=2048 status=none
dd if=examples/disk.img of="$OUT/ext4.img" bs=512 skip=4096 count=4096 status=none
cd "$OUT"
step ls ext4.img -l -R
step cat ext4.img /home/alice/hostname-link
step ls fat.img -l
step extract fat.img -o fat-files
ls -lR fat-files
