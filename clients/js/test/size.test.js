// The library, minified and gzipped, stays within 10 KiB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

test('index.js + react.js minified+gzipped ≤ 10 KiB', async () => {
  const r = await build({
    stdin: { contents: "export * from './src/index.js'; export * from './src/react.js';", resolveDir: process.cwd() + '/', loader: 'js' },
    bundle: true, minify: true, format: 'esm', write: false,
  });
  const gz = gzipSync(r.outputFiles[0].contents, { level: 9 }).length;
  console.log(`# size: ${r.outputFiles[0].contents.length} B minified, ${gz} B gzipped`);
  assert.ok(gz <= 10 * 1024, `${gz} B gzipped`);
});
