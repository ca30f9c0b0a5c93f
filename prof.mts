import { readFileSync } from "node:fs";
import { decodeSuperblock, openSquashfs } from "./src/fs/squashfs/index.js";
import { fuzzImage } from "./test/helpers/fs-fuzz.js";
const image = readFileSync(`test/fixtures/out/squashfs/gzip.sqfs`);
const sb = decodeSuperblock(image);
let t = performance.now();
console.log(await fuzzImage(image, openSquashfs as any, { copies: 1000, hot: [[0, 96], [sb.inodeTableStart, sb.bytesUsed]] }), performance.now() - t);
t = performance.now();
