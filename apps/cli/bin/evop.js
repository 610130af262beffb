#!/usr/bin/env node
// The `evop` command in a checkout: TypeScript sources run through tsx, registered here so that it works from any
// folder. (`npm pack` ships the bundled JavaScript instead: see scripts/pack-cli.mjs.)
import { register } from 'tsx/esm/api';

// `npm run evop` runs in the repository root; paths on its command line are the caller's, relative to where it
// was typed.
if (process.env.npm_lifecycle_event === 'evop' && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
