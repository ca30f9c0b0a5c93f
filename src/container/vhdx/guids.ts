/** The GUIDs MS-VHDX gives its regions, metadata items and parent locator type (mixed-endian on disk, as GPT's). */
export const REGION = {
  bat: "2DC27766-F623-4200-9D64-115E9BFD4A08",
  metadata: "8B7CA206-4790-4B9A-B8FE-575F050F886E",
} as const;

export const METADATA_ITEM = {
  fileParameters: "CAA16737-FA36-4D43-B3B6-33F0AA44E76B",
  virtualDiskSize: "2FA54224-CD1B-4876-B211-5DBED83BF4B8",
  page83Data: "BECA12AB-B2E6-4523-93EF-C309E000C746",
  logicalSectorSize: "8141BF1D-A96F-4709-BA47-F233A8FAAB5F",
  physicalSectorSize: "CDA348C7-445D-4471-9CC9-E9885251C556",
  parentLocator: "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C",
} as const;

export const VHDX_PARENT_LOCATOR_TYPE = "B04AEFB7-D19E-4A81-B789-25B8E9445913";
