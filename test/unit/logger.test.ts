import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from '../../functions/core/logger.js';

function capture(format: LogFormat): { log: ReturnType<typeof createLogger>; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { log: createLogger('info', sink, format), text: () => text };
}

describe('logs', () => {
  it('are JSON with Cloud Logging fields by default', () => {
    const { log, text } = capture('json');
    log.info({ uploadId: 'u1' }, 'upload stored');
    expect(JSON.parse(text())).toMatchObject({ severity: 'INFO', message: 'upload stored', uploadId: 'u1' });
  });

  it('are one readable line per entry with LOG_FORMAT=pretty', async () => {
    const { log, text } = capture('pretty');
    log.warn({ uploadId: 'u1' }, 'upload rejected');
    await new Promise((r) => setImmediate(r));
    expect(text()).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] WARN: upload rejected\n {4}uploadId: "u1"\n$/);
  });
});
