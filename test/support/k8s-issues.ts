/**
 * What a manifest check finds, shared by k8s-checks.ts and k8s-trust.ts (which k8s-checks.ts
 * runs, so the type cannot live in either without an import cycle).
 */

export type IssueRule =
  | 'schema'
  | 'unknown-field'
  | 'unknown-kind'
  | 'unknown-env-var'
  | 'invalid-config'
  | 'env-reference'
  | 'image-env'
  | 'service-port'
  | 'container-port'
  | 'stable-dns'
  | 'probe-endpoint'
  | 'prometheus'
  | 'image'
  | 'cli-command'
  | 'node-id'
  | 'pdb-quorum'
  | 'replicas'
  | 'bootstrap-target'
  | 'nats-url'
  | 'nats-routes'
  | 'byzantine-ids'
  | 'security'
  | 'resources'
  | 'writable-path'
  | 'dockerfile'
  | 'member-set'
  | 'operator-key'
  | 'worker-admission'
  | 'labels'
  | 'pod-monitor'
  | 'alert-rule'
  | 'server-state'

export interface ManifestIssue {
  rule: IssueRule
  /** `Kind/namespace/name`, or `pod/container` for a container's finding. */
  object: string
  message: string
}
