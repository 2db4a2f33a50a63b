// Names in the object store: bucket names (GCS rules), object names (GCS rules made stricter so that a
// name can never be read as a path: no '.' or '..' segments, no leading '/', no backslash, no control
// characters, also after percent-decoding), and gs:// URIs. The store never builds a file path from an
// object name (blobs have random names), so these checks are a second wall, and they keep names
// portable to a real bucket.

import { InvalidRequestError } from '../errors.js';

export const MAX_OBJECT_NAME_BYTES = 1024;

const BUCKET = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws INVALID_ARGUMENT unless `name` is a valid GCS bucket name. */
export function validateBucketName(name: string): void {
  const bad = (why: string) =>
    new InvalidRequestError(`bucket name ${JSON.stringify(name)} is not valid: ${why}`);
  if (!BUCKET.test(name)) {
    throw bad('use 3-63 characters of a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit');
  }
  if (name.includes('..') || name.includes('.-') || name.includes('-.')) throw bad('dots may not be doubled or next to a dash');
  if (IPV4.test(name)) throw bad('a bucket name may not look like an IP address');
  if (name.startsWith('goog') || name.includes('google')) throw bad('names starting with "goog" or containing "google" are reserved');
}

/** Throws INVALID_ARGUMENT unless `name` is a safe object name (see the file comment). */
export function validateObjectName(name: string): void {
  const bad = (why: string) =>
    new InvalidRequestError(`object name ${JSON.stringify(name)} is not valid: ${why}`);
  if (name.length === 0) throw bad('it is empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_OBJECT_NAME_BYTES) throw bad(`it is longer than ${MAX_OBJECT_NAME_BYTES} bytes of UTF-8`);
  if (LONE_SURROGATE.test(name)) throw bad('it is not valid Unicode');
  for (const form of decodings(name)) {
    if (/[\u0000-\u001f\u007f]/.test(form)) throw bad('control characters (NUL, CR, LF, ...) are not allowed');
    if (form.includes('\\')) throw bad('backslashes are not allowed');
    if (form.startsWith('/')) throw bad('it may not start with "/"');
    if (form.split('/').some((s) => s === '.' || s === '..')) throw bad('"." and ".." segments are not allowed');
  }
}

/** `name`, then each successive percent-decoding of it while decoding changes something (at most 3). */
function decodings(name: string): string[] {
  const forms = [name];
  let s = name;
  for (let i = 0; i < 3 && s.includes('%'); i++) {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      break;
    }
    if (d === s) break;
    forms.push(d);
    s = d;
  }
  return forms;
}

export interface GsUri {
  bucket: string;
  /** '' for a bucket URI (gs://b or gs://b/). */
  object: string;
}

/** Splits `gs://bucket/object` and validates both parts; the object may be empty only if `allowBucketOnly`. */
export function parseGsUri(uri: string, opts: { allowBucketOnly?: boolean } = {}): GsUri {
  if (typeof uri !== 'string' || !uri.startsWith('gs://')) {
    throw new InvalidRequestError(`${JSON.stringify(uri)} is not a gs:// URI: expected gs://BUCKET/OBJECT`);
  }
  const rest = uri.slice('gs://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const object = slash < 0 ? '' : rest.slice(slash + 1);
  validateBucketName(bucket);
  if (object === '') {
    if (!opts.allowBucketOnly) throw new InvalidRequestError(`${JSON.stringify(uri)} names a bucket, not an object: expected gs://${bucket}/OBJECT`);
  } else {
    validateObjectName(object);
  }
  return { bucket, object };
}

export function gsUri(bucket: string, object = ''): string {
  return `gs://${bucket}/${object}`;
}
