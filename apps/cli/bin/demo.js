#!/usr/bin/env node
// `npm run demo`: see src/demo.ts.
import { register } from 'tsx/esm/api';

register();
const { runDemo } = await import('../src/demo.ts');
process.exitCode = await runDemo(process.argv[2]);
