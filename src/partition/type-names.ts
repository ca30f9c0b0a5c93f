/** Human names for partition types: sfdisk's for MBR ids, sgdisk's for GPT type GUIDs. */
import { GPT_TYPE_NAMES } from "./gpt-types.js";
import { MBR_TYPE_NAMES } from "./mbr-types.js";

/** "83" -> "Linux"; fdisk says "unknown" for ids it has no name for. */
export function mbrTypeName(type: number): string {
  return MBR_TYPE_NAMES[type] ?? "unknown";
}

/** "0FC63DAF-8483-4772-8E79-3D69D8477DE4" -> "Linux filesystem"; sgdisk says "Unknown". */
export function gptTypeName(typeGuid: string): string {
  return GPT_TYPE_NAMES[typeGuid.toUpperCase()] ?? "Unknown";
}

/** An MBR type id as the JSON shape spells it: two lower-case hex digits ("0c", "83"). */
export function mbrTypeId(type: number): string {
  return type.toString(16).padStart(2, "0");
}
