import { describe, expect, it } from 'vitest';
import { PUSH_ACK_DEADLINE_SECONDS } from '../functions/core/topology.js';
import { checkSizing, sourceObject } from './functions.js';
import { readSettings, type ConfigSource } from './settings.js';

const source = (values: Record<string, unknown>): ConfigSource => ({
  get: (key) => values[key] as string | undefined,
  getObject: <T>(key: string) => values[key] as T | undefined,
});
const gcp = source({ project: 'p', region: 'europe-west1' });
const read = (flights: Record<string, unknown>) => readSettings('develop', source({ sourceVersion: 'abc1234', ...flights }), gcp);

describe('stack settings', () => {
  it('sizes each function from the default, overridden per function', () => {
    const s = read({ functions: { default: { memory: '256Mi', maxInstances: 4 }, upload: { memory: '1Gi' } } });
    expect(s.sizing.upload).toMatchObject({ memory: '1Gi', maxInstances: 4 });
    expect(s.sizing.getdata).toMatchObject({ memory: '256Mi', maxInstances: 4, concurrency: 1 });
  });

  it('refuses a size for a function that does not exist, rather than ignoring a typo', () => {
    expect(() => read({ functions: { loadflights: { memory: '1Gi' } } })).toThrow(/no such function: loadflights/);
  });

  it('needs the zips’ version and the project', () => {
    expect(() => readSettings('develop', source({}), gcp)).toThrow(/flights:sourceVersion|sourceVersion is required/);
    expect(() => readSettings('develop', source({ sourceVersion: 'x' }), source({ region: 'r' }))).toThrow(/project is required/);
  });

  it('names each function’s zip by version, entry point and stack, as ci/package and ci/upload do', () => {
    expect(sourceObject(read({}), 'loadFlights')).toBe('abc1234/loadFlights-develop.zip');
  });

  it('refuses an event function that would still run when Pub/Sub redelivers its message', () => {
    expect(() => checkSizing(read({ functions: { flushLoads: { timeoutSeconds: PUSH_ACK_DEADLINE_SECONDS } } }))).toThrow(/flushLoads.timeoutSeconds/);
    expect(() => checkSizing(read({ functions: { flushLoads: { timeoutSeconds: PUSH_ACK_DEADLINE_SECONDS - 60 } } }))).not.toThrow();
  });

  it('refuses concurrency above 1 on less than one vCPU', () => {
    expect(() => checkSizing(read({ functions: { getdata: { cpu: '0.5', concurrency: 4 } } }))).toThrow(/getdata: concurrency/);
  });
});
