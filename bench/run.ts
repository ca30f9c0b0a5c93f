/**
 * npm run bench [-- NAME...]: runs every bench/*.bench.ts (or only the
 * named ones). Each compares platter with the real tool on the same input,
 * in the same run, and prints the ratio. Timings live here, never in tests.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface Bench {
  /** One line saying what is compared. */
  title: string;
  run(): Promise<void>;
}

const here = fileURLToPath(new URL(".", import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.ts$/, "")))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(", ")}`);
  process.exit(2);
}
for (const file of files) {
  const bench = (await import(pathToFileURL(`${here}${file}`).href)).default as Bench;
  console.log(`\n== ${file.replace(/\.bench\.ts$/, "")}: ${bench.title}`);
  await bench.run();
}
