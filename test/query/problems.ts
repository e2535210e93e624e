import { expect } from 'vitest';
import { isProblem, type Problem } from '../../functions/core/problem.js';

/** The Problem `fn` throws; fails the test when it throws nothing or something else. */
export function problemFrom(fn: () => unknown): Problem {
  try {
    fn();
  } catch (e) {
    if (isProblem(e)) return e;
    throw e;
  }
  expect.fail('expected a Problem to be thrown');
}
