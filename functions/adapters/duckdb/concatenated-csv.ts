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
