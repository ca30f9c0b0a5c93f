/**
 * import() of a package that is only an ES module (zstddec). The built CLI
 * runs its bundles as vm scripts, which have no module loader of their own
 * (and whose import() Node 20 loses when the script comes from V8's code
 * cache), so its launcher lends its own import() under IMPORT_HOOK; the
 * library and the tests use the language's.
 */
export const IMPORT_HOOK = Symbol.for("platter.importPackage");

type Importer = (specifier: string) => Promise<unknown>;

export function importPackage<T>(specifier: string): Promise<T> {
  const hook = (globalThis as { [IMPORT_HOOK]?: Importer })[IMPORT_HOOK];
  return (hook ? hook(specifier) : import(specifier)) as Promise<T>;
}
