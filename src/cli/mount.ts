import type { Command } from "commander";
import { UnsupportedError, UsageError } from "../errors.js";
import { isBackgroundServer, reportReady, startBackgroundServer } from "../mount/fuse/daemon.js";
import { fuseMountAt, serverPid, unmountFuse, waitForExit } from "../mount/fuse/unmount.js";
import { parseCount } from "../util/units.js";
import { optimiseLater } from "./optimise-later.js";
import { warn } from "./output.js";
import { writeStdout } from "./stdout.js";

interface MountFlags {
  part?: string;
  rw?: boolean;
  print?: boolean;
  fuse?: boolean;
  raw?: boolean;
  foreground?: boolean;
}

export function registerMount(program: Command): Command {
  return program
    .command("mount")
    .description("mount a partition of an image read-only: a loop device as root, else (or with --fuse) through FUSE")
    .argument("<image>", "disk image file (compressed or virtual disks too, through FUSE)")
    .argument("<mountpoint>", "an existing directory")
    .option("--part <n>", "partition number (Linux numbering: MBR logicals from 5); needed when several hold filesystems")
    .option("--rw", "mount read-write (the image will be changed; loop devices only)")
    .option("--print", "print the plain mount command instead of running it")
    .option("--fuse", "serve the files with platter's own readers through FUSE (no root, any image platter opens)")
    .option("--raw", "through FUSE, serve the decoded disk and each partition as files (disk, p1, p2...)")
    .option("--foreground", "keep the FUSE server attached until the mount ends (Ctrl-C unmounts)")
    .action(async (image: string, mountPoint: string, opts: MountFlags) => {
      const part = opts.part === undefined ? undefined : parseCount(opts.part, "partition number", 1);
      if (opts.fuse || opts.raw || opts.foreground) {
        if (opts.rw) throw new UsageError("FUSE mounts are read-only: leave out --rw (a loop mount as root can write)");
        if (opts.print) throw new UsageError("--print shows the loop mount command; a FUSE mount has none");
        await mountThroughFuse(image, mountPoint, part, opts);
        return;
      }
      // Loaded here, not above: `mount --fuse` starts its server without opening the image, and should start quickly.
      const [{ canRead }, { openImage }, { choosePartition }, { findDriver, mountCommandLine, mountImage, planMount }] = await Promise.all([
        import("../fs/open.js"),
        import("../image/open-image.js"),
        import("../image/partition-choice.js"),
        import("../mount/mount.js"),
      ]);
      const opened = await openImage(image, { purpose: "mounting", onWarning: warn });
      let choice;
      try {
        choice = await choosePartition(opened.source, { part, purpose: "mount" });
      } finally {
        await opened.close();
      }
      const container = opened.layers[0]?.format;
      if (container && (opts.print || opts.rw)) {
        throw new UnsupportedError(
          `${image} is a ${container} image: a loop device mounts raw bytes only; mount it with --fuse (read-only), or make a raw copy first (platter convert ${image} disk.img)`,
        );
      }
      const plan = planMount(image, choice, { readOnly: !opts.rw });
      if (opts.print) {
        writeStdout(`${mountCommandLine(plan, mountPoint)}\n`);
        return;
      }
      if (!opts.rw && canRead(choice.probe)) {
        const why = container
          ? `${image} is a ${container} image, and a loop device mounts raw bytes only`
          : process.getuid?.() !== 0
            ? "not root, so no loop device"
            : (await findDriver(plan)) === null
              ? `this kernel has no ${plan.fstype} driver`
              : null;
        if (why) {
          warn(`${why}: mounting through FUSE instead (read-only)`);
          await mountThroughFuse(image, mountPoint, part, opts);
          return;
        }
      }
      for (const message of choice.warnings) warn(message);
      const { device, fstype } = await mountImage(plan, mountPoint);
      const what = plan.partition === null ? image : `partition ${plan.partition} of ${image}`;
      const label = plan.probe.label ? ` "${plan.probe.label}"` : "";
      writeStdout(
        `mounted ${what} (${fstype}${label}) ${plan.readOnly ? "read-only" : "read-write"} on ${mountPoint} via ${device}; ` +
          `unmount with: platter umount ${mountPoint}\n`,
      );
    });
}

/** Serve here with --foreground (or as the background server), else start the server in the background and wait until it is live. */
async function mountThroughFuse(image: string, mountPoint: string, part: number | undefined, opts: MountFlags): Promise<void> {
  if (!opts.foreground) {
    const args = ["mount", image, mountPoint, "--fuse", "--foreground"];
    if (opts.raw) args.push("--raw");
    if (part !== undefined) args.push("--part", String(part));
    const result = await startBackgroundServer(args);
    if (result.ready) writeStdout(`${result.message}\n`);
    else process.exitCode = result.exitCode;
    return;
  }
  const background = isBackgroundServer();
  // Only the server needs the readers and the binding: the command that starts it stays small and quick.
  const { serveFuse } = await import("../mount/fuse/serve.js");
  // A copy out of the mount runs the readers' many small functions briefly: cp -a of 1000 files 1.90 -> 1.75 s (median of 4).
  await optimiseLater();
  await serveFuse({
    image,
    mountPoint,
    part,
    raw: opts.raw === true,
    onWarning: warn,
    onReady: (message) => (background ? reportReady(message) : writeStdout(`${message}\n`)),
  });
  // libfuse's thread holds the event loop open after the mount is gone.
  process.exit(0);
}

export function registerUmount(program: Command): Command {
  return program
    .command("umount")
    .description("unmount what platter mount mounted: detach its loop device, or end its FUSE server")
    .argument("<mountpoint>", "where it is mounted")
    .action(async (mountPoint: string) => {
      const fuse = fuseMountAt(mountPoint);
      if (fuse) {
        await unmountFuse(fuse.mountPoint, { lazy: false });
        const pid = serverPid(fuse);
        if (pid !== null && !(await waitForExit(pid))) warn(`the FUSE server (pid ${pid}) is still running after the unmount`);
        writeStdout(`unmounted ${mountPoint} (${fuse.source}, FUSE)\n`);
        return;
      }
      const { unmountImage } = await import("../mount/mount.js");
      const { source, detached } = await unmountImage(mountPoint);
      writeStdout(`unmounted ${mountPoint} (${source})${detached ? `; detached ${detached}` : ""}\n`);
    });
}
