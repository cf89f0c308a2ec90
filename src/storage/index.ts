// Picks the blob-storage driver named by the configuration.
import type { StorageDriver } from './driver.ts';
import { FilesystemDriver } from './fs.ts';
import { S3Driver } from './s3.ts';
import type { S3Options } from './s3.ts';

export type StorageConfig = { kind: 'local'; path: string } | ({ kind: 's3' } & S3Options);

export function createStorage(cfg: StorageConfig): StorageDriver {
  switch (cfg.kind) {
    case 'local':
      return new FilesystemDriver(cfg.path);
    case 's3': {
      const { kind: _kind, ...opts } = cfg;
      return new S3Driver(opts);
    }
    default:
      throw new Error(`unknown storage kind: ${(cfg as { kind: unknown }).kind}`);
  }
}
