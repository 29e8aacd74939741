/**
 * OCI whiteouts (image-spec, layer.md): in a layer, a file named `.wh.<name>` deletes `<name>`
 * from the layers below, and `.wh..wh..opq` empties its directory; the file itself is never in
 * the image. So no entry imgbuild adds may have such a name: only `remove:` makes whiteouts.
 */

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_NAME = /(?:^|\/)\.wh\./;

/** Whether a single name (no "/") starts with ".wh.". */
export const isWhiteoutName = (name: string): boolean => name.startsWith(WHITEOUT_PREFIX);

/** What a whiteout name deletes (".wh.x" -> "x"), or undefined for another name. */
export const whiteoutTarget = (name: string): string | undefined => (isWhiteoutName(name) ? name.slice(WHITEOUT_PREFIX.length) : undefined);

/** Whether any name along `path` ("a/b/c" or "/a/b/c") starts with ".wh.". */
export const hasWhiteoutName = (path: string): boolean => WHITEOUT_NAME.test(path);

/** The tar name that deletes `path` ("a/b" -> "a/.wh.b"). */
export function whiteoutOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}${WHITEOUT_PREFIX}${path.slice(slash + 1)}`;
}

export const WHITEOUT_HINT = 'in a layer, ".wh.<name>" deletes <name> from the layers below: rename it, or delete a path with `remove:`';
