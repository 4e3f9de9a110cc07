// Homomorphic aggregation cost: CKKS (node-seal 7, N = 8192, [60, 60], Δ = 2^40) against the
// plaintext reference, for an MLP-sized (784-128-10: 101 770 params) and a CNN-sized
// (421 642 params) update, 10 clients each.
//
//   npx tsc -b protocol && npx node bench/he.mjs [clients]
//
// Rows: client encrypt µs/param (pack + encode + encrypt + serialize), bytes/param on the wire,
// server add µs/param per client (validate + deserialize + add in place), decrypt ms for the
// whole aggregate (validate + deserialize + decrypt + decode), and the max abs error of the
// weighted mean against float64. Prints a table and writes bench/results/he.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';
import { zstdCompressSync } from 'node:zlib';
import {
  CkksAggregation,
  PlainAggregation,
  createCkksContext,
  generateKeys,
  loadSeal,
} from '@tessera/protocol';

const CLIENTS = Number(process.argv[2] ?? 10);
const MODELS = [
  { name: 'mlp', params: 101_770 },
  { name: 'cnn', params: 421_642 },
];

/** Deterministic data (xorshift32): benchmark inputs need to be reproducible, not secret. */
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function makeClients(params, seed) {
  const rand = prng(seed);
  return Array.from({ length: CLIENTS }, () => {
    const update = new Float32Array(params);
    for (let i = 0; i < params; i++) update[i] = (rand() * 2 - 1) * 0.05;
    return { update, weight: 1 + Math.floor(rand() * 600) };
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function run(scheme, role, clients, params) {
  // warm-up (JIT, SEAL memory pool), not timed
  role.client.encryptUpdate(clients[0].update.subarray(0, scheme.slotCount * 2), 1);

  const submissions = [];
  const encryptUs = [];
  for (const c of clients) {
    const t = performance.now();
    submissions.push(role.client.encryptUpdate(c.update, c.weight));
    encryptUs.push(((performance.now() - t) * 1000) / params);
  }
  const wireBytes = submissions[0].reduce((a, b) => a + b.length, 0);

  const acc = role.server.createAccumulator(params);
  const addUs = [];
  for (const s of submissions) {
    const t = performance.now();
    acc.add(s);
    addUs.push(((performance.now() - t) * 1000) / params);
  }
  const aggregate = acc.result();
  acc.dispose();

  const t = performance.now();
  const sum = role.keyHolder.decryptAggregate(aggregate, params);
  const decryptMs = performance.now() - t;

  const totalWeight = clients.reduce((a, c) => a + c.weight, 0);
  let maxErr = 0;
  for (let i = 0; i < params; i++) {
    let ref = 0;
    for (const c of clients) ref += c.weight * c.update[i];
    maxErr = Math.max(maxErr, Math.abs(sum.values[i] / sum.weight - ref / totalWeight));
  }
  if (sum.weight !== totalWeight) throw new Error(`weight ${sum.weight} != ${totalWeight}`);

  return {
    scheme: scheme.name,
    ciphertexts: submissions[0].length,
    encryptUsPerParam: median(encryptUs),
    bytesPerParam: wireBytes / params,
    wireBytesPerClient: wireBytes,
    addUsPerParamPerClient: median(addUs.slice(1)), // the first add only loads
    decryptMs,
    maxAbsErrorOfMean: maxErr,
    sample: submissions[0],
  };
}

const { seal } = await loadSeal();
const ctx = createCkksContext(seal);
const keys = generateKeys(ctx);
const ckksRoles = {
  client: new CkksAggregation(ctx, { publicKey: keys.publicKey }),
  server: new CkksAggregation(ctx),
  keyHolder: new CkksAggregation(ctx, { secretKey: keys.secretKey }),
};
const plain = new PlainAggregation({ slotCount: ctx.slotCount });
const plainRoles = { client: plain, server: plain, keyHolder: plain };

const rows = [];
for (const [i, model] of MODELS.entries()) {
  const clients = makeClients(model.params, 1000 + i);
  for (const [scheme, roles] of [
    [ckksRoles.client, ckksRoles],
    [plain, plainRoles],
  ]) {
    const r = run(scheme, roles, clients, model.params);
    rows.push({ model: model.name, params: model.params, clients: CLIENTS, ...r });
  }
}

// Reference points for the wire format: SEAL's own serialization of the same ciphertexts,
// and a general-purpose compressor (Node's zstd) applied on top of the packed format.
const sealFormats = (() => {
  const ckksRow = rows.find((r) => r.scheme === 'ckks' && r.model === 'mlp');
  const pt = new seal.Plaintext();
  const ct = new seal.Ciphertext();
  const enc = new seal.Encryptor(ctx.context, keys.publicKey);
  try {
    ctx.encoder.encode(Float64Array.from({ length: ctx.slotCount }, (_, k) => Math.sin(k) * 0.05), ctx.scale, pt);
    enc.encrypt(pt, ct);
    const perSlot = (mode) => ct.saveToArray(seal.ComprModeType[mode]).length / ctx.slotCount;
    const packed = ckksRow.sample[0];
    return {
      sealNoneBytesPerSlot: perSlot('none'),
      sealZlibBytesPerSlot: perSlot('zlib'),
      sealZstdBytesPerSlot: perSlot('zstd'),
      packedBytesPerSlot: packed.length / ctx.slotCount,
      packedThenNodeZstdBytesPerSlot: zstdCompressSync(packed).length / ctx.slotCount,
    };
  } finally {
    enc.delete();
    ct.delete();
    pt.delete();
  }
})();

for (const r of ckksRoles ? Object.values(ckksRoles) : []) r.dispose();
keys.dispose();
ctx.dispose();

const fmt = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
console.log(
  `\nHE aggregation, ${CLIENTS} clients, CKKS N=${ctx.params.polyModulusDegree} [${ctx.params.coeffModulusBits}] Δ=2^${ctx.params.scaleBits} (${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version})\n`,
);
console.log('| model | params | scheme | cts/client | encrypt µs/param | bytes/param | add µs/param/client | decrypt ms | max err (mean) |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.model} | ${r.params} | ${r.scheme} | ${r.ciphertexts} | ${fmt(r.encryptUsPerParam, 3)} | ${fmt(r.bytesPerParam, 2)} | ${fmt(r.addUsPerParamPerClient, 3)} | ${fmt(r.decryptMs, 1)} | ${r.maxAbsErrorOfMean.toExponential(1)} |`,
  );
}
console.log('\nWire format, bytes per slot of one fresh ciphertext:');
for (const [k, v] of Object.entries(sealFormats)) console.log(`  ${k.padEnd(32)} ${v.toFixed(3)}`);

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const out = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  clients: CLIENTS,
  parameters: ctx.params,
  rows: rows.map(({ sample: _sample, ...r }) => r),
  wireFormat: sealFormats,
};
writeFileSync(new URL('./results/he.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
console.log('\nwrote bench/results/he.json');
