import type { KMSClient } from '@aws-sdk/client-kms';
import type { KeySlot, SlotSecret } from './key-slots.ts';
import { awsEncryptionContext, type KeySource } from './key-source.ts';

export interface AwsKmsSettings {
  /** The key to wrap new slots with: an id, an ARN or `alias/…`. Opening needs none: a slot names its key. */
  keyId?: string | undefined;
  region?: string | undefined;
  /** A KMS-compatible endpoint (local-kms in the tests); else the SDK's own (AWS_ENDPOINT_URL_KMS is honoured). */
  endpoint?: string | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
}

/** AWS KMS: the master key is sent to KMS's Encrypt once per slot and back through Decrypt on open; bak never holds the KMS key. */
export class AwsKmsSource implements KeySource {
  readonly kind = 'aws-kms' as const;
  readonly label: string;
  private readonly settings: AwsKmsSettings;
  /** One client per region: a slot records the region its key lives in, and slots may name different ones. */
  private readonly clients = new Map<string, Promise<{ kms: typeof import('@aws-sdk/client-kms'); client: KMSClient }>>();

  constructor(settings: AwsKmsSettings) {
    this.settings = settings;
    this.label = settings.keyId ? `AWS KMS key ${settings.keyId}` : 'AWS KMS';
  }

  get canWrap(): boolean {
    return this.settings.keyId !== undefined;
  }

  private connect(slotRegion: string | undefined): Promise<{ kms: typeof import('@aws-sdk/client-kms'); client: KMSClient }> {
    const region = slotRegion ?? this.settings.region;
    let client = this.clients.get(region ?? '');
    if (!client) {
      client = import('@aws-sdk/client-kms').then((kms) => ({
        kms,
        client: new kms.KMSClient({
          ...(region ? { region } : {}),
          ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
          ...(this.settings.credentials ? { credentials: this.settings.credentials } : {}),
          maxAttempts: 3,
        }),
      }));
      this.clients.set(region ?? '', client);
    }
    return client;
  }

  async wrap(master: Buffer, repositoryId: string): Promise<SlotSecret> {
    const keyId = this.settings.keyId;
    if (!keyId) throw new Error('no AWS KMS key to wrap with: give one (--aws-kms-key, or encryption.awsKms.keyId in the config)');
    const { kms, client } = await this.connect(undefined);
    const out = await client.send(new kms.EncryptCommand({ KeyId: keyId, Plaintext: master, EncryptionContext: awsEncryptionContext(repositoryId) })).catch((err: unknown) => {
      throw new Error(describeKmsError(err, `encrypt with ${keyId}`));
    });
    if (!out.CiphertextBlob || !out.KeyId) throw new Error(`AWS KMS answered Encrypt without a ciphertext or key id`);
    // The region the key was reached in (the config's, or the SDK's from AWS_REGION or a profile), so that opening on
    // another machine does not depend on its environment.
    const region = await client.config.region();
    return { kind: 'aws-kms', keyId, keyArn: out.KeyId, ...(region ? { region } : {}), wrapped: Buffer.from(out.CiphertextBlob).toString('base64') };
  }

  async unwrap(slot: KeySlot, repositoryId: string): Promise<Buffer> {
    if (slot.kind !== 'aws-kms') throw new Error('not an AWS KMS slot');
    const { kms, client } = await this.connect(slot.region);
    const out = await client
      .send(new kms.DecryptCommand({ CiphertextBlob: Buffer.from(slot.wrapped, 'base64'), KeyId: slot.keyArn, EncryptionContext: awsEncryptionContext(repositoryId) }))
      .catch((err: unknown) => {
        throw new Error(describeKmsError(err, `decrypt with ${slot.keyArn}`));
      });
    if (!out.Plaintext) throw new Error('AWS KMS answered Decrypt without a plaintext');
    return Buffer.from(out.Plaintext);
  }
}

/** A KMS failure in one line: the service's error name and message, or the network's. */
function describeKmsError(err: unknown, what: string): string {
  const e = err as { name?: string; message?: string; code?: string };
  const name = e.name && e.name !== 'Error' ? `${e.name}: ` : (e.code ? `${e.code}: ` : '');
  return `AWS KMS refused to ${what} (${name}${e.message ?? String(err)})`;
}
