// The entry point of the packed `evop` (scripts/pack.mjs bundles it); in a checkout, bin/evop.js runs main.ts.
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
