/** The one place secrets are scrubbed before anything reaches a manifest, a log line or an error message. */

export const REDACTED = '***';

const SECRET_PARAM = /pass(word)?|secret|token|key|credential|signature|sig/i;

/** Drops the password of `scheme://user:password@host` and the values of secret-looking query parameters. */
export function redactUri(uri: string): string {
  let out = uri.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:?#]*):[^@/?#]*@/i, `$1:${REDACTED}@`);
  out = out.replace(/([?&])([^=&#]+)=([^&#]*)/g, (whole, sep: string, name: string) =>
    SECRET_PARAM.test(name) ? `${sep}${name}=${REDACTED}` : whole,
  );
  return out;
}

// `ping` and `webhook` are hook URLs: a healthchecks URL is itself the credential.
const SECRET_FIELD = /pass(word)?$|secret|token|privatekey|private_key|accesskeyid|sessiontoken|credentials?$|^ping$|^webhook$/i;

/** Deep copy with secret-looking fields replaced; env references (`{"env": "X"}`) are shown as such, since they hold no secret. */
export function redactObject(value: unknown, fieldName = ''): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'string') {
      if (fieldName && SECRET_FIELD.test(fieldName)) return REDACTED;
      return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? redactUri(value) : value;
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => redactObject(v, fieldName));
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1 && entries[0]![0] === 'env' && typeof entries[0]![1] === 'string') return value;
  return Object.fromEntries(entries.map(([k, v]) => [k, redactObject(v, k)]));
}

/** Removes known secret values wherever they appear in a message (e.g. an error text echoing a connection string). */
export function scrubSecrets(message: string, secrets: Iterable<string>): string {
  let out = message;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  return out;
}
