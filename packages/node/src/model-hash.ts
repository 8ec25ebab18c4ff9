import { encodeModel, sha256Hex } from '@phalanx/control'

/**
 * The sha256 of a model's little-endian float32 bytes: what `summary.json` records of the final
 * model (`finalModelSha256`) and what an SMR replica logs per round, so two runs can be compared
 * bit for bit without shipping the model.
 */
export function modelSha256(model: Float32Array): string {
  return sha256Hex(encodeModel(model))
}
