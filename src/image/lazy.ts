/**
 * Compute-once values. Images are lazy (nothing is read or hashed until a sink asks) and every
 * answer is computed once, however many sinks ask at the same time.
 */
export function once<T>(compute: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= compute();
    return pending;
  };
}
