/**
 * The page frame shared by the master and worker UIs: server-rendered HTML with
 * hono's html`` template, which escapes every interpolated value (a worker id, an
 * app name or a log line can never become markup). No front-end build: one small
 * stylesheet inline, and the master's live-update script served as a file so the
 * Content-Security-Policy can forbid inline scripts.
 */
import { html } from 'hono/html';

/** Html: what hono's html`` returns. */
export type Html = ReturnType<typeof html>;

/** CONTENT_SECURITY_POLICY: scripts only from this origin (no inline script, no eval), no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff;font-size:14px}
header{background:#24292f;color:#fff;padding:10px 20px;display:flex;align-items:center;gap:16px}
header a{color:#fff;text-decoration:none}
header .brand{font-weight:600;font-size:16px}
header .spacer{flex:1}
main{padding:16px 20px}
h1{font-size:22px;font-weight:500;margin:4px 0 12px}
h2{font-size:17px;font-weight:600;margin:22px 0 8px}
ul.summary{list-style:none;padding:0;margin:0 0 10px}
ul.summary li{margin:3px 0}
table{border-collapse:collapse;width:100%;margin-bottom:8px}
th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
tr:nth-child(even) td{background:#fbfcfd}
.state-ALIVE,.state-RUNNING{color:#1a7f37;font-weight:600}
.state-DEAD,.state-FAILED,.state-ERROR,.state-LOST,.state-KILLED{color:#cf222e;font-weight:600}
.state-WAITING,.state-SUBMITTED,.state-LAUNCHING,.state-DECOMMISSIONED,.state-UNKNOWN,.state-RELAUNCHING{color:#9a6700;font-weight:600}
form.kill{display:inline;margin-left:6px}
form.kill button{color:#cf222e;background:none;border:1px solid #cf222e;border-radius:4px;font-size:11px;padding:0 5px;cursor:pointer}
pre.log{background:#f6f8fa;border:1px solid #d0d7de;padding:10px;white-space:pre-wrap;word-break:break-all;max-height:70vh;overflow:auto}
.muted{color:#656d76}
.error{color:#cf222e}
`;

export interface PageOptions {
  title: string;
  /** links shown in the header, right side */
  nav?: Html;
  content: Html;
  /** load the master's live-update script */
  live?: boolean;
}

/** renderPage: a whole HTML document; the content sits in `<main id="content">` so live updates can swap it. */
export function renderPage(options: PageOptions): Html {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title}</title>
<style>${STYLE}</style>
</head>
<body>
<header><a class="brand" href="/">Flint</a><span>${options.title}</span><span class="spacer"></span>${options.nav ?? ''}</header>
<main id="content">${options.content}</main>
${options.live ? html`<script src="/static/live.js" defer></script>` : ''}
</body>
</html>`;
}

/** stateCell: a state name styled by its kind. */
export function stateCell(state: string): Html {
  return html`<span class="state-${state}">${state}</span>`;
}
