import { GetBucketVersioningCommand, HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { errorMessage } from '../../errors.ts';
import type { DoctorCheck } from '../../operations/doctor.ts';
import { mapS3Error } from '../../storage/s3.ts';
import { s3ContextOf } from './backup.ts';
import type { S3Source } from './source.ts';

/**
 * `bak doctor` for an S3 source: the engine's own client (the job's endpoint and credentials, else the AWS default
 * chain), HeadBucket and one ListObjectsV2 of at most one key under the prefix; in versions mode, that the bucket is
 * versioned. Nothing is staged locally (objects stream into the repository).
 */
export async function doctorS3(source: S3Source): Promise<DoctorCheck[]> {
  const o = source.options;
  const { bucket, prefix } = o.location;
  const s3 = s3ContextOf(o);
  const where = `s3://${bucket}/${prefix}`;
  let action = 'check access to';
  try {
    await s3.client.send(new HeadBucketCommand({ Bucket: bucket }));
    action = 'list';
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}), MaxKeys: 1 }));
    const checks: DoctorCheck[] = [
      { name: 'bucket', status: 'ok', detail: `${where} at ${s3.endpoint}: reachable, listing works (${(page.KeyCount ?? 0) > 0 ? 'holds objects' : 'empty'})` },
    ];
    if (o.mode === 'versions') {
      action = 'read the versioning of';
      const v = await s3.client.send(new GetBucketVersioningCommand({ Bucket: bucket }));
      checks.push(
        v.Status === 'Enabled'
          ? { name: 'versioning', status: 'ok', detail: 'versioning on (versions mode needs it)' }
          : { name: 'versioning', status: 'fail', detail: `versioning ${v.Status ? v.Status.toLowerCase() : 'off'}: versions mode needs a versioned bucket`, fix: `turn versioning on for ${bucket}, or use mode copy` },
      );
    }
    return checks;
  } catch (err) {
    const mapped = mapS3Error(err, { bucket, where, endpoint: s3.endpoint, action, notFound: 'bucket-missing' });
    const fix = mapped.hint ?? (mapped.kind === 'bucket-missing' ? 'correct the source URI (bucket name) or the endpoint' : 'check the endpoint and the credentials (job options accessKeyId, secretAccessKey, or the AWS default chain)');
    return [{ name: 'bucket', status: 'fail', detail: errorMessage(mapped), fix }];
  } finally {
    s3.client.destroy();
  }
}
