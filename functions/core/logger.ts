/**
 * Structured JSON logs with the field names Cloud Logging reads: `severity`,
 * `message`; or, with LOG_FORMAT=pretty, coloured one-line entries for people.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export type LogFormat = 'json' | 'pretty';

export function createLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: NodeJS.WritableStream,
  format: LogFormat = process.env.LOG_FORMAT === 'pretty' ? 'pretty' : 'json',
): Logger {
  if (format === 'pretty') {
    // pino-pretty reads pino's numeric levels, so the severity formatter stays out of this mode.
    const stream = pretty({ messageKey: 'message', translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', ...(destination ? { destination } : {}) });
    return pino({ level, messageKey: 'message', base: undefined }, stream);
  }
  return pino(
    {
      level,
      messageKey: 'message',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    },
    destination as DestinationStream | undefined,
  );
}

export type { Logger };

type Headers = Record<string, string | string[] | undefined>;
const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * The trace a request belongs to, in the fields Cloud Logging joins on:
 * from X-Cloud-Trace-Context (`TRACE/SPAN;o=1`) or W3C traceparent (`00-TRACE-SPAN-01`).
 */
export function traceFields(headers: Headers, project: string): Record<string, string | boolean> {
  const cloud = /^([0-9a-f]{32})(?:\/(\d+))?(?:;o=([01]))?/i.exec(first(headers['x-cloud-trace-context']) ?? '');
  const w3c = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/i.exec(first(headers.traceparent) ?? '');
  const [trace, span, sampled] = cloud
    ? [cloud[1]!, cloud[2], cloud[3] === '1']
    : w3c
      ? [w3c[1]!, w3c[2], (parseInt(w3c[3]!, 16) & 1) === 1]
      : [];
  if (!trace) return {};
  return {
    'logging.googleapis.com/trace': `projects/${project}/traces/${trace.toLowerCase()}`,
    ...(span ? { 'logging.googleapis.com/spanId': span } : {}),
    'logging.googleapis.com/trace_sampled': sampled ?? false,
  };
}

export interface HttpRequestLog {
  requestMethod: string;
  requestUrl: string;
  status?: number;
  requestSize?: string;
  userAgent?: string;
  remoteIp?: string;
  /** A protobuf Duration, as Cloud Logging's HttpRequest wants it: `"0.123s"`. */
  latency?: string;
}

export function httpRequestLog(
  req: { method: string; originalUrl?: string; url?: string; headers: Headers; socket?: { remoteAddress?: string } },
  outcome: { status?: number; bytesRead?: number; startedAt?: number } = {},
): HttpRequestLog {
  const userAgent = first(req.headers['user-agent']);
  return {
    requestMethod: req.method,
    requestUrl: req.originalUrl ?? req.url ?? '',
    ...(outcome.status !== undefined ? { status: outcome.status } : {}),
    ...(outcome.bytesRead !== undefined ? { requestSize: String(outcome.bytesRead) } : {}),
    ...(userAgent ? { userAgent } : {}),
    ...(req.socket?.remoteAddress ? { remoteIp: req.socket.remoteAddress } : {}),
    ...(outcome.startedAt !== undefined ? { latency: `${((performance.now() - outcome.startedAt) / 1000).toFixed(3)}s` } : {}),
  };
}
