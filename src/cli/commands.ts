import type { Command } from "commander";

/** A command module adds itself to the program and returns its Command. */
export type RegisterCommand = (program: Command) => Command;

interface CommandModule {
  names: string[];
  /** Imported only when needed: loading every command's library costs more start-up than a small capture. */
  load(): Promise<RegisterCommand[]>;
}

/** Every command, in the order `platter --help` lists them. */
export const commands: CommandModule[] = [
  { names: ["capture"], load: async () => [(await import("./capture.js")).registerCapture] },
  { names: ["dd"], load: async () => [(await import("./dd.js")).registerDd] },
  { names: ["parts"], load: async () => [(await import("./parts.js")).registerParts] },
  {
    names: ["mount", "umount"],
    load: async () => {
      const m = await import("./mount.js");
      return [m.registerMount, m.registerUmount];
    },
  },
  { names: ["ls"], load: async () => [(await import("./ls.js")).registerLs] },
  { names: ["cat"], load: async () => [(await import("./cat.js")).registerCat] },
  { names: ["extract"], load: async () => [(await import("./extract.js")).registerExtract] },
  { names: ["hash"], load: async () => [(await import("./hash.js")).registerHash] },
  { names: ["iso"], load: async () => [(await import("./iso.js")).registerIso] },
  { names: ["info"], load: async () => [(await import("./info.js")).registerInfo] },
  { names: ["convert"], load: async () => [(await import("./convert.js")).registerConvert] },
  { names: ["check"], load: async () => [(await import("./check.js")).registerCheck] },
];

/** The registrations for `argv`: just its command's when it names one, else all (help, typos). */
export async function loadCommands(argv: string[]): Promise<RegisterCommand[]> {
  const named = commands.filter((c) => c.names.includes(argv[0] ?? ""));
  const modules = named.length > 0 ? named : commands;
  return (await Promise.all(modules.map((m) => m.load()))).flat();
}
