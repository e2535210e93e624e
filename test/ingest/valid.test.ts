/**
 * Valid files in the shapes real exports take load with exactly the right
 * values: BOM, CRLF, any column order, no `id`/`name`, pandas' `517.0`, R's
 * `NA`, quoted commas, quotes and newlines. Each file gets its own pipeline so
 * the query returns only its rows.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const NULL_FLIGHT = { dep_time: null, dep_delay: null, arr_time: null, arr_delay: null, air_time: null };

async function load(csv: Buffer | string, fileName = 'f.csv'): Promise<{ rows: Record<string, unknown>[]; lines: number[] }> {
  p = await startTestPipeline();
  const up = await request(p.url).post('/upload').attach('file', Buffer.from(csv), fileName);
  expect(up.status).toBe(201);
  await eventually(async () => ((await request(p!.url).get(`/uploads/${up.body.uploadId}`)).body.status === 'loaded' ? true : undefined));
  const page = await request(p.url).get('/getdata').query({ limit: 100 });
  const lineage = await p.rt.warehouse.query({
    select: ['_source_line'],
    filters: [],
    order: [{ column: '_source_line', direction: 'asc', nulls: 'last' }],
    limit: 100,
  });
  return { rows: page.body.rows, lines: lineage.rows.map((r) => Number(r._source_line)) };
}

describe('valid edge-case files', () => {
  it('pandas export: BOM, CRLF, reordered columns without id and name, integers as 517.0, empty cells as NULL', async () => {
    const csv =
      '\uFEFFcarrier,flight,year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,tailnum,origin,dest,air_time,distance,hour,minute,time_hour\r\n' +
      'UA,1545.0,2013,1,1,517.0,515,2.0,830.0,819,11.0,N14228,EWR,IAH,227.0,1400.0,5,15,2013-01-01 05:00:00\r\n' +
      'AA,1141.0,2013,1,1,,600,,,830,,,JFK,MIA,,1089.0,6,0,2013-01-01 06:00:00\r\n';
    const { rows, lines } = await load(csv);
    expect(rows).toEqual([
      {
        id: null, year: 2013, month: 1, day: 1, dep_time: 517, sched_dep_time: 515, dep_delay: 2, arr_time: 830, sched_arr_time: 819, arr_delay: 11,
        carrier: 'UA', flight: 1545, tailnum: 'N14228', origin: 'EWR', dest: 'IAH', air_time: 227, distance: 1400, hour: 5, minute: 15,
        time_hour: '2013-01-01 05:00:00', name: null,
      },
      {
        id: null, year: 2013, month: 1, day: 1, ...NULL_FLIGHT, sched_dep_time: 600, sched_arr_time: 830,
        carrier: 'AA', flight: 1141, tailnum: null, origin: 'JFK', dest: 'MIA', distance: 1089, hour: 6, minute: 0,
        time_hour: '2013-01-01 06:00:00', name: null,
      },
    ]);
    expect(lines).toEqual([2, 3]);
  });

  it('R export: NA as NULL, quoted fields with commas, doubled quotes and newlines, a blank line, no final newline', async () => {
    const csv = [
      'id,year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour,name',
      '1,2013,1,1,NA,1630,NA,NA,1815,NA,EV,4308,N18120,EWR,RDU,NA,416,16,30,2013-01-01T16:00:00Z,"ExpressJet Airlines, Inc."',
      '',
      '2,2013,12,31,2400,2359,1,616,437,99,B6,839,"N5,2","JFK",BQN,189,1576,23,59,2013-12-31 23:00:00,"Jet ""Blue""',
      'Airways"',
      '"3",2013,2,28,2,2359,3,339,350,-11,B6,727,N588JB,JFK,BQN,186,1576,23,59,2013-02-28 23:00:00,"line one\r\nline two"',
    ].join('\n');
    const { rows, lines } = await load(csv);
    expect(rows).toEqual([
      {
        id: 1, year: 2013, month: 1, day: 1, ...NULL_FLIGHT, sched_dep_time: 1630, sched_arr_time: 1815, carrier: 'EV', flight: 4308,
        tailnum: 'N18120', origin: 'EWR', dest: 'RDU', distance: 416, hour: 16, minute: 30, time_hour: '2013-01-01 16:00:00', name: 'ExpressJet Airlines, Inc.',
      },
      {
        id: 2, year: 2013, month: 12, day: 31, dep_time: 2400, sched_dep_time: 2359, dep_delay: 1, arr_time: 616, sched_arr_time: 437, arr_delay: 99,
        carrier: 'B6', flight: 839, tailnum: 'N5,2', origin: 'JFK', dest: 'BQN', air_time: 189, distance: 1576, hour: 23, minute: 59,
        time_hour: '2013-12-31 23:00:00', name: 'Jet "Blue"\nAirways',
      },
      {
        id: 3, year: 2013, month: 2, day: 28, dep_time: 2, sched_dep_time: 2359, dep_delay: 3, arr_time: 339, sched_arr_time: 350, arr_delay: -11,
        carrier: 'B6', flight: 727, tailnum: 'N588JB', origin: 'JFK', dest: 'BQN', air_time: 186, distance: 1576, hour: 23, minute: 59,
        time_hour: '2013-02-28 23:00:00', name: 'line one\r\nline two',
      },
    ]);
    // Lineage is the physical line where each row starts: the blank line and the embedded newline count.
    expect(lines).toEqual([2, 4, 6]);
  });
});
