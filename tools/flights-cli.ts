#!/usr/bin/env -S npx tsx
/**
 * `flights-cli upload FILE [--url http://127.0.0.1:8080]`: uploads a flights
 * CSV of any size. Small files go inline; large ones through a signed
 * resumable URL, with progress on stderr. The session is remembered in
 * FILE.upload.json, so running the same command again after an interruption
 * (Ctrl-C, a dropped network) resumes where the bucket stopped receiving.
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { INLINE_MAX_BYTES, requestSignedUpload, resumeUpload, startSession, uploadFile, type UploadProgress } from './upload-client.js';

interface Remembered {
  uploadId: string;
  session: string;
  size: number;
  mtimeMs: number;
}

function progress({ sent, total }: UploadProgress): void {
  const pct = total ? Math.floor((sent / total) * 100) : 100;
  process.stderr.write(`\r${pct}%  ${(sent / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`);
}

async function signedUpload(api: string, file: string, apiKey: string | undefined): Promise<string> {
  const stateFile = `${file}.upload.json`;
  const { size, mtimeMs } = await fs.stat(file);
  const remembered = await fs.readFile(stateFile, 'utf8').then((t) => JSON.parse(t) as Remembered, () => undefined);
  let state: Remembered;
  if (remembered && remembered.size === size && remembered.mtimeMs === mtimeMs) {
    state = remembered;
    process.stderr.write(`resuming upload ${state.uploadId}\n`);
  } else {
    const signed = await requestSignedUpload(api, { fileName: file.split('/').pop(), size, contentType: 'text/csv' }, apiKey);
    state = { uploadId: signed.uploadId, session: await startSession(signed.upload), size, mtimeMs };
    await fs.writeFile(stateFile, JSON.stringify(state));
  }
  await resumeUpload(state.session, file, { onProgress: progress });
  await fs.rm(stateFile, { force: true });
  return state.uploadId;
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.FLIGHTS_URL ?? 'http://127.0.0.1:8080' },
      key: { type: 'string', default: process.env.KEY },
      'inline-max': { type: 'string' },
    },
  });
  const [command, file] = positionals;
  if (command !== 'upload' || !file) {
    process.stderr.write('usage: flights-cli upload FILE [--url API_URL] [--key API_KEY (default $KEY)] [--inline-max BYTES]\n');
    process.exit(2);
  }
  const api = values.url!;
  const inlineMax = Number(values['inline-max'] ?? INLINE_MAX_BYTES);
  const { size } = await fs.stat(file);
  const apiKey = values.key;
  const uploadId = size <= inlineMax ? (await uploadFile(api, file, { inlineMaxBytes: inlineMax, ...(apiKey ? { apiKey } : {}) })).uploadId : await signedUpload(api, file, apiKey);
  process.stderr.write(`\nuploaded; follow it at ${new URL(`/uploads/${uploadId}`, api).href}\n`);
  process.stdout.write(`${uploadId}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`\n${(e as Error).message}\n`);
  process.exit(1);
});
