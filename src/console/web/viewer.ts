// The report frame (viewer.html, sandboxed: no origin, no network): the console posts a report's
// HTML, which replaces this document, so the report's own inline script and styles run here and
// nowhere else.

addEventListener('message', (e: MessageEvent) => {
  const html = (e.data as { reportHtml?: unknown } | null)?.reportHtml;
  if (e.source !== parent || typeof html !== 'string') return;
  document.open();
  document.write(html);
  document.close();
});
parent.postMessage({ viewerReady: true }, '*');
