import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { decodeMapfile, encodeMapfile, type MapBlock } from "../../src/capture/mapfile.js";
import { RescueMap } from "../../src/capture/rescue-map.js";
import { CorruptImageError } from "../../src/errors.js";
import { seededRandom } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** Statuses and sizes as `ddrescuelog -t` prints them, e.g. {rescued: "1000 kB", ...}. */
async function ddrescuelogTotals(path: string): Promise<Record<string, string>> {
  const out = await sh(`ddrescuelog -t ${path}`);
  const totals: Record<string, string> = {};
  for (const m of out.matchAll(/^\s*([a-z-]+):\s+(\S+ \S*B),\s+in\s+(\d+) area/gm)) totals[m[1]] = `${m[2]} in ${m[3]}`;
  return totals;
}

/** A map with every status, some runs unaligned, as a rescue in progress leaves it. */
function mixedMap(): RescueMap {
  const map = new RescueMap(10_000_000);
  map.set(0, 1_048_576, "+");
  map.set(1_048_576, 1_049_088, "-");
  map.set(1_049_088, 1_114_112, "/");
  map.set(1_114_112, 2_162_688, "*");
  map.set(2_162_688, 6_000_000, "+");
  map.set(6_000_000, 6_000_512, "-");
  return map;
}

describe("ddrescue mapfile", () => {
  test("reads mapfiles that GNU ddrescue and ddrescuelog wrote, all five statuses; ddrescuelog -t agrees on the totals", {
    skip: needs("ddrescue", "ddrescuelog"),
  }, async () => {
    const dir = tempDir();
    await sh(`cd ${dir} && head -c 3000000 /dev/urandom > src && ddrescue -q -s 1MiB src dst map`);
    // ddrescuelog turns statuses into others: ? -> * and then part of it into / and -.
    await sh(`cd ${dir} && printf '%s\\n' 3000 3001 4000 | ddrescuelog -c -b512 -s 3000000 - > listed && ddrescuelog -a '+,/' listed > slashes`);
    for (const name of ["map", "listed", "slashes"]) {
      const text = await sh(`cat ${join(dir, name)}`);
      const parsed = decodeMapfile(text);
      const map = RescueMap.fromBlocks(parsed.blocks, 3_000_000);
      const theirs = await ddrescuelogTotals(join(dir, name));
      const ours = join(dir, `${name}.ours`);
      writeFileSync(ours, encodeMapfile({ ...parsed, comments: [], blocks: map.toBlocks() }));
      assert.deepEqual(await ddrescuelogTotals(ours), theirs, `${name}: totals differ`);
      assert.equal(parsed.comments[0].startsWith("Mapfile. Created by GNU ddrescue"), true);
    }
    const first = decodeMapfile(await sh(`cat ${join(dir, "map")}`));
    assert.deepEqual(first.blocks, [
      { pos: 0, size: 1 << 20, status: "+" },
      { pos: 1 << 20, size: 3_000_000 - (1 << 20), status: "?" },
    ]);
    assert.equal(first.currentStatus, "+");
  });

  test("platter's mapfile is byte-identical to ddrescuelog's rewrite of it, and lists the same bad sectors", {
    skip: needs("ddrescuelog"),
  }, async () => {
    const dir = tempDir();
    const path = join(dir, "platter.map");
    const text = encodeMapfile({ comments: ["Mapfile. Created by platter"], currentPos: 0x10_0000, currentStatus: "*", currentPass: 1, blocks: mixedMap().toBlocks() });
    writeFileSync(path, text);
    const rewritten = await sh(`ddrescuelog -a '?,?' ${path}`);
    const body = (t: string) => t.split("\n").filter((l) => !l.startsWith("# ") || l.startsWith("# current_pos")).join("\n");
    assert.equal(body(rewritten), body(text));
    const bad = (await sh(`ddrescuelog -l- -b512 ${path}`)).trim().split("\n").map(Number);
    assert.deepEqual(bad, [2048, 11718, 11719]); // the last bad run is not sector-aligned
    const nonScraped = (await sh(`ddrescuelog -l/ -b512 ${path}`)).trim().split("\n");
    assert.equal(nonScraped.length, (1_114_112 - 1_049_088) / 512);
  });

  test("accepts C integer syntax, comments after whitespace, a status line without a pass", () => {
    const m = decodeMapfile("# hello\n  0x200  -   # retrying\n0 0x200 +\n01000 512 - # octal 512\n1024 0X400 ?\n");
    assert.equal(m.currentPos, 512);
    assert.equal(m.currentStatus, "-");
    assert.equal(m.currentPass, 1);
    assert.deepEqual(m.blocks, [
      { pos: 0, size: 512, status: "+" },
      { pos: 512, size: 512, status: "-" },
      { pos: 1024, size: 1024, status: "?" },
    ]);
    assert.deepEqual(decodeMapfile("").blocks, []);
  });

  test("rejects malformed lines, naming the line and the field", () => {
    const bad: Array<[string, RegExp]> = [
      ["0x0 ? 1\n0 512 +\n1024 512 -\n", /line 3: .*not contiguous/],
      ["0x0 ? 1\n0 512 x\n", /line 2: bad block status 'x'/],
      ["0x0 ? 1\n0 -512 +\n", /line 2: bad block size/],
      ["0x0 ? 0\n", /line 1: bad current_pass/],
      ["zz ? 1\n", /line 1: bad current_pos/],
      ["0 ? 1\n0 512\n", /line 2: bad block line/],
      ["0 ? 1\n0x 512 +\n", /line 2: bad block position/],
    ];
    for (const [text, message] of bad) {
      assert.throws(() => decodeMapfile(text), (e: unknown) => e instanceof CorruptImageError && message.test(e.message), text);
    }
  });

  test("fitting a map to the source: short map extended, unfinished tail cut, rescued data past the end refused", () => {
    const blocks: MapBlock[] = [
      { pos: 4096, size: 4096, status: "+" },
      { pos: 8192, size: 8192, status: "*" },
    ];
    const map = RescueMap.fromBlocks(blocks, 12_288);
    assert.deepEqual(map.toBlocks(), [
      { pos: 0, size: 4096, status: "?" },
      { pos: 4096, size: 4096, status: "+" },
      { pos: 8192, size: 4096, status: "*" },
    ]);
    assert.deepEqual(RescueMap.fromBlocks(blocks, 20_000).toBlocks().at(-1), { pos: 16_384, size: 3616, status: "?" });
    assert.throws(() => RescueMap.fromBlocks(blocks, 6000), CorruptImageError);
  });

  test("fuzz: truncated and bit-flipped mapfiles end in a CorruptImageError or a valid map, nothing else", () => {
    const text = encodeMapfile({ comments: ["x"], currentPos: 4096, currentStatus: "/", currentPass: 2, blocks: mixedMap().toBlocks() });
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const inputs: string[] = [];
    for (let cut = 0; cut < text.length; cut += 3) inputs.push(text.slice(0, cut));
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(text);
      for (let k = 0; k < 1 + (i % 4); k++) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
      inputs.push(bytes.toString("latin1"));
    }
    let valid = 0;
    for (const input of inputs) {
      try {
        const m = decodeMapfile(input);
        const fitted = RescueMap.fromBlocks(m.blocks, 10_000_000);
        assert.equal(fitted.toBlocks().reduce((n, b) => n + b.size, 0), 10_000_000);
        valid++;
      } catch (err) {
        if (!(err instanceof CorruptImageError)) throw err;
      }
    }
    assert.ok(valid > 0 && valid < inputs.length, `valid ${valid} of ${inputs.length}`);
  });
});

describe("rescue map", () => {
  test("merges equal neighbours and keeps per-status totals", () => {
    const map = new RescueMap(1000);
    map.set(100, 200, "+");
    map.set(200, 300, "+");
    map.set(150, 160, "-");
    map.set(150, 160, "+");
    assert.deepEqual(map.toBlocks(), [
      { pos: 0, size: 100, status: "?" },
      { pos: 100, size: 200, status: "+" },
      { pos: 300, size: 700, status: "?" },
    ]);
    assert.equal(map.bytes("+"), 200);
    assert.equal(map.bytes("?"), 800);
    assert.deepEqual(map.ranges("?", 50, 400), [
      [50, 100],
      [300, 400],
    ]);
    assert.equal(map.firstNot("?", 0, 1000), 100);
    map.set(0, 1000, "-");
    assert.equal(map.runCount, 1);
    assert.equal(map.bytes("-"), 1000);
  });

  test("random updates agree with a byte-per-byte model", () => {
    const size = 4096;
    const model: string[] = new Array(size).fill("?");
    const map = new RescueMap(size);
    const statuses = ["?", "*", "/", "-", "+"] as const;
    const random = seededRandom(1);
    for (let i = 0; i < 2000; i++) {
      const a = random(size);
      const b = a + random(size - a + 1);
      const s = statuses[random(5)];
      map.set(a, b, s);
      model.fill(s, a, b);
    }
    const blocks = map.toBlocks();
    for (const b of blocks) for (let p = b.pos; p < b.pos + b.size; p++) assert.equal(model[p], b.status);
    for (let i = 1; i < blocks.length; i++) assert.notEqual(blocks[i].status, blocks[i - 1].status);
    for (const s of statuses) assert.equal(map.bytes(s), model.filter((x) => x === s).length);
  });
});
