/**
 * How piscina loads a thread body `name` that sits beside the module starting the pool (`base`, its
 * import.meta.url): in a checkout, the TypeScript source, run by tsx; in the packed `evop`, the bundled JavaScript
 * beside the bundle, with no tsx.
 */
export function threadModule(name: string, base: string): { filename: string; execArgv: string[] } {
  if (base.endsWith('.js'))
    return { filename: new URL(`./${name}.js`, base).href, execArgv: process.execArgv };
  return { filename: new URL(`./${name}.ts`, base).href, execArgv: tsxExecArgv() };
}

/**
 * A process started with `--import tsx` passes that on to its threads, but one that registered tsx
 * programmatically (the `evop` command) must give it to them.
 */
function tsxExecArgv(): string[] {
  const hasTsx = process.execArgv.some((arg, i, all) => all[i - 1] === '--import' && arg.includes('tsx'));
  return hasTsx ? process.execArgv : [...process.execArgv, '--import', import.meta.resolve('tsx')];
}
