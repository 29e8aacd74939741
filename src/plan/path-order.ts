/**
 * The one order of paths in a layer: bytewise by their UTF-8 encoding, as tar tools sort names
 * (`tar --sort=name`) and as the layer's bytes, and so its digest, depend on.
 */

export function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// UTF-16 code-unit order equals UTF-8 byte order unless a surrogate meets a code unit above it.
const OUT_OF_ORDER = /[\uD800-\uFFFF]/;

/** Sort in place by `keyOf`, bytewise as UTF-8; cheaply in the common case where code-unit order is the same. */
export function sortBytewise<T>(items: T[], keyOf: (item: T) => string): T[] {
  if (items.some((x) => OUT_OF_ORDER.test(keyOf(x)))) return items.sort((a, b) => bytewise(keyOf(a), keyOf(b)));
  return items.sort((a, b) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}
