#!/usr/bin/env node
// The `evop` command: TypeScript sources run through tsx, registered here so that it works from any folder.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
