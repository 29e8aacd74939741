/**
 * The spec language v1, defined once. This TypeBox definition is the single source of both the
 * JSON Schema (written to schemas/image.schema.json for editors and `imgbuild schema`) and the
 * TypeScript types of a parsed spec, so the two can never drift. Strict: unknown keys are errors.
 * Formats the schema cannot say well (modes, owners, paths, ports) are checked in semantic.ts.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const str = (description: string, extra: object = {}) => Type.String({ description, ...extra });
const strict = <T extends Record<string, TSchema>>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, description });

const ModeString = (description: string) =>
  str(`${description} Octal permission bits as a string, e.g. "0644" or "1777".`, { examples: ['0644', '0755'] });
const Owner = str('Owner as "uid:gid" or "uid" (numeric; the image may have no /etc/passwd).', {
  examples: ['0:0', '1000:1000'],
});
const ImagePath = (description: string) => str(`${description} An absolute path inside the image.`);

const Defaults = strict(
  {
    owner: Type.Optional(Owner),
    fileMode: Type.Optional(
      ModeString('Mode for every file. When absent: 0755 for files executable in the context, else 0644.'),
    ),
    dirMode: Type.Optional(ModeString('Mode for directories. Default "0755".')),
  },
  'Properties inherited by every layer and entry unless they set their own.',
);

const CopyEntry = strict(
  {
    from: str(
      'What to copy, relative to the context: a file, a directory (its contents are copied) or a glob such as "src/**/*.js" (paths are kept relative to the part before the first wildcard; a directory the glob matches is copied with all below it).',
    ),
    to: ImagePath('Where it lands. A directory when `from` is a directory or glob, or when it ends with "/".'),
    exclude: Type.Optional(
      Type.Array(str('A glob matched against paths relative to `from`, e.g. "**/*.md", or "docs/" (a directory with all below it). No "!" negation.'), {
        description: 'Paths under `from` to leave out.',
      }),
    ),
    mode: Type.Optional(ModeString('Mode for the copied files.')),
    dirMode: Type.Optional(ModeString('Mode for the directories this copy brings: a directory copy\'s own (unless a lower layer made it) and those below it, a glob\'s between its base and its matches (they take `owner` too).')),
    owner: Type.Optional(Owner),
  },
  'Copy files from the build context into the image.',
);

const FileEntry = strict(
  {
    path: ImagePath('The file to create.'),
    content: str('The file content (UTF-8). Interpolated like every string.'),
    mode: Type.Optional(ModeString('Mode of the file. Default "0644".')),
    owner: Type.Optional(Owner),
  },
  'A file written from inline content.',
);

const DirEntry = strict(
  {
    path: ImagePath('The directory to create.'),
    mode: Type.Optional(ModeString('Mode of the directory.')),
    owner: Type.Optional(Owner),
  },
  'An (empty) directory.',
);

const SymlinkEntry = strict(
  {
    path: ImagePath('The link to create.'),
    target: str('What the link points to, stored as written (absolute or relative).'),
    owner: Type.Optional(Owner),
  },
  'A symbolic link.',
);

const Layer = strict(
  {
    name: str('Layer name, unique in the spec: letters, digits, ".", "_" and "-", starting with a letter or digit; shown in plans, progress and image history.', {
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
    }),
    owner: Type.Optional(Owner),
    fileMode: Type.Optional(ModeString('Mode for files of this layer.')),
    dirMode: Type.Optional(ModeString('Mode for directories of this layer.')),
    copy: Type.Optional(Type.Array(CopyEntry, { description: 'Files copied from the context.' })),
    files: Type.Optional(Type.Array(FileEntry, { description: 'Files with inline content.' })),
    dirs: Type.Optional(Type.Array(DirEntry, { description: 'Directories to create.' })),
    symlinks: Type.Optional(Type.Array(SymlinkEntry, { description: 'Symbolic links to create.' })),
    remove: Type.Optional(
      Type.Array(ImagePath('A path of a lower layer to delete.'), {
        description: 'Paths deleted from the layers below (OCI whiteouts).',
      }),
    ),
  },
  'One image layer. Order matters: put what changes least first, so it stays cached.',
);

const Port = Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), str('"8080", "8080/tcp" or "53/udp".')], {
  description: 'A port the container listens on.',
});

const Config = strict(
  {
    entrypoint: Type.Optional(Type.Array(Type.String(), { description: 'The command run when the container starts.' })),
    cmd: Type.Optional(Type.Array(Type.String(), { description: 'Default arguments to the entrypoint.' })),
    env: Type.Optional(
      Type.Record(Type.String({ pattern: '^[^=]+$' }), Type.String(), {
        description: 'Environment variables, merged by name over the base image\'s. A name is not empty and has no "=".',
        // Without it a name that fails the pattern would simply go unchecked.
        additionalProperties: false,
      }),
    ),
    workdir: Type.Optional(ImagePath('The working directory of the process.')),
    user: Type.Optional(str('User (and group) the process runs as: "uid", "uid:gid", "name" or "name:group".')),
    ports: Type.Optional(Type.Array(Port, { description: 'Exposed ports.' })),
    volumes: Type.Optional(Type.Array(ImagePath('A volume mount point.'), { description: 'Volume mount points.' })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Image config labels.' })),
    stopSignal: Type.Optional(str('Signal that stops the container: its name with SIG ("SIGTERM") or its number.', { pattern: '^(SIG[A-Z0-9+-]+|[0-9]+)$' })),
  },
  'How the container runs: the OCI image config.',
);

const Compression = strict(
  {
    algorithm: Type.Optional(
      Type.Union([Type.Literal('gzip'), Type.Literal('zstd'), Type.Literal('none')], {
        description: 'Layer compression. Default "gzip"; "zstd" needs a Node.js that has it.',
      }),
    ),
    level: Type.Optional(Type.Integer({ minimum: 0, maximum: 19, description: 'Compression level. Default 6 for gzip (0-9), 3 for zstd.' })),
  },
  'How layers are compressed.',
);

const Output = Type.Object(
  {
    oci: Type.Optional(str('An OCI image layout directory, relative to the spec file.')),
    'docker-archive': Type.Optional(str('A tar file that `docker load` and `ctr images import` accept; it holds one platform.')),
    registry: Type.Optional(str('A registry repository, e.g. "ghcr.io/acme/hello"; the spec\'s tags are pushed.')),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    description: 'Where the image goes: exactly one of oci, docker-archive, registry.',
  },
);

export const ImageSpecSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'JSON Schema of this file (for editors).' })),
    apiVersion: Type.Literal('imgbuild/v1', { description: 'Version of the spec language.' }),
    name: str('Repository part of the image reference, e.g. "example/hello".'),
    tags: Type.Optional(Type.Array(str('A tag, e.g. "latest" or "${GIT_SHA:-dev}".'), { description: 'Tags. Default ["latest"].' })),
    from: Type.Optional(
      str('Base image: "scratch" (default), a registry reference (pin with @sha256:...), "oci:./dir[:tag]" or "docker-archive:./file.tar[:repo:tag]" (the tag picks one image of an archive that holds several; a file name holding ":" is read whole when the part before the ":" is no file).'),
    ),
    platforms: Type.Optional(
      Type.Array(str('"os/arch[/variant]", e.g. "linux/amd64".'), { description: 'Platforms to build. Default ["linux/amd64"]; several make an image index.' }),
    ),
    context: Type.Optional(str('Directory that sources are read from, relative to the spec file. Default "."; never above it as written (a context that is a symlink is read where it points, wherever that is).')),
    defaults: Type.Optional(Defaults),
    layers: Type.Array(Layer, { description: 'The layers, bottom first.' }),
    config: Type.Optional(Config),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Manifest annotations.' })),
    compression: Type.Optional(Compression),
    output: Type.Optional(Type.Array(Output, { description: 'Outputs. Default: an OCI layout at ./out/<last part of name>.' })),
  },
  {
    $id: 'https://imgbuild.dev/schemas/image.schema.json',
    title: 'imgbuild image spec',
    description: 'A declarative description of an OCI container image, built by `imgbuild apply`.',
    additionalProperties: false,
    // As in Compose files: a place to hold anchors (`x-common: &common {...}`) that merge keys
    // (`<<: *common`) bring into entries; imgbuild reads nothing from them.
    patternProperties: { '^x-': {} },
  },
);

export type ImageSpec = Static<typeof ImageSpecSchema>;
export type LayerSpec = ImageSpec['layers'][number];
export type CopySpec = NonNullable<LayerSpec['copy']>[number];
export type ConfigSpec = NonNullable<ImageSpec['config']>;
export type OutputSpec = NonNullable<ImageSpec['output']>[number];

/** The schema as plain JSON (TypeBox's symbol keys dropped): what `npm run schema` writes to schemas/. */
export function generateSchemaJson(): Record<string, unknown> {
  return JSON.parse(JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...ImageSpecSchema }));
}
