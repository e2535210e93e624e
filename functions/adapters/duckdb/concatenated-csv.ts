/**
 * Many small CSV files as one, for one DuckDB read: the header once, then each file's records
 * after its header, each prefixed with `<index>,` (the file's 1-based position in `files`), so
 * that a GROUP BY or lookup on that first column gives each row its file back.
 */

const QUOTE = 0x22;
const NEWLINE = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');
const LF = Buffer.from('\n');

/** Thrown for a file whose bytes are not whole CSV records, naming it; its batch then fails as a read of it would. */
export class UnterminatedCsvError extends Error {
  override readonly name = 'UnterminatedCsvError';
}

/**
 * The end (after its newline) of each record of `csv`, quotes respected: a newline inside a quoted
 * field does not end a record. A last record without a newline ends at the end of the file.
 */
function recordEnds(csv: Buffer, name: string): number[] {
  const ends: number[] = [];
  let quoted = false;
  let quote = csv.indexOf(QUOTE);
  let from = 0;
  while (from < csv.length) {
    const newline = csv.indexOf(NEWLINE, from);
    const stop = newline === -1 ? csv.length : newline;
    // Each quote toggles; an escaped quote ("") toggles twice.
    while (quote !== -1 && quote < stop) {
      quoted = !quoted;
      quote = csv.indexOf(QUOTE, quote + 1);
    }
    if (newline === -1) {
      if (quoted) throw new UnterminatedCsvError(`${name}: a quoted field is still open at the end of the file`);
      ends.push(csv.length);
      break;
    }
    from = newline + 1;
    if (!quoted) ends.push(from);
  }
  if (quoted) throw new UnterminatedCsvError(`${name}: a quoted field is still open at the end of the file`);
  return ends;
}

/**
 * The newline of the first file whose header line has one. DuckDB reads the whole concatenation with
 * the newline of its first line, so it is the files' own (ingest writes LF), not a fixed one; a
 * batch mixing LF and CRLF files fails its read and is bisected.
 */
function newlineOf(files: readonly { csv: Buffer }[], ends: number[][]): Buffer {
  for (const [i, { csv }] of files.entries()) {
    const end = ends[i]![0];
    if (end !== undefined && csv[end - 1] === NEWLINE) return csv[end - 2] === CR ? CRLF : LF;
  }
  return LF;
}

/**
 * `header` (without its newline) then the records of `files`, each after its own header line,
 * prefixed by its file's index; with the number of records taken from each file. A strict read of
 * the result gives one row per record or fails, so these are the rows each file adds.
 */
export function concatenatedCsv(header: string, files: readonly { name: string; csv: Buffer }[]): { csv: Buffer; records: number[] } {
  const ends = files.map(({ name, csv }) => recordEnds(csv, name));
  const newline = newlineOf(files, ends);
  const chunks: Buffer[] = [Buffer.from(`_file,${header}`), newline];
  const records = files.map(({ csv }, i) => {
    const prefix = Buffer.from(`${i + 1},`);
    const fileEnds = ends[i]!;
    for (let r = 1; r < fileEnds.length; r++) {
      chunks.push(prefix, csv.subarray(fileEnds[r - 1], fileEnds[r]));
      if (csv[fileEnds[r]! - 1] !== NEWLINE) chunks.push(newline);
    }
    return Math.max(fileEnds.length - 1, 0);
  });
  return { csv: Buffer.concat(chunks), records };
}

/**
 * DuckDB's error on a read of a concatenation (concatenatedCsv's `csv`, at `path`, of `files` holding
 * `records` each) as the read of the file at fault would give it: that file's name and line where
 * DuckDB names a line (it counts records, the header being line 1, here as in a file read alone), the
 * line without its file-index prefix. Where it names none, the files read together in place of the
 * concatenation's path, which is a scratch file of no meaning to anyone and is gone by now.
 */
export function errorOfFiles(message: string, path: string, files: readonly { name: string }[], records: readonly number[]): string {
  const at = /CSV Error on Line: (\d+)/.exec(message);
  const found = at ? recordAt(records, Number(at[1]) - 2) : undefined;
  if (!at || !found) {
    const read = files.length === 1 ? files[0]!.name : `one of ${files.length} files read together (${files[0]?.name} … ${files.at(-1)?.name})`;
    return message.replaceAll(path, read);
  }
  return message
    .replace(at[0], `CSV Error on Line: ${found.record + 2}`)
    .replace(`Original Line: \n${found.index + 1},`, 'Original Line: \n')
    .replaceAll(path, files[found.index]!.name);
}

/** The file (its index) and its own 0-based record of the concatenation's `record`th; undefined for the header. */
function recordAt(records: readonly number[], record: number): { index: number; record: number } | undefined {
  let rest = record;
  for (const [index, n] of records.entries()) {
    if (rest < n) return rest >= 0 ? { index, record: rest } : undefined;
    rest -= n;
  }
  return undefined;
}
