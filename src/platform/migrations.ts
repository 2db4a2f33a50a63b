// The platform's schema, as an ordered list of migrations. Rules: a migration, once committed, is never
// edited (add a new one); versions are 1, 2, 3, ... without gaps; each runs inside the same IMMEDIATE
// transaction that records it in schema_migrations, so a crash mid-migration leaves the previous
// version intact and two processes opening one data dir apply it once.
//
// Conventions: times are RFC 3339 strings with `Z` (Date.toISOString); JSON columns hold the proto3
// JSON form the API serves (camelCase); ids that Google gives as 19-digit numbers are TEXT.

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'projects, storage, identities, quotas',
    sql: `
      CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        create_time TEXT NOT NULL
      );

      -- Key-value settings (JSON values): supported locations, bootstrap state, ...
      CREATE TABLE config (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );

      -- Buckets are global by name, as in GCS; each belongs to a project and a location.
      CREATE TABLE buckets (
        name TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects(id),
        location TEXT NOT NULL,
        create_time TEXT NOT NULL
      );

      -- Object metadata. The bytes live in a blob file named by 'blob' (random, never derived from the
      -- object name) under the bucket's directory; a row exists only once its blob is complete.
      CREATE TABLE objects (
        bucket TEXT NOT NULL REFERENCES buckets(name),
        name TEXT NOT NULL,
        blob TEXT NOT NULL,
        size INTEGER NOT NULL,
        md5 TEXT NOT NULL,
        content_type TEXT NOT NULL,
        generation INTEGER NOT NULL,
        create_time TEXT NOT NULL,
        update_time TEXT NOT NULL,
        PRIMARY KEY (bucket, name)
      ) WITHOUT ROWID;

      CREATE TABLE service_accounts (
        email TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects(id),
        account_id TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        create_time TEXT NOT NULL
      );

      -- API keys: only a SHA-256 of the whole key is kept (keys carry 256 random bits, so a fast hash is
      -- enough); key_id is the public part printed by 'keys list'.
      CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        service_account TEXT NOT NULL REFERENCES service_accounts(email) ON DELETE CASCADE,
        key_hash TEXT NOT NULL UNIQUE,
        create_time TEXT NOT NULL,
        last_used_time TEXT
      );
      CREATE INDEX api_keys_by_account ON api_keys(service_account);

      -- project '*' binds in every project (the bootstrap admin's owner role).
      CREATE TABLE role_bindings (
        project TEXT NOT NULL,
        member TEXT NOT NULL,
        role TEXT NOT NULL,
        create_time TEXT NOT NULL,
        PRIMARY KEY (project, member, role)
      ) WITHOUT ROWID;
      CREATE INDEX role_bindings_by_member ON role_bindings(member);

      -- Quota overrides; project or location '*' is a default. Missing rows fall back to built-in defaults.
      CREATE TABLE quotas (
        project TEXT NOT NULL,
        location TEXT NOT NULL,
        name TEXT NOT NULL,
        limit_value INTEGER NOT NULL CHECK (limit_value >= 0),
        PRIMARY KEY (project, location, name)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'models, endpoints, tuning jobs, metrics',
    sql: `
      -- Base models registered from Hugging Face directories: publishers/{publisher}/models/{name}.
      CREATE TABLE base_models (
        publisher TEXT NOT NULL,
        name TEXT NOT NULL,
        dir TEXT NOT NULL,
        create_time TEXT NOT NULL,
        PRIMARY KEY (publisher, name)
      ) WITHOUT ROWID;

      -- Tuning jobs. 'request' is the TuningJob as created (validated, normalised); 'result' holds what the
      -- run produced (tunedModel, tuningDataStats); 'error' is a google.rpc.Status. 'checkpoint' is the
      -- path of the last checkpoint a restarted worker resumes from.
      CREATE TABLE tuning_jobs (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        location TEXT NOT NULL,
        state TEXT NOT NULL,
        base_model TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        request TEXT NOT NULL,
        result TEXT,
        error TEXT,
        checkpoint TEXT,
        worker_pid INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        create_time TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        update_time TEXT NOT NULL
      );
      CREATE INDEX tuning_jobs_by_parent ON tuning_jobs(project, location, create_time);
      CREATE INDEX tuning_jobs_by_state ON tuning_jobs(state);

      -- One row per (job, step, metric): /train_total_loss, /eval_total_loss, ...
      CREATE TABLE job_metrics (
        job_id TEXT NOT NULL REFERENCES tuning_jobs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        epoch INTEGER,
        time TEXT NOT NULL,
        PRIMARY KEY (job_id, name, step)
      ) WITHOUT ROWID;

      -- The registry: projects/{p}/locations/{l}/models/{id}, with versions @1, @2, ... (re-tunes).
      CREATE TABLE models (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        location TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        base_model TEXT NOT NULL,
        labels TEXT,
        create_time TEXT NOT NULL,
        update_time TEXT NOT NULL
      );
      CREATE INDEX models_by_parent ON models(project, location, create_time);

      CREATE TABLE model_versions (
        model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        version INTEGER NOT NULL CHECK (version >= 1),
        tuning_job TEXT REFERENCES tuning_jobs(id),
        adapter_uri TEXT NOT NULL,
        checkpoints TEXT,
        create_time TEXT NOT NULL,
        PRIMARY KEY (model_id, version)
      ) WITHOUT ROWID;

      CREATE TABLE endpoints (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        location TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        create_time TEXT NOT NULL,
        update_time TEXT NOT NULL
      );
      CREATE INDEX endpoints_by_parent ON endpoints(project, location, create_time);

      -- What an endpoint serves: model versions (one adapter each on a shared base) and traffic shares.
      CREATE TABLE deployed_models (
        id TEXT PRIMARY KEY,
        endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        model_version INTEGER NOT NULL,
        traffic_percent INTEGER NOT NULL DEFAULT 100 CHECK (traffic_percent BETWEEN 0 AND 100),
        create_time TEXT NOT NULL,
        FOREIGN KEY (model_id, model_version) REFERENCES model_versions(model_id, version)
      );
      CREATE INDEX deployed_models_by_endpoint ON deployed_models(endpoint_id);
    `,
  },
  {
    version: 3,
    name: 'labels on endpoints',
    sql: `
      -- map<string, string> labels as a JSON object (NULL: none), as models.labels: a tuning job's labels
      -- are carried to the Model and the Endpoint it creates.
      ALTER TABLE endpoints ADD COLUMN labels TEXT;
    `,
  },
  {
    version: 4,
    name: 'long-running operations',
    sql: `
      -- google.longrunning.Operation of registry mutations (src/platform/operations.ts). 'parent' is the
      -- resource under projects/{p}/locations/{l} the operation lives under ('endpoints/123', or '' for
      -- the location); metadata, response and error are proto3 JSON (google.protobuf.Any with @type).
      CREATE TABLE operations (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        location TEXT NOT NULL,
        parent TEXT NOT NULL,
        metadata TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        response TEXT,
        error TEXT,
        create_time TEXT NOT NULL,
        update_time TEXT NOT NULL
      );
      CREATE INDEX operations_by_parent ON operations(project, location, parent, create_time);
    `,
  },
  {
    version: 5,
    name: 'deployed checkpoints',
    sql: `
      -- DeployedModel.checkpoint_id: the stored checkpoint of the model version that is served (NULL: the
      -- version's final adapter). A version's checkpoints (model_versions.checkpoints) carry adapterUri.
      ALTER TABLE deployed_models ADD COLUMN checkpoint_id TEXT;
    `,
  },
  {
    version: 6,
    name: 'storage JSON API, registry descriptions',
    sql: `
      -- Cloud Storage's crc32c of each object (base64 of the big-endian value; NULL for objects written
      -- before this migration: computed from the blob on first use, storage.ts).
      ALTER TABLE objects ADD COLUMN crc32c TEXT;
      -- Resumable uploads (the Cloud Storage JSON API's uploadType=resumable): the bytes received so far
      -- are in <bucket dir>/.upload-<id>; 'persisted' counts those synced to disk (what a status query
      -- reports). A finished session keeps its row (done = 1) so that a client that lost the final
      -- response learns the object; sessions expire after a week, as Cloud Storage's do.
      CREATE TABLE resumable_uploads (
        id TEXT PRIMARY KEY,
        bucket TEXT NOT NULL REFERENCES buckets(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        content_type TEXT,
        total INTEGER,
        persisted INTEGER NOT NULL DEFAULT 0,
        if_generation_match INTEGER,
        expect_md5 TEXT,
        expect_crc32c TEXT,
        done INTEGER NOT NULL DEFAULT 0,
        create_time TEXT NOT NULL
      );
      ALTER TABLE models ADD COLUMN description TEXT;
      ALTER TABLE endpoints ADD COLUMN description TEXT;
    `,
  },
  {
    version: 7,
    name: 'queue order of tuning jobs',
    sql: `
      -- The order jobs were created in (SQLite's rowid served until PostgreSQL, which has none, came):
      -- claims take each project's lowest. Assigned at insert, under the write lock, as MAX + 1.
      ALTER TABLE tuning_jobs ADD COLUMN queue_seq INTEGER;
      UPDATE tuning_jobs SET queue_seq = (
        SELECT COUNT(*) FROM tuning_jobs o WHERE o.create_time < tuning_jobs.create_time
          OR (o.create_time = tuning_jobs.create_time AND o.id <= tuning_jobs.id));
      CREATE INDEX tuning_jobs_by_queue_seq ON tuning_jobs(state, project, queue_seq);
    `,
  },
  {
    version: 8,
    name: 'writer of a resumable upload chunk',
    sql: `
      -- The owner mark (db.ts) of the process writing a chunk of the session now, NULL when none: one
      -- chunk at a time across processes (serve replicas).
      ALTER TABLE resumable_uploads ADD COLUMN writer INTEGER;
    `,
  },
  {
    version: 9,
    name: 'base models in the blob store',
    sql: `
      -- A base model registered through object storage: the key prefix of its files and manifest
      -- (base-models.ts); 'dir' is then where they are, for display. NULL: 'dir' is the model's path.
      ALTER TABLE base_models ADD COLUMN blobs TEXT;
    `,
  },
];
