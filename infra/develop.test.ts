import { stackSuite } from './testing/stack-suite.js';

stackSuite('develop');
