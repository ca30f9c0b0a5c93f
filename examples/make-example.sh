#!/usr/bin/env bash
# make-example.sh [OUT.img] - rebuilds examples/disk.img, the small disk that
# `npm start` tours: 4 MiB, MBR (label-id 0x0e5a3b1e), p1 FAT12 "EXAMPLE"
# (a long file name, a lowercase 8.3 name, a folder), p2 ext4 "rootfs"
# without journal (files, a symlink, a hard link). The image is committed;
# run this only to change it.
# Tools: sfdisk (fdisk), mkfs.vfat (dosfstools), mcopy/mmd (mtools), mkfs.ext4 (e2fsprogs).
set -euo pipefail
OUT=${1:-$(dirname "$0")/disk.img}
export LC_ALL=C.UTF-8 TZ=UTC MTOOLS_SKIP_CHECK=1 E2FSPROGS_FAKE_TIME=1700000000 SOURCE_DATE_EPOCH=1700000000
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
P1_START=2048 P1_SIZE=2048 P2_START=4096 P2_SIZE=4096

rm -f -- "$OUT"
truncate -s 4M "$OUT"
sfdisk -q --no-reread --no-tell-kernel "$OUT" <<SFDISK
label: dos
label-id: 0x0e5a3b1e
unit: sectors

start=$P1_START, size=$P1_SIZE, type=1, bootable
start=$P2_START, size=$P2_SIZE, type=83
SFDISK

mkfs.vfat -F 12 -n EXAMPLE -i 0E5A0001 --offset $P1_START "$OUT" $((P1_SIZE / 2)) >/dev/null
printf 'platter example disk\n' > "$TMP/readme.txt"
printf 'A FAT long file name survives.\n' > "$TMP/Long File Name.txt"
printf 'note in a folder\n' > "$TMP/note.txt"
touch -d @1700000000 "$TMP"/*.txt
IMG="$OUT@@$((P1_START * 512))"
mmd -i "$IMG" ::/docs
mcopy -m -i "$IMG" "$TMP/readme.txt" "$TMP/Long File Name.txt" ::/
mcopy -m -i "$IMG" "$TMP/note.txt" ::/docs/

mkdir -p "$TMP/root/etc" "$TMP/root/home/alice"
printf 'example\n' > "$TMP/root/etc/hostname"
printf 'hello from the ext4 partition\n' > "$TMP/root/home/alice/hello.txt"
seq 1 20000 > "$TMP/root/home/alice/numbers.txt"
ln "$TMP/root/home/alice/hello.txt" "$TMP/root/home/alice/hello-hardlink.txt"
ln -s ../../etc/hostname "$TMP/root/home/alice/hostname-link"
chmod 0600 "$TMP/root/home/alice/numbers.txt"
find "$TMP/root" -exec touch -h -d @1700000000 {} +
mkfs.ext4 -q -F -O ^has_journal -L rootfs -U 0e5a0000-0000-4000-8000-000000000002 \
  -E offset=$((P2_START * 512)),hash_seed=0e5a0000-0000-4000-8000-0000000000ff \
  -d "$TMP/root" "$OUT" $((P2_SIZE / 2))k

sfdisk -d "$OUT"
