// `bak doctor`'s look at an S3 bucket: is it public, is it versioned, is it object-locked, and the server's clock.
// Read-only: Get* calls only. MinIO answers GetBucketPolicyStatus with IsPublic false even for a policy that grants
// s3:GetObject to "*" (MinIO 2026-02-12 build, probed), so the policy itself is always read and judged here as well.
import {
  GetBucketAclCommand,
  GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetPublicAccessBlockCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { StoreFinding, StoreInspection } from './object-store.ts';

/** The commands sent, as the S3 client's `send` takes them (a stub in tests). */
type Sender = Pick<S3Client, 'send'>;

type Answer<T> = { ok: true; value: T } | { ok: false; name: string; status: number | undefined; message: string };

const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
const AUTHENTICATED_USERS = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers';

export async function inspectS3Bucket(client: Sender, bucket: string, endpoint: string): Promise<StoreInspection> {
  let serverClock: StoreInspection['serverClock'];
  // The Date header of the first answer that has one, and the local clock when it came (the raw HTTP answer, before
  // the SDK parses it: an error answer carries one too).
  const ask = async <T>(command: object): Promise<Answer<T>> => {
    const stack = (command as { middlewareStack?: { add(mw: unknown, options: unknown): void } }).middlewareStack;
    stack?.add(
      (next: (args: unknown) => Promise<{ response?: { headers?: Record<string, string | undefined> } }>) => async (args: unknown) => {
        const out = await next(args);
        const date = out.response?.headers?.date;
        const localMs = Date.now();
        if (date && !serverClock && !Number.isNaN(Date.parse(date))) serverClock = { serverDate: new Date(date), localMs, via: `Date header of ${endpoint}` };
        return out;
      },
      { step: 'deserialize', priority: 'low', name: 'bakDoctorServerDate' },
    );
    try {
      return { ok: true, value: (await client.send(command as never)) as T };
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      return { ok: false, name: e.name ?? 'Error', status: e.$metadata?.httpStatusCode, message: e.message ?? String(err) };
    }
  };
  const Bucket = bucket;
  const [versioning, lock, pab, policyStatus, policy, acl] = await Promise.all([
    ask<{ Status?: string; MFADelete?: string }>(new GetBucketVersioningCommand({ Bucket })),
    ask<{ ObjectLockConfiguration?: { ObjectLockEnabled?: string; Rule?: { DefaultRetention?: { Mode?: string; Days?: number; Years?: number } } } }>(
      new GetObjectLockConfigurationCommand({ Bucket }),
    ),
    ask<{ PublicAccessBlockConfiguration?: PublicAccessBlock }>(new GetPublicAccessBlockCommand({ Bucket })),
    ask<{ PolicyStatus?: { IsPublic?: boolean } }>(new GetBucketPolicyStatusCommand({ Bucket })),
    ask<{ Policy?: string }>(new GetBucketPolicyCommand({ Bucket })),
    ask<{ Grants?: Array<{ Grantee?: { URI?: string }; Permission?: string }> }>(new GetBucketAclCommand({ Bucket })),
  ]);
  const findings = [publicAccessFinding(bucket, pab, policyStatus, policy, acl), versioningFinding(bucket, versioning), objectLockFinding(lock)];
  const block = publicAccessBlockFinding(bucket, pab);
  if (block) findings.splice(1, 0, block);
  return { findings, ...(serverClock ? { serverClock } : {}) };
}

interface PublicAccessBlock {
  BlockPublicAcls?: boolean;
  IgnorePublicAcls?: boolean;
  BlockPublicPolicy?: boolean;
  RestrictPublicBuckets?: boolean;
}

const unsupported = (a: Answer<unknown>) => !a.ok && (a.name === 'NotImplemented' || a.status === 501);
const why = (a: Answer<unknown>) => (a.ok ? '' : `${a.name}${a.status ? ` (HTTP ${a.status})` : ''}`);

function publicAccessFinding(
  bucket: string,
  pab: Answer<{ PublicAccessBlockConfiguration?: PublicAccessBlock }>,
  status: Answer<{ PolicyStatus?: { IsPublic?: boolean } }>,
  policy: Answer<{ Policy?: string }>,
  acl: Answer<{ Grants?: Array<{ Grantee?: { URI?: string }; Permission?: string }> }>,
): StoreFinding {
  const aspect = 'public access';
  const block = pab.ok ? (pab.value.PublicAccessBlockConfiguration ?? {}) : undefined;
  const restricted = block?.RestrictPublicBuckets === true;
  const ignoresAcls = block?.IgnorePublicAcls === true;
  const fix = `remove the grant to everyone (AWS: aws s3api delete-bucket-policy --bucket ${bucket}, then put-public-access-block with all four settings on; MinIO: mc anonymous set private ALIAS/${bucket})`;

  let policyVerdict: 'none' | 'private' | 'public' | 'conditional' | 'unknown' = 'unknown';
  let policyDetail = '';
  if (policy.ok) {
    const judged = judgeBucketPolicy(policy.value.Policy ?? '');
    policyVerdict = judged.public.length ? 'public' : judged.conditional.length ? 'conditional' : 'private';
    policyDetail = judged.public.length ? judged.public.join('; ') : judged.conditional.join('; ');
  } else if (policy.name === 'NoSuchBucketPolicy') policyVerdict = 'none';
  if (status.ok && status.value.PolicyStatus?.IsPublic === true && policyVerdict !== 'public') {
    policyVerdict = 'public';
    policyDetail = 'the server reports the bucket policy as public (GetBucketPolicyStatus)';
  }
  if (policyVerdict === 'public' && !restricted) {
    return { aspect, verdict: 'fail', detail: `bucket ${bucket} is public: its policy lets anyone read (${policyDetail})`, fix };
  }
  const publicGrants = acl.ok ? (acl.value.Grants ?? []).filter((g) => g.Grantee?.URI === ALL_USERS || g.Grantee?.URI === AUTHENTICATED_USERS) : [];
  if (publicGrants.length && !ignoresAcls) {
    const grants = publicGrants.map((g) => `${g.Grantee!.URI!.split('/').pop()} ${g.Permission ?? '?'}`).join(', ');
    return { aspect, verdict: 'fail', detail: `bucket ${bucket} is public: its ACL grants ${grants}`, fix: `set the bucket ACL to private (aws s3api put-bucket-acl --bucket ${bucket} --acl private)` };
  }
  if (policyVerdict === 'conditional' && !restricted) {
    return {
      aspect,
      verdict: 'warn',
      detail: `bucket ${bucket}: its policy allows anyone under a condition (${policyDetail})`,
      fix: 'make sure the condition limits access to your own networks or accounts, or grant named principals instead of "*"',
    };
  }
  if (policyVerdict === 'unknown' && !restricted) {
    return {
      aspect,
      verdict: 'unknown',
      detail: `could not be determined: the bucket policy could not be read (${why(policy)})`,
      fix: 'allow s3:GetBucketPolicy (and s3:GetBucketPolicyStatus) to these credentials, or check the bucket policy by hand',
    };
  }
  const policyPart = {
    none: 'no bucket policy',
    unknown: 'the bucket policy could not be read',
    private: 'the bucket policy grants no anonymous read',
    public: 'the bucket policy would let anyone read',
    conditional: 'the bucket policy allows anyone under a condition',
  }[policyVerdict];
  const parts = [
    policyPart,
    restricted ? 'the public access block restricts public policies (RestrictPublicBuckets)' : undefined,
    unsupported(pab) ? 'public access block not supported by this server' : undefined,
  ].filter(Boolean);
  return { aspect, verdict: 'ok', detail: `not public: ${parts.join('; ')}` };
}

/** Only on servers that have the public access block (AWS): all four settings on is the safe state. */
function publicAccessBlockFinding(bucket: string, pab: Answer<{ PublicAccessBlockConfiguration?: PublicAccessBlock }>): StoreFinding | undefined {
  if (unsupported(pab)) return undefined;
  const aspect = 'public access block';
  const fix = `aws s3api put-public-access-block --bucket ${bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`;
  if (!pab.ok) {
    if (pab.name === 'NoSuchPublicAccessBlockConfiguration') {
      return { aspect, verdict: 'warn', detail: 'none configured: a policy or ACL change could make the bucket public', fix };
    }
    return { aspect, verdict: 'unknown', detail: `could not be determined (${why(pab)})`, fix: 'allow s3:GetBucketPublicAccessBlock to these credentials' };
  }
  const c = pab.value.PublicAccessBlockConfiguration ?? {};
  const off = (['BlockPublicAcls', 'IgnorePublicAcls', 'BlockPublicPolicy', 'RestrictPublicBuckets'] as const).filter((k) => c[k] !== true);
  if (off.length === 0) return { aspect, verdict: 'ok', detail: 'on (all four settings)' };
  return { aspect, verdict: 'warn', detail: `partly off: ${off.join(', ')}`, fix };
}

function versioningFinding(bucket: string, answer: Answer<{ Status?: string; MFADelete?: string }>): StoreFinding {
  const aspect = 'versioning';
  const fix = `turn versioning on (AWS: aws s3api put-bucket-versioning --bucket ${bucket} --versioning-configuration Status=Enabled; MinIO: mc version enable ALIAS/${bucket}) with a lifecycle rule that expires noncurrent versions`;
  if (!answer.ok) return { aspect, verdict: 'unknown', detail: `could not be determined (${why(answer)})`, fix: 'allow s3:GetBucketVersioning to these credentials' };
  if (answer.value.Status === 'Enabled') return { aspect, verdict: 'ok', detail: `versioning on${answer.value.MFADelete === 'Enabled' ? ', MFA delete on' : ''}` };
  if (answer.value.Status === 'Suspended') return { aspect, verdict: 'warn', detail: 'versioning suspended: an object deleted or overwritten from now on cannot be recovered', fix };
  return { aspect, verdict: 'warn', detail: 'versioning off: a deleted or overwritten object cannot be recovered', fix };
}

function objectLockFinding(
  answer: Answer<{ ObjectLockConfiguration?: { ObjectLockEnabled?: string; Rule?: { DefaultRetention?: { Mode?: string; Days?: number; Years?: number } } } }>,
): StoreFinding {
  const aspect = 'object lock';
  if (!answer.ok) {
    if (answer.name === 'ObjectLockConfigurationNotFoundError') return { aspect, verdict: 'ok', detail: 'object lock off (optional: it keeps object versions from deletion for a set time)' };
    return { aspect, verdict: 'unknown', detail: `could not be determined (${why(answer)})`, fix: 'allow s3:GetBucketObjectLockConfiguration to these credentials' };
  }
  const config = answer.value.ObjectLockConfiguration;
  if (config?.ObjectLockEnabled !== 'Enabled') return { aspect, verdict: 'ok', detail: 'object lock off (optional: it keeps object versions from deletion for a set time)' };
  const r = config.Rule?.DefaultRetention;
  if (!r) return { aspect, verdict: 'ok', detail: 'object lock on, no default retention' };
  const period = r.Days !== undefined ? `${r.Days} day(s)` : r.Years !== undefined ? `${r.Years} year(s)` : 'an unstated period';
  return { aspect, verdict: 'ok', detail: `object lock on: ${r.Mode ?? '?'} retention of ${period} by default (gc deletes only versions past it)` };
}

/**
 * Statements of a bucket policy that let anyone (Principal "*" or {"AWS": "*"}) read objects or list keys: `public`
 * without a Condition, `conditional` with one (a condition may or may not limit who that is).
 */
export function judgeBucketPolicy(policyJson: string): { public: string[]; conditional: string[] } {
  const out = { public: [] as string[], conditional: [] as string[] };
  let doc: unknown;
  try {
    doc = JSON.parse(policyJson);
  } catch {
    return out;
  }
  const statements = (doc as { Statement?: unknown })?.Statement;
  const list = Array.isArray(statements) ? statements : statements ? [statements] : [];
  list.forEach((raw, i) => {
    const s = raw as { Sid?: string; Effect?: string; Principal?: unknown; Action?: unknown; NotAction?: unknown; Condition?: unknown };
    if (s.Effect !== 'Allow' || !isEveryone(s.Principal)) return;
    const actions = asList(s.Action);
    const reads = s.NotAction !== undefined ? ['NotAction'] : actions.filter((a) => READ_ACTIONS.some((r) => wildcardMatch(a, r)));
    if (reads.length === 0) return;
    const label = `statement ${s.Sid ? JSON.stringify(s.Sid) : i + 1}: Principal "*" may ${reads.join(', ')}`;
    if (s.Condition && typeof s.Condition === 'object' && Object.keys(s.Condition).length > 0) out.conditional.push(`${label} if ${Object.keys(s.Condition).join(', ')}`);
    else out.public.push(label);
  });
  return out;
}

const READ_ACTIONS = ['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 's3:ListBucketVersions'];

function isEveryone(principal: unknown): boolean {
  if (principal === '*') return true;
  if (principal && typeof principal === 'object') {
    const p = principal as Record<string, unknown>;
    return asList(p.AWS).includes('*') || asList(p.CanonicalUser).includes('*');
  }
  return false;
}

function asList(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** IAM action patterns: case-insensitive, `*` any run of characters, `?` one. */
function wildcardMatch(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(action);
}
