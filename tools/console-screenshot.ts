// Makes docs/console.png, the README's picture of the web console, with the console test's flow
// (test/helpers/console-flow.ts): a tuning job created through the API on a tiny model, watched in the
// console until it succeeds, its page captured at a laptop's size.
//   npm run build && node dist/tools/console-screenshot.js [--out FILE.png]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { launchBrowser, watchedPage } from '../test/helpers/browser.js';
import { createJob, signIn, startConsoleServer, watchJob } from '../test/helpers/console-flow.js';

const at = process.argv.indexOf('--out');
const out = path.resolve(at > 0 ? process.argv[at + 1]! : 'docs/console.png');

const server = await startConsoleServer();
const browser = await launchBrowser();
try {
  const job = await createJob(server);
  const { page, problems } = await watchedPage(browser, server.url, { width: 1280, height: 900 });
  await signIn(page, server);
  await watchJob(page, job);
  await page.locator('[data-metric="Loss"] canvas').waitFor();
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  if (problems.length) throw new Error(`the console had problems:\n${problems.join('\n')}`);
  process.stdout.write(`${out}\n`);
} finally {
  await browser.close();
  await server.close();
}
