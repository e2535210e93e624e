/** Setup file of every test file: runs after the file's own afterAll hooks, when its servers and processes are stopped. */
import { afterAll } from 'vitest';
import { removeTempDirs } from './temp.js';

afterAll(removeTempDirs);
