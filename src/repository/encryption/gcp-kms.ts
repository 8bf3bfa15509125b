import type { KeySlot, SlotSecret } from './key-slots.ts';
import type { KeySource } from './key-source.ts';

export interface GcpKmsSettings {
  /** projects/P/locations/L/keyRings/R/cryptoKeys/K: the key to wrap new slots with. Opening needs none: a slot names its key. */
  keyName?: string | undefined;
  apiEndpoint?: string | undefined;
  keyFilename?: string | undefined;
  projectId?: string | undefined;
}

/** The two calls bak makes, as @google-cloud/kms's KeyManagementServiceClient takes them (the tests' boundary). */
export interface GcpKmsClient {
  encrypt(request: { name: string; plaintext: Buffer; additionalAuthenticatedData: Buffer }): Promise<[{ ciphertext?: Uint8Array | string | null; name?: string | null }, ...unknown[]]>;
  decrypt(request: { name: string; ciphertext: Buffer; additionalAuthenticatedData: Buffer }): Promise<[{ plaintext?: Uint8Array | string | null }, ...unknown[]]>;
}

export type GcpKmsClientFactory = (settings: GcpKmsSettings) => Promise<GcpKmsClient>;

const libraryClient: GcpKmsClientFactory = async (settings) => {
  const { KeyManagementServiceClient } = await import('@google-cloud/kms');
  return new KeyManagementServiceClient({
    ...(settings.apiEndpoint ? { apiEndpoint: settings.apiEndpoint } : {}),
    ...(settings.keyFilename ? { keyFilename: settings.keyFilename } : {}),
    ...(settings.projectId ? { projectId: settings.projectId } : {}),
  }) as unknown as GcpKmsClient;
};

/**
 * Google Cloud KMS: the master key goes to the crypto key's encrypt once per slot, with the repository id as additional
 * authenticated data, and back through decrypt on open. No emulator exists: tested at the client boundary only.
 */
export class GcpKmsSource implements KeySource {
  readonly kind = 'gcp-kms' as const;
  readonly label: string;
  private readonly settings: GcpKmsSettings;
  private readonly factory: GcpKmsClientFactory;
  private client: Promise<GcpKmsClient> | undefined;

  constructor(settings: GcpKmsSettings, factory: GcpKmsClientFactory = libraryClient) {
    this.settings = settings;
    this.factory = factory;
    this.label = settings.keyName ? `Google Cloud KMS key ${settings.keyName}` : 'Google Cloud KMS';
  }

  get canWrap(): boolean {
    return this.settings.keyName !== undefined;
  }

  private connect(): Promise<GcpKmsClient> {
    this.client ??= this.factory(this.settings);
    return this.client;
  }

  async wrap(master: Buffer, repositoryId: string): Promise<SlotSecret> {
    const keyName = this.settings.keyName;
    if (!keyName) throw new Error('no Google Cloud KMS key to wrap with: give one (--gcp-kms-key, or encryption.gcpKms.keyName in the config)');
    const client = await this.connect();
    const [out] = await client.encrypt({ name: keyName, plaintext: master, additionalAuthenticatedData: Buffer.from(repositoryId) }).catch((err: unknown) => {
      throw new Error(describeGcpError(err, `encrypt with ${keyName}`));
    });
    const ciphertext = bytes(out.ciphertext);
    if (!ciphertext || ciphertext.length === 0) throw new Error('Google Cloud KMS answered encrypt without a ciphertext');
    return { kind: 'gcp-kms', keyName, wrapped: ciphertext.toString('base64') };
  }

  async unwrap(slot: KeySlot, repositoryId: string): Promise<Buffer> {
    if (slot.kind !== 'gcp-kms') throw new Error('not a Google Cloud KMS slot');
    const client = await this.connect();
    const [out] = await client
      .decrypt({ name: slot.keyName, ciphertext: Buffer.from(slot.wrapped, 'base64'), additionalAuthenticatedData: Buffer.from(repositoryId) })
      .catch((err: unknown) => {
        throw new Error(describeGcpError(err, `decrypt with ${slot.keyName}`));
      });
    const plaintext = bytes(out.plaintext);
    if (!plaintext) throw new Error('Google Cloud KMS answered decrypt without a plaintext');
    return plaintext;
  }
}

function bytes(value: Uint8Array | string | null | undefined): Buffer | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.from(value);
}

/** gRPC errors carry a numeric code and "7 PERMISSION_DENIED: …" messages; the message alone says it. */
function describeGcpError(err: unknown, what: string): string {
  return `Google Cloud KMS refused to ${what} (${err instanceof Error ? err.message : String(err)})`;
}
