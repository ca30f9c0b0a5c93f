#!/bin/sh
# npm start: platter's main jobs on the bundled example disk (examples/disk.img,
# 4 MiB, MBR: p1 FAT12, p2 ext4). Nothing outside a temporary folder is written.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
platter() { node "$ROOT/dist/cli/main.js" "$@"; }
step() { printf '\n$ platter %s\n' "$*"; platter "$@"; }
show() { printf '\n$ %s\n' "$*"; "$@"; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cd "$OUT"

# Image the disk the way ddrescue would, with a hash and a mapfile.
step capture "$ROOT/examples/disk.img" "disk.img" --hash sha256 --map "disk.map"
show cat "disk.map"
# What is on it, and where: no offset arithmetic.
step parts "disk.img"
# Files inside the partitions, without mounting.
step ls "disk.img" --part 2 -l -R
step cat "disk.img" --part 2 /home/alice/hostname-link
step ls "disk.img" --part 1 -l
step extract "disk.img" --part 1 -o "fat-files"
# Those files, as an ISO 9660 image with Rock Ridge and Joliet.
step iso "fat-files" -o "files.iso" -V EXAMPLE
step info "files.iso"
step ls "files.iso" -l -R
step hash "files.iso" --hash sha256,md5
# The disk compressed on every core (seekable zstd) and as a qcow2: every command still reads it.
step convert "disk.img" "disk.img.zst" --quiet
step ls "disk.img.zst" --part 2 /home
step convert "disk.img.zst" "disk.qcow2" --quiet
step info "disk.qcow2"
step hash "disk.qcow2"
