/**
 * Consecutive batches of at most `maxFiles` files and `maxBytes` bytes, in
 * order; a file over `maxBytes` on its own is a batch of one. A file of
 * unknown size (a marker from before sizes were recorded) counts as a full batch.
 */
export function batches<T extends { bytes?: number }>(files: readonly T[], maxFiles: number, maxBytes: number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const file of files) {
    const size = file.bytes ?? maxBytes;
    if (current.length && (current.length >= maxFiles || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}
