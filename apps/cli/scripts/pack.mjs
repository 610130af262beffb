#!/usr/bin/env node
// `npm run pack -w @evop/cli [-- --out DIR]`: bundles the `evop` command (its TypeScript and that of the
// packages it uses) into JavaScript with esbuild and packs it with `npm pack` as evop-<version>.tgz, which
// `npm install -g ./evop-<version>.tgz` turns into a working `evop`. Third-party packages stay external and
// become the package's dependencies, at the versions this checkout runs: native (onnxruntime-node), thread
// (piscina) and asset-reading (chart.js) ones cannot be bundled, and one rule for all keeps the bundle honest.
// The service's packages (database, API, coordinator, workers) are left out: it runs from a checkout or its
// containers; `evop stack` and `evop admin` say so.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(cli, '../..');
const { values } = parseArgs({ options: { out: { type: 'string', default: join(cli, 'dist') } } });
const out = resolve(values.out);
const staging = join(out, 'package');
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });

const SERVICE = ['@evop/db', '@evop/api', '@evop/coordinator', '@evop/worker'];
/** The module that starts the service's processes (`evop stack`), left out with them. */
const STACK = join(cli, 'src/stack.ts');
const packageName = (spec) =>
  spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');

/** The version of the package that a module in `dir` gets for `spec` (`name` or `name/subpath`). */
function installedVersion(spec, dir) {
  const name = packageName(spec);
  // The file it resolves to, then up to that package's package.json (exports may hide package.json itself).
  let at = dirname(createRequire(join(dir, 'x.js')).resolve(spec));
  for (;;) {
    const manifest = join(at, 'package.json');
    if (existsSync(manifest)) {
      const { name: found, version } = JSON.parse(readFileSync(manifest, 'utf8'));
      if (found === name && version) return version;
    }
    if (dirname(at) === at) throw new Error(`${name}: no package.json above its entry point`);
    at = dirname(at);
  }
}

/** Each third-party package the bundle imports, with the version installed where it is imported from. */
const external = new Map();
function addExternal(name, version) {
  const seen = external.get(name);
  if (seen && seen !== version) throw new Error(`${name}: both ${seen} and ${version} are imported`);
  external.set(name, version);
}
const externals = {
  name: 'externals',
  setup(build) {
    build.onResolve({ filter: /^\./ }, (args) =>
      resolve(args.resolveDir, args.path) === STACK ? { external: true } : undefined,
    );
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { external: true };
      const name = packageName(args.path);
      if (SERVICE.includes(name)) return { external: true };
      if (name.startsWith('@evop/')) return undefined;
      addExternal(name, installedVersion(args.path, args.resolveDir));
      return { external: true };
    });
  },
};
// Found at run time by require.resolve rather than imported: report.html inlines chart.js's UMD file.
addExternal('chart.js', installedVersion('chart.js', join(root, 'packages/pipeline')));

await esbuild.build({
  entryPoints: {
    evop: join(cli, 'src/bin.ts'),
    // Thread bodies, loaded by file name beside the bundle (`threadModule`).
    'inference-thread': join(root, 'packages/runtime/src/inference-thread.ts'),
    'calibration-thread': join(root, 'packages/pipeline/src/calibration-thread.ts'),
  },
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  plugins: [externals],
  logLevel: 'warning',
});
// Read beside the module that parses ONNX files.
copyFileSync(join(root, 'packages/onnx/src/onnx-ml.proto'), join(staging, 'onnx-ml.proto'));
// report.html inlines the front's chart script, read from beside the bundle.
copyFileSync(join(root, 'packages/pipeline/src/front-chart.js'), join(staging, 'front-chart.js'));
copyFileSync(join(root, 'README.md'), join(staging, 'README.md'));

const own = JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8'));
const top = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const manifest = {
  name: 'evop',
  version: own.version,
  description: top.description,
  license: top.license,
  type: 'module',
  bin: { evop: 'evop.js' },
  engines: top.engines,
  dependencies: Object.fromEntries([...external].sort(([a], [b]) => a.localeCompare(b))),
};
writeFileSync(join(staging, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const [packed] = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: staging, encoding: 'utf8' }),
);
process.stdout.write(`${join(out, packed.filename)}\n`);
