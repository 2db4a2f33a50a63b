// resolveModelDir against a local fake of the Hub's HTTP API (test/helpers/fake-hub.ts): the files it
// downloads and their bytes, the huggingface_hub cache layout, offline reuse of the cache, revisions,
// and the typed errors for a missing repo, a gated repo, an unreachable endpoint and a bad spec.

import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidModelError, InvalidRequestError, NotFoundError, UnavailableError } from '../src/errors.js';
import { defaultCacheDir } from '../src/hub/cache.js';
import { HubAccessError, parseHubSpec, resolveModelDir } from '../src/hub/hub.js';
import { gitBlobOid, sha256, startFakeHub, type FakeHub } from './helpers/fake-hub.js';

const REPO = 'tunekit-test/tiny-sharded';
const GATED = 'tunekit-test/gated';
const TOKEN = 'hf_fake_gated_token';

/** Arbitrary but fixed bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2));
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';

const NEEDED: Record<string, Buffer> = {
  'config.json': json({ model_type: 'llama', hidden_size: 8 }),
  'generation_config.json': json({ eos_token_id: 2 }),
  'tokenizer.json': json({ version: '1.0', model: { type: 'BPE' } }),
  'tokenizer_config.json': json({ bos_token: '<s>' }),
  'special_tokens_map.json': json({ eos_token: '</s>' }),
  'chat_template.jinja': Buffer.from('{% for m in messages %}{{ m.content }}{% endfor %}'),
  'model.safetensors.index.json': json({
    metadata: { total_size: 3000 },
    weight_map: { 'a.weight': SHARD1, 'b.weight': SHARD2, 'c.weight': SHARD1 },
  }),
  [SHARD1]: bytes(1000, 1),
  [SHARD2]: bytes(2000, 2),
};
const NOT_NEEDED: Record<string, Buffer> = {
  'pytorch_model.bin': bytes(500, 3),
  'model.gguf': bytes(300, 4),
  'README.md': Buffer.from('# tiny\n'),
  'onnx/model.onnx': bytes(200, 5),
  '.gitattributes': Buffer.from('*.safetensors filter=lfs\n'),
};
const V1: Record<string, Buffer> = {
  'config.json': json({ model_type: 'llama', hidden_size: 4 }),
  'tokenizer.json': NEEDED['tokenizer.json'],
  'tokenizer_config.json': NEEDED['tokenizer_config.json'],
  'model.safetensors': bytes(800, 6),
  'pytorch_model.bin': bytes(100, 7),
};
const GATED_FILES: Record<string, Buffer> = {
  'config.json': json({ model_type: 'llama', gated: true }),
  'tokenizer.json': NEEDED['tokenizer.json'],
  'tokenizer_config.json': NEEDED['tokenizer_config.json'],
  'model.safetensors': bytes(64, 8),
};
const BIN_ONLY: Record<string, Buffer> = {
  'config.json': NEEDED['config.json'],
  'tokenizer.json': NEEDED['tokenizer.json'],
  'tokenizer_config.json': NEEDED['tokenizer_config.json'],
  'pytorch_model.bin': bytes(100, 9),
};

const REPOS = {
  [REPO]: { ...NEEDED, ...NOT_NEEDED },
  [`${REPO}@v1`]: V1,
  [GATED]: GATED_FILES,
  'tunekit-test/bin-only': BIN_ONLY,
};

const ENV_KEYS = ['HF_TOKEN', 'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_HOME'] as const;
const savedEnv = new Map<string, string | undefined>();
let tmp: string;
let hub: FakeHub;

before(async () => {
  for (const k of ENV_KEYS) {
    savedEnv.set(k, process.env[k]);
    delete process.env[k];
  }
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tunekit-hub-'));
  hub = await startFakeHub(REPOS, { gated: { [GATED]: TOKEN } });
});

after(async () => {
  await hub.close();
  await fs.rm(tmp, { recursive: true, force: true });
  for (const [k, v] of savedEnv) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

let cacheCount = 0;
const freshCache = () => path.join(tmp, `cache-${cacheCount++}`);

/** Every file under `dir` (following symlinks), relative, sorted. */
async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listTree(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

function resolvedFiles(requests: string[]): string[] {
  return requests.flatMap((r) => {
    const m = /\/resolve\/[^/]+\/(.+)$/.exec(r);
    return m ? [m[1]] : [];
  });
}

describe('resolveModelDir from the Hub', () => {
  it('downloads exactly the files a model needs, with identical bytes, in the huggingface_hub layout', async () => {
    const cacheDir = freshCache();
    const progress: string[] = [];
    const dir = await resolveModelDir(REPO, { cacheDir, endpoint: hub.url, onProgress: (m) => progress.push(m) });

    assert.deepEqual(await listTree(dir), Object.keys(NEEDED).sort());
    for (const [name, want] of Object.entries(NEEDED)) assert.deepEqual(await fs.readFile(path.join(dir, name)), want, name);
    for (const name of Object.keys(NOT_NEEDED)) assert.ok(!resolvedFiles(hub.requests).includes(name), `${name} was requested`);
    assert.ok(progress.some((m) => m.includes(SHARD2)), 'progress names the shards');

    // models--org--name/{refs/main, snapshots/<commit>/<file> -> ../../blobs/<etag>, blobs/<etag>}
    const storage = path.join(cacheDir, 'models--tunekit-test--tiny-sharded');
    const commit = path.basename(dir);
    assert.match(commit, /^[0-9a-f]{40}$/);
    assert.equal(dir, path.join(storage, 'snapshots', commit));
    assert.equal(await fs.readFile(path.join(storage, 'refs', 'main'), 'utf8'), commit);
    const etags: string[] = [];
    for (const [name, content] of Object.entries(NEEDED)) {
      const etag = name.endsWith('.safetensors') ? sha256(content) : gitBlobOid(content);
      etags.push(etag);
      assert.equal(await fs.readlink(path.join(dir, name)), path.join('..', '..', 'blobs', etag), name);
    }
    assert.deepEqual((await fs.readdir(path.join(storage, 'blobs'))).sort(), etags.sort());
  });

  it('reuses the cache: no downloads when complete, no requests offline, and works with the server gone', async () => {
    const own = await startFakeHub(REPOS);
    const cacheDir = freshCache();
    const first = await resolveModelDir(REPO, { cacheDir, endpoint: own.url });

    const before = own.requests.length;
    assert.equal(await resolveModelDir(REPO, { cacheDir, endpoint: own.url }), first);
    assert.deepEqual(resolvedFiles(own.requests.slice(before)), [], 'nothing downloaded again');

    process.env.HF_HUB_OFFLINE = '1';
    try {
      const n = own.requests.length;
      assert.equal(await resolveModelDir(REPO, { cacheDir, endpoint: own.url }), first);
      assert.equal(own.requests.length, n, 'HF_HUB_OFFLINE=1 makes no request');
      await assert.rejects(resolveModelDir(REPO, { cacheDir: freshCache(), endpoint: own.url }), (err: unknown) => {
        assert.ok(err instanceof UnavailableError);
        assert.match(err.message, /HF_HUB_OFFLINE/);
        return true;
      });
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }

    await own.close();
    assert.equal(await resolveModelDir(REPO, { cacheDir, endpoint: own.url }), first);
    assert.equal(await resolveModelDir(`${REPO}@main`, { cacheDir, endpoint: own.url }), first);
  });

  it('downloads a truncated blob again, and one repo twice at once without clashing', async () => {
    const cacheDir = freshCache();
    const [a, b] = await Promise.all([
      resolveModelDir(REPO, { cacheDir, endpoint: hub.url }),
      resolveModelDir(REPO, { cacheDir, endpoint: hub.url }),
    ]);
    assert.equal(a, b);
    const blob = await fs.realpath(path.join(a, SHARD2));
    await fs.writeFile(blob, bytes(10, 2));
    assert.equal(await resolveModelDir(REPO, { cacheDir, endpoint: hub.url }), a);
    assert.deepEqual(await fs.readFile(path.join(a, SHARD2)), NEEDED[SHARD2]);
  });

  it('resolves a revision given as org/name@v1', async () => {
    const cacheDir = freshCache();
    const main = await resolveModelDir(REPO, { cacheDir, endpoint: hub.url });
    const dir = await resolveModelDir(`${REPO}@v1`, { cacheDir, endpoint: hub.url });
    assert.notEqual(dir, main);
    assert.deepEqual(await listTree(dir), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    assert.deepEqual(await fs.readFile(path.join(dir, 'config.json')), V1['config.json']);
    assert.deepEqual(await fs.readFile(path.join(dir, 'model.safetensors')), V1['model.safetensors']);
    const storage = path.join(cacheDir, 'models--tunekit-test--tiny-sharded');
    assert.equal(await fs.readFile(path.join(storage, 'refs', 'v1'), 'utf8'), path.basename(dir));
    // the same revision through the option, and by commit hash
    assert.equal(await resolveModelDir(REPO, { cacheDir, endpoint: hub.url, revision: 'v1' }), dir);
    assert.equal(await resolveModelDir(`${REPO}@${path.basename(dir)}`, { cacheDir, endpoint: hub.url }), dir);
  });

  it('a repo that does not exist is a NotFoundError naming it; so is an unknown revision', async () => {
    await assert.rejects(resolveModelDir('tunekit-test/no-such-model', { cacheDir: freshCache(), endpoint: hub.url }), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /tunekit-test\/no-such-model/);
      assert.match(err.message, /not found/);
      return true;
    });
    await assert.rejects(resolveModelDir(`${REPO}@v9`, { cacheDir: freshCache(), endpoint: hub.url }), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.match(err.message, /revision "v9"/);
      return true;
    });
  });

  it('a gated repo needs HF_TOKEN; the token is sent as a Bearer header', async () => {
    await assert.rejects(resolveModelDir(GATED, { cacheDir: freshCache(), endpoint: hub.url }), (err: unknown) => {
      assert.ok(err instanceof HubAccessError, String(err));
      assert.match(err.message, /HF_TOKEN/);
      assert.match(err.message, /gated or private/);
      assert.match(err.message, /401/);
      return true;
    });
    await assert.rejects(resolveModelDir(GATED, { cacheDir: freshCache(), endpoint: hub.url, token: 'hf_wrong' }), (err: unknown) => {
      assert.ok(err instanceof HubAccessError, String(err));
      assert.match(err.message, /403/);
      assert.match(err.message, /HF_TOKEN/);
      return true;
    });
    // The fake hub serves the files only with "Authorization: Bearer <TOKEN>", and the token must not
    // follow the LFS redirect to the CDN's origin.
    const dir = await resolveModelDir(GATED, { cacheDir: freshCache(), endpoint: hub.url, token: TOKEN });
    assert.deepEqual(await fs.readFile(path.join(dir, 'model.safetensors')), GATED_FILES['model.safetensors']);
    assert.ok(hub.requests.some((r) => r.includes('cdn:/__lfs/')));
    assert.equal(hub.cdnAuthorized(), 0);
    process.env.HF_TOKEN = TOKEN;
    try {
      const viaEnv = await resolveModelDir(GATED, { cacheDir: freshCache(), endpoint: hub.url });
      assert.deepEqual(await fs.readFile(path.join(viaEnv, 'config.json')), GATED_FILES['config.json']);
    } finally {
      delete process.env.HF_TOKEN;
    }
  });

  it('an unreachable endpoint with nothing cached is an UnavailableError naming the endpoint', async () => {
    const gone = await startFakeHub({});
    await gone.close();
    await assert.rejects(resolveModelDir(REPO, { cacheDir: freshCache(), endpoint: gone.url }), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.ok(err.message.includes(gone.url), err.message);
      return true;
    });
  });

  it('a repo without safetensors weights is an InvalidModelError', async () => {
    await assert.rejects(resolveModelDir('tunekit-test/bin-only', { cacheDir: freshCache(), endpoint: hub.url }), (err: unknown) => {
      assert.ok(err instanceof InvalidModelError, String(err));
      assert.match(err.message, /model\.safetensors/);
      assert.match(err.message, /pytorch_model\.bin/);
      return true;
    });
  });

  it('HF_ENDPOINT is the default endpoint', async () => {
    process.env.HF_ENDPOINT = hub.url;
    try {
      const dir = await resolveModelDir(`${REPO}@v1`, { cacheDir: freshCache() });
      assert.deepEqual(await fs.readFile(path.join(dir, 'config.json')), V1['config.json']);
    } finally {
      delete process.env.HF_ENDPOINT;
    }
  });
});

describe('resolveModelDir specs', () => {
  it('returns an existing local directory as is, without touching the network', async () => {
    const dir = await fs.mkdtemp(path.join(tmp, 'local-'));
    assert.equal(await resolveModelDir(dir, { endpoint: 'http://127.0.0.1:1' }), dir);
  });

  it('rejects a path that does not exist and a spec that is no repo id', async () => {
    for (const spec of ['./no-such-dir', '/no/such/dir', '../nope']) {
      await assert.rejects(resolveModelDir(spec), (err: unknown) => {
        assert.ok(err instanceof InvalidRequestError, String(err));
        assert.match(err.message, /model directory .* does not exist/);
        return true;
      });
    }
    for (const spec of ['', 'not a repo', 'a/b/c', 'org/na--me', '-org/name', 'org/name@', 'org/name@../x']) {
      await assert.rejects(resolveModelDir(spec), InvalidRequestError, spec);
    }
    await assert.rejects(resolveModelDir('org/name', { endpoint: 'not a url' }), InvalidRequestError);
  });

  it('parses org/name[@revision]', () => {
    assert.deepEqual(parseHubSpec('Qwen/Qwen3-0.6B'), { repo: 'Qwen/Qwen3-0.6B', revision: 'main' });
    assert.deepEqual(parseHubSpec('meta-llama/Llama-3.2-1B@refs/pr/3'), { repo: 'meta-llama/Llama-3.2-1B', revision: 'refs/pr/3' });
    assert.deepEqual(parseHubSpec('org/name', 'v2'), { repo: 'org/name', revision: 'v2' });
    assert.throws(() => parseHubSpec('org/name@v1', 'v2'), InvalidRequestError);
  });

  it('finds the cache where huggingface_hub does', () => {
    const home = os.homedir();
    assert.equal(defaultCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
    assert.equal(defaultCacheDir({ HF_HOME: '/h' }), path.join('/h', 'hub'));
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'huggingface', 'hub'));
    assert.equal(defaultCacheDir({}), path.join(home, '.cache', 'huggingface', 'hub'));
  });
});
