// Section 3: what privacy and encryption cost per parameter — on the client (µs/param), on the
// wire (bytes/param of the socket.io packet), and on the server (µs/param per client).
import { Buffer } from 'node:buffer';
import { addGaussianNoiseInPlace, clipInPlace, decodeTensors, encodeTensors, flatten } from '@tessera/protocol';
// The crypto module is not exported from @tessera/protocol's index (nor its package.json
// "exports"), so it is imported from the built file, as bench/he.mjs does.
import { CkksAggregation, createCkksContext, generateKeys, loadSeal } from '@tessera/protocol';
import { fmt, int, progress, prng, table } from './util.js';

const MODELS = [
  {
    name: 'mlp',
    manifest: [
      { name: 'dense1/kernel', shape: [784, 128], dtype: 'float32' },
      { name: 'dense1/bias', shape: [128], dtype: 'float32' },
      { name: 'output/kernel', shape: [128, 10], dtype: 'float32' },
      { name: 'output/bias', shape: [10], dtype: 'float32' },
    ],
  },
  {
    name: 'cnn',
    manifest: [
      { name: 'conv1/kernel', shape: [3, 3, 1, 32], dtype: 'float32' },
      { name: 'conv1/bias', shape: [32], dtype: 'float32' },
      { name: 'conv2/kernel', shape: [3, 3, 32, 64], dtype: 'float32' },
      { name: 'conv2/bias', shape: [64], dtype: 'float32' },
      { name: 'dense1/kernel', shape: [1600, 128], dtype: 'float32' },
      { name: 'dense1/bias', shape: [128], dtype: 'float32' },
      { name: 'output/kernel', shape: [128, 10], dtype: 'float32' },
      { name: 'output/bias', shape: [10], dtype: 'float32' },
    ],
  },
];

/** Bytes socket.io puts on the wire for a submit event (packet string + binary attachments), without WebSocket framing. */
async function wireBytesOf() {
  try {
    const { Encoder, PacketType } = await import('socket.io-parser');
    const enc = new Encoder();
    return (payload) => enc.encode({ type: PacketType.EVENT, nsp: '/', id: 1, data: ['submit', payload] }).reduce((n, part) => n + (typeof part === 'string' ? Buffer.byteLength(part) : part.byteLength), 0);
  } catch {
    // socket.io-parser not resolvable from here: count the binary payload and the JSON envelope.
    return (payload) => {
      const bin = [];
      const json = JSON.stringify(payload, (_k, v) => (v instanceof Uint8Array ? (bin.push(v.byteLength), { _placeholder: true, num: bin.length - 1 }) : v));
      return json.length + bin.reduce((a, b) => a + b, 0);
    };
  }
}

const submission = (update) => ({ taskId: 'task-bench', roundId: 1, baseModelVersion: 0, numExamples: 100, metrics: { loss: 1, accuracy: 0.5 }, update });

function makeDelta(manifest, seed) {
  const rand = prng(seed);
  return manifest.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = (rand() * 2 - 1) * 0.01;
    return { name: t.name, shape: [...t.shape], values };
  });
}
const copyDelta = (d) => d.map((t) => ({ ...t, values: Float32Array.from(t.values) }));

/** Best (lowest) µs per parameter of `fn(input)` over `reps` runs after one warm-up; fn gets a fresh copy each time. */
function usPerParam(params, reps, setup, fn) {
  fn(setup());
  const ts = [];
  let out;
  for (let i = 0; i < reps; i++) {
    const input = setup();
    const t = performance.now();
    out = fn(input);
    ts.push(((performance.now() - t) * 1000) / params);
  }
  return { us: Math.min(...ts), out };
}

export async function runPrivacy(ctx) {
  const { quick } = ctx;
  const reps = quick ? 3 : 7;
  const serverClients = quick ? 4 : 10;
  const clip = 1.0;
  const noiseStd = 1.0 * clip; // local-DP style z·C; the cost does not depend on the value
  const wire = await wireBytesOf();
  progress('  [3] loading node-seal, CKKS context (N=8192, [60,60], Δ=2^40), keys');
  const { seal } = await loadSeal();
  const ckks = createCkksContext(seal);
  const keys = generateKeys(ckks);
  const client = new CkksAggregation(ckks, { publicKey: keys.publicKey });
  const server = new CkksAggregation(ckks);
  const keyHolder = new CkksAggregation(ckks, { secretKey: keys.secretKey });
  const rows = [];
  try {
    for (const [mi, model] of MODELS.entries()) {
      const base = makeDelta(model.manifest, 100 + mi);
      const P = base.reduce((n, t) => n + t.values.length, 0);
      const dp = (d) => {
        clipInPlace(
          d.map((t) => t.values),
          clip,
        );
        addGaussianNoiseInPlace(
          d.map((t) => t.values),
          noiseStd,
        );
        return d;
      };
      const modes = {
        plaintext: (d) => encodeTensors(d),
        DP: (d) => encodeTensors(dp(d)),
        CKKS: (d) => client.encryptUpdate(flatten(d), 100),
        'DP+CKKS': (d) => client.encryptUpdate(flatten(dp(d)), 1),
      };
      const clientCost = {};
      for (const [mode, fn] of Object.entries(modes)) {
        progress(`  [3] ${model.name} (${int(P)} params): client ${mode}, ${reps} runs`);
        const { us, out } = usPerParam(P, reps, () => copyDelta(base), fn);
        const isCkks = Array.isArray(out);
        const payload = isCkks ? { kind: 'ckks', ciphertexts: out } : { kind: 'plain', tensors: out };
        clientCost[mode] = { us, bytes: wire(submission(payload)), out };
      }

      // Server, per client. Plaintext/DP: what TaskRunner.submit + FedAvg do with an update —
      // decode against the manifest with the finiteness check, flatten, add n·Δ into float64.
      progress(`  [3] ${model.name}: server plain add and homomorphic add, ${serverClients} clients`);
      const acc64 = new Float64Array(P);
      const plainAdd = (enc) => {
        const delta = flatten(decodeTensors(enc, { expected: model.manifest, requireFinite: true }));
        for (let i = 0; i < P; i++) acc64[i] += 100 * delta[i];
      };
      const encPlain = clientCost.plaintext.out;
      for (let i = 0; i < 3; i++) plainAdd(encPlain); // JIT
      const plainTs = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        plainAdd(encPlain);
        plainTs.push(((performance.now() - t) * 1000) / P);
      }
      const subs = [clientCost.CKKS.out];
      for (let i = 1; i < serverClients; i++) subs.push(client.encryptUpdate(flatten(makeDelta(model.manifest, 200 + i)), 100));
      const acc = server.createAccumulator(P);
      const heTs = [];
      let decryptMs;
      try {
        for (const s of subs) {
          const t = performance.now();
          acc.add(s);
          heTs.push(((performance.now() - t) * 1000) / P);
        }
        const aggregate = acc.result();
        const t = performance.now();
        keyHolder.decryptAggregate(aggregate, P);
        decryptMs = performance.now() - t;
      } finally {
        acc.dispose();
      }
      const plainServer = Math.min(...plainTs);
      const heServer = Math.min(...heTs.slice(1)); // the first add only loads the ciphertexts
      for (const mode of Object.keys(modes)) {
        const he = mode.includes('CKKS');
        rows.push({
          model: model.name,
          params: P,
          mode,
          clientUsPerParam: clientCost[mode].us,
          bytesPerParam: clientCost[mode].bytes / P,
          wireBytes: clientCost[mode].bytes,
          serverUsPerParamPerClient: he ? heServer : plainServer,
          keyHolderDecryptMs: he ? decryptMs : undefined,
        });
      }
    }
  } finally {
    client.dispose();
    server.dispose();
    keyHolder.dispose();
    keys.dispose();
    ckks.dispose();
  }
  const plainRef = (model) => rows.find((r) => r.model === model && r.mode === 'plaintext');
  const md = table(
    ['model', 'params', 'mode', 'client µs/param', 'bytes/param on the wire', 'update size', 'server µs/param per client', 'vs plaintext (client / wire / server)', 'key holder decrypt (round)'],
    rows.map((r) => {
      const p = plainRef(r.model);
      return [
        r.model,
        int(r.params),
        r.mode,
        fmt(r.clientUsPerParam, 3),
        fmt(r.bytesPerParam, 2),
        `${fmt(r.wireBytes / 1e6, 2)} MB`,
        fmt(r.serverUsPerParamPerClient, 4),
        r.mode === 'plaintext' ? '1×' : `${fmt(r.clientUsPerParam / p.clientUsPerParam, 0)}× / ${fmt(r.bytesPerParam / p.bytesPerParam, 1)}× / ${fmt(r.serverUsPerParamPerClient / p.serverUsPerParamPerClient, 1)}×`,
        r.keyHolderDecryptMs === undefined ? '–' : `${fmt(r.keyHolderDecryptMs, 0)} ms`,
      ];
    }),
    ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  const notes = [
    `Client: plaintext = encodeTensors; DP = clipInPlace (C=${clip}) + addGaussianNoiseInPlace (crypto.getRandomValues Box–Muller) + encodeTensors; CKKS = flatten + CkksAggregation.encryptUpdate (weight, pack, encode, encrypt, bit-packed serialize; N=8192, [60,60], Δ=2^40); DP+CKKS = both. Best of ${reps} runs after a warm-up (noise on a shared machine only slows runs down).`,
    'Wire: bytes of the socket.io submit packet (header string + binary attachments, socket.io-parser), WebSocket framing excluded. The CKKS payload is { kind: "ckks", ciphertexts } (the session adds a JWS receipt of a few hundred bytes).',
    `Server per client: plaintext/DP = decodeTensors (manifest + finiteness check) + flatten + n·Δ added into a float64 sum (TaskRunner.submit + FedAvg), best of 20 clients; CKKS = CiphertextAccumulator.add (validate + deserialize + add), best of ${serverClients - 1} adds. Key holder decrypt: the whole round's aggregate, once per round.`,
  ];
  return { title: 'Encryption and privacy costs per parameter', rows, table: md, notes };
}
