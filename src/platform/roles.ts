// The permission table: every permission a route may check, and which predefined role grants which.
// Names follow Google Cloud's (aiplatform.tuningJobs.create, storage.objects.get, ...), and so do the
// role contents, restricted to the permissions tunekit has. A route that checks a permission not listed
// here is a bug (authorize throws a plain Error, not a 403).

export const PERMISSIONS = [
  'aiplatform.tuningJobs.create',
  'aiplatform.tuningJobs.get',
  'aiplatform.tuningJobs.list',
  'aiplatform.tuningJobs.cancel',
  'aiplatform.endpoints.create',
  'aiplatform.endpoints.get',
  'aiplatform.endpoints.list',
  'aiplatform.endpoints.delete',
  'aiplatform.endpoints.update',
  'aiplatform.endpoints.deploy',
  'aiplatform.endpoints.undeploy',
  'aiplatform.endpoints.predict',
  'aiplatform.models.get',
  'aiplatform.models.list',
  'aiplatform.models.delete',
  'aiplatform.models.update',
  'aiplatform.operations.get',
  'aiplatform.operations.list',
  'aiplatform.operations.cancel',
  'aiplatform.operations.delete',
  'aiplatform.publisherModels.get',
  'aiplatform.locations.get',
  'aiplatform.locations.list',
  'aiplatform.locations.evaluateInstances',
  'storage.buckets.create',
  'storage.buckets.get',
  'storage.buckets.list',
  'storage.buckets.delete',
  'storage.objects.create',
  'storage.objects.get',
  'storage.objects.list',
  'storage.objects.delete',
  'serviceusage.services.use',
  'iam.serviceAccounts.create',
  'iam.serviceAccounts.get',
  'iam.serviceAccounts.list',
  'iam.serviceAccounts.delete',
  'iam.serviceAccounts.actAs',
  'iam.serviceAccountKeys.create',
  'iam.serviceAccountKeys.list',
  'iam.serviceAccountKeys.delete',
  'resourcemanager.projects.getIamPolicy',
  'resourcemanager.projects.setIamPolicy',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

const ALL_AIPLATFORM = PERMISSIONS.filter((p) => p.startsWith('aiplatform.'));
const READ_AIPLATFORM = ALL_AIPLATFORM.filter((p) => p.endsWith('.get') || p.endsWith('.list'));

/** Predefined roles and what each grants. */
export const ROLES: Readonly<Record<string, readonly Permission[]>> = {
  'roles/owner': PERMISSIONS,
  'roles/aiplatform.user': ALL_AIPLATFORM,
  'roles/aiplatform.viewer': READ_AIPLATFORM,
  'roles/storage.admin': PERMISSIONS.filter((p) => p.startsWith('storage.')),
  'roles/storage.objectAdmin': PERMISSIONS.filter((p) => p.startsWith('storage.objects.')),
  'roles/storage.objectViewer': ['storage.objects.get', 'storage.objects.list'],
  'roles/serviceusage.serviceUsageConsumer': ['serviceusage.services.use'],
  // Running work as a service account (a tuning job's serviceAccount), as Google's role of that name.
  'roles/iam.serviceAccountUser': ['iam.serviceAccounts.actAs'],
};

export function isPermission(p: string): p is Permission {
  return (PERMISSIONS as readonly string[]).includes(p);
}

export function isRole(r: string): boolean {
  return Object.hasOwn(ROLES, r);
}
