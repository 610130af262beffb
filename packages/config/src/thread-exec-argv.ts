/**
 * The execArgv of a thread whose body is TypeScript run by tsx: a process started with `--import tsx` passes that
 * on to its threads, but one that registered tsx programmatically (the `evop` command) must give it to them.
 */
export function threadExecArgv(): string[] {
  const hasTsx = process.execArgv.some((arg, i, all) => all[i - 1] === '--import' && arg.includes('tsx'));
  return hasTsx ? process.execArgv : [...process.execArgv, '--import', import.meta.resolve('tsx')];
}
