/**
 * info on container images says what `qemu-img info --backing-chain` says
 * about virtual disks (format, virtual size, cluster size, compression,
 * backing chain, dirty and corrupt flags) and what `xz -l` / `zstd -l` say
 * about compressed ones, plus whether random access is cheap.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

interface QemuInfo {
  filename: string;
  format: string;
  "virtual-size": number;
  "cluster-size"?: number;
  "dirty-flag"?: boolean;
  "backing-filename"?: string;
  "format-specific"?: { data: { "compression-type"?: string; corrupt?: boolean; "extended-l2"?: boolean } };
}

test("info --json on a qcow2 chain (zstd clusters, 128 KiB clusters, marked dirty) agrees with qemu-img info --backing-chain", { skip: needs("qemu-img") }, async () => {
  const dir = tempDir();
  await sh(
    `cp examples/disk.img ${dir}/disk.img && cd ${dir} &&` +
      ` qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zstd,cluster_size=131072 disk.img base.qcow2` +
      ` && qemu-img create -q -f qcow2 -o extended_l2=on -b base.qcow2 -F qcow2 mid.qcow2` +
      ` && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2` +
      // The dirty bit (incompatible feature bit 0, header byte 79), as a crashed writer leaves it.
      ` && printf '\\001' | dd of=top.qcow2 bs=1 seek=79 conv=notrunc status=none`,
  );
  const top = join(dir, "top.qcow2");
  const qemu = JSON.parse(await sh(`qemu-img info --output=json --backing-chain -U ${top}`)) as QemuInfo[];
  const r = await platter(["info", top, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  const ours = [{ layers: info.layers, virtualSize: info.virtualSize }, ...info.backingChain];
  assert.equal(ours.length, qemu.length);
  assert.deepEqual(info.backingChain.map((b: { path: string }) => b.path), qemu.slice(1).map((q) => q.filename));
  qemu.forEach((q, i) => {
    const layer = ours[i].layers[0];
    assert.equal(layer.format, q.format, q.filename);
    assert.equal(layer.virtualSize, q["virtual-size"], q.filename);
    assert.equal(layer.clusterSize, q["cluster-size"], q.filename);
    assert.equal(layer.dirty, q["dirty-flag"], q.filename);
    assert.equal(layer.backingFile, q["backing-filename"], q.filename);
    assert.equal(layer.compressionType, q["format-specific"]?.data["compression-type"], q.filename);
    assert.equal(layer.corrupt, q["format-specific"]?.data.corrupt, q.filename);
    assert.equal(layer.extendedL2, q["format-specific"]?.data["extended-l2"], q.filename);
  });
  assert.equal(info.seekable, true);
  const text = (await platter(["info", top])).stdout;
  assert.match(text, /^ {2}qcow2 dirty: +true$/m);
  assert.match(text, /^backing file 1: +\S+mid\.qcow2 \(qcow2, 4 MiB \(4194304 bytes\)\)$/m);
  assert.match(text, /^backing file 2: +\S+base\.qcow2 /m);
  assert.match(text, /^ {2}qcow2 compressionType: +zstd$/m);
});

test("info --json on a VMDK delta over a VMDK base names the chain as qemu-img info --backing-chain does", { skip: needs("qemu-img") }, async () => {
  const dir = tempDir();
  await sh(
    `cp examples/disk.img ${dir}/disk.img && cd ${dir} && qemu-img convert -q -f raw -O vmdk disk.img base.vmdk` +
      ` && qemu-img create -q -f vmdk -b base.vmdk -F vmdk top.vmdk && qemu-io -f vmdk -c 'write -P 0x5a 1M 64k' top.vmdk >/dev/null`,
  );
  const top = join(dir, "top.vmdk");
  const qemu = JSON.parse(await sh(`qemu-img info --output=json --backing-chain -U ${top}`)) as QemuInfo[];
  const info = JSON.parse((await platter(["info", top, "--json"])).stdout);
  assert.equal(info.layers[0].backingFile, qemu[0]["backing-filename"]);
  assert.deepEqual(info.backingChain.map((b: { path: string; format: string }) => [b.path, b.format]), qemu.slice(1).map((q) => [q.filename, q.format]));
});

test("info on a single-block .xz of 20 MiB: not seekable, says platter convert makes it seekable; the converted copy is; sizes as xz -l --robot gives them", { skip: needs("xz") }, async () => {
  const dir = tempDir();
  const xz = join(dir, "disk.img.xz");
  // One block larger than platter decodes whole (16 MiB): only readable from its start.
  await sh(`cp examples/disk.img ${dir}/disk.img && head -c 1M /dev/urandom >> ${dir}/disk.img && truncate -s 20M ${dir}/disk.img && xz -T1 -c ${dir}/disk.img > ${xz}`);
  const robot = (await sh(`xz -l --robot ${xz}`)).split("\n").find((l) => l.startsWith("totals")) as string;
  const [, , , compressed, uncompressed] = robot.split("\t");
  const info = JSON.parse((await platter(["info", xz, "--json"])).stdout);
  assert.deepEqual([info.format, info.virtualSize, info.fileSize, info.seekable], ["xz", Number(uncompressed), Number(compressed), false]);
  assert.equal(info.layers[0].storedSize, Number(compressed));
  const text = (await platter(["info", xz])).stdout;
  assert.match(text, /^format: +xz \(not seekable: platter convert makes a seekable copy\)$/m);
  assert.match(text, /^seekable: +no \(platter convert makes a seekable copy\)$/m);
  const copy = join(dir, "copy.xz");
  assert.equal((await platter(["convert", xz, copy])).code, 0);
  const converted = JSON.parse((await platter(["info", copy, "--json"])).stdout);
  assert.deepEqual([converted.seekable, converted.virtualSize, converted.partitionTable], [true, 20 << 20, "mbr"]);
});
