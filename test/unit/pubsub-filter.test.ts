import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../functions/core/pubsub-filter.js';

const landing = { objectId: 'landing/u1.csv', eventType: 'OBJECT_FINALIZE' };
const incoming = { objectId: 'incoming/2024-01-01/u2.csv', eventType: 'OBJECT_FINALIZE' };
const deleted = { objectId: 'incoming/2024-01-01/u3.csv', eventType: 'OBJECT_DELETE' };
const bare = {};

/** Which of the sample messages `filter` keeps, by name. */
function kept(filter: string): string[] {
  const keep = compileFilter(filter);
  return Object.entries({ landing, incoming, deleted, bare })
    .filter(([, attributes]) => keep(attributes))
    .map(([name]) => name);
}

describe('compileFilter, the Pub/Sub filter subset', () => {
  it('hasPrefix needs the attribute, and compares from its start', () => {
    expect(kept('hasPrefix(attributes.objectId, "incoming/")')).toEqual(['incoming', 'deleted']);
    expect(kept('hasPrefix(attributes.objectId, "2024")')).toEqual([]);
    expect(kept('hasPrefix(attributes.objectId, "")')).toEqual(['landing', 'incoming', 'deleted']);
  });

  it('= needs the attribute; != and NOT also keep messages without it, as in Pub/Sub', () => {
    expect(kept('attributes.eventType = "OBJECT_DELETE"')).toEqual(['deleted']);
    expect(kept('attributes.eventType != "OBJECT_DELETE"')).toEqual(['landing', 'incoming', 'bare']);
    expect(kept('NOT hasPrefix(attributes.objectId, "incoming/")')).toEqual(['landing', 'bare']);
  });

  it('attributes:KEY tests for the key only', () => {
    expect(kept('attributes:objectId')).toEqual(['landing', 'incoming', 'deleted']);
    expect(kept('NOT attributes:objectId')).toEqual(['bare']);
  });

  it('joins with AND and OR, and groups with parentheses', () => {
    expect(kept('hasPrefix(attributes.objectId, "incoming/") AND attributes.eventType = "OBJECT_FINALIZE"')).toEqual(['incoming']);
    expect(kept('hasPrefix(attributes.objectId, "landing/") OR attributes.eventType = "OBJECT_DELETE" OR NOT attributes:eventType')).toEqual([
      'landing',
      'deleted',
      'bare',
    ]);
    expect(kept('attributes:objectId AND (hasPrefix(attributes.objectId, "landing/") OR attributes.eventType = "OBJECT_DELETE")')).toEqual(['landing', 'deleted']);
    expect(kept('NOT (attributes:objectId AND attributes.eventType = "OBJECT_FINALIZE")')).toEqual(['deleted', 'bare']);
  });

  it('reads keys and values as JSON.stringify writes them, quoted keys included', () => {
    const keep = compileFilter(`attributes.${JSON.stringify('a.b "c"')} = ${JSON.stringify('tab\there\\ \u00e9')}`);
    expect(keep({ 'a.b "c"': 'tab\there\\ é' })).toBe(true);
    expect(keep({ 'a.b "c"': 'tab here\\ é' })).toBe(false);
    expect(compileFilter('attributes:"x-y"')({ 'x-y': '' })).toBe(true);
    expect(compileFilter('attributes:ce-type')({ 'ce-type': 'a' })).toBe(true);
  });

  it('does not take inherited properties for attributes', () => {
    expect(compileFilter('attributes:constructor')({})).toBe(false);
    expect(compileFilter('hasPrefix(attributes.toString, "f")')({})).toBe(false);
  });

  it.each([
    ['', /expected NOT, \(, hasPrefix or attributes, found the end/],
    ['attributes.objectId', /expected = or !=, found the end/],
    ['attributes.objectId = incoming', /expected a string literal, found incoming/],
    ["attributes.objectId = 'incoming/'", /cannot read it from offset 22/],
    ['hasPrefix(attributes.objectId, "a") and attributes:x', /expected AND, OR or the end, found and at offset 36/],
    ['attributes:a AND attributes:b OR attributes:c', /parentheses are needed to mix AND and OR/],
    ['(attributes:a', /expected \), found the end/],
    ['attributes:(', /expected an attribute key, found \( at offset 11/],
    ['attributes.a = "open', /cannot read it from offset 15/],
    ['hasSuffix(attributes.objectId, "a")', /expected NOT, \(, hasPrefix or attributes, found hasSuffix/],
    ['-attributes:a', /found -attributes/],
    ['attributes.a = "\\x41"', /JSON escapes only/],
    ['data = "x"', /found data/],
    [`attributes.a = "${'x'.repeat(240)}"`, /longer than 256 bytes/],
  ])('rejects %j rather than guess', (filter, message) => {
    expect(() => compileFilter(filter)).toThrow(message);
  });
});
