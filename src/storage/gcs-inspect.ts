// `bak doctor`'s look at a GCS bucket: public access prevention and IAM, uniform bucket-level access, versioning,
// retention, and the server's clock. Read-only: buckets.get and buckets.getIamPolicy.
//
// Real GCS always returns iamConfiguration in a bucket resource and omits versioning and retentionPolicy when they were
// never set; fake-gcs-server returns no iamConfiguration, retentionPolicy or IAM policy at all (v1.56.1, probed). So a
// bucket resource without iamConfiguration is taken to come from a server that does not report protection: those
// aspects are "could not be determined", never ok.
import type { Bucket } from '@google-cloud/storage';
import type { StoreFinding, StoreInspection } from './object-store.ts';

interface BucketResource {
  iamConfiguration?: {
    publicAccessPrevention?: string;
    uniformBucketLevelAccess?: { enabled?: boolean; lockedTime?: string };
  };
  versioning?: { enabled?: boolean };
  retentionPolicy?: { retentionPeriod?: string | number; isLocked?: boolean; effectiveTime?: string };
  softDeletePolicy?: { retentionDurationSeconds?: string | number };
}

type IamPolicy = { bindings?: Array<{ role?: string; members?: string[] }> };

/** What the inspection reads of a bucket: the library's Bucket (a stub in tests). */
export interface InspectableBucket {
  getMetadata: Bucket['getMetadata'];
  iam: { getPolicy: Bucket['iam']['getPolicy'] };
}

const PUBLIC_MEMBERS = new Set(['allUsers', 'allAuthenticatedUsers']);

export async function inspectGcsBucket(bucket: InspectableBucket, name: string, endpoint: string): Promise<StoreInspection> {
  const [metaAnswer, iamAnswer] = await Promise.allSettled([bucket.getMetadata(), bucket.iam.getPolicy({ requestedPolicyVersion: 3 })]);
  const localMs = Date.now();
  if (metaAnswer.status === 'rejected') {
    const reason = describe(metaAnswer.reason);
    const unknown = (aspect: string): StoreFinding => ({ aspect, verdict: 'unknown', detail: `could not be determined: reading the bucket failed (${reason})`, fix: 'allow storage.buckets.get to these credentials' });
    return { findings: ['public access', 'uniform access', 'versioning', 'retention'].map(unknown) };
  }
  const [meta, response] = metaAnswer.value as unknown as [BucketResource, { headers?: Record<string, string | undefined> } | undefined];
  const date = response?.headers?.date;
  const serverClock = date && !Number.isNaN(Date.parse(date)) ? { serverDate: new Date(date), localMs, via: `Date header of ${endpoint}` } : undefined;
  const iam: IamPolicy | undefined = iamAnswer.status === 'fulfilled' ? (iamAnswer.value[0] as IamPolicy) : undefined;
  const iamError = iamAnswer.status === 'rejected' ? describe(iamAnswer.reason) : undefined;
  const reportsProtection = meta.iamConfiguration !== undefined;
  const findings: StoreFinding[] = [
    publicAccessFinding(name, meta, iam, iamError),
    uniformAccessFinding(name, meta),
    versioningFinding(name, meta, reportsProtection),
    retentionFinding(meta, reportsProtection),
  ];
  return { findings, ...(serverClock ? { serverClock } : {}) };
}

function describe(err: unknown): string {
  // An ApiError's message may be "Multiple errors occurred …"; its errors say what they were.
  const e = err as { code?: unknown; message?: string; errors?: Array<{ message?: string }>; response?: { statusMessage?: string } };
  const first = (e.errors?.[0]?.message ?? e.response?.statusMessage ?? e.message ?? String(err)).split('\n')[0]!.slice(0, 200);
  return typeof e.code === 'number' ? `HTTP ${e.code}: ${first}` : first;
}

function publicAccessFinding(name: string, meta: BucketResource, iam: IamPolicy | undefined, iamError: string | undefined): StoreFinding {
  const aspect = 'public access';
  const prevention = meta.iamConfiguration?.publicAccessPrevention;
  const enforce = `gcloud storage buckets update gs://${name} --public-access-prevention`;
  const grants = (iam?.bindings ?? []).flatMap((b) => (b.members ?? []).filter((m) => PUBLIC_MEMBERS.has(m)).map((m) => `${m} ${b.role ?? '?'}`));
  if (grants.length && prevention !== 'enforced') {
    return {
      aspect,
      verdict: 'fail',
      detail: `bucket ${name} is public: its IAM policy grants ${grants.join(', ')}`,
      fix: `remove the binding (gcloud storage buckets remove-iam-policy-binding gs://${name} --member=allUsers --role=ROLE), then ${enforce}`,
    };
  }
  if (prevention === 'enforced') return { aspect, verdict: 'ok', detail: 'not public: public access prevention enforced' };
  if (prevention === undefined) {
    return {
      aspect,
      verdict: 'unknown',
      detail: `could not be determined: the server reports no iamConfiguration.publicAccessPrevention${iamError ? `, and the IAM policy could not be read (${iamError})` : ''}`,
      fix: `check by hand that no one outside your project can read the bucket, and ${enforce}`,
    };
  }
  if (!iam) {
    return {
      aspect,
      verdict: 'unknown',
      detail: `could not be determined: public access prevention is "${prevention}" and the IAM policy could not be read (${iamError ?? 'no answer'})`,
      fix: `allow storage.buckets.getIamPolicy to these credentials, or ${enforce}`,
    };
  }
  return {
    aspect,
    verdict: 'warn',
    detail: `not public by IAM, but public access prevention is "${prevention}", not enforced: one IAM change could make it public`,
    fix: enforce,
  };
}

function uniformAccessFinding(name: string, meta: BucketResource): StoreFinding {
  const aspect = 'uniform access';
  const ubla = meta.iamConfiguration?.uniformBucketLevelAccess;
  if (ubla?.enabled === undefined) return { aspect, verdict: 'unknown', detail: 'could not be determined: the server reports no iamConfiguration.uniformBucketLevelAccess', fix: 'check it by hand (gcloud storage buckets describe)' };
  if (ubla.enabled) return { aspect, verdict: 'ok', detail: 'on: access is by IAM only, no object ACLs' };
  return { aspect, verdict: 'warn', detail: 'off: an object ACL can make a single object public', fix: `gcloud storage buckets update gs://${name} --uniform-bucket-level-access` };
}

function softDeleteNote(meta: BucketResource): string {
  const seconds = Number(meta.softDeletePolicy?.retentionDurationSeconds ?? 0);
  return seconds > 0 ? `soft delete keeps deleted objects ${Math.round(seconds / 86400)} day(s)` : '';
}

function versioningFinding(name: string, meta: BucketResource, reportsProtection: boolean): StoreFinding {
  const aspect = 'versioning';
  if (meta.versioning?.enabled === true) return { aspect, verdict: 'ok', detail: 'versioning on' };
  if (meta.versioning === undefined && !reportsProtection) {
    return { aspect, verdict: 'unknown', detail: 'could not be determined: the server reports no versioning field', fix: 'check it by hand (gcloud storage buckets describe)' };
  }
  const soft = softDeleteNote(meta);
  return {
    aspect,
    verdict: 'warn',
    detail: `versioning off: a deleted or overwritten object cannot be recovered${soft ? ` (${soft}; an overwrite is still lost)` : ''}`,
    fix: `gcloud storage buckets update gs://${name} --versioning, with a lifecycle rule that deletes noncurrent versions after some days`,
  };
}

function retentionFinding(meta: BucketResource, reportsProtection: boolean): StoreFinding {
  const aspect = 'retention';
  const soft = softDeleteNote(meta);
  const policy = meta.retentionPolicy;
  if (policy) {
    const days = Math.round(Number(policy.retentionPeriod ?? 0) / 86400);
    return { aspect, verdict: 'ok', detail: `retention policy: objects kept ${days} day(s)${policy.isLocked ? ', locked' : ''} (gc cannot delete younger blobs)${soft ? `; ${soft}` : ''}` };
  }
  if (!reportsProtection) return { aspect, verdict: 'unknown', detail: 'could not be determined: the server reports no retention fields', fix: 'check it by hand (gcloud storage buckets describe)' };
  return { aspect, verdict: 'ok', detail: `no retention policy (optional)${soft ? `; ${soft}` : ''}` };
}
