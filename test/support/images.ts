// Builds OCI image layouts on disk with plain Node, so tests can push real images with skopeo,
// podman and buildah without any network access. Layers are streamed through tar -> gzip and
// hashed on the way; all inputs have fixed timestamps so a build is reproducible (pass a `seed`
// or `extraFile` to get distinct digests).
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { tarStream } from './tar.ts';
import type { TarEntry } from './tar.ts';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const BUSYBOX_PATH = '/bin/busybox';
export const DEFAULT_CREATED = '2024-01-01T00:00:00Z';
/** sha256 of the two bytes `{}`: the OCI 1.1 empty descriptor. */
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
  artifactType?: string;
  data?: string;
}

export interface BuiltManifest {
  digest: string;
  mediaType: string;
  size: number;
  /** Exact bytes as pushed, for byte-for-byte comparisons against what a registry serves. */
  raw: Buffer;
  config: Descriptor;
  layers: Descriptor[];
  platform?: Descriptor['platform'];
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  /** skopeo/podman source reference: `oci:<layoutDir>:<tag>`, or `dir:<layoutDir>/dir-<tag>` for format 'docker'. */
  ref: string;
  manifestDigest: string;
  mediaType: string;
  size: number;
  raw: Buffer;
  /** The image manifest itself, or every child manifest of an index. */
  manifests: BuiltManifest[];
  /** Every blob digest (configs + layers, deduplicated) reachable from the tag, manifests excluded. */
  blobs: string[];
}

export type Arch = 'amd64' | 'arm64';
export type Format = 'oci' | 'docker';
export type { TarEntry };

// ---------------------------------------------------------------------------------------------
// Layout primitives

function sha256(buf: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(buf).digest('hex');
}

function blobPath(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(layoutDir, 'blobs', alg, hex);
}

async function initLayout(layoutDir: string): Promise<void> {
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const marker = join(layoutDir, 'oci-layout');
  if (!existsSync(marker)) await writeFile(marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = join(layoutDir, 'index.json');
  if (!existsSync(index)) await writeFile(index, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] }));
}

async function writeBlob(layoutDir: string, body: Buffer | string, mediaType: string): Promise<Descriptor> {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const digest = sha256(buf);
  const path = blobPath(layoutDir, digest);
  if (!existsSync(path)) await writeFile(path, buf);
  return { mediaType, digest, size: buf.length };
}

function hashing(hash: ReturnType<typeof createHash>, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Streams entries -> tar -> gzip -> blob; returns the layer descriptor and its uncompressed diffID. */
export async function writeLayer(
  layoutDir: string,
  entries: TarEntry[],
  mediaType: string = MT.ociLayerGzip,
): Promise<{ desc: Descriptor; diffId: string; path: string }> {
  await initLayout(layoutDir);
  const tmp = join(layoutDir, 'blobs', `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const diff = createHash('sha256');
  const comp = createHash('sha256');
  const diffCount = { n: 0 };
  const compCount = { n: 0 };
  try {
    await pipeline(
      Readable.from(tarStream(entries)),
      hashing(diff, diffCount),
      createGzip({ level: 6 }),
      hashing(comp, compCount),
      createWriteStream(tmp),
    );
    const digest = 'sha256:' + comp.digest('hex');
    const path = blobPath(layoutDir, digest);
    await rename(tmp, path);
    return { desc: { mediaType, digest, size: compCount.n }, diffId: 'sha256:' + diff.digest('hex'), path };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Points `tag` in index.json at `desc`, replacing an earlier entry with the same tag. */
async function tagInLayout(layoutDir: string, tag: string, desc: Descriptor): Promise<void> {
  const path = join(layoutDir, 'index.json');
  const index = JSON.parse(await readFile(path, 'utf8')) as { manifests: Descriptor[] };
  const refName = 'org.opencontainers.image.ref.name';
  index.manifests = index.manifests.filter((m) => m.annotations?.[refName] !== tag);
  index.manifests.push({ ...desc, annotations: { ...desc.annotations, [refName]: tag } });
  await writeFile(path, JSON.stringify(index, null, 2));
}

function mediaTypes(format: Format) {
  return format === 'docker'
    ? { manifest: MT.dockerManifest, config: MT.dockerConfig, layer: MT.dockerLayerGzip }
    : { manifest: MT.ociManifest, config: MT.ociConfig, layer: MT.ociLayerGzip };
}

function platformOf(arch: Arch): NonNullable<Descriptor['platform']> {
  return arch === 'arm64' ? { architecture: 'arm64', os: 'linux', variant: 'v8' } : { architecture: 'amd64', os: 'linux' };
}

export interface ImageSpec {
  format: Format;
  arch: Arch;
  created: string;
  layers: { entries: TarEntry[]; createdBy: string }[];
  containerConfig: Record<string, unknown>;
}

/** Writes the layers, config and manifest of one image; returns the manifest (untagged). */
async function writeImage(layoutDir: string, spec: ImageSpec): Promise<BuiltManifest> {
  const types = mediaTypes(spec.format);
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const layer of spec.layers) {
    const { desc, diffId } = await writeLayer(layoutDir, layer.entries, types.layer);
    layers.push(desc);
    diffIds.push(diffId);
  }
  const platform = platformOf(spec.arch);
  const configJson = {
    created: spec.created,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: spec.containerConfig,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: spec.layers.map((l) => ({ created: spec.created, created_by: l.createdBy })),
  };
  const config = await writeBlob(layoutDir, JSON.stringify(configJson), types.config);
  const manifestJson = { schemaVersion: 2, mediaType: types.manifest, config, layers };
  const raw = Buffer.from(JSON.stringify(manifestJson, null, 2));
  const desc = await writeBlob(layoutDir, raw, types.manifest);
  return { ...desc, raw, config, layers, platform };
}

async function finish(
  layoutDir: string,
  tag: string,
  top: Descriptor,
  raw: Buffer,
  manifests: BuiltManifest[],
  format: Format = 'oci',
): Promise<BuiltImage> {
  await tagInLayout(layoutDir, tag, top);
  const blobs = [...new Set(manifests.flatMap((m) => [m.config.digest, ...m.layers.map((l) => l.digest)]))];
  let ref = `oci:${layoutDir}:${tag}`;
  if (format === 'docker') {
    // containers/image's oci: transport ignores index.json entries that are not OCI media types,
    // so schema2 images are also written as a `dir:` transport directory, which it copies verbatim.
    const dirPath = join(layoutDir, `dir-${tag}`);
    await writeDirTransport(layoutDir, dirPath, raw, manifests, top.digest);
    ref = `dir:${dirPath}`;
  }
  return {
    layoutDir,
    tag,
    ref,
    manifestDigest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    raw,
    manifests,
    blobs,
  };
}

/** The `dir:` transport (version 1.1): manifest.json, blobs named by hex, list children as HEX.manifest.json. */
async function writeDirTransport(layoutDir: string, dirPath: string, raw: Buffer, manifests: BuiltManifest[], topDigest: string) {
  await rm(dirPath, { recursive: true, force: true });
  await mkdir(dirPath, { recursive: true });
  await writeFile(join(dirPath, 'version'), 'Directory Transport Version: 1.1\n');
  await writeFile(join(dirPath, 'manifest.json'), raw);
  for (const m of manifests) {
    if (m.digest !== topDigest) await writeFile(join(dirPath, `${hexOf(m.digest)}.manifest.json`), m.raw);
    for (const d of [m.config, ...m.layers]) {
      const target = join(dirPath, hexOf(d.digest));
      if (!existsSync(target)) await link(blobPath(layoutDir, d.digest), target);
    }
  }
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

// ---------------------------------------------------------------------------------------------
// Public builders

export interface BusyboxOptions {
  arch?: Arch;
  /** Content of an extra file `/etc/quayside-extra` in the layer: use it to get a distinct digest. */
  extraFile?: string;
  labels?: Record<string, string>;
  tag?: string;
  created?: string;
  /** 'docker' writes a Docker schema2 manifest/config/layer media types (still inside an OCI layout). */
  format?: Format;
  cmd?: string[];
}

export const DEFAULT_LABELS: Record<string, string> = { 'com.example.a': '1', 'quay.expires-after': '' };

function busyboxSpec(opts: BusyboxOptions): ImageSpec {
  const entries: TarEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', mode: 0o755, source: BUSYBOX_PATH },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  ];
  if (opts.extraFile !== undefined) {
    entries.push({ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/quayside-extra', content: opts.extraFile });
  }
  return {
    format: opts.format ?? 'oci',
    arch: opts.arch ?? 'amd64',
    created: opts.created ?? DEFAULT_CREATED,
    layers: [{ entries, createdBy: 'COPY /bin/busybox /bin/busybox # quayside test fixture' }],
    containerConfig: {
      Env: ['PATH=/bin'],
      Cmd: opts.cmd ?? [BUSYBOX_PATH, 'echo', 'hello'],
      Labels: opts.labels ?? DEFAULT_LABELS,
    },
  };
}

/**
 * A scratch image with one layer holding Debian's static busybox. Note: the arm64 variant carries
 * the same amd64 binary (no arm64 busybox is available offline); only its config says arm64.
 */
export async function buildBusyboxImage(dir: string, opts: BusyboxOptions = {}): Promise<BuiltImage> {
  const layoutDir = resolve(dir);
  await initLayout(layoutDir);
  const m = await writeImage(layoutDir, busyboxSpec(opts));
  const top = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  return finish(layoutDir, opts.tag ?? 'latest', top, m.raw, [m], opts.format);
}

/**
 * Same image with Docker schema2 media types. `ref` is then a `dir:` reference (see finish());
 * skopeo copies it unchanged. (Alternatively `skopeo copy --format v2s2 oci:...` converts an OCI
 * image, which changes the manifest digest but not the layer blobs.)
 */
export function buildDockerImage(dir: string, opts: Omit<BusyboxOptions, 'format'> = {}): Promise<BuiltImage> {
  return buildBusyboxImage(dir, { ...opts, format: 'docker' });
}

export interface MultiLayerOptions {
  tag?: string;
  /** Mixed into every layer's contents so different seeds never share blobs. */
  seed?: string;
  format?: Format;
  /** Bytes of pseudo-random (incompressible) payload per layer; default 16 KiB. */
  layerBytes?: number;
}

/**
 * `layers` small distinct layers: layer i adds /data/layer-i.txt plus a payload; when there are at
 * least 3 layers the last one also whites out layer 1's file, as real builds do.
 */
export async function buildMultiLayerImage(dir: string, layers = 3, opts: MultiLayerOptions = {}): Promise<BuiltImage> {
  if (layers < 1) throw new Error('layers must be >= 1');
  const layoutDir = resolve(dir);
  await initLayout(layoutDir);
  const seed = opts.seed ?? '';
  const size = opts.layerBytes ?? 16 * 1024;
  const specLayers = Array.from({ length: layers }, (_, i) => {
    const n = i + 1;
    const entries: TarEntry[] = [
      { type: 'dir', path: 'data' },
      { type: 'file', path: `data/layer-${n}.txt`, content: `layer ${n} of ${layers} ${seed}\n` },
      { type: 'file', path: `data/payload-${n}.bin`, content: pseudoRandom(`${seed}/${n}`, size) },
    ];
    if (n === layers && layers >= 3) entries.push({ type: 'file', path: 'data/.wh.layer-1.txt', content: '' });
    return { entries, createdBy: `RUN write layer ${n}` };
  });
  const m = await writeImage(layoutDir, {
    format: opts.format ?? 'oci',
    arch: 'amd64',
    created: DEFAULT_CREATED,
    layers: specLayers,
    containerConfig: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], Labels: { 'com.example.layers': String(layers) } },
  });
  const top = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  return finish(layoutDir, opts.tag ?? 'multi', top, m.raw, [m], opts.format);
}

/** Deterministic incompressible bytes, so layer sizes are predictable after gzip. */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export interface IndexOptions {
  tag?: string;
  /** 'docker' writes a Docker manifest list of schema2 manifests instead of an OCI index. */
  format?: Format;
  extraFile?: string;
  labels?: Record<string, string>;
}

/** A linux/amd64 + linux/arm64 index; the children differ in config (and so in digest). */
export async function buildIndex(dir: string, opts: IndexOptions = {}): Promise<BuiltImage> {
  const layoutDir = resolve(dir);
  await initLayout(layoutDir);
  const format = opts.format ?? 'oci';
  const children: BuiltManifest[] = [];
  for (const arch of ['amd64', 'arm64'] as const) {
    children.push(await writeImage(layoutDir, busyboxSpec({ arch, format, extraFile: opts.extraFile, labels: opts.labels })));
  }
  const mediaType = format === 'docker' ? MT.dockerList : MT.ociIndex;
  const indexJson = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: c.platform })),
  };
  const raw = Buffer.from(JSON.stringify(indexJson, null, 2));
  const desc = await writeBlob(layoutDir, raw, mediaType);
  return finish(layoutDir, opts.tag ?? 'multiarch', desc, raw, children, format);
}

export interface ArtifactOptions {
  tag?: string;
  artifactType?: string;
  /** Layer content; default a tiny SPDX-ish JSON document. */
  content?: string | Buffer;
  layerMediaType?: string;
  annotations?: Record<string, string>;
}

export const DEFAULT_ARTIFACT_TYPE = 'application/vnd.example.sbom.v1+json';

/**
 * An OCI 1.1 artifact: an image manifest with `artifactType`, the empty config and one layer,
 * optionally pointing at `subject`. A subject given as a bare digest must be a manifest already in
 * the same layout (its size and media type are read from there).
 */
export async function buildArtifact(
  dir: string,
  subject?: string | Descriptor | BuiltImage,
  opts: ArtifactOptions = {},
): Promise<BuiltImage> {
  const layoutDir = resolve(dir);
  await initLayout(layoutDir);
  const artifactType = opts.artifactType ?? DEFAULT_ARTIFACT_TYPE;
  const config = await writeBlob(layoutDir, '{}', MT.ociEmpty);
  const content = opts.content ?? JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'quayside-test', packages: [] });
  const layer = await writeBlob(layoutDir, content, opts.layerMediaType ?? artifactType);
  layer.annotations = { 'org.opencontainers.image.title': 'sbom.json' };
  const manifestJson: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType,
    config: { ...config, data: Buffer.from('{}').toString('base64') },
    layers: [layer],
  };
  if (subject !== undefined) manifestJson.subject = await subjectDescriptor(layoutDir, subject);
  manifestJson.annotations = { 'org.opencontainers.image.created': DEFAULT_CREATED, ...opts.annotations };
  const raw = Buffer.from(JSON.stringify(manifestJson, null, 2));
  const desc = await writeBlob(layoutDir, raw, MT.ociManifest);
  const m: BuiltManifest = { ...desc, raw, config, layers: [layer] };
  return finish(layoutDir, opts.tag ?? 'sbom', { ...desc, artifactType }, raw, [m]);
}

async function subjectDescriptor(layoutDir: string, subject: string | Descriptor | BuiltImage): Promise<Descriptor> {
  if (typeof subject !== 'string') {
    if ('manifestDigest' in subject) return { mediaType: subject.mediaType, digest: subject.manifestDigest, size: subject.size };
    return { mediaType: subject.mediaType, digest: subject.digest, size: subject.size };
  }
  const path = blobPath(layoutDir, subject);
  const { size } = await stat(path).catch(() => {
    throw new Error(`subject ${subject} is not in ${layoutDir}; pass a descriptor instead`);
  });
  const parsed = JSON.parse(await readFile(path, 'utf8')) as { mediaType?: string };
  return { mediaType: parsed.mediaType ?? MT.ociManifest, digest: subject, size };
}

/** Any single-platform image: explicit layers (tar entries) and container config. */
export async function buildCustomImage(dir: string, spec: Partial<ImageSpec> & { layers: ImageSpec['layers']; tag?: string }): Promise<BuiltImage> {
  const layoutDir = resolve(dir);
  await initLayout(layoutDir);
  const full: ImageSpec = { format: 'oci', arch: 'amd64', created: DEFAULT_CREATED, containerConfig: {}, ...spec };
  const m = await writeImage(layoutDir, full);
  const top = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  return finish(layoutDir, spec.tag ?? 'latest', top, m.raw, [m], full.format);
}

/** Reads a blob back from a layout (for assertions against what a registry serves). */
export function readBlob(layoutDir: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(layoutDir, digest));
}
