import type { Command } from "commander";
import { registerCapture } from "./capture.js";
import { registerCat } from "./cat.js";
import { registerDd } from "./dd.js";
import { registerExtract } from "./extract.js";
import { registerHash } from "./hash.js";
import { registerInfo } from "./info.js";
import { registerIso } from "./iso.js";
import { registerLs } from "./ls.js";
import { registerMount, registerUmount } from "./mount.js";
import { registerParts } from "./parts.js";

/** A command module adds itself to the program and returns its Command. */
export type RegisterCommand = (program: Command) => Command;

/** Every command, in the order `platter --help` lists them. */
export const commands: RegisterCommand[] = [
  registerCapture,
  registerDd,
  registerParts,
  registerMount,
  registerUmount,
  registerLs,
  registerCat,
  registerExtract,
  registerHash,
  registerIso,
  registerInfo,
];
