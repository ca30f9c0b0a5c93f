/**
 * platter as a library: everything the commands do, without the CLI.
 * Everything reads through a BlockSource; filesystems share one small
 * FileSystem interface; nothing here prints or exits.
 *
 *   const image = await openImage("disk.img.zst");      // any container, by magic
 *   const table = await readPartitionTable(image.source);
 *   const fs = await openFilesystem(openPartition(image.source, table, 1));
 *
 * or in one step: `await openImageFilesystem("disk.img", { part: 1 })`.
 */

// Errors (each maps to an exit code in the CLI)
export { CorruptImageError, DeviceError, PlatterError, UnsupportedError, UsageError } from "./errors.js";

// Block sources and sinks
export type { BlockSink, BlockSource } from "./io/block-source.js";
export { FileSource, openSource, type OpenSourceOptions } from "./io/file-source.js";
export { FileSink, StreamSink, type OpenSinkOptions } from "./io/file-sink.js";
export { SliceSource } from "./io/slice-source.js";
export { MemorySource } from "./io/memory-source.js";
export { StreamSource, type SequentialSource } from "./io/stream-source.js";

// Capture, dd, hashing, ddrescue mapfiles
export { capture, type CaptureOptions, type CaptureProgress, type CaptureResult } from "./capture/capture.js";
export { runDd, type DdResult } from "./capture/dd.js";
export { parseDdOperands, type DdOperands } from "./capture/dd-operands.js";
export { decodeMapfile, encodeMapfile, type Mapfile, type MapBlock, type BlockStatus } from "./capture/mapfile.js";
export { RescueMap } from "./capture/rescue-map.js";
export { hashSource, hashStream } from "./capture/hash-source.js";
export { MultiHasher, parseHashList, type HashAlgorithm } from "./capture/hasher.js";

// Partition tables
export type { Partition, PartitionScheme, PartitionTable } from "./partition/types.js";
export { readDiskTable as readPartitionTable } from "./image/disk-table.js";
export { choosePartition, openPartition, type PartitionChoice } from "./image/partition-choice.js";
export { reportPartitions, type PartitionReport } from "./image/partition-report.js";

// Opening images: containers by magic, then partition and filesystem
export { openImage, type OpenImageOptions, type OpenedImage } from "./image/open-image.js";
export { openImageFilesystem, type ImageFilesystem, type OpenImageFilesystemOptions } from "./image/open-filesystem.js";
export type { ContainerFormat, ContainerSource, ContainerWriter, ContainerSink } from "./container/format.js";
export { checkQcow2, type Qcow2CheckReport } from "./container/qcow2/index.js";
export { convertImage, type ConvertOptions, type ConvertResult } from "./convert/convert.js";
export { decodeMbr, encodeMbr, decodeEbr, encodeEbr } from "./partition/mbr.js";
export { decodeGptEntry, decodeGptHeader, encodeGptEntries, encodeGptEntry, encodeGptHeader } from "./partition/gpt.js";

// Filesystems
export type { FileExtent, FileSystem, FileType, FsDirEntry, FsNode, FsRegion, FsStat } from "./fs/types.js";
export { probeFilesystem, type ProbeResult } from "./fs/probe.js";
export { canRead, openFilesystem } from "./fs/open.js";
export { resolvePath } from "./fs/path.js";
export { listAll, sortedList, walk } from "./fs/walk.js";
export { escapeName, hasRawBytes, nameBytes, printableName } from "./fs/names.js";
export { extractTree, type ExtractOptions, type ExtractSummary } from "./fs/extract/index.js";
export { openExt } from "./fs/ext/index.js";
export { openFat } from "./fs/fat/index.js";
export { openExfat } from "./fs/exfat/index.js";
export { openSquashfs } from "./fs/squashfs/index.js";
export { openIso9660 } from "./fs/iso9660/index.js";
export { buildIso, BuildStopped, type BuildIsoOptions, type BuildIsoResult } from "./fs/iso9660/writer/index.js";

// Mounting and image information
export { mountImage, planMount, unmountImage } from "./mount/mount.js";
export { imageInfo, type ImageInfo } from "./info/image-info.js";

// Writing images back to disks, and comparing images
export { restoreImage, type RestoreOptions, type RestoreResult } from "./restore/restore.js";
export { compareImages, type CompareResult } from "./restore/compare.js";
