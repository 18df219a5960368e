#!/usr/bin/env node
// ort_run.js: runs one ONNX model with ONNX Runtime 1.30 (npm onnxruntime-node)
// for the qsdk host (host/export/onnx_runtime.cpp), which starts it as a child
// process:
//
//   node tools/ort_run.js REQUEST.json
//
// onnxruntime-node is loaded from $QSDK_ORT_DIR, a node_modules directory
// holding onnxruntime-node and onnxruntime-common (default
// ${QSDK_DATA_DIR:-$HOME/.cache/qsdk}/onnxruntime-1.30.0/node_modules, where
// scripts/setup.sh puts them).
//
// REQUEST.json:
//   {"model": "/abs/model.onnx",
//    "optimization": "all" | "disabled",   graphOptimizationLevel (optional, default "all")
//    "threads": 1,                          intraOpNumThreads (optional, default 1)
//    "inputs": [{"name": "input", "dims": [1, 3, 32, 32], "type": "float32", "file": "/abs/in0.bin"}],
//                                           raw little-endian, one per model input; type float32
//                                           (default), int64, int32 or bool (one byte each)
//    "outputs_dir": "/abs/dir",
//    "fetch": ["name", ...],                optional; default: all the model's outputs
//    "repeat": 0}                           optional; > 0: after the first run, time this many more
//
// For each fetched output i it writes <outputs_dir>/<i>.bin (raw little-endian,
// in the tensor's own dtype) and prints one JSON object on stdout:
//   {"outputs": [{"name": "...", "type": "float32" | "int8" | "uint8" | "int32" | "int64",
//                 "dims": [...], "file": "/abs/dir/0.bin"}, ...],
//    "latency_ms": [...]}                   only when repeat > 0: each timed run's wall time
//
// Errors are one line on stderr, no stack trace:
//   ort_run: <model path>: <cause>                                     exit 2
//   ort_run: onnxruntime-node not found in <dir>: run scripts/setup.sh   exit 3
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const OUTPUT_TYPES = new Set(['float32', 'int8', 'uint8', 'int32', 'int64']);

class Failure extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

function loadOrt() {
  const dataDir = process.env.QSDK_DATA_DIR || path.join(os.homedir(), '.cache', 'qsdk');
  const dir = process.env.QSDK_ORT_DIR || path.join(dataDir, 'onnxruntime-1.30.0', 'node_modules');
  const pkg = path.join(dir, 'onnxruntime-node');
  if (!fs.existsSync(path.join(pkg, 'package.json')))
    throw new Failure(`ort_run: onnxruntime-node not found in ${dir}: run scripts/setup.sh`, 3);
  try {
    return require(pkg);
  } catch (e) {
    throw new Failure(`ort_run: onnxruntime-node in ${dir} does not load (${oneLine(e)}): run scripts/setup.sh`, 3);
  }
}

function oneLine(e) {
  return String(e && e.message !== undefined ? e.message : e).replace(/\s*\n\s*/g, ' ').trim();
}

const INPUT_TYPES = {float32: Float32Array, int64: BigInt64Array, int32: Int32Array, bool: Uint8Array};

function readInput(ort, input) {
  const type = input.type || 'float32';
  const Typed = INPUT_TYPES[type];
  if (!Typed) throw new Error(`input ${input.name}: type ${JSON.stringify(type)} is not one of ${Object.keys(INPUT_TYPES)}`);
  const count = input.dims.reduce((n, d) => n * d, 1);
  const bytes = fs.readFileSync(input.file);
  const need = count * Typed.BYTES_PER_ELEMENT;
  if (bytes.length !== need)
    throw new Error(`input ${input.name}: ${input.file} has ${bytes.length} bytes, dims [${input.dims}] need ${need}`);
  // Copy into an aligned buffer: a Buffer's offset need not be a multiple of the element size.
  const data = new Typed(count);
  new Uint8Array(data.buffer).set(bytes);
  return new ort.Tensor(type, data, input.dims);
}

async function run(ort, request) {
  if (!fs.existsSync(request.model)) throw new Error('no such file');
  const optimization = request.optimization || 'all';
  if (optimization !== 'all' && optimization !== 'disabled')
    throw new Error(`optimization must be "all" or "disabled", not ${JSON.stringify(optimization)}`);
  const session = await ort.InferenceSession.create(request.model, {
    graphOptimizationLevel: optimization,
    intraOpNumThreads: request.threads || 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3, // errors only: they come back as exceptions, warnings would clutter stderr
  });

  const feeds = {};
  for (const input of request.inputs || []) {
    if (!session.inputNames.includes(input.name))
      throw new Error(`input ${input.name} is not an input of the model (inputs: ${session.inputNames.join(', ')})`);
    feeds[input.name] = readInput(ort, input);
  }
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) throw new Error(`no data for input ${missing.join(', ')}`);
  const fetch = request.fetch && request.fetch.length ? request.fetch : session.outputNames;
  for (const name of fetch)
    if (!session.outputNames.includes(name))
      throw new Error(`fetch: ${name} is not an output of the model (outputs: ${session.outputNames.join(', ')})`);

  const results = await session.run(feeds, fetch);
  const latency = [];
  for (let i = 0; i < (request.repeat || 0); ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds, fetch);
    latency.push(Number(process.hrtime.bigint() - start) / 1e6);
  }

  const outputs = fetch.map((name, i) => {
    const t = results[name];
    if (!OUTPUT_TYPES.has(t.type)) throw new Error(`output ${name} has type ${t.type}, which qsdk does not read`);
    const file = path.join(request.outputs_dir, `${i}.bin`);
    fs.writeFileSync(file, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return { name, type: t.type, dims: Array.from(t.dims), file };
  });
  await session.release();
  const response = { outputs };
  if (latency.length) response.latency_ms = latency;
  return response;
}

async function main() {
  const requestFile = process.argv[2];
  if (!requestFile || process.argv.length > 3) throw new Failure('usage: node ort_run.js REQUEST.json', 2);
  let request;
  try {
    request = JSON.parse(fs.readFileSync(requestFile, 'utf8'));
  } catch (e) {
    throw new Failure(`ort_run: ${requestFile}: ${oneLine(e)}`, 2);
  }
  if (typeof request.model !== 'string') throw new Failure(`ort_run: ${requestFile}: no "model" path`, 2);
  const ort = loadOrt();
  try {
    ort.env.logLevel = 'error';
    return await run(ort, request);
  } catch (e) {
    throw new Failure(`ort_run: ${request.model}: ${oneLine(e)}`, 2);
  }
}

main().then(
  (response) => process.stdout.write(JSON.stringify(response) + '\n'),
  (e) => {
    process.stderr.write((e instanceof Failure ? e.message : `ort_run: ${oneLine(e)}`) + '\n');
    process.exitCode = e instanceof Failure ? e.code : 2;
  },
);
