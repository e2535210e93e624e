/** Google API Duration strings, from the milliseconds the topology and config use. */
export const durationSeconds = (ms: number): string => `${ms / 1000}s`;
