#!/usr/bin/env -S npx tsx
/**
 * `flights-cli upload FILE [--url http://127.0.0.1:8080]`: uploads a flights
 * CSV of any size. Small files go inline; large ones through a signed
 * resumable URL, with progress on stderr, and the command waits for the file
 * to be validated. The session is remembered in FILE.upload.json, so running
 * the same command again after an interruption (Ctrl-C, a dropped network)
 * resumes where the bucket stopped receiving.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { progressReporter } from './cli-progress.js';
import { ApiError, INLINE_MAX_BYTES, keyHeaders, requestSignedUpload, resumeUpload, startSession, uploadFile } from './upload-client.js';

const USAGE = `usage: flights-cli upload FILE [options]

Uploads a flights CSV (or .csv.gz) of any size: inline up to --inline-max bytes,
otherwise through a signed, resumable URL. Prints the upload id on stdout.

options:
  --url URL            the API (default: $FLIGHTS_URL or http://127.0.0.1:8080)
  --key KEY            the API key, sent as x-api-key (default: $FLIGHTS_API_KEY;
                       npm start prints one)
  --inline-max BYTES   largest file sent inline (default ${INLINE_MAX_BYTES})
  --no-wait            signed uploads: do not wait for the file to be validated
  --wait-seconds N     how long to wait for validation (default 600)
  -h, --help           this help
  --version            the version
`;

interface Remembered {
  uploadId: string;
  session: string;
  size: number;
  mtimeMs: number;
}

/** Something the user can act on: printed as it is, exit code 1. */
class CliError extends Error {}

const stateFileOf = (file: string): string => `${file}.upload.json`;

/** Ctrl-C says what was kept and how to go on, instead of dying silently. */
function onInterrupt(message: () => string): void {
  process.on('SIGINT', () => {
    process.stderr.write(`\ninterrupted; ${message()}\n`);
    process.exit(130);
  });
}

async function signedUpload(api: string, file: string, apiKey: string | undefined): Promise<string> {
  const stateFile = stateFileOf(file);
  const { size, mtimeMs } = await fs.stat(file);
  const remembered = await fs.readFile(stateFile, 'utf8').then((t) => JSON.parse(t) as Remembered, () => undefined);
  let state: Remembered;
  if (remembered && remembered.size === size && remembered.mtimeMs === mtimeMs) {
    state = remembered;
    process.stderr.write(`resuming upload ${state.uploadId}\n`);
  } else {
    const contentType = file.endsWith('.gz') ? 'application/gzip' : 'text/csv';
    const signed = await requestSignedUpload(api, { fileName: path.basename(file), size, contentType }, apiKey);
    state = { uploadId: signed.uploadId, session: await startSession(signed.upload), size, mtimeMs };
    await fs.writeFile(stateFile, JSON.stringify(state));
  }
  onInterrupt(() => `upload ${state.uploadId} keeps what arrived; run the same command again to resume (state in ${stateFile})`);
  await resumeUpload(state.session, file, { onProgress: progressReporter(process.stderr) });
  await fs.rm(stateFile, { force: true });
  return state.uploadId;
}

interface UploadStatus {
  status: string;
  reason?: string;
  duplicateOf?: string;
  errorCount?: number;
  errors?: { line?: number; column?: number; field?: string; reason?: string }[];
}

const SETTLED = ['stored', 'loading', 'loaded', 'failed', 'duplicate'];

/** Polls GET /uploads/{id} until the validator has decided, or `seconds` pass. */
async function awaitValidation(api: string, apiKey: string | undefined, uploadId: string, seconds: number): Promise<UploadStatus> {
  const deadline = Date.now() + seconds * 1000;
  process.stderr.write('validating…\n');
  for (;;) {
    const res = await fetch(new URL(`/uploads/${uploadId}`, api), { headers: keyHeaders(apiKey) });
    if (!res.ok) throw new CliError(`GET /uploads/${uploadId}: HTTP ${res.status} ${await res.text()}`);
    const status = (await res.json()) as UploadStatus;
    if (SETTLED.includes(status.status)) return status;
    if (Date.now() > deadline) throw new CliError(`upload ${uploadId} is still ${status.status} after ${seconds} s; follow it at ${new URL(`/uploads/${uploadId}`, api).href}`);
    await sleep(500);
  }
}

function faultLines(errors: UploadStatus['errors'] = []): string {
  return errors
    .slice(0, 20)
    .map((e) => `  line ${e.line ?? '?'}${e.column ? `, column ${e.column}` : ''}${e.field ? ` (${e.field})` : ''}: ${e.reason ?? ''}`)
    .join('\n');
}

/** What went wrong, in words: an unreachable server and a missing file are the common ones. */
function explain(e: unknown, api: string, file: string | undefined): string {
  const code = (e as NodeJS.ErrnoException).code ?? ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' && file) return `no such file: ${file}`;
  if (code === 'EISDIR' && file) return `${file} is a directory; give a CSV file`;
  // fetch reports any network failure as a TypeError whose cause says what happened.
  if (e instanceof TypeError && e.message === 'fetch failed') {
    const why = code ?? ((e.cause as Error | undefined)?.message || 'no answer');
    return `cannot reach the API at ${api} (${why}); is it running (npm start)? Set --url or FLIGHTS_URL to another address.`;
  }
  if (e instanceof ApiError && e.body?.errors?.length) return `${e.message}\n${faultLines(e.body.errors)}`;
  return (e as Error).message;
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.FLIGHTS_URL ?? 'http://127.0.0.1:8080' },
      key: { type: 'string', default: process.env.FLIGHTS_API_KEY },
      'inline-max': { type: 'string' },
      'no-wait': { type: 'boolean' },
      'wait-seconds': { type: 'string', default: '600' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  if (values.help) return void process.stdout.write(USAGE);
  if (values.version) {
    const pkg = JSON.parse(await fs.readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return void process.stdout.write(`flights-cli ${pkg.version}\n`);
  }
  const [command, file] = positionals;
  if (command !== 'upload' || !file) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const api = values.url!;
  const apiKey = values.key;
  try {
    const inlineMax = Number(values['inline-max'] ?? INLINE_MAX_BYTES);
    const { size } = await fs.stat(file);
    let uploadId: string;
    if (size <= inlineMax) {
      onInterrupt(() => 'nothing was stored (an inline upload is all or nothing); run the same command again');
      uploadId = (await uploadFile(api, file, { inlineMaxBytes: inlineMax, apiKey })).uploadId;
    } else {
      uploadId = await signedUpload(api, file, apiKey);
      if (!values['no-wait']) {
        const status = await awaitValidation(api, apiKey, uploadId, Number(values['wait-seconds']));
        if (status.status === 'failed') throw new CliError(`upload ${uploadId} failed: ${status.reason ?? ''}${status.errors ? `\n${faultLines(status.errors)}` : ''}`);
        if (status.status === 'duplicate') process.stderr.write(`the same rows were uploaded before, as ${status.duplicateOf}; nothing was stored again\n`);
      }
    }
    process.stderr.write(`uploaded; follow it at ${new URL(`/uploads/${uploadId}`, api).href}\n`);
    process.stdout.write(`${uploadId}\n`);
  } catch (e) {
    process.stderr.write(`flights-cli: ${e instanceof CliError ? e.message : explain(e, api, file)}\n`);
    process.exit(1);
  }
}

await main();
