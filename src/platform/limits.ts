// Size limits on what callers store and on what lists answer, in one table: the API's routes and the
// platform's services read them here (README "Limits" lists them). Where Vertex documents a limit it is
// Vertex's:
// - display names (TuningJob.tuned_model_display_name, Model, Endpoint, DeployedModel display_name): at
//   most 128 characters (Unicode code points) of any UTF-8 (google/cloud/aiplatform/v1 protos);
// - labels (TuningJob.labels): at most 64; keys 1-63 characters, values 0-63; lowercase letters (any
//   script), letters without case (international characters), digits, '_' and '-'; keys start with a
//   letter. That is Cloud Resource Manager's "Requirements for labels", which the proto's comment links
//   to (the comment itself says "no longer than 64 characters"; the linked rules, 63, are the stricter).
//   Models and endpoints carry no labels of their own here, so the job's are the only ones checked.
// Where Vertex documents none, the limit is tunekit's own:
// - description (TuningJob.description): at most 2,048 characters;
// - list pages: at most PAGE_SIZE_MAX items and about LIST_PAGE_MAX_BYTES of JSON; a page that would
//   pass the byte budget stops early with a nextPageToken (an item larger than the budget on its own is
//   still served, alone on its page).
// - objects (the object store, the Cloud Storage JSON API): at most LIMITS.objectBytes bytes each (Cloud
//   Storage allows 5 TiB; tunekit keeps datasets and adapters, and trains from local copies), refused as
//   the bytes arrive (HTTP 413); the metadata part of an upload is a JSON body (the API's body limit).
// Every refusal is INVALID_ARGUMENT naming the field: "Invalid value at 'labels' ...".

import { InvalidRequestError } from '../errors.js';

export const LIMITS = {
  displayNameChars: 128,
  descriptionChars: 2048,
  labels: 64,
  labelKeyChars: 63,
  labelValueChars: 63,
  /** Bytes of one stored object (`tunekit serve --max-object-size` sets another). */
  objectBytes: 5 * 1024 ** 3,
  /** Bytes of base-model copies a machine keeps in `cache/models/` (`--model-cache-size` on serve and worker sets another). */
  modelCacheBytes: 500 * 1024 ** 3,
  /** Bytes of JSON in one page of a list response. */
  listPageBytes: 4 * 1024 * 1024,
  /** Items in one page (the default page size too). */
  pageSize: { tuningJobs: 100, models: 100, endpoints: 100, objects: 1000 },
} as const;

const LABEL_KEY = new RegExp(`^[\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]{0,${LIMITS.labelKeyChars - 1}}$`, 'u');
const LABEL_VALUE = new RegExp(`^[\\p{Ll}\\p{Lo}\\p{N}_-]{0,${LIMITS.labelValueChars}}$`, 'u');

/** Unicode code points in `s`, counted up to `max + 1` (enough to tell "too long" without a copy). */
function codePoints(s: string, max: number): number {
  if (s.length <= max) return s.length;
  let n = 0;
  for (let i = 0; i < s.length && n <= max; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
  }
  return n;
}

function show(value: string): string {
  const s = JSON.stringify(value.length > 80 ? value.slice(0, 77) : value);
  return value.length > 80 ? `${s.slice(0, -1)}..."` : s;
}

function tooLong(field: string, value: string, max: number): InvalidRequestError {
  return new InvalidRequestError(`Invalid value at '${field}' (TYPE_STRING), ${show(value)}: at most ${max} characters are allowed.`);
}

/** A display name: at most 128 characters. */
export function checkDisplayName(value: string, field: string): void {
  if (codePoints(value, LIMITS.displayNameChars) > LIMITS.displayNameChars) throw tooLong(field, value, LIMITS.displayNameChars);
}

/** A description: at most 2,048 characters. */
export function checkDescription(value: string, field = 'description'): void {
  if (codePoints(value, LIMITS.descriptionChars) > LIMITS.descriptionChars) throw tooLong(field, value, LIMITS.descriptionChars);
}

/** Labels: a map<string, string> of at most 64 entries with keys and values as Cloud labels require. */
export function checkLabels(labels: unknown, field = 'labels'): void {
  if (labels === undefined) return;
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new InvalidRequestError(`Invalid value at '${field}' (map<string, string>): expected an object of label keys and values.`);
  }
  const entries = Object.entries(labels as Record<string, unknown>);
  if (entries.length > LIMITS.labels) {
    throw new InvalidRequestError(`Invalid value at '${field}' (map<string, string>): at most ${LIMITS.labels} labels are allowed, got ${entries.length}.`);
  }
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key)) {
      throw new InvalidRequestError(
        `Invalid value at '${field}' (map<string, string>), key ${show(key)}: label keys are 1-${LIMITS.labelKeyChars} characters, ` +
          `start with a lowercase letter and hold only lowercase letters, digits, '_' and '-' (international characters are allowed).`,
      );
    }
    if (typeof value !== 'string') {
      throw new InvalidRequestError(`Invalid value at '${field}[${JSON.stringify(key)}]' (TYPE_STRING): label values are strings.`);
    }
    if (!LABEL_VALUE.test(value)) {
      throw new InvalidRequestError(
        `Invalid value at '${field}[${JSON.stringify(key)}]' (TYPE_STRING), ${show(value)}: label values are 0-${LIMITS.labelValueChars} characters ` +
          `of lowercase letters, digits, '_' and '-' (international characters are allowed).`,
      );
    }
  }
}

/** Bytes of `value` as JSON (UTF-8). */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/**
 * How many of `items`, in order, make one page of at most `maxBytes` of JSON (each item's size by
 * `sizeOf`, plus a separator): at least one, so a list always moves on.
 */
export function fitPage<T>(items: readonly T[], sizeOf: (item: T) => number = jsonBytes, maxBytes: number = LIMITS.listPageBytes): number {
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    total += sizeOf(items[i]!) + 1;
    if (total > maxBytes && i > 0) return i;
  }
  return items.length;
}

/** Options every paged list of the platform takes. */
export interface PageOptions<T> {
  pageSize?: number;
  pageToken?: string;
  /** The page's byte budget (default LIMITS.listPageBytes). */
  maxBytes?: number;
  /** Bytes an item takes in the response (default: its record as JSON). */
  sizeOf?: (item: T) => number;
}
