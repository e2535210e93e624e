/**
 * The worker thread behind OffThreadValidator: one CsvValidator per upload
 * (a session), fed the chunks the main thread sends and sending back the
 * canonical CSV, each chunk's buffer once read (the main thread's
 * backpressure, and its buffer to use again), and the outcome. Messages are
 * `ToThread` and `FromThread` (off-thread-validator.ts).
 */
import { parentPort } from 'node:worker_threads';
import type { FromThread, ToThread } from './off-thread-validator.js';
import { CsvValidator, InvalidCsvError } from './validator.js';

const port = parentPort!;
const sessions = new Map<number, CsvValidator>();
const send = (message: FromThread, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

function start(id: number, validator: CsvValidator): void {
  sessions.set(id, validator);
  // Each chunk ByteOutput hands on has a memory of its own (it allocates anew after each), so it moves instead of being copied.
  validator.on('data', (out: Buffer) => send({ id, out }, [out.buffer as ArrayBuffer]));
  validator.on('end', () => {
    sessions.delete(id);
    send({ id, rows: validator.rows });
  });
  validator.on('error', (e: Error) => {
    sessions.delete(id);
    send(e instanceof InvalidCsvError ? { id, invalid: { faults: e.faults, faultCount: e.faultCount, rows: e.rows, status: e.status } } : { id, error: e.stack ?? e.message });
  });
}

port.on('message', (m: ToThread) => {
  if ('limits' in m) return start(m.id, new CsvValidator(m.limits, m.outputChunkBytes));
  const validator = sessions.get(m.id);
  if (!validator) return; // failed, or cancelled, already
  // A chunk's buffer goes back once its write has called back: CsvValidator keeps no view of a chunk
  // after reading it (CsvRecords copies the part line it carries over).
  if ('chunk' in m) validator.write(Buffer.from(m.chunk, 0, m.length), (e) => e || send({ id: m.id, read: m.chunk, length: m.length }, [m.chunk]));
  else if ('end' in m) validator.end();
  else {
    sessions.delete(m.id);
    validator.destroy();
  }
});
