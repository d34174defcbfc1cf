/**
 * LIVE_SCRIPT: the master UI's only script, served as /static/live.js (so the
 * Content-Security-Policy can forbid inline scripts). It
 *  - asks confirm() before a kill form is submitted (the message is the form's
 *    data-confirm attribute, escaped by the server, never spliced into code);
 *  - listens to /events (server-sent cluster events) and, at most every 250 ms,
 *    re-fetches the current page with ?fragment=1 and swaps `<main id="content">`,
 *    so the page follows the cluster without a reload. `data-live-updates` on
 *    <body> counts the swaps (tests and curious people can watch it).
 */
export const LIVE_SCRIPT = `(function () {
  'use strict';
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var message = form && form.getAttribute && form.getAttribute('data-confirm');
    if (message && !window.confirm(message)) event.preventDefault();
  });
  if (!window.EventSource) return;
  var content = document.getElementById('content');
  if (!content) return;
  var pending = null;
  var inFlight = false;
  var again = false;
  function refresh() {
    pending = null;
    if (inFlight) { again = true; return; }
    inFlight = true;
    var url = new URL(window.location.href);
    url.searchParams.set('fragment', '1');
    fetch(url.toString(), { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text !== null) {
          content.innerHTML = text;
          document.body.setAttribute('data-live-updates', String(Number(document.body.getAttribute('data-live-updates') || '0') + 1));
        }
      })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() { if (pending === null) pending = window.setTimeout(refresh, 250); }
  var source = new EventSource('/events');
  source.addEventListener('hello', function () { document.body.setAttribute('data-live', 'connected'); });
  source.addEventListener('cluster', schedule);
  source.onerror = function () { document.body.setAttribute('data-live', 'reconnecting'); };
})();
`;
