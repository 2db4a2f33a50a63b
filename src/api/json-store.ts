// A RegistrationStore in one JSON file under the data directory (models.json), written atomically
// (temporary file, then rename). A stop-gap until the platform's SQLite database holds registrations.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelRegistration, RegistrationStore } from './catalog.js';

export class JsonRegistrationStore implements RegistrationStore {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'models.json');
  }

  private read(): ModelRegistration[] {
    if (!fs.existsSync(this.file)) return [];
    const parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as { models?: ModelRegistration[] };
    return parsed.models ?? [];
  }

  get(publisher: string, name: string): ModelRegistration | undefined {
    return this.read().find((r) => r.publisher === publisher && r.name === name);
  }

  list(publisher?: string): ModelRegistration[] {
    return this.read().filter((r) => publisher === undefined || r.publisher === publisher);
  }

  put(registration: ModelRegistration): void {
    const models = this.read().filter((r) => !(r.publisher === registration.publisher && r.name === registration.name));
    models.push(registration);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify({ models }, null, 2)}\n`);
    fs.renameSync(tmp, this.file);
  }
}
