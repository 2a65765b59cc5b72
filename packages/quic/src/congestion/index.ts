/** Congestion controllers selectable by name. */
import type { RttEstimator } from '../rtt.js';
import { ConfigError } from '@petrel/tls-core';
import type { CongestionController, CongestionOptions } from './controller.js';
import { NewReno } from './new-reno.js';
import { Cubic } from './cubic.js';

export * from './controller.js';
export * from './new-reno.js';
export * from './cubic.js';

export type CongestionAlgorithm = 'newreno' | 'cubic';

export function createCongestionController(
  algorithm: CongestionAlgorithm,
  rtt: RttEstimator,
  opts: CongestionOptions = {},
): CongestionController {
  switch (algorithm) {
    case 'newreno':
      return new NewReno(rtt, opts);
    case 'cubic':
      return new Cubic(rtt, opts);
    default:
      throw new ConfigError(`unknown congestion controller "${String(algorithm)}" (use "newreno" or "cubic")`);
  }
}
