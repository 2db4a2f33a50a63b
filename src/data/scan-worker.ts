// Worker thread for scan-parallel.ts: scans one byte range of a dataset and posts the result in a
// form structured clone keeps (Maps and typed arrays; no class instances).

import { parentPort, workerData } from 'node:worker_threads';
import { scanDataset, type ScanRange } from './scan.js';

const { file, range, maxPerKind, overlapWith } = workerData as { file: string; range: ScanRange; maxPerKind: number; overlapWith?: Map<string, number> };
const scan = await scanDataset(file, { range, maxPerKind, overlapWith });
const columns = Object.fromEntries(Object.entries(scan.columns).map(([k, c]) => [k, c.data]));
parentPort!.postMessage({ ...scan, problems: { counts: scan.problems.counts, samples: scan.problems.samples }, columns });
