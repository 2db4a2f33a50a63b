// A real browser for the console and report tests: Debian's chromium driven by playwright-core
// (`.ci/run` installs it; TUNEKIT_CHROMIUM names another binary). Pages are watched: console errors,
// uncaught exceptions, failed requests, HTTP errors and any request leaving the server under test are
// collected as problems, which the tests require to be none. Screenshots go to .cache/test-artifacts/.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.TUNEKIT_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '.cache', 'test-artifacts');

/** A reason to skip browser tests, or undefined when the browser is there. */
export const noBrowser: string | undefined = fs.existsSync(CHROMIUM) ? undefined : `no browser at ${CHROMIUM} (apt-get install chromium, or set TUNEKIT_CHROMIUM)`;

export function launchBrowser(): Promise<Browser> {
  // Chromium refuses to run as root with its sandbox (CI containers run as root).
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: CHROMIUM, args });
}

export interface WatchedPage { page: Page; context: BrowserContext; problems: string[] }

/**
 * A page in a fresh context of its own, with every problem recorded: console errors, page errors,
 * failed requests, HTTP statuses >= 400, and requests to anything `allowed` does not accept (an
 * origin, or a predicate of the URL; such requests are aborted).
 */
export async function watchedPage(browser: Browser, allowed: string | ((url: string) => boolean), viewport = { width: 1280, height: 900 }): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport });
  const problems: string[] = [];
  const ok = typeof allowed === 'string' ? (url: string) => new URL(url).origin === allowed : allowed;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (!ok(url)) {
      problems.push(`request not allowed: ${url}`);
      return route.abort();
    }
    return route.continue();
  });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  return { page, context, problems };
}

/** Saves a full-page screenshot as .cache/test-artifacts/NAME.png, prints and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  process.stdout.write(`# screenshot: ${file}\n`);
  return file;
}

/**
 * How many pixels of the canvas inside `selector` have the colour `rgb` (within a small tolerance):
 * a series drawn in that colour inks some; axes and grid lines never do.
 */
export function pixelsOfColor(page: Page, selector: string, rgb: [number, number, number]): Promise<number> {
  return page.$eval(selector, (el, [r, g, b]) => {
    const canvas = el.querySelector('canvas');
    if (!canvas) return 0;
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3]! > 200 && Math.abs(data[i]! - r) < 24 && Math.abs(data[i + 1]! - g) < 24 && Math.abs(data[i + 2]! - b) < 24) n++;
    }
    return n;
  }, rgb);
}
