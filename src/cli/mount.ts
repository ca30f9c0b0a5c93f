import type { Command } from "commander";
import { UnsupportedError } from "../errors.js";
import { openImage } from "../image/open-image.js";
import { choosePartition } from "../image/partition-choice.js";
import { mountCommandLine, mountImage, planMount, unmountImage } from "../mount/mount.js";
import { parseCount } from "../util/units.js";
import { warn } from "./output.js";

export function registerMount(program: Command): Command {
  return program
    .command("mount")
    .description("mount a partition of an image read-only through a loop device (no offset arithmetic)")
    .argument("<image>", "disk image file")
    .argument("<mountpoint>", "an existing directory")
    .option("--part <n>", "partition number (Linux numbering: MBR logicals from 5); needed when several hold filesystems")
    .option("--rw", "mount read-write (the image will be changed)")
    .option("--print", "print the plain mount command instead of running it")
    .action(async (image: string, mountPoint: string, opts: { part?: string; rw?: boolean; print?: boolean }) => {
      const part = opts.part === undefined ? undefined : parseCount(opts.part, "partition number", 1);
      const opened = await openImage(image, { purpose: "mounting", onWarning: warn });
      let choice;
      try {
        if (opened.layers.length > 0) {
          const format = opened.layers[0].format;
          throw new UnsupportedError(
            `${image} is a ${format} image: a loop device mounts raw bytes only; read its files with platter ls/extract, or make a raw copy first (platter convert ${image} disk.img)`,
          );
        }
        choice = await choosePartition(opened.source, { part, purpose: "mount" });
        for (const message of choice.warnings) warn(message);
      } finally {
        await opened.close();
      }
      const plan = planMount(image, choice, { readOnly: !opts.rw });
      if (opts.print) {
        process.stdout.write(`${mountCommandLine(plan, mountPoint)}\n`);
        return;
      }
      const { device, fstype } = await mountImage(plan, mountPoint);
      const what = plan.partition === null ? image : `partition ${plan.partition} of ${image}`;
      const label = plan.probe.label ? ` "${plan.probe.label}"` : "";
      process.stdout.write(
        `mounted ${what} (${fstype}${label}) ${plan.readOnly ? "read-only" : "read-write"} on ${mountPoint} via ${device}; ` +
          `unmount with: platter umount ${mountPoint}\n`,
      );
    });
}

export function registerUmount(program: Command): Command {
  return program
    .command("umount")
    .description("unmount what platter mount mounted, and detach its loop device")
    .argument("<mountpoint>", "where it is mounted")
    .action(async (mountPoint: string) => {
      const { source, detached } = await unmountImage(mountPoint);
      process.stdout.write(`unmounted ${mountPoint} (${source})${detached ? `; detached ${detached}` : ""}\n`);
    });
}
