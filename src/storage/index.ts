// Picks the blob-storage driver named by the configuration.
import type { StorageDriver } from './driver.ts';
import { FilesystemDriver } from './fs.ts';
import type { S3Options } from './s3.ts';

export type StorageConfig = { kind: 'local'; path: string } | ({ kind: 's3' } & S3Options);

/** The S3 driver (and the AWS SDK, ~30 MiB of resident code) is loaded only when configured. */
export async function createStorage(cfg: StorageConfig): Promise<StorageDriver> {
  switch (cfg.kind) {
    case 'local':
      return new FilesystemDriver(cfg.path);
    case 's3': {
      const { kind: _kind, ...opts } = cfg;
      const { S3Driver } = await import('./s3.ts');
      return new S3Driver(opts);
    }
    default:
      throw new Error(`unknown storage kind: ${(cfg as { kind: unknown }).kind}`);
  }
}
