/** RFC 9457 problem details: the one shape every error response takes. */

export interface CsvFault {
  line: number;
  column?: number;
  field?: string;
  value?: string;
  reason: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A failure a client can act on; anything else is a server error. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
  }

  toJSON(): ProblemBody {
    return { type: `/problems/${this.slug}`, title: this.title, status: this.status, detail: this.detail, ...this.extensions };
  }
}

export const isProblem = (e: unknown): e is Problem => e instanceof Problem;
