/**
 * Deterministic, realistic flight rows in the Kaggle export's format (header
 * with `id` and `name`, empty cells for cancelled flights), for the sample
 * file, tests and benchmarks.
 */
const CARRIERS: [string, string][] = [
  ['UA', 'United Air Lines Inc.'],
  ['AA', 'American Airlines Inc.'],
  ['B6', 'JetBlue Airways'],
  ['DL', 'Delta Air Lines Inc.'],
  ['EV', 'ExpressJet Airlines Inc.'],
  ['MQ', 'Envoy Air'],
  ['US', 'US Airways Inc.'],
  ['WN', 'Southwest Airlines Co.'],
  ['9E', 'Endeavor Air Inc.'],
  ['VX', 'Virgin America'],
];
const DESTS: [string, number][] = [
  ['ATL', 762], ['ORD', 719], ['LAX', 2475], ['BOS', 187], ['MCO', 944], ['CLT', 529], ['SFO', 2565],
  ['FLL', 1069], ['MIA', 1089], ['DCA', 213], ['IAH', 1416], ['DFW', 1372], ['DEN', 1620], ['MSP', 1028],
];
const ORIGINS = ['EWR', 'JFK', 'LGA'];

export const KAGGLE_HEADER =
  'id,year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour,name';

/** mulberry32: small, fast and seedable. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const clock = (minutes: number): number => {
  const m = ((minutes % 1440) + 1440) % 1440;
  return Math.floor(m / 60) * 100 + (m % 60);
};

/** Yields data lines (no header, no line end), `count` of them, starting at `firstId`. */
export function* flightLines(count: number, seed = 1, firstId = 0): Generator<string> {
  const rnd = random(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  for (let i = 0; i < count; i++) {
    const month = 1 + Math.floor(rnd() * 12);
    const day = 1 + Math.floor(rnd() * 28);
    const [carrier, name] = pick(CARRIERS);
    const [dest, distance] = pick(DESTS);
    const hour = 5 + Math.floor(rnd() * 18);
    const minute = Math.floor(rnd() * 12) * 5;
    const schedDep = hour * 60 + minute;
    const airTime = Math.round(distance / 8 + 10 + rnd() * 20);
    const schedArr = schedDep + airTime + 25;
    const cancelled = rnd() < 0.02;
    const depDelay = Math.round(rnd() < 0.6 ? -rnd() * 10 : rnd() * rnd() * 180);
    const arrDelay = depDelay + Math.round(rnd() * 30 - 15);
    const tailnum = rnd() < 0.01 ? '' : `N${100 + Math.floor(rnd() * 900)}${pick(['UA', 'AA', 'JB', 'DL', 'EV'])}`;
    yield [
      firstId + i,
      2013,
      month,
      day,
      cancelled ? '' : clock(schedDep + depDelay),
      clock(schedDep),
      cancelled ? '' : depDelay,
      cancelled ? '' : clock(schedArr + arrDelay),
      clock(schedArr),
      cancelled ? '' : arrDelay,
      carrier,
      1 + Math.floor(rnd() * 2000),
      tailnum,
      pick(ORIGINS),
      dest,
      cancelled ? '' : airTime,
      distance,
      hour,
      minute,
      `2013-${pad(month)}-${pad(day)} ${pad(hour)}:00:00`,
      name,
    ].join(',');
  }
}

/** A whole CSV file as one string. */
export function flightsCsv(count: number, seed = 1, eol = '\n'): string {
  return [KAGGLE_HEADER, ...flightLines(count, seed)].join(eol) + eol;
}
