/** What `${NAME}` may name in a spec, and so what `--var NAME=...` may set. Its own module: the CLI checks `--var` before any spec module (or the YAML parser) is loaded. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
