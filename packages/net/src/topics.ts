import type { VectorKind } from './types.js'

export interface ClusterTopics {
  models: string
  gradients: string
  membership: string
}

/** Topics are per cluster so that two clusters sharing peers never see each other's vectors. */
export function topicsFor(cluster: string): ClusterTopics {
  return {
    models: `phalanx/${cluster}/models`,
    gradients: `phalanx/${cluster}/gradients`,
    membership: `phalanx/${cluster}/membership`,
  }
}

export function topicOf(topics: ClusterTopics, kind: VectorKind): string {
  return kind === 'model' ? topics.models : topics.gradients
}
