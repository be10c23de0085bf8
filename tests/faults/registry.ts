/**
 * The fault matrix: every scenario `pnpm faults` runs, in this order. One
 * import line and one array entry per scenario file in ./scenarios/.
 */
import type { Scenario } from './scenario.js';
import { redisKill } from './scenarios/redis-kill.js';
import { relaySigkill } from './scenarios/relay-sigkill.js';
import { sentinelFailover } from './scenarios/sentinel-failover.js';
import { peerDown } from './scenarios/peer-down.js';
import { diskFull } from './scenarios/disk-full.js';
import { clockSkew } from './scenarios/clock-skew.js';
import { flakyLink } from './scenarios/flaky-link.js';

export const scenarios: readonly Scenario[] = [
  relaySigkill,
  redisKill,
  sentinelFailover,
  peerDown,
  diskFull,
  clockSkew,
  flakyLink,
];
