/**
 * Pub/Sub subscription filters
 * (https://cloud.google.com/pubsub/docs/subscription-message-filter) for the
 * buses that must apply them themselves. The subset understood:
 *
 *   hasPrefix(attributes.KEY, "p")   KEY present and its value starts with p
 *   attributes.KEY = "v"             KEY present with exactly v
 *   attributes.KEY != "v"            anything else, a missing KEY included
 *   attributes:KEY                   KEY present, whatever its value
 *   NOT x, x AND y AND …, x OR y OR …, ( x )
 *
 * KEY is a run of letters, digits, `-` and `_`, or a string literal; string
 * literals are double-quoted with JSON's escapes, which is how JSON.stringify
 * writes them. As in Pub/Sub, AND/OR/NOT are upper case, AND and OR mix only
 * through parentheses, and a filter is at most 256 bytes. Anything else
 * (hex or octal escapes, `-` for NOT, other functions) is rejected: a filter
 * misread here would deliver what Pub/Sub would not, or withhold what it would.
 */

/** Whether a message with these attributes is kept for the subscription. */
export type AttributeFilter = (attributes: Record<string, string>) => boolean;

const MAX_FILTER_BYTES = 256;

interface Token {
  kind: 'string' | 'punct' | 'word';
  text: string;
  at: number;
}

const TOKEN = /(\s+)|("(?:[^"\\]|\\.)*")|(!=|[():.,=])|([A-Za-z0-9_-]+)/y;

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < filter.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(filter);
    if (!m) throw new Error(`filter ${JSON.stringify(filter)}: cannot read it from offset ${at}`);
    const [, space, string, punct, word] = m;
    if (space !== undefined) continue;
    tokens.push(string !== undefined ? { kind: 'string', text: string, at } : punct !== undefined ? { kind: 'punct', text: punct, at } : { kind: 'word', text: word!, at });
  }
  return tokens;
}

/** An attribute's own value: inherited properties such as `constructor` are not attributes. */
const valueOf = (attributes: Record<string, string>, key: string): string | undefined => (Object.hasOwn(attributes, key) ? attributes[key] : undefined);

/** Parses `filter`; throws on anything outside the subset above, so a bad filter fails when the subscription is made. */
export function compileFilter(filter: string): AttributeFilter {
  if (Buffer.byteLength(filter) > MAX_FILTER_BYTES) throw new Error(`filter ${JSON.stringify(filter)}: longer than ${MAX_FILTER_BYTES} bytes`);
  const tokens = tokenize(filter);
  let i = 0;

  const fail = (expected: string): never => {
    const t = tokens[i];
    throw new Error(`filter ${JSON.stringify(filter)}: expected ${expected}, found ${t ? `${t.text} at offset ${t.at}` : 'the end'}`);
  };
  const accept = (text: string): boolean => {
    if (tokens[i]?.kind === 'string' || tokens[i]?.text !== text) return false;
    i++;
    return true;
  };
  const expect = (text: string): void => void (accept(text) || fail(text));
  const literal = (): string => {
    const t = tokens[i];
    if (t?.kind !== 'string') return fail('a string literal');
    let value: string;
    try {
      value = JSON.parse(t.text) as string;
    } catch {
      return fail('a string literal with JSON escapes only');
    }
    i++;
    return value;
  };
  const key = (): string => {
    const t = tokens[i];
    if (t?.kind !== 'word') return t?.kind === 'string' ? literal() : fail('an attribute key');
    i++;
    return t.text;
  };

  function term(): AttributeFilter {
    if (accept('NOT')) {
      const inner = term();
      return (a) => !inner(a);
    }
    if (accept('(')) {
      const inner = expression();
      expect(')');
      return inner;
    }
    if (accept('hasPrefix')) {
      expect('(');
      expect('attributes');
      expect('.');
      const k = key();
      expect(',');
      const prefix = literal();
      expect(')');
      return (a) => valueOf(a, k)?.startsWith(prefix) ?? false;
    }
    if (!accept('attributes')) fail('NOT, (, hasPrefix or attributes');
    if (accept(':')) {
      const k = key();
      return (a) => valueOf(a, k) !== undefined;
    }
    expect('.');
    const k = key();
    if (accept('=')) {
      const v = literal();
      return (a) => valueOf(a, k) === v;
    }
    if (!accept('!=')) fail('= or !=');
    const v = literal();
    return (a) => valueOf(a, k) !== v;
  }

  function expression(): AttributeFilter {
    const first = term();
    const op = tokens[i]?.text;
    if (op !== 'AND' && op !== 'OR') return first;
    const terms = [first];
    while (accept(op)) terms.push(term());
    if (tokens[i]?.text === 'AND' || tokens[i]?.text === 'OR') fail(`${op} (parentheses are needed to mix AND and OR)`);
    return op === 'AND' ? (a) => terms.every((t) => t(a)) : (a) => terms.some((t) => t(a));
  }

  const root = expression();
  if (i < tokens.length) fail('AND, OR or the end');
  return root;
}
